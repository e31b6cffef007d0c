"""The whole pipeline on the small generated catalogue: real masks, embeddings, ChromaDB on disk."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import embedding, metrics, pipeline, report
from helpers.settings import load_settings
from notebook_checks import assert_seen

MASKER = "local"  # the offline default: what `make run` uses
M_KEYS = {"recall@1", "recall@5", "recall@10", "map", "mrr", "ndcg@10", "queries"}


@pytest.fixture(scope="module")
def module_env(tmp_path_factory, small_catalog):
    """One cache and index for the module, so the second run can show the cache at work."""
    root = tmp_path_factory.mktemp("pipeline")
    return {"catalog": small_catalog, "cache_dir": root / "cache", "chroma_path": root / "chroma",
            "run_dir": root / "runs" / "latest"}


@pytest.fixture(scope="module")
def first_run(module_env):
    settings = load_settings(backend="local", masker=MASKER, **module_env)
    result = pipeline.run_pipeline(settings, progress=False)
    return result, report.evaluate(result)


def test_metrics_json_schema(first_run):
    result, doc = first_run
    assert doc["catalog"] == {"images": 48, "items": 12, "skipped": 0, "evaluated_images": 48,
                              "path": str(result.settings.catalog)}
    assert doc["backend"] == "local" and doc["embedder"] == result.embedder_id and doc["dim"] == embedding.LOCAL_DIM
    assert set(doc["conditions"]) == {"full", "garment", "garment_reference"}
    for name, m in doc["conditions"].items():
        assert M_KEYS <= set(m), name
        assert m["queries"] == 48
        assert all(0.0 <= m[k] <= 1.0 for k in M_KEYS - {"queries"})
        assert m["recall@1"] <= m["recall@5"] <= m["recall@10"]
    lo, hi = doc["delta_recall@1"]["ci95"]
    assert lo <= doc["delta_recall@1"]["value"] <= hi
    assert doc["delta_recall@1"]["value"] == pytest.approx(
        doc["conditions"]["garment"]["recall@1"] - doc["conditions"]["full"]["recall@1"])
    assert 0.0 <= doc["wilcoxon_p_ap"] <= 1.0
    assert 0.0 < doc["mask_iou"]["mean"] <= 1.0 and 0.0 < doc["mask_iou"]["median"] <= 1.0
    assert set(doc["seed_statistic"]) >= {"full", "garment"}
    assert {"load", "mask", "cut", "embed_full", "embed_garment", "index", "total"} <= set(doc["timings_s"])
    assert set(doc["by_attribute"]) == {"colour", "pattern", "silhouette", "background"}
    json.dumps(doc, allow_nan=False)  # strictly valid JSON: no NaN


def test_numbers_agree_with_numpy_on_the_same_vectors(first_run):
    result, doc = first_run
    ids = result.common_ids()
    items = result.table.set_index("image_id").loc[ids, "item_id"].to_numpy()
    for name in ("full", "garment", "garment_reference"):
        own = metrics.evaluate_retrieval(result.vectors(name, ids), items, ids).summary()
        assert doc["conditions"][name]["map"] == pytest.approx(own["map"])
    # ChromaDB's top-1 answers give the same Recall@1 as exact numpy search
    for view in ("full", "garment"):
        check = doc["chroma_check"][view]
        assert check["count"] == 48 and check["agree"], check
        assert check["recall@1_numpy"] == pytest.approx(doc["conditions"][view]["recall@1"])


def test_reference_masks_are_perfect_and_conditions_are_paired(first_run):
    result, doc = first_run
    assert result.reference_masks.failures.empty
    from helpers.maskeval import evaluate_masks

    assert evaluate_masks(result.reference_masks, result.table)["iou"].min() == 1.0
    assert len(result.failures()) == 0 or set(result.failures()["condition"]) <= {"garment"}


def test_cold_run_embeds_in_the_mask_workers(first_run):
    """The offline run makes both vectors of every masked image in the masking workers; the
    embed stages then only read the cache, and the vectors are the embedder's own."""
    from PIL import Image

    from helpers.embedding import get_embedder

    result, _ = first_run
    assert result.masks.calls == 48
    assert result.embeddings["full"].calls == 0 and result.embeddings["full"].cached == 48
    masked = len(result.cuts.cutouts)
    assert masked >= 40 and result.embeddings["garment"].calls == 0
    assert result.embeddings["garment"].cached == masked
    assert result.embeddings["garment_reference"].calls == 48  # no worker step for the reference masks
    embedder = get_embedder(result.settings)
    ids = list(result.cuts.cutouts)[:4]
    paths = result.table.set_index("image_id").loc[ids, "image_path"]
    here_full = embedder.embed([Image.open(p).convert("RGB") for p in paths])
    here_garment = embedder.embed([result.cuts.cutouts[i] for i in ids])
    full, garment = result.embeddings["full"].as_dict(), result.embeddings["garment"].as_dict()
    np.testing.assert_allclose(np.stack([full[i] for i in ids]), here_full, atol=1e-5)
    np.testing.assert_allclose(np.stack([garment[i] for i in ids]), here_garment, atol=1e-5)


def test_cnn_only_ablation_is_the_cnn_features_alone(first_run):
    """metrics.json's `cnn_only` block must be what the CNN part of the embedder gives on its
    own: recompute the full-photo condition from `cnn_features` and compare."""
    from PIL import Image

    from helpers.embedding import get_embedder

    result, doc = first_run
    block = doc["cnn_only"]
    assert block["dim"] == embedding.CNN_DIM < doc["dim"]
    assert set(block["conditions"]) == {"full", "garment", "garment_reference"}
    ids = result.common_ids()
    paths = result.table.set_index("image_id").loc[ids, "image_path"]
    cnn = get_embedder(result.settings).cnn_features([Image.open(p).convert("RGB") for p in paths])
    items = result.table.set_index("image_id").loc[ids, "item_id"].to_numpy()
    again = metrics.evaluate_retrieval(cnn, items, ids).summary()
    for key in ("recall@1", "recall@5", "map"):
        assert block["conditions"]["full"][key] == pytest.approx(again[key], abs=1e-9), key
    lo, hi = block["delta_recall@1"]["ci95"]
    assert lo <= block["delta_recall@1"]["value"] <= hi


def test_rerun_is_served_from_the_cache(first_run, module_env):
    _, doc = first_run
    settings = load_settings(backend="local", masker=MASKER, **module_env)
    again = pipeline.run_pipeline(settings, progress=False)
    assert again.masks.calls == 0 and again.masks.cached == 48
    assert all(run.calls == 0 for run in again.embeddings.values())
    assert again.cuts.cached == 48
    doc2 = report.evaluate(again)
    assert doc2["conditions"] == doc["conditions"]
    assert doc2["delta_recall@1"] == doc["delta_recall@1"]  # fixed bootstrap seed


def test_cli_writes_its_own_run_folder_and_leaves_runs_latest_alone(module_env, monkeypatch, capsys):
    """`python -m helpers run` without --out used to overwrite runs/latest/metrics.json (the notebook
    run's numbers) with a `--limit 10` run of another catalogue; now every run gets its own folder."""
    for key, value in module_env.items():
        monkeypatch.setenv(f"WORKBOOK_{key.upper()}", str(value))
    latest = module_env["run_dir"]
    notebook_run = latest.parent / "20260101T000000Z"  # a notebook run that succeeded
    notebook_run.mkdir(parents=True)
    (notebook_run / "metrics.json").write_text('{"catalog": {"images": 240}}')
    latest.symlink_to(notebook_run.name)
    assert report.main(["--backend", "local", "--quiet", "--limit", "10"]) == 0
    assert latest.resolve() == notebook_run.resolve(), "a CLI run moved runs/latest"
    assert json.loads((latest / "metrics.json").read_text()) == {"catalog": {"images": 240}}
    (own,) = [p for p in latest.parent.iterdir() if p.name not in ("latest", notebook_run.name)]
    doc = json.loads((own / "metrics.json").read_text())
    assert doc["catalog"]["images"] == 10 and (own / "left_out.csv").is_file()
    out = capsys.readouterr().out
    assert "garment - full Recall@1" in out and f"wrote {own / 'metrics.json'}" in out


def test_concurrent_runs_never_share_a_folder(tmp_path):
    """Two runs in the same second used to write the same runs/latest/metrics.json: one was lost."""
    from concurrent.futures import ThreadPoolExecutor

    latest = tmp_path / "runs" / "latest"
    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _: report.default_run_dir(latest), range(16)))
    assert len(set(folders)) == 16 and all(f.is_dir() and not any(f.iterdir()) for f in folders)
    assert not latest.exists() and not latest.is_symlink()
    assert report.default_run_dir(tmp_path / "mine") == tmp_path / "mine"  # --out is used as given


def test_catalogue_without_ground_truth(tmp_path, small_catalog, workbook_env, module_env, monkeypatch):
    """A user's own photos (item folders, no masks): no reference condition, no IoU, same command."""
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(module_env["cache_dir"]))  # same bytes: cached masks
    own = tmp_path / "own"
    manifest = (small_catalog / "manifest.csv").read_text().splitlines()
    header = manifest[0].split(",")
    col = {name: header.index(name) for name in ("item_id", "image_path")}
    for line in manifest[1:25]:
        cells = line.split(",")
        dest = own / cells[col["item_id"]]
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(small_catalog / cells[col["image_path"]], dest / Path(cells[col["image_path"]]).name)
    out = tmp_path / "out"
    code = report.main(["--catalog", str(own), "--out", str(out), "--quiet", "--no-index"])
    assert code == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["conditions"]["garment_reference"] is None and doc["mask_iou"] is None
    assert doc["catalog"]["images"] == 24 and doc["conditions"]["full"]["queries"] == 24


def test_losses_diagnosis(first_run):
    result, _ = first_run
    losses = report.garment_losses(result)
    g = result.retrievals()["garment"].per_query.set_index("image_id")
    f = result.retrievals()["full"].per_query.set_index("image_id")
    expected = sorted(i for i in g.index if g.loc[i, "hit@1"] == 0 and f.loc[i, "hit@1"] == 1)
    assert sorted(losses["image_id"]) == expected
    assert (losses["garment_top1_item"] != losses["item_id"]).all()
    assert losses["diagnosis"].str.len().gt(0).all()
    assert np.all(np.diff(losses["ap_loss"].to_numpy()) <= 1e-12)


def test_bad_catalogue_is_a_clear_error(tmp_path, workbook_env, capsys):
    (tmp_path / "empty").mkdir()
    code = report.main(["--catalog", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_metrics_notebook_records_match_metrics_json(first_run, module_env, monkeypatch, tmp_path):
    """Execute notebooks/06_metrics.ipynb on the small catalogue (warm cache from `first_run`):
    it must run headless, write metrics.json into the run folder, and every number it records
    must be the number in that file."""
    from helpers.workbook.notebooks import read_records, run_notebook
    from helpers.settings import PROJECT_ROOT

    for key in ("catalog", "cache_dir", "chroma_path"):
        monkeypatch.setenv(f"WORKBOOK_{key.upper()}", str(module_env[key]))
    monkeypatch.setenv("WORKBOOK_MASKER", MASKER)
    run_dir = tmp_path / "run"
    out = run_dir / "06_metrics.ipynb"
    run_notebook(PROJECT_ROOT / "notebooks" / "06_metrics.ipynb", out, {}, run_dir)
    assert_seen(out)  # every figure shown, no table cell cut
    doc = json.loads((run_dir / "metrics.json").read_text())
    rec = read_records(out)
    c = doc["conditions"]
    expected = {
        "recall@1_full": c["full"]["recall@1"], "recall@1_garment": c["garment"]["recall@1"],
        "recall@1_reference": c["garment_reference"]["recall@1"],
        "delta_recall@1": doc["delta_recall@1"]["value"], "delta_recall@1_ci95": doc["delta_recall@1"]["ci95"],
        "wilcoxon_p_ap": doc["wilcoxon_p_ap"], "mask_iou_mean": doc["mask_iou"]["mean"],
        "seed_statistic_full": doc["seed_statistic"]["full"],
        "seed_statistic_garment": doc["seed_statistic"]["garment"],
        "same_shoot_fraction_full": doc["same_shoot_errors"]["full"]["fraction"],
        "same_shoot_fraction_garment": doc["same_shoot_errors"]["garment"]["fraction"],
        "seed_full_right": doc["seed_statistic_by_outcome"]["full"]["right"],
        "seed_full_wrong": doc["seed_statistic_by_outcome"]["full"]["wrong"],
    }
    assert set(expected) <= set(rec)
    for key, value in expected.items():
        assert rec[key] == pytest.approx(value), key
    # and they are the numbers of the pipeline run in this process (same cache, same data)
    assert rec["recall@1_garment"] == pytest.approx(first_run[1]["conditions"]["garment"]["recall@1"])
    nb_text = out.read_text()
    assert "image/png" in nb_text and report.conclusion(doc)[:40] in nb_text
    # the failure section shows what its text talks about: garment search's own misses, in a gallery
    assert rec["garment_misses"] == round((1 - c["garment"]["recall@1"]) * c["garment"]["queries"])
    assert rec["gallery_rows"] == min(5, rec["garment_misses"])
    assert "Series([]" not in nb_text and "Empty DataFrame" not in nb_text
    assert "%|" not in nb_text and "widget-view+json" not in nb_text  # no progress-bar residue
    # worn photo -> product shots: the notebook records the shop delta of metrics.json, and it is a clear gain
    shop = doc["conditions_shop"]["delta_recall@1"]
    assert rec["shop_delta_recall@1"] == pytest.approx(shop["value"])
    assert rec["shop_delta_recall@1_ci95"] == pytest.approx(shop["ci95"])
    assert rec["shop_delta_recall@1"] >= 0.20 and rec["shop_delta_recall@1_ci95"][0] > 0


def test_an_image_without_garment_is_counted_not_fatal(tmp_path, small_catalog, module_env):
    """One ground-truth mask blanked: that image has no garment cut-out ("no_garment"); the run
    goes on, the failure is reported, and the conditions are compared on the other 47 images."""
    from PIL import Image

    catalog = tmp_path / "catalog"
    shutil.copytree(small_catalog, catalog)
    first = (catalog / "manifest.csv").read_text().splitlines()[1].split(",")
    header = (catalog / "manifest.csv").read_text().splitlines()[0].split(",")
    mask_path = catalog / first[header.index("garment_mask_path")]
    Image.new("L", Image.open(mask_path).size, 0).save(mask_path)
    settings = load_settings(backend="local", masker="reference", catalog=catalog,
                             cache_dir=module_env["cache_dir"], chroma_path=tmp_path / "chroma")
    result = pipeline.run_pipeline(settings, progress=False, index=False)
    doc = report.evaluate(result)
    failures = result.failures()
    blank = first[header.index("image_id")]
    assert set(failures["image_id"]) == {blank} and set(failures["reason"]) == {"no_garment"}
    assert doc["catalog"]["images"] == 48 and doc["catalog"]["evaluated_images"] == 47
    assert doc["conditions"]["garment"]["failed_images"] == 1
    assert doc["conditions"]["full"]["queries"] + doc["conditions"]["full"]["excluded_queries"] == 47


def test_pipeline_budget_splits_one_image_into_steps_that_add_up(small_catalog):
    import cv2

    threads = cv2.getNumThreads()
    from helpers.workbook import benchmarks

    figures = benchmarks.bench_pipeline_budget(small_catalog, images=4)
    assert figures["budget_images"] == 4
    parts = ("parser_net", "decode_and_mask_rest", "embed_onnx", "cut_embed_rest")
    assert all(figures[f"budget_{p}_ms"] > 0 for p in parts)  # every step ran and was timed
    assert abs(sum(figures[f"budget_{p}_ms"] for p in parts) - figures["budget_total_ms"]) < 0.05
    assert figures["budget_ceiling_images_per_s"] == round(figures["budget_workers"] * 1000
                                                           / figures["budget_total_ms"], 1)
    assert cv2.getNumThreads() == threads  # the one-thread setting does not leak into the caller


def test_misses_are_every_wrong_garment_top1_losses_first(first_run):
    result, _ = first_run
    misses = report.garment_misses(result)
    g = result.retrievals()["garment"].per_query.set_index("image_id")
    f = result.retrievals()["full"].per_query.set_index("image_id")
    assert sorted(misses["image_id"]) == sorted(g.index[g["hit@1"] == 0])
    assert (misses["garment_top1_item"] != misses["item_id"]).all()
    assert list(misses["full_right"]) == [bool(f.loc[i, "hit@1"]) for i in misses["image_id"]]
    assert list(misses["full_right"]) == sorted(misses["full_right"], reverse=True)  # losses first
    assert sorted(report.garment_losses(result)["image_id"]) == sorted(misses[misses.full_right]["image_id"])
    assert report.miss_causes(misses).sum() == len(misses)


# ------------------------------------------------------------------------ worn photo -> product shots

def test_conditions_shop_worn_photos_against_product_shots(first_run):
    result, doc = first_run
    shop = doc["conditions_shop"]
    assert shop["gallery"] == 12 and shop["failed_product_shots"] == {"full": 0, "garment": 0}
    for view in ("full", "garment"):
        assert set(shop[view]) == {"recall@1", "recall@5", "map", "queries"}
        assert shop[view]["queries"] == 48
        assert 0.0 <= shop[view]["recall@1"] <= shop[view]["recall@5"] <= 1.0 and 0.0 < shop[view]["map"] <= 1.0
    d = shop["delta_recall@1"]
    assert d["value"] == pytest.approx(shop["garment"]["recall@1"] - shop["full"]["recall@1"])
    assert d["ci95"][0] <= d["value"] <= d["ci95"][1]
    assert shop["mask_iou"]["images"] == 12 and shop["mask_iou"]["min"] >= 0.9
    # from numpy on the same vectors: every worn photo ranks the 12 product shots
    res = result.shop_retrievals()
    g = result.shop.embeddings["garment"]
    q = result.vectors("garment", result.common_ids())
    sim = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (g.vectors / np.linalg.norm(g.vectors, axis=1, keepdims=True)).T
    items = result.table.set_index("image_id").loc[result.common_ids(), "item_id"].to_numpy()
    g_items = result.shop.table.set_index("image_id").loc[list(g.ids), "item_id"].to_numpy()
    assert np.mean(g_items[sim.argmax(1)] == items) == pytest.approx(res["garment"].recall_at(1))
    table = report.shop_table(doc)
    assert list(table.index) == ["full", "garment"]
    json.dumps(doc, allow_nan=False)


def test_worn_conditions_are_unchanged_when_product_shots_are_added(first_run, module_env, tmp_path):
    import pandas as pd

    _, doc = first_run
    old = tmp_path / "sample"
    shutil.copytree(module_env["catalog"], old)
    m = pd.read_csv(old / "manifest.csv", keep_default_na=False)
    m[m.view == "worn"].drop(columns="view").to_csv(old / "manifest.csv", index=False)
    settings = load_settings(backend="local", masker=MASKER, **{**module_env, "catalog": old})
    before = report.evaluate(pipeline.run_pipeline(settings, progress=False, index=False))
    assert before["conditions_shop"] is None
    for key in ("conditions", "delta_recall@1", "mask_iou", "by_attribute", "cnn_only"):
        assert before[key] == doc[key], key
