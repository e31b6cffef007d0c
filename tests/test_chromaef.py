"""Collections are made with chromadb's current embedding-function API (helpers.chromaef): creating,
reopening in a new process, tuning and querying an index warns nothing about a "legacy embedding
function config", and the collection refuses to embed text itself."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from helpers import index as idx
from helpers.settings import PROJECT_ROOT, load_settings


def test_an_index_is_made_reopened_and_queried_without_a_legacy_config_warning(tmp_path):
    settings = load_settings(toml_path=None, env={}, chroma_path=tmp_path / "chroma")
    vectors = idx.random_unit_vectors(20, 8, seed=3)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*legacy embedding function")
        col = idx.CatalogIndex(idx.get_client(settings), "tiny-model", 8).collection("full")
        col.add(ids=[str(i) for i in range(20)], embeddings=vectors)
        assert col.configuration["embedding_function"].get_config() == {"model_id": "tiny-model", "dim": 8}
        with pytest.raises(Exception, match="pass embeddings"):
            col.query(query_texts=["a red dress"], n_results=1)
    # a new process (a fresh client, nothing registered yet) reopens, tunes and queries it
    code = f"""
import warnings
warnings.simplefilter("error", DeprecationWarning)
from helpers import index as idx
from helpers.settings import load_settings
settings = load_settings(toml_path=None, env={{}}, chroma_path={str(tmp_path / "chroma")!r})
index = idx.CatalogIndex(idx.get_client(settings), "tiny-model", 8, hnsw={{**idx.HNSW, "ef_search": 700}})
assert index.exists("full")
col = index.collection("full")
print(col.count(), idx.query_vectors(col, idx.random_unit_vectors(20, 8, seed=3)[:1], k=1)[0][0])
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "legacy embedding function" not in out.stderr
    assert out.stdout.split() == ["20", "0"]   # every record there; the first vector finds itself
