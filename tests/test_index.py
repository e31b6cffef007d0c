"""ChromaDB index: real collections on disk, a real `chroma run` server, and recall against
exact numpy search on the catalogue and on 10,000 random 1280-d vectors."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.provenance import catalog_scope
from helpers import embedding
from helpers import index as idx
from helpers.cache import Cache
from helpers.embedding import embed_images
from conftest import build_reference_index
from helpers.settings import EMBED_DIMS, EMBED_MODEL_IDS, PROJECT_ROOT, load_settings
from notebook_checks import assert_seen

CHROMA_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$")


def _settings(root: Path, catalog: Path, **kw):
    return load_settings(toml_path=None, env={}, catalog=catalog, cache_dir=root / "cache",
                         chroma_path=root / "chroma", masker="reference", **kw)


@pytest.fixture(scope="module")
def built(small_catalog, tmp_path_factory):
    """The small catalogue embedded (full photo + ground-truth cut-out) and indexed once."""
    return build_reference_index(_settings(tmp_path_factory.mktemp("index"), small_catalog))


def test_collection_names_are_valid_distinct_and_name_model_and_dimension():
    names = {idx.collection_name(m, d, v) for m in EMBED_MODEL_IDS + ("local-effnet-lite0-onnx",)
             for d in EMBED_DIMS + (1280,) for v in idx.VIEWS}
    assert len(names) == (len(EMBED_MODEL_IDS) + 1) * (len(EMBED_DIMS) + 1) * 2
    assert all(CHROMA_NAME.match(n) and ".." not in n for n in names)
    assert idx.collection_name("local-effnet-lite0-onnx", 1280, "garment") == "garment_local-effnet-lite0-onnx_1280"
    long_a = idx.collection_name("x" * 200 + ":a", 256, "full")
    long_b = idx.collection_name("x" * 200 + ":b", 256, "full")
    assert long_a != long_b and len(long_a) <= 63 and CHROMA_NAME.match(long_a)


def test_both_collections_hold_the_catalogue_with_metadata(built):
    table, settings = built["table"], built["settings"]
    assert {v: r["count"] for v, r in built["report"].items()} == {"full": len(table), "garment": len(table)}
    index = idx.CatalogIndex.open(settings, built["embedder"])
    assert idx.describe_client(index.client) == f"ChromaDB on disk at {settings.chroma_path}"
    col = index.collection("garment")
    assert col.name == idx.collection_name(embedding.LOCAL_MODEL_ID, embedding.LOCAL_DIM, "garment",
                                           catalog_scope(settings.catalog))
    assert col.configuration["hnsw"]["space"] == "cosine"
    assert col.configuration["hnsw"]["ef_search"] == idx.HNSW["ef_search"]
    got = col.get(ids=[table["image_id"][0]], include=["metadatas"])
    meta = got["metadatas"][0]
    row = table.iloc[0]
    for key in ("image_id", "item_id", "shoot_id", "category", "colour", "pattern", "image_path"):
        assert meta[key] == row[key]
    assert "garment_mask_path" not in meta
    assert all(isinstance(v, (str, int, float, bool)) for v in meta.values())


def test_query_scores_and_where_filter(built):
    index = idx.CatalogIndex.open(built["settings"], built["embedder"])
    run, table = built["runs"]["garment"], built["table"]
    frame = index.query("garment", run.vectors[:1], k=5)[0]
    assert list(frame.columns[:6]) == ["rank", "image_id", "item_id", "score", "distance", "image_path"]
    assert frame["image_id"][0] == run.ids[0] and frame["score"][0] == pytest.approx(1.0, abs=1e-4)
    assert frame["score"].is_monotonic_decreasing
    colour = table.set_index("image_id").loc[run.ids[5], "colour"]
    filtered = index.query("garment", run.vectors[:1], k=10, where={"colour": colour})[0]
    expected = (table["colour"] == colour).sum()
    assert len(filtered) == min(10, expected) and set(filtered["colour"]) == {colour}
    # several fields at once: written plainly, sent to Chroma as an $and
    shoot = table.set_index("image_id").loc[run.ids[5], "shoot_id"]
    both = index.query("garment", run.vectors[:1], k=48, where={"colour": colour, "shoot_id": shoot})[0]
    expected = ((table["colour"] == colour) & (table["shoot_id"] == shoot)).sum()
    assert len(both) == expected >= 1 and set(both["shoot_id"]) == {shoot}
    assert idx.normalise_where({}) is None and idx.normalise_where({"$or": [{"a": 1}]}) == {"$or": [{"a": 1}]}


def test_indexing_twice_is_idempotent_changed_images_replace_and_prune_removes(built, tmp_path):
    settings, table = built["settings"], built["table"]
    runs = built["runs"]
    report = idx.index_catalog(table, runs, settings=settings)
    assert report["full"] == {"added": 0, "updated": 0, "unchanged": len(table), "pruned": 0,
                              "count": len(table)}
    # one photo changes on disk: its new vector replaces the old record, the count stays
    changed = tmp_path / "changed.jpg"
    Image.open(table["image_path"][3]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(changed)
    new = embed_images({table["image_id"][3]: changed}, built["embedder"], view="full",
                       cache=Cache(settings.cache_dir), settings=settings, progress=False)
    index = idx.CatalogIndex.open(settings, built["embedder"])
    assert index.add_run(new, table) == {"added": 0, "updated": 1, "unchanged": 0}
    ids, vecs = index.get_vectors("full", [table["image_id"][3]])
    assert index.count("full") == len(table)
    np.testing.assert_allclose(vecs[0], new.vectors[0], atol=1e-6)
    assert not np.allclose(vecs[0], runs["full"].as_dict()[table["image_id"][3]], atol=1e-3)
    # images removed from the catalogue are pruned
    keep = list(table["image_id"][:40])
    assert index.prune("full", keep) == len(table) - 40 and index.count("full") == 40
    assert sorted(index.get_vectors("full")[0]) == sorted(keep)
    restored = idx.index_catalog(table, runs, settings=settings)["full"]  # restore for the other tests
    assert (restored["added"], restored["updated"], restored["count"]) == (len(table) - 40, 1, len(table))


def test_wrong_dimension_is_a_clear_error(tmp_path):
    client = idx.get_client(load_settings(toml_path=None, env={}, chroma_path=tmp_path / "db"))
    index = idx.CatalogIndex(client, "some-model", 8)
    index.upsert("full", ["a", "b"], np.eye(2, 8, dtype=np.float32))
    with pytest.raises(idx.DimensionMismatch, match=r"expects \(n, 8\)"):
        index.upsert("full", ["c"], np.ones((1, 4), dtype=np.float32))
    # a collection of this name that holds other vectors is refused on open
    client.create_collection(idx.collection_name("other-model", 16, "full"), metadata={"dim": 4},
                             embedding_function=None).add(ids=["x"], embeddings=[[1.0, 0, 0, 0]])
    with pytest.raises(idx.DimensionMismatch, match="4-d vectors"):
        idx.CatalogIndex(client, "other-model", 16).collection("full")


def test_upserts_are_batched_below_chromas_maximum(tmp_path):
    client = idx.get_client(load_settings(toml_path=None, env={}, chroma_path=tmp_path / "db"))
    n = client.get_max_batch_size() + 1000
    index = idx.CatalogIndex(client, "tiny", 4)
    vecs = idx.random_unit_vectors(n, 4, seed=3)
    metas = [{"image_id": f"v{i}", "n": i} for i in range(n)]
    assert index.upsert("full", [f"v{i}" for i in range(n)], vecs, metas)["added"] == n
    assert index.count("full") == n
    assert index.prune("full", [f"v{i}" for i in range(10)]) == n - 10


def test_recall_at_10_against_exact_search_on_the_catalogue(built):
    index = idx.CatalogIndex.open(built["settings"], built["embedder"])
    for view, run in built["runs"].items():
        exact = idx.exact_top_k(run.vectors, run.vectors, 10)
        found = [f["image_id"].tolist() for f in index.query(view, run.vectors, k=10)]
        assert idx.recall_at_k(found, [[run.ids[j] for j in row] for row in exact]) >= 0.99


def test_recall_at_10_on_10000_random_1280d_vectors(tmp_path):
    client = idx.get_client(load_settings(toml_path=None, env={}, chroma_path=tmp_path / "db"))
    vectors = idx.random_unit_vectors(10_000, 1280, seed=0)
    queries = idx.random_unit_vectors(100, 1280, seed=1)
    index = idx.CatalogIndex(client, "random", 1280)
    index.upsert("full", [str(i) for i in range(len(vectors))], vectors)
    exact = idx.exact_top_k(vectors, queries, 10)
    found = [f["image_id"].tolist() for f in index.query("full", queries, k=10)]
    recall = idx.recall_at_k(found, [[str(j) for j in row] for row in exact])
    assert recall >= 0.99, f"recall@10 {recall:.3f} with {idx.HNSW}"


def test_hnsw_tradeoff_shows_recall_rising_with_ef():
    vectors = idx.random_unit_vectors(3000, 256, seed=5)
    table = idx.hnsw_tradeoff(vectors, [4, 400], queries=idx.random_unit_vectors(50, 256, seed=6),
                              hnsw={"ef_construction": 100, "max_neighbors": 16})
    assert list(table.columns) == ["ef", "recall@10", "p50_ms"] and table["ef"].tolist() == [4, 400]
    assert table["recall@10"][0] < table["recall@10"][1] and table["recall@10"][1] >= 0.99
    assert (table["p50_ms"] > 0).all()


def test_the_same_code_runs_against_a_real_chroma_server(built, tmp_path):
    import chromadb

    with idx.chroma_server(tmp_path / "server-db", log=tmp_path / "chroma.log") as (host, port):
        settings = built["settings"].replace(chroma_host=host, chroma_port=port, chroma_path=tmp_path / "unused")
        client = idx.get_client(settings)
        assert idx.describe_client(client) == f"ChromaDB server at {host}:{port}"
        assert not (tmp_path / "unused").exists()
        report = idx.index_catalog(built["table"], built["runs"], settings=settings)
        assert report["garment"]["count"] == len(built["table"])
        index = idx.CatalogIndex.open(settings, built["embedder"])
        run = built["runs"]["garment"]
        item = built["table"]["item_id"][7]
        frame = index.query("garment", run.vectors[7], k=3, where={"item_id": item})[0]
        assert frame["image_id"][0] == run.ids[7] and set(frame["item_id"]) == {item}
    assert (tmp_path / "server-db" / "chroma.sqlite3").is_file()  # the server wrote to its path
    with pytest.raises(Exception):  # and it is gone once the block ends
        chromadb.HttpClient(host=host, port=port).heartbeat()


def test_notebook_05_runs_builds_searches_and_serves(warm_env, tmp_path):
    """05_indexing executes end to end on the small catalogue, including the HNSW trade-off
    (2,000 random vectors here) and a real ChromaDB server it starts and stops."""
    from helpers.workbook.notebooks import read_records, run_notebook

    out = tmp_path / "05_indexing.ipynb"
    run_notebook(PROJECT_ROOT / "notebooks" / "05_indexing.ipynb", out,
                 {"masker": "reference", "tradeoff_vectors": 2000})
    assert_seen(out)  # every figure shown, no table cell cut
    rec = read_records(out)
    assert rec["reindex_added"] == 0
    assert rec["server_records"] == 2 * 48
    assert rec["hnsw_recall@10_random"] >= 0.99
    assert rec["query_same_item_garment"] >= rec["query_same_item_full"]


# the collection is made the old way on purpose, so chromadb's warning about its legacy config is expected
@pytest.mark.filterwarnings("ignore:legacy embedding function config:DeprecationWarning")
def test_an_older_collection_gets_the_tuned_ef_search(tmp_path):
    client = idx.get_client(load_settings(toml_path=None, env={}, chroma_path=tmp_path / "db"))
    client.create_collection(idx.collection_name("m", 4, "garment"), embedding_function=None,
                             configuration={"hnsw": {"space": "cosine", "ef_search": 100}})
    col = idx.CatalogIndex(client, "m", 4).collection("garment")
    assert col.configuration["hnsw"]["ef_search"] == idx.HNSW["ef_search"]
