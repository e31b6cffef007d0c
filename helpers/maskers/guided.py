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


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of `src` (H x W float) steered by the colour image `guide`
    (H x W x 3, any numeric type, same scale as `eps`: uint8 guide -> eps in 0..255**2 units).

    Each output pixel is a local linear function of the guide's colour, so a blurry probability
    map takes the photo's sharp edges."""
    g = guide.astype(np.float32)
    p = src.astype(np.float32)
    mean_g = _box(g, radius)                                   # H x W x 3
    mean_p = _box(p, radius)                                   # H x W
    mean_gp = _box(g * p[..., None], radius)
    cov_gp = mean_gp - mean_g * mean_p[..., None]              # H x W x 3
    # the guide's local 3 x 3 covariance (upper triangle: rr, rg, rb, gg, gb, bb)
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    prod = np.stack([g[..., i] * g[..., j] for i, j in pairs], -1)
    var = _box(prod, radius) - np.stack([mean_g[..., i] * mean_g[..., j] for i, j in pairs], -1)
    rr, rg, rb, gg, gb, bb = (var[..., k] for k in range(6))
    rr, gg, bb = rr + eps, gg + eps, bb + eps
    # inverse of the symmetric 3 x 3 matrix by cofactors (vectorised over pixels)
    i_rr = gg * bb - gb * gb
    i_rg = gb * rb - rg * bb
    i_rb = rg * gb - gg * rb
    i_gg = rr * bb - rb * rb
    i_gb = rb * rg - rr * gb
    i_bb = rr * gg - rg * rg
    det = rr * i_rr + rg * i_rg + rb * i_rb
    c0, c1, c2 = cov_gp[..., 0], cov_gp[..., 1], cov_gp[..., 2]
    a = np.stack([(i_rr * c0 + i_rg * c1 + i_rb * c2),
                  (i_rg * c0 + i_gg * c1 + i_gb * c2),
                  (i_rb * c0 + i_gb * c1 + i_bb * c2)], -1) / det[..., None]
    b = mean_p - (a * mean_g).sum(-1)
    return (_box(a, radius) * g).sum(-1) + _box(b, radius)
