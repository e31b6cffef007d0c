"""The box-filter guided filter equals OpenCV contrib's (where contrib is installed) and keeps edges."""
import cv2
import numpy as np
import pytest

from helpers.maskers.guided import guided_filter


def _photo_and_probs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((96, 64, 3)) * 255).astype(np.uint8), (5, 5), 1.5)
    return img, rng.random((96, 64)).astype(np.float32)


@pytest.mark.parametrize("radius,eps", [(8, 1e-3), (16, 1e-2), (2, 1e-4)])
def test_equals_opencv_contrib(radius, eps):
    if not hasattr(cv2, "ximgproc"):
        pytest.skip("opencv-contrib is not installed here (it comes with the pose extra's mediapipe)")
    img, p = _photo_and_probs()
    ours = guided_filter(img, p, radius, eps * 255 * 255)
    theirs = cv2.ximgproc.guidedFilter(img, p, radius, eps * 255 * 255)
    assert np.abs(ours - theirs).max() < 1e-4


def test_snaps_a_blurry_map_to_the_guides_edge():
    img = np.zeros((60, 60, 3), np.uint8)
    img[:, 30:] = (200, 40, 40)                      # a sharp vertical edge at column 30
    blurry = cv2.GaussianBlur((np.arange(60) >= 30).astype(np.float32)[None].repeat(60, 0), (0, 0), 6)
    out = guided_filter(img, blurry, 8, 1e-3 * 255 * 255)
    # the blurry ramp rises 0.07 across the edge's two pixels; filtered, it jumps there
    assert blurry[30, 30] - blurry[30, 29] < 0.1
    assert out[30, 30] - out[30, 29] > 0.4
