"""The bench table's shape (not speed): figures, goals, missing and broken sources, bench.json."""
from __future__ import annotations

import json
import sys
import types

import pytest

from helpers.workbook import bench


@pytest.fixture()
def fake_modules(monkeypatch):
    """Two importable modules: one with a working bench, one whose bench raises."""
    good = types.ModuleType("fake_good")
    good.bench_thing = lambda: {"embed_local_images_per_s": 75.0, "index_query_p50_ms": 12.5,
                                "embed_batch_size": 32}
    bad = types.ModuleType("fake_bad")

    def bench_broken():
        raise RuntimeError("no catalogue here")

    bad.bench_broken = bench_broken
    monkeypatch.setitem(sys.modules, "fake_good", good)
    monkeypatch.setitem(sys.modules, "fake_bad", bad)
    return [("fake_good", "bench_thing"), ("fake_bad", "bench_broken"),
            ("fake_good", "bench_absent"), ("helpers.no_such_module", "bench_x")]


def test_collect_rows_goals_and_failures(fake_modules):
    rows = bench.collect(fake_modules, progress=None)
    by_figure = {r["figure"]: r for r in rows}
    assert by_figure["embed_local_images_per_s"]["ok"] is True       # 75 >= 60
    assert by_figure["index_query_p50_ms"]["ok"] is False            # 12.5 > 10
    assert by_figure["embed_batch_size"]["goal"] == "" and by_figure["embed_batch_size"]["ok"] is None
    assert by_figure["bench_broken"]["value"] == "error"
    assert "no catalogue here" in by_figure["bench_broken"]["note"]
    assert by_figure["bench_absent"]["value"] == "not available"
    assert by_figure["bench_x"]["value"] == "not available"
    assert [r["source"] for r in rows][:3] == ["fake_good.bench_thing"] * 3


def test_main_prints_one_table_and_writes_json(fake_modules, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "SOURCES", fake_modules)
    out = tmp_path / "runs" / "bench.json"
    assert bench.main(["--out", str(out)]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("source"))
    assert header.split() == ["source", "figure", "value", "goal", "ok"]
    assert "not available" in text and "goals missed: index_query_p50_ms" in text
    doc = json.loads(out.read_text())
    assert len(doc["figures"]) == 6
    assert doc["goals_missed"] == ["index_query_p50_ms"]
    assert set(doc["figures"][0]) == {"source", "figure", "value", "goal", "ok", "note"}
    assert doc["machine"]["cpus"] >= 1


def test_only_filters_sources(fake_modules, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "SOURCES", fake_modules)
    assert bench.main(["--out", str(tmp_path / "b.json"), "--only", "fake_good"]) == 0
    doc = json.loads((tmp_path / "b.json").read_text())
    assert {r["source"].split(".")[0] for r in doc["figures"]} == {"fake_good"}
    assert bench.main(["--out", str(tmp_path / "c.json"), "--only", "nothing"]) == 2


def test_every_goal_compares_the_right_way():
    assert bench.GOALS["bedrock_stub_speedup"].ok(3.5) is True
    assert bench.GOALS["bedrock_stub_speedup"].ok(2.0) is False
    assert bench.GOALS["index_build_10k_s"].ok(15) is True
    assert bench.GOALS["pipeline_cold_images_per_s"].ok(19.9) is False
    assert bench.GOALS["pipeline_cold_images_per_s"].ok("error") is None
