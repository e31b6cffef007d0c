"""Product shots (the garment alone on a plain background): foreground segmentation against the
border, and the pose masker's no-person path that uses it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.maskers.product import (is_plain_background, looks_like_product_shot, product_shot_foreground,
                                     segment_foreground)


@pytest.fixture(scope="module")
def shots(small_catalog) -> pd.DataFrame:
    m = pd.read_csv(small_catalog / "manifest.csv", keep_default_na=False)
    return m.assign(image_path=[str(small_catalog / p) for p in m.image_path],
                    garment_mask_path=[str(small_catalog / p) for p in m.garment_mask_path])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _truth(path: str) -> np.ndarray:
    return np.asarray(Image.open(path)) > 127


def test_foreground_segmentation_recovers_the_exact_mask_of_every_product_shot(shots):
    ious = []
    for row in shots[shots.view == "product"].itertuples():
        rgb = np.asarray(Image.open(row.image_path).convert("RGB"))
        assert is_plain_background(rgb) and looks_like_product_shot(rgb), row.image_id
        ious.append(_iou(segment_foreground(rgb), _truth(row.garment_mask_path)))
    assert len(ious) == 12 and min(ious) >= 0.9, ious


def test_a_photo_with_a_busy_background_is_not_a_product_shot():
    rng = np.random.default_rng(0)
    busy = rng.integers(0, 256, (240, 160, 3), dtype=np.uint8)
    assert not is_plain_background(busy) and not looks_like_product_shot(busy)
    blank = np.full((240, 160, 3), 250, np.uint8)
    assert not segment_foreground(blank).any() and not looks_like_product_shot(blank)


def test_the_one_pass_product_path_decides_like_its_two_parts(shots):
    """product_shot_foreground (what the maskers call) = segment_foreground when
    looks_like_product_shot holds, else None: on product shots, worn photos, noise and a blank."""
    rng = np.random.default_rng(0)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in shots.image_path[::3]]
    images += [rng.integers(0, 256, (240, 160, 3), dtype=np.uint8), np.full((240, 160, 3), 250, np.uint8)]
    decided = 0
    for rgb in images:
        got = product_shot_foreground(rgb)
        if looks_like_product_shot(rgb):
            decided += 1
            assert got is not None and np.array_equal(got, segment_foreground(rgb))
        else:
            assert got is None
    assert 0 < decided < len(images)


def test_pose_masker_masks_product_shots_by_foreground_and_people_as_before(shots, monkeypatch):
    pytest.importorskip("mediapipe")
    from helpers.maskers import pose
    from helpers.maskers.pose import LocalMasker

    masker = LocalMasker()
    for row in shots[shots.view == "product"].itertuples():
        with Image.open(row.image_path) as img:
            steps = masker.explain(img)
            mask = masker.mask(img, "dress", image_id=row.image_id)
        assert steps["source"] == "product" and not steps["person"].any()
        assert _iou(mask, _truth(row.garment_mask_path)) >= 0.9, row.image_id
    # photos of a person never take the product path: their masks are what they were without it
    worn = shots[shots.view == "worn"].iloc[::4]
    with_fallback = {}
    for row in worn.itertuples():
        with Image.open(row.image_path) as img:
            assert masker.explain(img)["source"] != "product", row.image_id
            with_fallback[row.image_id] = masker.mask(img, "dress")
    monkeypatch.setattr(pose, "product_shot_foreground", lambda *a, **k: None)
    for row in worn.itertuples():
        with Image.open(row.image_path) as img:
            assert np.array_equal(masker.mask(img, "dress"), with_fallback[row.image_id]), row.image_id


def test_parser_masks_product_shots_by_foreground_and_people_as_before(shots):
    """The parser (the default offline masker since #14) takes the same product path when it sees
    no person; photos of a person never take it."""
    from helpers.maskers import parser
    from helpers.maskers.parser import ParserMasker, product_shot_mask

    masker = ParserMasker()
    for row in shots[shots.view == "product"].itertuples():
        with Image.open(row.image_path) as img:
            mask = masker.mask(img, "dress", image_id=row.image_id)
        assert _iou(mask, _truth(row.garment_mask_path)) >= 0.9, row.image_id
        assert masker.last_quality is not None and 0.0 <= masker.last_quality <= 1.0
    for row in shots[shots.view == "worn"].iloc[::4].itertuples():
        with Image.open(row.image_path) as img:
            rgb = np.asarray(img.convert("RGB"))
            assert product_shot_mask(rgb, masker.probabilities(img)) is None, row.image_id
            region = parser.normalize_prompt("dress")
            probs = masker.probabilities(img)
            expected = parser.select(probs, region)
            got = masker.mask(img, "dress")
        small = np.asarray(Image.fromarray(got).resize((probs.shape[1], probs.shape[0]), Image.NEAREST))
        assert _iou(small, expected) >= 0.95, row.image_id
