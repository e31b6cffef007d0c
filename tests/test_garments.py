"""The garment-presence head and the per-prompt rule (issue 22 §1): the pooled features, the
rule on probability maps built by hand (a dress the pixels call top + skirt, an absent garment,
specks), and the committed head on the generated catalogue, which draws dresses only."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.catalog import load_catalog
from helpers.errors import MaskError
from helpers.images import open_image
from helpers.maskers import garments
from helpers.maskers.parser import ParserMasker


def outfit(lower: dict[int, float], h: int = 60, w: int = 40) -> np.ndarray:
    """H x W x 9 probabilities: background around a figure whose upper half is a top and whose
    lower half has the class probabilities `lower` (the rest background)."""
    probs = np.zeros((h, w, 9), np.float32)
    probs[..., 0] = 1
    probs[10:30, 10:30] = 0
    probs[10:30, 10:30, 4] = 1          # top
    probs[30:55, 10:30] = 0
    for c, p in lower.items():
        probs[30:55, 10:30, c] = p
    probs[30:55, 10:30, 0] = 1 - sum(lower.values())
    return probs


def test_features_are_named_and_pooled():
    x = garments.features(outfit({5: 0.9}))
    assert x.shape == (len(garments.FEATURE_NAMES),)
    named = dict(zip(garments.FEATURE_NAMES, x))
    assert named["share_top"] == pytest.approx(400 / 2400) and named["share_skirt"] == pytest.approx(500 / 2400)
    assert named["upper_top"] > 0.8 and named["lower_skirt"] > 0.9 and named["lower_top"] < 0.1
    empty = np.zeros((20, 10, 9), np.float32)
    empty[..., 0] = 1
    assert garments.features(empty)[8:].sum() == 0   # no garment pixels: pooled garment features 0


def test_presence_weights_decide_which_garment_the_pixels_are():
    probs = outfit({3: 0.5, 5: 0.4})    # the pixels lean "dress" where the photo shows a skirt
    rule = {"prior": 1.0, "alpha": 1.0}
    assert not garments.select_kind(probs, "skirt", rule)[30:55].any()          # pixels alone: no skirt
    skirt = garments.select_kind(probs, "skirt", rule, {"dress": 0.05, "top": 0.9, "skirt": 0.8, "trousers": 0.1})
    assert skirt[30:55, 10:30].all() and skirt.sum() == 500
    # the prompt's kind judged absent (below the gate): an empty mask, i.e. "no skirt found"
    gated = garments.select_kind(probs, "skirt", dict(rule, gate=0.3), {"dress": 0.9, "skirt": 0.1})
    assert not gated.any()


def test_small_parts_dropped_and_holes_filled():
    probs = outfit({6: 0.9})            # trousers below the top
    probs[2:4, 2:4] = 0
    probs[2:4, 2:4, 6] = 1              # a 4-pixel speck of "trousers" far away
    probs[40:42, 18:20, 6], probs[40:42, 18:20, 7] = 0.2, 0.7   # a hole of "other clothes" inside
    plain = garments.select_kind(probs, "trousers", {})
    assert plain[2:4, 2:4].all() and not plain[40:42, 18:20].any()
    clean = garments.select_kind(probs, "trousers", {"min_part": 0.15, "fill": True})
    assert not clean[2:4, 2:4].any() and clean[30:55, 10:30].all()


def test_model_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(garments.FEATURE_NAMES))).astype(np.float32)
    y = x[:, 4] + 0.3 * rng.normal(size=200) > 0
    head = garments.fit_head(x, y)
    assert ((garments.predict(x, head) > 0.5) == y).mean() > 0.85
    path = tmp_path / "g.json"
    path.write_text(garments.to_json({"kinds": {"skirt": head}, "rules": {}}))
    doc = garments.model(path)
    assert np.allclose(garments.predict(x, doc["kinds"]["skirt"]), garments.predict(x, head), atol=1e-4)
    assert garments.model(tmp_path / "missing.json") is None


@pytest.fixture(scope="module")
def masker(tmp_path_factory):
    return ParserMasker(cache_dir=tmp_path_factory.mktemp("parser-cache"))


def test_committed_head_says_no_trousers_on_dresses(masker, small_catalog):
    """The generated catalogue draws dresses only: asked for trousers or a skirt, the masker says
    the garment is not there far more often than it cuts something out; a dress is found."""
    assert garments.model() is not None, "helpers/maskers/models/garments.json is committed"
    table = load_catalog(small_catalog).table.iloc[::6]
    absent = 0
    for path in table.image_path:
        image = open_image(path)
        assert masker.mask(image, "dress").mean() > 0.02
        for prompt in ("trousers", "skirt"):
            with _maybe() as caught:
                masker.mask(image, prompt)
            absent += caught.raised
    assert absent >= 0.75 * 2 * len(table), absent


class _maybe:
    """Context manager: records whether a MaskError no_garment was raised (other errors propagate)."""
    raised = False

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if kind is MaskError and err.reason == "no_garment":
            self.raised = True
            return True
        return False


def test_fill_holes_equals_scipy():
    """fill_holes (one cv2 flood fill, for speed) fills exactly what scipy's binary_fill_holes does."""
    from scipy.ndimage import binary_fill_holes

    rng = np.random.default_rng(1)
    for density in (0.3, 0.5, 0.7):
        mask = rng.random((37, 23)) < density
        assert (garments.fill_holes(mask) == binary_fill_holes(mask)).all()
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7], ring[4, 4] = True, False
    assert garments.fill_holes(ring)[4, 4] and not garments.fill_holes(ring)[0, 0]


def test_presence_is_decided_once_per_photo_and_used_for_every_view(masker, small_catalog, monkeypatch):
    """The head's pooled features are computed once per mask (from the views' mean), not once for
    the photo and once per mirror view; the decision passed to select() is the one used."""
    from helpers.maskers import parser

    image = open_image(load_catalog(small_catalog).table.image_path.iloc[0])
    probs = masker.probabilities(image)
    present = parser.presence(probs, "dress")
    assert set(present) == set(garments.KINDS) and parser.presence(probs, "clothes") is None
    assert np.array_equal(parser.select(probs, "dress", present), parser.select(probs, "dress"))
    gate = garments.model()["rules"]["dress"]["gate"]
    assert not parser.select(probs, "dress", dict(present, dress=gate / 2)).any()   # judged absent: empty
    assert parser.select(probs, "dress", dict(present, dress=1.0)).mean() > 0.02

    calls = []
    real = garments.features
    monkeypatch.setattr(garments, "features", lambda p: calls.append(1) or real(p))
    mask, quality = masker.mask_and_quality(image, "dress")
    assert len(calls) == 1 and mask.mean() > 0.02 and 0.5 <= quality <= 1.0


def test_trainer_caches_the_maskers_probabilities(masker, small_catalog, tmp_path):
    """garments_train's cache holds the masker's own half-size probabilities (uint8) and the
    photo's size: the head is trained on what select() sees at run time."""
    from helpers.maskers import garments_train

    path = load_catalog(small_catalog).table.image_path.iloc[1]
    garments_train.compute_probs(small_catalog, [("one", path)], tmp_path)
    half, size = garments_train.half_probs(tmp_path / "one.npz")
    image = open_image(path)
    assert size == (image.height, image.width)
    assert np.abs(half - masker.probabilities(image)).max() <= 1 / 255 + 1e-6


def test_a_retrained_head_is_not_served_the_old_heads_masks(small_catalog, tmp_path, monkeypatch):
    """The mask cache key holds the head's hash: after models/garments.json changes, a mask the
    old head made is a cache miss, not a stale answer."""
    import json

    from helpers.cache import Cache
    from helpers.maskpool import mask_one_cached

    path = load_catalog(small_catalog).table.image_path.iloc[0]
    data, image, cache = open(path, "rb").read(), open_image(path), Cache(tmp_path / "cache")
    assert mask_one_cached(ParserMasker(), image, data, "dress", cache).mean() > 0.02
    assert mask_one_cached(ParserMasker(), image, data, "dress", cache).mean() > 0.02   # a hit
    doc = json.loads(garments.MODEL_PATH.read_text())
    doc["rules"]["dress"]["gate"] = 1.01   # a head that never finds a dress
    retrained = tmp_path / "garments.json"
    retrained.write_text(json.dumps(doc))
    monkeypatch.setattr(garments, "MODEL_PATH", retrained)
    assert garments.digest() != garments.digest(garments.MODEL_PATH.parent / "missing.json") == "none"
    with pytest.raises(MaskError, match="no dress found"):
        mask_one_cached(ParserMasker(), image, data, "dress", cache)
