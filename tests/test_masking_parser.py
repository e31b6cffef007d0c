"""The garment parser (#14): the default offline masker. Masks on the generated catalogue,
prompt selection, the box prior, the quality score (a confident and a doubtful image), the mask
cache (quality kept, keys per model) and the input framing (the network export: test_parser_onnx)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import maskers, maskeval, maskpool
from helpers.cache import Cache
from helpers.catalog import load_catalog
from helpers.errors import MaskError
from helpers.images import open_image
from helpers.maskers import parser_backbone as pb
from helpers.maskers.parser import ParserMasker, box_mask
from helpers.settings import load_settings


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("parser-cache")


@pytest.fixture(scope="module")
def masker(cache_dir):
    return ParserMasker(cache_dir=cache_dir)


@pytest.fixture(scope="module")
def table(small_catalog):
    return load_catalog(small_catalog).table


def _truth(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def doubtful_image(seed: int = 0) -> Image.Image:
    """Coarse colour noise: no garment the parser is sure of (its quality score is low)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (24, 16, 3), dtype=np.uint8)).resize((320, 480), Image.BICUBIC)


def test_parser_masks_catalogue_dresses(masker, table):
    rows = table.iloc[::6]
    ious = [maskeval.mask_iou(masker.mask(open_image(r.image_path), "dress"), _truth(r.garment_mask_path))
            for r in rows.itertuples()]
    assert len(ious) == 8 and np.mean(ious) >= 0.8, ious   # (seed-1 catalogue: seen in training)
    assert masker.last_quality is not None and masker.last_quality >= maskers.DOUBTFUL_QUALITY


def test_prompts_select_classes(masker, table):
    image = open_image(table.iloc[5]["image_path"])
    clothes, dress = masker.mask(image, "outfit"), masker.mask(image, "a red dress")
    assert dress.dtype == bool and dress.shape == (image.height, image.width)
    assert dress.sum() <= clothes.sum() and (dress & ~clothes).mean() < 0.01
    with pytest.raises(MaskError) as info:
        masker.mask(image, "a hat")
    assert info.value.reason == "unsupported_prompt" and "clothes" in str(info.value)


def test_box_prior_cuts_the_mask(masker, table):
    image = open_image(table.iloc[2]["image_path"])
    full = masker.mask(image, "dress")
    ys, xs = np.nonzero(full)
    box = (int(xs.min()), int(ys.min()), int(xs.max()), int((ys.min() + ys.max()) // 2))
    boxed = masker.mask(image, "dress", box=box)
    assert boxed.sum() < 0.8 * full.sum() and not (boxed & ~full).any()
    assert not (boxed & ~box_mask(full.shape, box)).any()


def test_quality_is_high_on_a_garment_and_low_on_noise(masker, table):
    _, good = masker.mask_and_quality(open_image(table.iloc[0]["image_path"]), "dress")
    assert good >= maskers.DOUBTFUL_QUALITY
    _, bad = masker.mask_and_quality(doubtful_image(), "clothes")   # a mask, but an unsure one
    assert bad < maskers.DOUBTFUL_QUALITY < good
    with pytest.raises(MaskError) as info:
        masker.mask(Image.new("RGB", (200, 300), (255, 255, 255)), "dress")
    assert info.value.reason == "no_garment"


def test_quality_is_the_agreement_of_each_view_refined_on_its_own(masker, table):
    """The quality score is defined as the IoU of the masks of the photo and of its mirror image,
    each refined and rescaled on its own (parser.refine); the masker takes a shortcut (the views
    share the guide and skip the rescale, see ParserMasker._working) that must give the same score."""
    from helpers.maskers import parser as P

    photos = [open_image(path) for path in table["image_path"].head(3)] + [doubtful_image()]
    for image in photos:
        rgb = P._photo(image)
        small = P._small(rgb)
        raw = masker.views(image)   # one network run for both the views and their mean
        views = [P.refine(pb.probs_to_image(v, small.shape[1], small.shape[0]), small) for v in raw]
        mean = P.refine(pb.probs_to_image(np.mean(raw, axis=0), small.shape[1], small.shape[0]), small)
        for prompt in ("dress", "clothes", "top"):
            present = P.presence(mean, prompt)
            want = P.agreement(*(P.select(v, prompt, present) for v in views))
            try:
                _, score = masker.mask_and_quality(image, prompt)
            except MaskError:
                continue
            assert score == pytest.approx(want, abs=1e-3), (prompt, score, want)


def test_doubtful_masks_are_warnings_and_survive_the_cache(masker, table, small_catalog, tmp_path, cache_dir):
    """The pipeline's per-image warnings mark a doubtful mask (reason "doubtful"); the image keeps
    its mask (it is indexed), and a cached re-run reports the same."""
    from helpers.pipeline import PipelineResult

    noise = tmp_path / "noise.png"
    doubtful_image().save(noise)
    rows = pd.concat([table.head(2)[["image_id", "image_path"]],
                      pd.DataFrame([{"image_id": "noise", "image_path": str(noise)}])], ignore_index=True)
    settings = load_settings(toml_path=None, env={}, masker="parser", workers=1, cache_dir=cache_dir)
    first = maskpool.mask_catalog(rows, settings, masker=masker, cache=Cache(tmp_path / "c"), progress=False)
    assert first.failures.empty and set(first.masks) == set(rows["image_id"]), first.failures
    assert set(first.quality) == set(rows["image_id"])
    warn = first.warnings()
    assert list(warn["image_id"]) == ["noise"] and list(warn["reason"]) == ["doubtful"]
    again = maskpool.mask_catalog(rows, settings, masker=masker, cache=Cache(tmp_path / "c"), progress=False)
    assert again.cached == 3 and again.quality == pytest.approx(first.quality, abs=1e-4)
    result = PipelineResult(settings=settings, table=rows, skipped=pd.DataFrame(), embedder_id="x", dim=1,
                            masks=again, cuts=None, embeddings={})
    assert list(result.warnings()["reason"]) == ["doubtful"] and result.failures().empty
    assert "1 doubtful masks" in result.failure_summary()


def test_cache_keys_name_the_masker(masker, table):
    data = open(table.iloc[0]["image_path"], "rb").read()
    pose = maskers.get_masker(load_settings(toml_path=None, env={}, masker="pose"))
    raw = ParserMasker(refine=False)
    keys = {maskpool.mask_key(data, m, "dress") for m in (masker, pose, raw)}
    assert len(keys) == 3
    assert masker.model_id.startswith("parser-effl0-") and masker.model_id != raw.model_id


def test_encoded_mask_carries_quality():
    mask = np.zeros((6, 4), bool)
    mask[2:4] = True
    png = maskpool.encode_mask(mask, 0.4321)
    assert maskpool.mask_quality(png) == pytest.approx(0.4321)
    assert np.array_equal(maskpool.decode_mask(png), mask)
    assert maskpool.mask_quality(maskpool.encode_mask(mask)) is None
    assert maskpool.is_doubtful(0.3) and not maskpool.is_doubtful(0.9) and not maskpool.is_doubtful(None)


def test_framing_round_trip():
    assert pb.frame(256, 384) == (0, 0, 256, 384)
    left, top, pw, ph = pb.frame(400, 300)          # wide: padded top and bottom to 2:3
    assert (left, pw) == (0, 400) and ph == 600 and top == 150
    probs = np.zeros((2, 96, 64), np.float32)
    probs[1, 48:, :] = 1.0                          # lower half of the padded frame
    out = pb.probs_to_image(probs, 400, 300)
    assert out.shape == (300, 400, 2)
    assert out[:100, :, 1].max() < 0.5 and out[-100:, :, 1].min() > 0.5


def test_parser_fast_drops_the_mirror_view_and_its_score(masker, table, cache_dir):
    fast = maskers.get_masker(load_settings(toml_path=None, env={}, masker="parser-fast", cache_dir=cache_dir))
    assert isinstance(fast, ParserMasker) and not fast.flip and masker.flip
    assert fast.model_id != masker.model_id and fast.model_id.endswith("-noflip")
    row = table.iloc[0]
    image = open_image(row["image_path"])
    quick = fast.mask(image, "dress")
    assert fast.last_quality is None   # one view: nothing to agree with
    assert maskeval.mask_iou(quick, _truth(row["garment_mask_path"])) > 0.8
    assert maskeval.mask_iou(quick, masker.mask(image, "dress")) > 0.9


def test_garment_words_a_user_types_name_the_parser_region():
    """Synonyms follow the truth's grouping (helpers.ccp): capes, ponchos and bodysuits are tops; a
    suit is jacket and trousers (all clothes) unless the user says which part; the last garment word wins."""
    from helpers.maskers.parser import normalize_prompt

    assert [normalize_prompt(p) for p in ("a wool cape", "poncho", "black bodysuit", "grey sweatshirt")] == ["top"] * 4
    assert normalize_prompt("navy suit") == "clothes"
    assert normalize_prompt("suit jacket") == "top" and normalize_prompt("suit trousers") == "trousers"
    assert normalize_prompt("denim jacket") == "top" and normalize_prompt("blue jeans") == "trousers"
    with pytest.raises(MaskError):
        normalize_prompt("hat")
