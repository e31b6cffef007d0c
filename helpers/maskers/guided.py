"""The guided filter (He, Sun and Tang, 2010) with a colour guide, from box filters only.

Why here and not `cv2.ximgproc.guidedFilter`: that function lives in opencv-contrib, a 183 MB
wheel whose only use in the workbook was this filter. The filter itself is a handful of box
filters and a 3 x 3 solve per pixel, which plain OpenCV (`cv2.boxFilter`) and numpy do; the
result equals contrib's to float precision (tests/test_guided.py compares them where contrib is
installed).
"""
from __future__ import annotations

import cv2
import numpy as np


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), normalize=True,
                         borderType=cv2.BORDER_REFLECT)


_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))   # the guide's covariance: rr rg rb gg gb bb


class GuidedFilter:
    """The guided filter of one guide, for any number of sources.

    Why a class: the filter is linear in the source, and all its guide-only work (the guide's
    local means and the inverse of its local 3 x 3 covariance, about half the cost) is shared, so
    the parser filters the photo's and its mirror image's maps for the price of 1.5 filters (the
    average of the two filtered maps is the filtered average)."""

    def __init__(self, guide: np.ndarray, radius: int, eps: float):
        self.radius = radius
        self.g = cv2.split(np.ascontiguousarray(guide, dtype=np.float32))
        g = self.g
        self.mg = [_box(c, radius) for c in g]
        mg = self.mg
        rr, rg, rb, gg, gb, bb = (_box(g[i] * g[j], radius) - mg[i] * mg[j] for i, j in _PAIRS)
        rr += eps
        gg += eps
        bb += eps
        # inverse of the symmetric 3 x 3 matrix by cofactors (vectorised over pixels), 1/det folded in
        i_rr = gg * bb - gb * gb
        i_rg = gb * rb - rg * bb
        i_rb = rg * gb - gg * rb
        inv_det = 1.0 / (rr * i_rr + rg * i_rg + rb * i_rb)
        self.inv = [i_rr * inv_det, i_rg * inv_det, i_rb * inv_det, (rr * bb - rb * rb) * inv_det,
                    (rb * rg - rr * gb) * inv_det, (rr * gg - rg * rg) * inv_det]   # rr rg rb gg gb bb

    def __call__(self, src: np.ndarray) -> np.ndarray:
        """`src` (H x W float) filtered."""
        g, mg, r = self.g, self.mg, self.radius
        i_rr, i_rg, i_rb, i_gg, i_gb, i_bb = self.inv
        p = np.ascontiguousarray(src, dtype=np.float32)
        mp = _box(p, r)
        c0, c1, c2 = (_box(g[i] * p, r) - mg[i] * mp for i in range(3))          # cov(guide, src)
        a0 = i_rr * c0 + i_rg * c1 + i_rb * c2
        a1 = i_rg * c0 + i_gg * c1 + i_gb * c2
        a2 = i_rb * c0 + i_gb * c1 + i_bb * c2
        b = mp - a0 * mg[0] - a1 * mg[1] - a2 * mg[2]
        return _box(a0, r) * g[0] + _box(a1, r) * g[1] + _box(a2, r) * g[2] + _box(b, r)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of `src` (H x W float) steered by the colour image `guide`
    (H x W x 3, any numeric type, same scale as `eps`: uint8 guide -> eps in 0..255**2 units).

    Each output pixel is a local linear function of the guide's colour, so a blurry probability
    map takes the photo's sharp edges. Every term is a contiguous float32 plane and each box
    filter runs on one plane (an interleaved many-channel box filter, or numpy on strided
    channel views, took about twice as long)."""
    return GuidedFilter(guide, radius, eps)(src)
