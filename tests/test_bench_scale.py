"""The scale benchmark: a real loopback ChromaDB server (small here), the clustered vectors,
the on-paper projection, and `make bench --scale N`."""
from __future__ import annotations

import json
import sys
import types

import numpy as np
import psutil
import pytest

from helpers.workbook import bench
from helpers.workbook import bench_scale as bs
from helpers.index import HNSW, random_unit_vectors

MAKE_BENCH_SOURCES = list(bench.SOURCES)


def _chroma_children() -> list[int]:
    return [p.pid for p in psutil.Process().children(recursive=True)
            if "run" in p.cmdline() and any("chroma" in part for part in p.cmdline())]


@pytest.mark.slow
def test_small_build_on_a_real_server_measures_everything(tmp_path):
    figures = bs.bench_chroma_scale(n=2000, dim=64, n_queries=60, k=10, batch=700, path=tmp_path / "db")
    assert figures["scale_n"] == 2000 and figures["scale_dim"] == 64 and figures["scale_queries"] == 60
    assert figures["scale_data"].startswith("clustered: 2000 centres")
    assert figures["scale_hnsw"] == (f"M={HNSW['max_neighbors']} efc={HNSW['ef_construction']} "
                                     f"ef={HNSW['ef_search']} batch_size={HNSW['batch_size']}")
    assert figures["scale_add_batch"] == 700
    assert figures["scale_recall@10"] >= 0.9
    assert figures["scale_build_s"] > 0 and figures["scale_vectors_per_s"] > 0
    assert 0 < figures["scale_query_p50_ms"] <= figures["scale_query_p95_ms"]
    # a chroma server is a process of tens of MiB at least; the peak is never below the present
    assert 20 < figures["scale_server_rss_mb"] <= figures["scale_server_peak_rss_mb"]
    assert figures["scale_disk_mb"] > 0 and (tmp_path / "db" / "chroma.sqlite3").is_file()
    # raw vectors 2000 x 64 x 4 bytes + links 2000 x 96 x 4 bytes
    assert figures["scale_hnsw_ram_estimate_mb"] == round((2000 * 64 * 4 + 2000 * 96 * 4) / 2**20, 1)
    assert not _chroma_children()  # the server is stopped once the figures are back


@pytest.mark.slow
def test_random_vectors_are_measured_and_named_as_the_worst_case():
    figures = bs.bench_chroma_scale(n=1500, dim=32, n_queries=30, kind="random")
    assert figures["scale_data"].startswith("random unit vectors")
    assert figures["scale_recall@10"] >= 0.9
    with pytest.raises(ValueError, match="clustered"):
        bs.bench_chroma_scale(n=10, dim=4, kind="uniform")


def test_clustered_vectors_are_unit_length_around_shared_centres():
    x = bs.clustered_unit_vectors(3000, 256, centres=50, spread=0.75, seed=0)
    q = bs.clustered_unit_vectors(200, 256, centres=50, spread=0.75, seed=1)
    assert x.dtype == np.float32 and x.shape == (3000, 256)
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    centres = random_unit_vectors(50, 256, seed=12345)
    to_centre = (x @ centres.T).max(axis=1)
    assert 0.75 < to_centre.mean() < 0.85  # 1 / sqrt(1 + 0.75^2) = 0.8
    assert (q @ centres.T).max(axis=1).mean() > 0.75  # queries come from the same centres
    assert not np.allclose(x[:200], q)
    uniform = random_unit_vectors(3000, 256, seed=0)
    assert (uniform @ centres.T).max(axis=1).mean() < 0.4  # unlike uniform vectors


def test_projection_on_paper_for_ten_million_images():
    p = bs.projection(10_000_000, 1024, m=48, price_per_image=0.00006, embed_images_per_s=100)
    assert p["raw_vectors_gb"] == 40.96              # 10 M x 1024 x 4 bytes
    assert p["hnsw_links_gb"] == 3.84                # 10 M x 2 x 48 x 4 bytes
    assert p["index_ram_gb"] == 44.8
    assert p["embed_cost_usd"] == 600.0
    assert p["embed_hours"] == round(10_000_000 / 100 / 3600, 1)
    assert "embed_hours" not in bs.projection(100_000, 1024)


def test_process_memory_of_this_process():
    mem = bs.process_memory_mb(psutil.Process().pid)
    assert 10 < mem["rss_mb"] <= mem["peak_rss_mb"]


def test_make_bench_runs_the_scale_bench():
    assert ("helpers.workbook.bench_scale", "bench_chroma_scale") in MAKE_BENCH_SOURCES


@pytest.fixture()
def fake_scale(monkeypatch):
    module = types.ModuleType("fake_scale")
    calls = []

    def bench_chroma_scale(n=100_000, quick=False):
        calls.append({"n": n, "quick": quick})
        return {"scale_n": n}

    module.bench_chroma_scale = bench_chroma_scale
    monkeypatch.setitem(sys.modules, "fake_scale", module)
    monkeypatch.setattr(bench, "SOURCES", [("fake_scale", "bench_chroma_scale")])
    return calls


def test_make_bench_scale_option_sets_the_size_or_skips(fake_scale, tmp_path):
    assert bench.main(["--out", str(tmp_path / "a.json"), "--scale", "2000", "--quick"]) == 0
    assert fake_scale == [{"n": 2000, "quick": True}]
    rows = json.loads((tmp_path / "a.json").read_text())["figures"]
    assert [(r["figure"], r["value"]) for r in rows] == [("scale_n", 2000)]
    assert bench.main(["--out", str(tmp_path / "b.json")]) == 0
    assert fake_scale[-1] == {"n": 100_000, "quick": False}
    assert bench.main(["--out", str(tmp_path / "c.json"), "--scale", "0"]) == 2  # nothing left to run
    assert len(fake_scale) == 2
