"""The garment of a photo without a person: foreground against a plain background (product shots).

Why: a shop's product shot shows the garment alone, flat or on a hanger, on white or a plain
light background. A person-based masker finds nobody there; but the garment is then simply
everything that is not background, and the background is what the image's border shows. So:

1. estimate the background from the border: per Lab channel a smooth plane fitted to the border
   pixels (robust to a faint gradient or vignette), and how much the border varies;
2. foreground = pixels far from that background, lightness counting half (a soft shadow changes
   lightness, hardly colour);
3. clean up: an opening removes thin lines (a hanger's wire, noise), components touching the
   border or far smaller than the largest are dropped, holes are filled.

`is_plain_background` says whether the border is plain enough for this to mean anything.
"""
from __future__ import annotations

import cv2
import numpy as np

BORDER = 0.04          # border band, as a share of the shorter side
MIN_THRESHOLD = 7.0    # Lab distance below which a pixel is background, at least
PLAIN_SPREAD = 6.0     # a border whose robust spread exceeds this is not a plain background
KEEP_SHARE = 0.15      # components smaller than this share of the largest are dropped


def _lab(rgb: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return lab  # L in 0..100, a/b about -128..127


def _border_mask(h: int, w: int) -> np.ndarray:
    b = max(2, int(round(BORDER * min(h, w))))
    m = np.zeros((h, w), bool)
    m[:b], m[-b:], m[:, :b], m[:, -b:] = True, True, True, True
    return m


def _background_model(lab: np.ndarray) -> tuple[np.ndarray, float]:
    """The background's plane per Lab channel (coefficients of 1, x/w, y/h, fitted to the border
    pixels) and the border's robust spread (median distance from the plane, as a std)."""
    h, w = lab.shape[:2]
    ys, xs = np.nonzero(_border_mask(h, w))
    A = np.stack([np.ones_like(xs, np.float32), xs / w, ys / h], 1).astype(np.float32)
    vals = lab[ys, xs]
    # two passes: fit, drop the border pixels far from the fit (a hanger's hook, a garment
    # touching the edge), fit again
    keep = np.ones(len(xs), bool)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(A[keep], vals[keep], rcond=None)
        resid = np.linalg.norm((vals - A @ coef) * [0.5, 1, 1], axis=1)
        keep = resid <= max(3.0, 2.5 * float(np.median(resid)) + 1.0)
    return coef.astype(np.float32), 1.4826 * float(np.median(resid))


def is_plain_background(rgb: np.ndarray) -> bool:
    """True when the image's border is one plain colour (a smooth plane in Lab)."""
    _, spread = _background_model(_lab(np.asarray(rgb)))
    return spread <= PLAIN_SPREAD


def looks_like_product_shot(rgb: np.ndarray, foreground: np.ndarray | None = None) -> bool:
    """A plain background and one object standing free in it: the foreground takes 3-70 % of
    the image and touches neither side nor the bottom (a hanger's hook may reach the top). A
    person in a studio is cut off by the frame or stands on a floor that reaches the border.
    Meant for photos in which no pose was found: a found person always goes the person way."""
    rgb = np.asarray(rgb)
    if not is_plain_background(rgb):
        return False
    return _stands_free(segment_foreground(rgb) if foreground is None else foreground)


def product_shot_foreground(rgb: np.ndarray) -> np.ndarray | None:
    """The garment of a product shot, or None when the photo is not one: `looks_like_product_shot`
    and `segment_foreground` in one pass, for the maskers' no-person path. The border's model is
    fitted once, and a busy border stops before the (costlier) segmentation."""
    lab = _lab(np.asarray(rgb))
    coef, spread = _background_model(lab)
    if spread > PLAIN_SPREAD:
        return None
    fg = _segment(lab, coef, spread)
    return fg if _stands_free(fg) else None


def _stands_free(fg: np.ndarray) -> bool:
    share = float(fg.mean())
    return 0.03 <= share <= 0.7 and not (fg[-1].any() or fg[:, 0].any() or fg[:, -1].any())


def segment_foreground(rgb: np.ndarray) -> np.ndarray:
    """Bool mask of the foreground (the garment) of a photo on a plain background."""
    lab = _lab(np.asarray(rgb))
    coef, spread = _background_model(lab)
    return _segment(lab, coef, spread)


def _segment(lab: np.ndarray, coef: np.ndarray, spread: float) -> np.ndarray:
    h, w = lab.shape[:2]
    x = (np.arange(w, dtype=np.float32) / w)[None, :, None]
    y = (np.arange(h, dtype=np.float32) / h)[:, None, None]
    diff = lab - coef[0] - x * coef[1] - y * coef[2]
    diff[..., 0] *= 0.5
    d = np.sqrt((diff * diff).sum(axis=2))
    d = cv2.GaussianBlur(d, (0, 0), 1.0)
    fg = (d > max(MIN_THRESHOLD, 4.0 * spread)).astype(np.uint8)
    k = max(3, int(round(0.008 * min(h, w))) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return np.zeros((h, w), bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    big = areas.max()
    keep = np.zeros(n, bool)
    keep[1:] = areas >= KEEP_SHARE * big
    out = keep[labels]
    return _fill_holes(out)


def _fill_holes(mask: np.ndarray, share: float = 0.05) -> np.ndarray:
    """Fill background regions enclosed by the mask and smaller than `share` of it (a print's
    light dots on a light background); a large enclosed region (between straps on a hanger) is
    real background and stays."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    h, w = mask.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    touches = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    fill = ~touches & (area <= share * max(1, int(mask.sum())))
    fill[0] = False  # label 0: the mask itself
    return mask | fill[labels]
