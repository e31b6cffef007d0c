"""A damaged cache entry is a miss: deleted, recomputed, reported once per kind.

Each test lets the real code write its real entries (mask PNGs, cut-out PNGs, vectors, the
ONNX export), truncates some of them as a full disk would, and runs again."""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import cache as cache_mod
from helpers.cache import Cache
from helpers.catalog import load_catalog
from helpers.settings import load_settings


class BoxMasker:
    """A cheap deterministic masker that goes through the mask cache like the real ones."""

    model_id = "test-centre-box"
    price_per_call = 0.0
    parallel = "threads"

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None) -> np.ndarray:
        m = np.zeros((image.height, image.width), dtype=bool)
        m[image.height // 4: 3 * image.height // 4, image.width // 4: 3 * image.width // 4] = True
        return m


@pytest.fixture()
def fresh_warnings(monkeypatch):
    """A process that has not warned yet; every warning recorded."""
    monkeypatch.setattr(cache_mod, "_WARNED_KINDS", set(), raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def truncate(paths: list[Path]) -> None:
    for p in paths:
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])


def corrupt_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "could not be read" in str(w.message)]


def three_rows(catalog: Path):
    return load_catalog(catalog).table.head(3).reset_index(drop=True)


def test_truncated_mask_pngs_are_recomputed_with_one_warning(tmp_path, small_catalog, fresh_warnings):
    from helpers.maskpool import mask_catalog

    settings = load_settings(toml_path=None, env={}, cache_dir=tmp_path, concurrency=1)
    table = three_rows(small_catalog)
    first = mask_catalog(table, settings, masker=BoxMasker(), progress=False)
    entries = sorted((tmp_path / "masks").rglob("*.png"))
    assert len(entries) == 3
    truncate(entries[:2])
    again = mask_catalog(table, settings, masker=BoxMasker(), progress=False)
    assert (again.cached, again.calls, len(again.failures)) == (1, 2, 0)
    assert all(np.array_equal(first.masks[i], again.masks[i]) for i in first.masks)
    said = corrupt_warnings(fresh_warnings)
    assert len(said) == 1 and str(tmp_path / "masks") in said[0] and "recomputing" in said[0]
    assert mask_catalog(table, settings, masker=BoxMasker(), progress=False).cached == 3  # re-stored whole


def test_truncated_cutouts_are_recut_not_blamed_on_the_photo(tmp_path, small_catalog, fresh_warnings):
    from helpers.cutting import cut_catalog

    table = three_rows(small_catalog)
    masks = {i: BoxMasker().mask(Image.open(p), "dress") for i, p in zip(table["image_id"], table["image_path"])}
    cache = Cache(tmp_path)
    cut_catalog(table, masks, "square", cache=cache)
    entries = sorted((tmp_path / "cutouts").rglob("*.png"))
    assert len(entries) == 3
    truncate(entries[:2])
    again = cut_catalog(table, masks, "square", cache=cache)
    assert len(again.failures) == 0 and len(again.cutouts) == 3 and again.cached == 1
    said = corrupt_warnings(fresh_warnings)
    assert len(said) == 1 and "cutouts" in said[0]


def test_truncated_vectors_are_recomputed_with_one_warning(tmp_path, small_catalog, fresh_warnings):
    from helpers.embedding import LocalEmbedder, embed_images

    table = three_rows(small_catalog)
    images = dict(zip(table["image_id"], table["image_path"]))
    settings = load_settings(toml_path=None, env={}, cache_dir=tmp_path)
    embedder = LocalEmbedder(tmp_path, threads=1)
    first = embed_images(images, embedder, view="full", settings=settings, progress=False)
    entries = sorted((tmp_path / "vectors").rglob("*.npy"))
    assert len(entries) == 3
    truncate(entries[:2])
    again = embed_images(images, embedder, view="full", settings=settings, progress=False)
    assert (again.calls, again.cached, len(again.failures)) == (2, 1, 0)
    assert np.allclose(first.vectors, again.vectors, atol=1e-5)
    said = corrupt_warnings(fresh_warnings)
    assert len(said) == 1 and str(tmp_path / "vectors") in said[0]


def test_a_truncated_onnx_model_is_refused_in_one_line(tmp_path, small_catalog, monkeypatch):
    """The committed model is never rewritten at run time: a damaged copy is named with the fix."""
    from helpers import onnxmodels
    from helpers.embedding import LocalEmbedder
    from helpers.errors import ModelFileError

    shutil.copytree(onnxmodels.MODELS_DIR, tmp_path / "models")
    monkeypatch.setattr(onnxmodels, "MODELS_DIR", tmp_path / "models")
    model = tmp_path / "models" / onnxmodels.FILES["embedder"]
    truncate([model])
    image = Image.open(three_rows(small_catalog)["image_path"][0])
    with pytest.raises(ModelFileError, match=r"does not match its manifest.*rebuild it with `make models`"):
        LocalEmbedder(tmp_path, threads=1).embed([image])
