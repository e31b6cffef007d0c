"""Tag-constrained pseudo-labels (helpers.maskers.parser_pseudo): the parser's garment pixels keep
their place but take a garment class the tags allow; unsure pixels are ignored."""
from __future__ import annotations

import numpy as np

from helpers.maskers.parser_pseudo import IGNORE, other_clothes, pseudo_labels


def probs_of(rows: list[dict[int, float]]) -> np.ndarray:
    """1 x len(rows) x 9 probabilities, one pixel per dict (class id -> probability)."""
    p = np.zeros((1, len(rows), 9), np.float32)
    for j, row in enumerate(rows):
        for c, v in row.items():
            p[0, j, c] = v
    return p


def test_absent_kinds_are_reassigned_and_unsure_pixels_ignored():
    probs = probs_of([{4: 0.9, 3: 0.05}, {3: 0.8, 0: 0.2}, {1: 0.95}, {1: 0.5, 0: 0.5}, {4: 0.4, 0: 0.6}])
    out = pseudo_labels(probs, {"dress": True})            # tags: a dress (a jumper), no top
    assert out[0].tolist() == [3, 3, 1, IGNORE, IGNORE]    # the "top" pixel becomes dress; skin kept
    out = pseudo_labels(probs, {"top": True, "skirt": True})
    # the "dress" pixel with no top / skirt probability at all: nothing says which, ignored
    assert out[0, :3].tolist() == [4, IGNORE, 1]
    none = pseudo_labels(probs, {})                         # no garment tagged: garment pixels ignored
    assert none[0].tolist() == [IGNORE, IGNORE, 1, IGNORE, IGNORE]


def test_two_present_kinds_need_a_clear_winner():
    probs = probs_of([{4: 0.45, 5: 0.45}, {4: 0.7, 5: 0.2}, {3: 0.6, 4: 0.1, 5: 0.25}])
    assert pseudo_labels(probs, {"top": True, "skirt": True})[0].tolist() == [IGNORE, 4, 5]
    assert pseudo_labels(probs, {"skirt": True})[0].tolist() == [5, 5, 5]


def test_other_clothes_from_tags():
    assert other_clothes(("romper", "hair")) and not other_clothes(("jumper", "blouse", "jeans", "skirt"))


def test_tagged_items_take_one_half_and_follow_the_tags(tmp_path):
    """A tiny CCP tree the test writes: photo 1010 (even) tagged jumper, 1011 (odd) tagged blouse;
    the cached parser probabilities call every pixel "top"."""
    from PIL import Image
    from scipy.io import savemat

    from helpers.maskers.parser_pseudo import tagged_items

    names = ["null", "blouse", "dress", "hair", "jumper", "skin"]
    savemat(tmp_path / "label_list.mat", {"label_list": np.array([names], dtype=object)})
    (tmp_path / "photos").mkdir()
    (tmp_path / "annotations" / "image-level").mkdir(parents=True)
    cache = tmp_path / "probs"
    cache.mkdir()
    half = np.zeros((20, 12, 9), np.uint8)
    half[..., 4] = 255                                   # "top", sure
    for n, tag in ((1010, 4), (1011, 1)):
        Image.new("RGB", (24, 40)).save(tmp_path / "photos" / f"{n}.jpg")
        savemat(tmp_path / "annotations" / "image-level" / f"{n}.mat", {"tags": np.array([[tag]], np.uint8)})
        np.savez(cache / f"ccp-{n}.npz", half=half, size=np.array([40, 24]))
    images, labels = tagged_items(tmp_path, cache, "even")
    assert images.shape[0] == 1 and labels.shape == images.shape[:3]
    assert set(np.unique(labels)) == {3, IGNORE}          # the jumper photo: dress (and the padding)
    _, labels = tagged_items(tmp_path, cache, "odd")
    assert set(np.unique(labels)) == {4, IGNORE}          # the blouse photo: top
