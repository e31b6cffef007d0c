"""Notebook 02's pose-vs-parser comparison without mediapipe (helpers.maskers.pose_recorded): the
pose masker masks live where mediapipe is installed and returns the recorded mask elsewhere, only
for a photo with exactly the recorded pixels."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from helpers import maskers
from helpers.catalog import load_catalog
from helpers.errors import MissingExtra
from helpers.images import open_image
from helpers.maskers import pose, pose_recorded
from helpers.settings import load_settings


def test_recorded_masks_stand_in_for_mediapipe_only_on_the_same_photo(small_catalog, tmp_path, monkeypatch):
    table = load_catalog(small_catalog).table
    index = pose.record_masks(table, n=1, directory=tmp_path)
    monkeypatch.setattr(pose_recorded, "RECORDED_DIR", tmp_path)
    image = open_image(table["image_path"].iloc[0])
    masker = maskers.get_masker(load_settings(toml_path=None, env={}, masker="pose"))
    live = masker.mask(image, "dress")
    assert live.dtype == bool and 0.02 < live.mean() < 0.6

    monkeypatch.setitem(sys.modules, "mediapipe", None)   # as in the run-time environment
    assert np.array_equal(masker.mask(image, "dress"), live)
    (record,) = index.values()
    assert record["image_id"] == table["image_id"].iloc[0] and record["model_id"] == masker.model_id
    changed = Image.fromarray(255 - np.asarray(image))   # other pixels: the record does not apply
    with pytest.raises(MissingExtra, match="`make install-pose`"):
        masker.mask(changed, "dress")


def test_the_committed_recorded_masks_load():
    index = pose_recorded.read_index()
    assert index
    for key, record in index.items():
        with Image.open(pose_recorded.RECORDED_DIR / record["file"]) as png:
            mask = np.asarray(png.convert("1"))
        assert key.endswith("/dress") and record["model_id"].startswith("local-mediapipe-0.10.21-")
        assert 0.02 < mask.mean() < 0.6
