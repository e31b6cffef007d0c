"""Cut-outs from real generated catalogue images and their ground-truth garment masks."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers import cutting
from helpers.cache import Cache
from helpers.catalog import load_catalog
from helpers.cutting import EdgeTreatment, NoGarment
from helpers.images import open_image
from helpers.errors import MaskError
from notebook_checks import assert_seen


@pytest.fixture(scope="module")
def table(small_catalog):
    return load_catalog(small_catalog).table


@pytest.fixture(scope="module")
def sample(table):
    """One catalogue image and its ground-truth garment mask."""
    row = table.iloc[3]
    image = open_image(row["image_path"])
    with Image.open(row["garment_mask_path"]) as im:
        mask = np.asarray(im.convert("L")) > 127
    assert mask.any() and mask.shape == (image.height, image.width)
    return image, mask


def test_on_white_keeps_garment_pixels_and_whitens_the_rest(sample):
    image, mask = sample
    out = cutting.on_white(image, mask)
    arr, src = np.asarray(out), np.asarray(image)
    assert out.mode == "RGB" and out.size == image.size
    assert (arr[~mask] == 255).all()
    assert np.array_equal(arr[mask], src[mask])


def test_on_transparent_alpha_is_the_mask(sample):
    image, mask = sample
    out = cutting.on_transparent(image, mask)
    arr = np.asarray(out)
    assert out.mode == "RGBA" and out.size == image.size
    assert (arr[..., 3][~mask] == 0).all() and (arr[..., 3][mask] == 255).all()
    assert np.array_equal(arr[..., :3][mask], np.asarray(image)[mask])


def test_square_crop_is_square_tight_and_white_outside(sample):
    image, mask = sample
    margin = 0.1
    out = cutting.square_crop(image, mask, margin=margin)
    x0, y0, x1, y1 = cutting.garment_box(mask)
    longer = max(x1 - x0, y1 - y0)
    assert out.mode == "RGB" and out.width == out.height
    assert abs(out.width - longer * (1 + 2 * margin)) <= 2
    arr = np.asarray(out)
    # the margin band around the box is white: nothing of the background survives
    band = max(1, int(longer * margin) - 2)
    assert (arr[:band] == 255).all() and (arr[-band:] == 255).all()
    # the garment is there: about as many non-white pixels as garment pixels
    non_white = (arr < 250).any(axis=2).sum()
    assert 0.8 * mask.sum() <= non_white <= 1.01 * mask.sum()
    resized = cutting.square_crop(image, mask, size=224)
    assert resized.size == (224, 224)


def test_square_crop_pads_a_garment_at_the_image_edge(sample):
    image, _ = sample
    mask = np.zeros((image.height, image.width), bool)
    mask[: image.height // 2, : 40] = True  # tall and touching the left and top edges
    out = cutting.square_crop(image, mask, margin=0.05)
    assert out.width == out.height >= image.height // 2
    assert (np.asarray(out)[:, : out.width // 4] == 255).all()  # left padding is white


def test_edge_treatment_grows_and_softens_the_edge(sample):
    image, mask = sample
    hard = np.asarray(cutting.on_transparent(image, mask))[..., 3]
    grown = np.asarray(cutting.on_transparent(image, mask, EdgeTreatment(dilate=3)))[..., 3]
    soft = np.asarray(cutting.on_transparent(image, mask, EdgeTreatment(feather=4)))[..., 3]
    assert set(np.unique(hard)) == {0, 255}
    assert (grown == 255).sum() > (hard == 255).sum()
    assert ((grown == 255) | ~mask).all()  # dilation never loses garment
    partial = ((soft > 0) & (soft < 255)).sum()
    assert partial > 0.5 * cutting.soft_alpha(mask).shape[0]  # a soft band along the edge
    assert (soft[~mask] < 255).all()


@pytest.mark.parametrize("form", cutting.FORMS)
def test_empty_or_tiny_mask_is_no_garment_not_a_blank_image(sample, form):
    image, _ = sample
    empty = np.zeros((image.height, image.width), bool)
    with pytest.raises(NoGarment) as info:
        cutting.cut(image, empty, form)
    assert info.value.reason == "no_garment" and isinstance(info.value, MaskError)
    assert "no garment" in str(info.value)
    speck = empty.copy()
    speck[10:14, 10:14] = True
    with pytest.raises(NoGarment):
        cutting.cut(image, speck, form)


def test_mask_of_the_wrong_size_is_refused(sample):
    image, mask = sample
    with pytest.raises(ValueError, match="resize the mask"):
        cutting.on_white(image, mask[:-1])
    with pytest.raises(ValueError, match="unknown cut-out form"):
        cutting.cut(image, mask, "poster")


def test_cut_catalog_records_failures_and_reuses_the_cache(table, tmp_path):
    rows = table.head(6)
    masks = {}
    for rec in rows.to_dict("records"):
        with Image.open(rec["garment_mask_path"]) as im:
            masks[rec["image_id"]] = np.asarray(im.convert("L")) > 127
    ids = list(rows["image_id"])
    masks[ids[1]] = np.zeros_like(masks[ids[1]])  # a masker found nothing
    del masks[ids[2]]                             # a masker failed
    cache = Cache(tmp_path / "cache")
    first = cutting.cut_catalog(rows, masks, "square", size=128, cache=cache)
    assert sorted(first.cutouts) == sorted(set(ids) - {ids[1], ids[2]})
    assert dict(zip(first.failures["image_id"], first.failures["reason"])) == {
        ids[1]: "no_garment", ids[2]: "no_mask"}
    assert all(im.size == (128, 128) for im in first.cutouts.values())
    second = cutting.cut_catalog(rows, masks, "square", size=128, cache=cache)
    assert second.cached == 4
    for image_id, im in first.cutouts.items():
        assert np.array_equal(np.asarray(im), np.asarray(second.cutouts[image_id]))
    other = cutting.cut_catalog(rows, masks, "square", size=96, cache=cache)
    assert other.cached == 0  # a changed parameter never reuses a stale cut-out


def test_notebook_03_runs_offline(warm_env, tmp_path):
    """03_cutting executes headless on the small catalogue and cuts every masked image."""
    from pathlib import Path

    from helpers.workbook.notebooks import read_records, run_notebook

    out = tmp_path / "03_cutting.ipynb"
    run_notebook(Path(__file__).resolve().parents[1] / "notebooks" / "03_cutting.ipynb", out, {"backend": "local"})
    assert read_records(out)["cutouts"] == 48
    assert_seen(out)  # every figure shown, no table cell cut


def test_square_crop_hard_edge_equals_the_alpha_blend(sample):
    """The hard-mask fast path (pixel or white) gives the very bytes of the float alpha blend."""
    image, mask = sample
    fast = np.asarray(cutting.square_crop(image, mask, margin=0.06))
    x0, y0, x1, y1 = cutting.garment_box(mask)
    side = int(round(max(x1 - x0, y1 - y0) * 1.12))
    sx0, sy0 = int(round((x0 + x1) / 2 - side / 2)), int(round((y0 + y1) / 2 - side / 2))
    canvas = np.full((side, side, 3), 255.0, np.float32)
    ix0, iy0 = max(sx0, 0), max(sy0, 0)
    ix1, iy1 = min(sx0 + side, image.width), min(sy0 + side, image.height)
    a = mask[iy0:iy1, ix0:ix1, None].astype(np.float32)
    rgb = np.asarray(image, np.float32)[iy0:iy1, ix0:ix1]
    canvas[iy0 - sy0:iy1 - sy0, ix0 - sx0:ix1 - sx0] = rgb * a + 255.0 * (1.0 - a)
    assert np.array_equal(fast, np.rint(canvas).astype(np.uint8))


def test_cut_made_right_after_masking_is_the_cut_catalog_cut_out(table, tmp_path):
    """The pipeline cuts each fresh mask out in the masking worker (`cache_cutout`); the cut
    stage must then find every cut-out cached, byte for byte what it would have made itself."""
    from functools import partial

    from helpers.maskers import ReferenceMasker
    from helpers.maskpool import mask_catalog
    from helpers.settings import load_settings

    rows = table.head(4)
    settings = load_settings(masker="reference", cache_dir=tmp_path / "cache")
    cache = Cache(settings.cache_dir)
    after = partial(cutting.cache_cutout, str(cache.root), cutting.GarmentView(size=128))
    run = mask_catalog(rows, settings, masker=ReferenceMasker(rows), cache=cache, progress=False, after=after)
    assert len(run.masks) == 4
    warm = cutting.cut_catalog(rows, run.masks, "square", size=128, cache=cache)
    assert warm.cached == 4
    fresh = cutting.cut_catalog(rows, run.masks, "square", size=128)  # no cache: cut now
    for image_id, im in fresh.cutouts.items():
        assert np.array_equal(np.asarray(im), np.asarray(warm.cutouts[image_id]))


@pytest.mark.parametrize("edge", [cutting.NO_EDGE, EdgeTreatment(dilate=2, feather=3)])
def test_large_photo_square_is_made_at_output_size_and_matches_the_full_canvas(sample, edge):
    """A 12 MP photo's square (or one of extreme aspect) is shrunk before it is placed on the
    white square: the same picture as building the full canvas and shrinking it (issue 21/24)."""
    import cv2

    image, mask = sample
    big = image.resize((image.width * 5, image.height * 5), Image.BICUBIC)      # 2560 x 3840
    big_mask = np.asarray(Image.fromarray(mask).resize(big.size, Image.NEAREST))
    fast = np.asarray(cutting.square_crop(big, big_mask, size=256, edge=edge), np.float32)
    full = cutting.square_crop(big, big_mask, edge=edge)                         # the full canvas
    assert full.width > cutting.SHRINK_FIRST_SIDE * 256
    slow = cv2.resize(np.asarray(full), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert fast.shape == slow.shape == (256, 256, 3)
    diff = np.abs(fast - slow)
    assert diff.mean() < 1.0 and (diff.max(-1) > 8).mean() < 0.02   # only the part's edge row/column differ
