"""The generated photoshoot catalogue: ground truth, design, determinism, person detector, CLI."""
from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import sample

ATTRS = ["silhouette", "neckline", "sleeve", "length", "colour", "pattern", "pattern_colour"]


@pytest.fixture(scope="module")
def full_manifest(small_catalog) -> pd.DataFrame:
    return pd.read_csv(small_catalog / "manifest.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def manifest(full_manifest) -> pd.DataFrame:
    """The worn photos (what every photoshoot test is about)."""
    return full_manifest[full_manifest.view == "worn"].reset_index(drop=True)


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _gray(path: Path, size=(32, 48)) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("L").resize(size, Image.BILINEAR), np.float32) / 255


def test_manifest_has_the_contract_columns_and_one_row_per_view(small_catalog, manifest):
    assert list(manifest.columns[:4]) == ["image_id", "item_id", "shoot_id", "figure_id"]
    for col in ["category", "colour", "pattern", "silhouette", "neckline", "sleeve", "background", "image_path",
                "garment_mask_path", "person_mask_path", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]:
        assert col in manifest.columns
    assert len(manifest) == 12 * 4 and manifest.image_id.is_unique
    assert (manifest.groupby("item_id").size() == 4).all()
    assert set(manifest.category) == {"dress"}
    assert set(manifest.background) <= set(sample.BACKGROUNDS) and manifest.background.nunique() == 3
    assert not any(Path(p).is_absolute() for p in manifest.image_path)  # relative in the CSV


def test_images_and_masks_are_exact_and_consistent(small_catalog, manifest):
    for _, row in manifest.iterrows():
        with Image.open(small_catalog / row.image_path) as img:
            assert img.mode == "RGB" and img.size == (512, 768)
        garment = np.asarray(Image.open(small_catalog / row.garment_mask_path))
        person = np.asarray(Image.open(small_catalog / row.person_mask_path))
        assert garment.shape == person.shape == (768, 512)
        assert set(np.unique(garment)) <= {0, 255} and set(np.unique(person)) <= {0, 255}
        g, p = garment > 0, person > 0
        assert not (g & ~p).any(), "garment pixels must be part of the person"
        assert (p & ~g).sum() > 0.05 * p.sum(), "head, arms and legs are person but not garment"
        ys, xs = np.nonzero(g)
        assert (row.bbox_x0, row.bbox_y0, row.bbox_x1, row.bbox_y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert row.garment_pixels == g.sum() and row.person_pixels == p.sum()


def test_items_are_distinct_with_deliberate_near_twins_and_skin_toned_colours(manifest):
    items = manifest.drop_duplicates("item_id")[["item_id"] + ATTRS]
    assert not items.duplicated(ATTRS).any(), "two items share every attribute"
    only_pattern = only_colour = 0
    for (_, a), (_, b) in itertools.combinations(items.iterrows(), 2):
        differ = {c for c in ATTRS if a[c] != b[c]} - {"pattern_colour"}
        only_pattern += differ == {"pattern"}
        only_colour += differ == {"colour"}
    assert only_pattern >= 1 and only_colour >= 1
    assert set(items.colour) & set(sample.SKIN_TONED), "the masker's hard case (skin-toned dresses) is missing"


def test_shoots_photograph_several_items_and_items_several_shoots_and_figures(manifest):
    assert (manifest.groupby("item_id").shoot_id.nunique() == 4).all()
    assert (manifest.groupby("shoot_id").item_id.nunique() >= 3).all()
    assert (manifest.groupby("item_id").figure_id.nunique() >= 2).all()
    assert manifest.skin_tone.nunique() >= 3


def test_shoot_is_a_strong_confounder_and_views_are_not_near_duplicates(small_catalog, manifest):
    """Whole photos of one shoot resemble each other more than photos of one item do, and no
    item's views are pixel-near-duplicates - so whole-photo similarity is not a trivial solver."""
    vecs = {r.image_id: _gray(small_catalog / r.image_path) for r in manifest.itertuples()}
    same_item, same_shoot = [], []
    for a, b in itertools.combinations(manifest.itertuples(), 2):
        d = float(np.abs(vecs[a.image_id] - vecs[b.image_id]).mean())
        if a.item_id == b.item_id:
            same_item.append(d)
        elif a.shoot_id == b.shoot_id:
            same_shoot.append(d)
    assert min(same_item) > 0.03, f"near-duplicate views (mean abs difference {min(same_item):.3f})"
    assert np.median(same_shoot) < 0.6 * np.median(same_item)


def test_an_items_dress_keeps_its_look_across_shoots(small_catalog, manifest):
    """Garment pixels of one item are closer in mean colour to each other than to other items."""
    means = {}
    for r in manifest.itertuples():
        img = np.asarray(Image.open(small_catalog / r.image_path), np.float32)
        g = np.asarray(Image.open(small_catalog / r.garment_mask_path)) > 0
        means[r.image_id] = img[g].mean(0)
    within, between = [], []
    for a, b in itertools.combinations(manifest.itertuples(), 2):
        d = float(np.linalg.norm(means[a.image_id] - means[b.image_id]))
        (within if a.item_id == b.item_id else between).append(d)
    assert np.median(within) < 0.5 * np.median(between)


def test_same_seed_is_byte_identical_whatever_the_workers_and_another_seed_differs(tmp_path):
    a = sample.generate_catalog(tmp_path / "a", items=3, views=2, seed=5, size=(160, 240), workers=1, progress=False)
    b = sample.generate_catalog(tmp_path / "b", items=3, views=2, seed=5, size=(160, 240), workers=2, progress=False)
    c = sample.generate_catalog(tmp_path / "c", items=3, views=2, seed=6, size=(160, 240), workers=1, progress=False)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    # 3 files per worn photo and per product shot (one per item) + manifest, items, shoots, meta
    assert da == db and len(da) == 3 * 2 * 3 + 3 * 3 + 4
    assert da["manifest.csv"] != dc["manifest.csv"]
    assert sum(da[k] != dc.get(k) for k in da if k.startswith("images/")) == 6 + 3
    with Image.open(a / "images" / "img0000.jpg") as img:
        assert img.size == (160, 240)


def test_selfie_segmentation_finds_the_figures(small_catalog, manifest):
    """mediapipe's person segmenter (what the local masker builds on) sees our figures as people."""
    mp = pytest.importorskip("mediapipe")
    ious = []
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        for r in manifest.iloc[::2].itertuples():  # 24 images across all shoots
            rgb = np.asarray(Image.open(small_catalog / r.image_path).convert("RGB"))
            found = seg.process(rgb).segmentation_mask > 0.5
            truth = np.asarray(Image.open(small_catalog / r.person_mask_path)) > 0
            ious.append((found & truth).sum() / max((found | truth).sum(), 1))
    ious = np.array(ious)
    assert np.mean(ious >= 0.5) >= 0.95, sorted(ious)[:5]
    assert np.median(ious) >= 0.8


def test_cli_generates_then_skips_a_complete_catalogue_unless_forced(tmp_path, capsys):
    out = tmp_path / "cat"
    args = ["--out", str(out), "--items", "2", "--views", "2", "--seed", "3", "--size", "128x192", "--workers", "1"]
    assert sample.main(args) == 0
    assert sample.is_complete(out, 2, 2, 3, (128, 192))
    stamp = (out / "manifest.csv").stat().st_mtime_ns
    capsys.readouterr()
    assert sample.main(args) == 0
    assert "already a complete catalogue" in capsys.readouterr().out
    assert (out / "manifest.csv").stat().st_mtime_ns == stamp
    (out / "images" / "img0001.jpg").unlink()  # incomplete now: redrawn without --force
    assert not sample.is_complete(out)
    assert sample.main(args) == 0 and sample.is_complete(out)
    assert sample.main(args + ["--force"]) == 0 and (out / "manifest.csv").stat().st_mtime_ns != stamp


def test_cli_refuses_to_overwrite_a_folder_it_did_not_make(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    assert sample.main(["--out", str(mine), "--items", "1", "--views", "1", "--force"]) == 2
    assert (mine / "holiday.jpg").read_bytes() == b"precious"
    assert "not a generated catalogue" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sample.main(["--out", str(tmp_path / "x"), "--size", "big"])


def test_an_unguarded_script_gets_advice_not_a_bare_broken_pool(tmp_path):
    """Each drawing process imports the caller's script; without a __main__ guard it runs the
    generation again inside every process, which Python refuses. The error says what to do."""
    import os
    import subprocess
    import sys

    from helpers.settings import PROJECT_ROOT

    script = tmp_path / "make_sample.py"
    script.write_text("from helpers.sample import generate_catalog\n"
                      f"generate_catalog({str(tmp_path / 'cat')!r}, items=2, views=2, workers=2, progress=False)\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert proc.returncode != 0
    assert 'if __name__ == "__main__":' in proc.stderr and "workers=1" in proc.stderr
    assert not (tmp_path / "cat").exists()  # nothing half-written


# ------------------------------------------------------------------------------- product shots

def test_one_product_shot_per_item_with_an_exact_mask(small_catalog, full_manifest):
    assert set(full_manifest.view) == {"worn", "product"}
    shots = full_manifest[full_manifest.view == "product"]
    assert len(shots) == 12 and shots.item_id.is_unique
    assert set(shots.item_id) == set(full_manifest[full_manifest.view == "worn"].item_id)
    assert set(shots.background) <= {"white", "plain"} and set(shots.pose) <= {"flat", "hanger"}
    worn_attrs = full_manifest[full_manifest.view == "worn"].drop_duplicates("item_id").set_index("item_id")[ATTRS]
    assert (shots.set_index("item_id")[ATTRS] == worn_attrs.loc[shots.item_id]).all().all()
    for row in shots.itertuples():
        with Image.open(small_catalog / row.image_path) as img:
            assert img.mode == "RGB" and img.size == (512, 768)
            rgb = np.asarray(img, np.float32)
        g = np.asarray(Image.open(small_catalog / row.garment_mask_path))
        assert set(np.unique(g)) <= {0, 255} and row.garment_pixels == (g > 0).sum() > 0.05 * g.size
        assert not (np.asarray(Image.open(small_catalog / row.person_mask_path)) > 0).any() and row.person_pixels == 0
        ys, xs = np.nonzero(g)
        assert (row.bbox_x0, row.bbox_y0, row.bbox_x1, row.bbox_y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        # the garment alone, away from the frame, on a light background
        assert xs.min() > 0 and ys.min() > 0 and xs.max() < 511 and ys.max() < 767
        assert rgb[g == 0].mean() > 180


def test_worn_photos_are_byte_identical_with_or_without_product_shots(tmp_path):
    kw = dict(items=3, views=2, seed=5, size=(160, 240), workers=1, progress=False)
    with_shots = _digest(sample.generate_catalog(tmp_path / "a", **kw))
    without = _digest(sample.generate_catalog(tmp_path / "b", product_shots=False, **kw))
    worn = {k: v for k, v in with_shots.items() if k.startswith(("images/img", "masks/img"))}
    assert len(worn) == 3 * 2 * 3 and worn == {k: v for k, v in without.items() if k.startswith(("images/", "masks/"))}
    assert sum(k.startswith("images/prod") for k in with_shots) == 3
    a = pd.read_csv(tmp_path / "a" / "manifest.csv", keep_default_na=False)
    b = pd.read_csv(tmp_path / "b" / "manifest.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(a[a.view == "worn"].reset_index(drop=True), b)


def test_catalogue_loader_keeps_worn_photos_unless_asked_and_defaults_view(tmp_path, small_catalog):
    import shutil

    from helpers.catalog import load_catalog

    worn = load_catalog(small_catalog).table
    assert len(worn) == 48 and set(worn.view) == {"worn"}
    every = load_catalog(small_catalog, views=None).table
    assert len(every) == 60 and (every.view == "product").sum() == 12
    assert len(load_catalog(small_catalog, views=("product",)).table) == 12
    with pytest.raises(ValueError, match="unknown view"):
        load_catalog(small_catalog, views=("catwalk",))
    # a manifest from before product shots (no `view` column) is all worn photos
    old = tmp_path / "old"
    shutil.copytree(small_catalog, old)
    m = pd.read_csv(old / "manifest.csv", keep_default_na=False)
    m[m.view == "worn"].drop(columns="view").to_csv(old / "manifest.csv", index=False)
    table = load_catalog(old, views=None).table
    assert len(table) == 48 and set(table.view) == {"worn"}
