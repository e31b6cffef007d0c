"""Body geometry and colour helpers of the pose masker (helpers.maskers.pose).

Why apart from the masker: these are pure numpy/OpenCV functions on arrays (where the torso,
hem and arms are; colour distances; the wall behind the person), testable and readable on their
own; the masker class only strings them together with the mediapipe models.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import cv2
import numpy as np

L_WEIGHT = 0.5    # lightness counts half in colour distances: shading changes it most
HOLE_SHARE = 0.02  # enclosed holes up to this share of the garment are filled
POSE_SIDE = 512   # longest side of the image given to the pose model
# Background seen through gaps (arm-torso, between the legs): a pixel there is background when
# its hue and saturation are within LOCAL_T of the wall inpainted behind it (at 1/LOCAL_SCALE
# size) and LOCAL_R times nearer to that than to the garment palette; LOCAL_OPEN px specks are
# ignored. Chosen on seed 0, checked on seed 7: worst background share 9.2 % -> 3.4 % / 4.8 % -> 2.8 %,
# mean IoU -0.003 / -0.005 (it also removes a little garment that matches its background).
LOCAL_T, LOCAL_R, LOCAL_OPEN, LOCAL_SCALE = 8.0, 1.5, 3, 4
CROP_PAD = 24     # margin kept around the person (more than the widest dilation, 15 px)
WORK_SIDE = 512  # longest side the masker works at; the mask is resized back (768 px: +0.003 IoU, 35% slower)

# mediapipe pose landmark indices
_NOSE, _MOUTH_L, _MOUTH_R = 0, 9, 10
_SH_L, _SH_R, _EL_L, _EL_R, _WR_L, _WR_R = 11, 12, 13, 14, 15, 16
_IDX_L, _IDX_R, _HIP_L, _HIP_R, _KN_L, _KN_R, _ANK_L, _ANK_R = 19, 20, 23, 24, 25, 26, 27, 28
_HEEL_L, _HEEL_R, _FOOT_L, _FOOT_R = 29, 30, 31, 32


@dataclass
class Body:
    """Where the body parts are, in pixels: from pose landmarks, or estimated from the person
    silhouette when the pose model finds nobody (it often fails on drawn figures)."""

    source: str                      # "pose" | "silhouette"
    head: np.ndarray                 # centre (x, y)
    head_r: float
    shoulders: np.ndarray            # (2, 2) left, right
    hips: np.ndarray                 # (2, 2)
    arms: list[np.ndarray]           # polylines shoulder -> elbow -> wrist -> hand
    legs: list[np.ndarray]           # polylines hip -> knee -> ankle -> foot
    feet: np.ndarray                 # (k, 2) foot points
    points: dict[str, np.ndarray] = field(default_factory=dict)

    def shifted(self, dx: float, dy: float) -> "Body":
        """The same body in a frame whose origin is at (dx, dy) of this one."""
        d = np.array([dx, dy], np.float32)
        pts = {k: (v - np.array([dx, dy, 0], np.float32)[: v.shape[-1]] if k == "landmarks" else v)
               for k, v in self.points.items()}
        return Body(self.source, self.head - d, self.head_r, self.shoulders - d, self.hips - d,
                    [a - d for a in self.arms], [g - d for g in self.legs], self.feet - d, pts)

    @property
    def shoulder_y(self) -> float:
        return float(self.shoulders[:, 1].mean())

    @property
    def hip_y(self) -> float:
        return float(self.hips[:, 1].mean())

    @property
    def width(self) -> float:
        return float(max(np.linalg.norm(self.shoulders[0] - self.shoulders[1]), 1.0))


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab as float32 with L scaled down: shading changes L much more than hue, so
    lightness counts half in every colour distance."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= L_WEIGHT
    return lab


def _centres(pixels: np.ndarray, k: int) -> np.ndarray:
    """k colour centres of a sample of Lab pixels (k-means, deterministic)."""
    pixels = pixels.reshape(-1, 3).astype(np.float32)
    if len(pixels) == 0:
        return np.zeros((0, 3), np.float32)
    if len(pixels) > 3000:
        pixels = pixels[np.linspace(0, len(pixels) - 1, 3000).astype(int)]
    k = max(1, min(k, len(pixels) // 20 or 1))
    if k == 1:
        return np.median(pixels, axis=0, keepdims=True)
    cv2.setRNGSeed(0)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, labels, centres = cv2.kmeans(pixels, k, None, crit, 2, cv2.KMEANS_PP_CENTERS)
    counts = np.bincount(labels.ravel(), minlength=k)
    return centres[counts >= max(5, 0.04 * len(pixels))]


def _dist(lab: np.ndarray, centres: np.ndarray, xx: np.ndarray | None = None) -> np.ndarray:
    """Distance of every pixel (..., 3) to its nearest centre (inf when there are none);
    `xx` = the pixels' squared norms, when the caller has them already."""
    if len(centres) == 0:
        return np.full(lab.shape[:-1], np.inf, np.float32)
    x = lab.reshape(-1, 3).astype(np.float32, copy=False)
    c = np.asarray(centres, np.float32).reshape(-1, 3)
    xx = np.einsum("ij,ij->i", x, x) if xx is None else xx.reshape(-1)
    # |x|^2 - 2 x.c + |c|^2, one contiguous row per centre, minimum taken row by row in place:
    # the same float32 operations as the (n, k) form, ~10x faster than its strided min(axis=1)
    d2 = c @ x.T
    cc = (c * c).sum(1)
    best = None
    for j in range(len(c)):
        row = d2[j]
        row *= -2.0
        row += xx
        row += cc[j]
        best = row if best is None else np.minimum(best, row, out=best)
    np.maximum(best, 0.0, out=best)
    return np.sqrt(best).reshape(lab.shape[:-1])


def _disc(shape: tuple[int, int], centre, radius: float) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.circle(m, (int(round(centre[0])), int(round(centre[1]))), max(1, int(round(radius))), 1, -1)
    return m.astype(bool)


def _polyline(shape: tuple[int, int], pts: np.ndarray, thickness: float) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    pts = np.round(pts).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(m, [pts], False, 1, thickness=max(1, int(round(thickness))), lineType=cv2.LINE_8)
    for p in pts[:, 0]:
        cv2.circle(m, (int(p[0]), int(p[1])), max(1, int(round(thickness / 2))), 1, -1)
    return m.astype(bool)


def _largest(mask: np.ndarray, keep_touching: np.ndarray | None = None, min_share: float = 0.02) -> np.ndarray:
    """The largest connected component, plus any other big one touching `keep_touching`."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = {int(np.argmax(areas)) + 1}
    if keep_touching is not None:
        total = areas.sum()
        for lab in np.unique(labels[keep_touching & mask]):
            if lab and areas[lab - 1] >= min_share * total:
                keep.add(int(lab))
    table = np.zeros(n, bool)
    table[list(keep)] = True
    return table[labels]  # a lookup, not np.isin: same mask, a fraction of the time


def _skin_anchors(shape: tuple[int, int], body: Body, face: np.ndarray) -> np.ndarray:
    """Places that are certainly skin when visible (face, hands, ankles): holes there are real."""
    anchors = face.copy()
    for arm in body.arms:
        anchors |= _disc(shape, arm[-1], 0.08 * body.width) | _disc(shape, arm[-2], 0.06 * body.width)
    for p in body.feet[:2]:
        anchors |= _disc(shape, p, 0.06 * body.width)
    return anchors


def _body_parts(garment: np.ndarray, core: np.ndarray, body: Body) -> np.ndarray:
    """The garment's pieces: the largest, those touching the torso core, and big pieces in
    the body's column (a skirt cut off from the bodice by arms held in front)."""
    n, labels, stats, cents = cv2.connectedComponentsWithStats(garment.astype(np.uint8), connectivity=8)
    if n <= 1:
        return garment
    areas = stats[1:, cv2.CC_STAT_AREA]
    cx = float(np.mean([*body.shoulders[:, 0], *body.hips[:, 0]]))
    keep = np.zeros(n, bool)
    keep[1 + int(np.argmax(areas))] = True
    touching = np.unique(labels[core & garment])
    touching = touching[touching > 0]
    keep[touching[areas[touching - 1] >= 0.03 * areas.sum()]] = True
    big = (areas >= 0.1 * areas.max()) & (np.abs(cents[1:, 0] - cx) < 0.8 * body.width) \
        & (cents[1:, 1] > body.shoulder_y)
    keep[1:] |= big
    keep[0] = False
    return keep[labels]


def _fill_small_holes(mask: np.ndarray, max_area: int, protect: np.ndarray | None = None) -> np.ndarray:
    """Fill holes smaller than `max_area` that touch nothing in `protect`."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    h, w = mask.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    small = (area <= max_area) & (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    small[0] = False
    if protect is not None:
        small[np.unique(labels[protect])] = False
    return mask | small[labels]


def _background_behind(rgb: np.ndarray, person: np.ndarray) -> np.ndarray:
    """The wall/floor behind the person, (h, w, 2) Lab a* b*: the person region inpainted
    (OpenCV Telea) from its surroundings at 1/LOCAL_SCALE size. Hue and saturation only: a
    cast shadow darkens the wall right behind a figure but hardly changes its colour."""
    h, w = person.shape
    sw, sh = max(1, w // LOCAL_SCALE), max(1, h // LOCAL_SCALE)
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    hole = cv2.resize(cv2.dilate(person.astype(np.uint8), np.ones((9, 9), np.uint8)), (sw, sh),
                      interpolation=cv2.INTER_NEAREST)
    behind = _lab(cv2.inpaint(small, hole, 3, cv2.INPAINT_TELEA))
    return cv2.resize(np.ascontiguousarray(behind[..., 1:]), (w, h), interpolation=cv2.INTER_LINEAR)


def _chroma_distance(lab: np.ndarray, behind: np.ndarray, where: np.ndarray) -> np.ndarray:
    """a*b* distance of each pixel in `where` to the background behind it; inf elsewhere."""
    da = lab[..., 1] - behind[..., 0]
    db = lab[..., 2] - behind[..., 1]
    return np.where(where, np.sqrt(da * da + db * db), np.float32(np.inf))


def _person_box(person: np.ndarray, pad: int) -> tuple[int, int, int, int]:
    """Rows and columns (y0, y1, x0, x1) of the person's bounding box grown by `pad`. Every
    step after person segmentation reads only pixels within 15 px of the person (body points
    outside it only draw shapes that are intersected with the person), so the box loses nothing."""
    h, w = person.shape
    ys = np.nonzero(person.any(axis=1))[0]
    xs = np.nonzero(person.any(axis=0))[0]
    return (max(0, int(ys[0]) - pad), min(h, int(ys[-1]) + pad + 1),
            max(0, int(xs[0]) - pad), min(w, int(xs[-1]) + pad + 1))


def _paste(part: np.ndarray, frame: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    y0, y1, x0, x1 = frame
    full = np.zeros(shape, dtype=part.dtype)
    full[y0:y1, x0:x1] = part
    return full


def _body_from_pose(lm: np.ndarray) -> Body:
    p = lm[:, :2]
    sh = p[[_SH_L, _SH_R]]
    hips = p[[_HIP_L, _HIP_R]]
    sw = float(np.linalg.norm(sh[0] - sh[1])) or 1.0
    head = p[_NOSE].copy()
    head_r = max(0.32 * sw, 0.9 * float(np.linalg.norm(p[_NOSE] - (p[_MOUTH_L] + p[_MOUTH_R]) / 2)) * 3)
    head_r = min(head_r, 0.5 * sw)
    arms = [p[[_SH_L, _EL_L, _WR_L, _IDX_L]], p[[_SH_R, _EL_R, _WR_R, _IDX_R]]]
    legs = [p[[_HIP_L, _KN_L, _ANK_L, _FOOT_L]], p[[_HIP_R, _KN_R, _ANK_R, _FOOT_R]]]
    feet = p[[_ANK_L, _ANK_R, _HEEL_L, _HEEL_R, _FOOT_L, _FOOT_R]]
    return Body("pose", head, head_r, sh, hips, arms, legs, feet, {"landmarks": lm})


def _plausible(body: Body, person: np.ndarray) -> bool:
    """Does the pose fit the person mask? (On drawn figures the pose model sometimes reports a
    small "person" inside the dress.) Torso and head must sit where a standing figure has them."""
    ys = np.nonzero(person.any(axis=1))[0]
    y0, y1 = float(ys[0]), float(ys[-1])
    hgt = max(y1 - y0, 1.0)
    torso = body.hip_y - body.shoulder_y
    head_ok = body.head[1] < y0 + 0.3 * hgt
    h, w = person.shape
    inside = [person[int(np.clip(p[1], 0, h - 1)), int(np.clip(p[0], 0, w - 1))]
              for p in (*body.shoulders, *body.hips)]
    return 0.15 * hgt < torso < 0.5 * hgt and head_ok and sum(inside) >= 3


def _body_from_silhouette(person: np.ndarray) -> Body:
    """Rough body parts from a standing figure's proportions (used when pose finds nobody)."""
    ys, xs = np.nonzero(person)
    y0, y1 = float(ys.min()), float(ys.max())
    hgt = y1 - y0

    def centre_x(fy0: float, fy1: float) -> float:
        sel = (ys >= y0 + fy0 * hgt) & (ys <= y0 + fy1 * hgt)
        return float(np.median(xs[sel])) if sel.any() else float(np.median(xs))

    cx = centre_x(0.2, 0.5)
    sw = 0.24 * hgt
    sy, hy = y0 + 0.18 * hgt, y0 + 0.48 * hgt
    head = np.array([centre_x(0.0, 0.1), y0 + 0.075 * hgt], np.float32)
    sh = np.array([[cx + sw / 2, sy], [cx - sw / 2, sy]], np.float32)
    hips = np.array([[cx + 0.35 * sw, hy], [cx - 0.35 * sw, hy]], np.float32)
    feet = np.array([[cx + 0.25 * sw, y1 - 0.02 * hgt], [cx - 0.25 * sw, y1 - 0.02 * hgt]], np.float32)
    return Body("silhouette", head, 0.065 * hgt, sh, hips, [], [], feet)


def _torso_core(shape: tuple[int, int], body: Body) -> np.ndarray:
    """The middle of the torso (certainly garment for a dress or a top)."""
    s_l, s_r = body.shoulders
    h_l, h_r = body.hips
    def lerp(a, b, t):
        return a + (b - a) * t
    top_l, top_r = lerp(s_l, h_l, 0.25), lerp(s_r, h_r, 0.25)
    bot_l, bot_r = lerp(s_l, h_l, 0.85), lerp(s_r, h_r, 0.85)
    quad = np.array([lerp(top_r, top_l, 0.25), lerp(top_r, top_l, 0.75),
                     lerp(bot_r, bot_l, 0.75), lerp(bot_r, bot_l, 0.25)])
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, np.round(quad).astype(np.int32), 1)
    return m.astype(bool)


def _hem_row(person: np.ndarray, body: Body) -> int:
    """The hem: below the hips, the row where the silhouette narrows most sharply (skirt
    to legs). Used only when colour cannot tell the garment from skin."""
    h = person.shape[0]
    start = int(body.hip_y + 0.1 * body.width)
    end = int(min(h - 1, body.feet[:, 1].max() if len(body.feet) else h - 1))
    if end - start < 10:
        return end
    cx = float(body.hips[:, 0].mean())
    half = 1.6 * body.width
    x0, x1 = int(max(0, cx - half)), int(min(person.shape[1], cx + half))
    width = person[start:end, x0:x1].sum(axis=1).astype(np.float32)
    width = np.convolve(width, np.ones(7) / 7, mode="same")
    step = 6
    drop = width[:-step] - width[step:]
    drop[: step] = 0
    return start + int(np.argmax(drop)) + step // 2


def _garment_zone(person: np.ndarray, body: Body) -> np.ndarray:
    """Geometry-only garment region: person between the shoulders and the hem, minus arms."""
    h, w = person.shape
    zone = person.copy()
    top = int(body.shoulder_y - 0.12 * body.width)
    zone[: max(top, 0)] = False
    hem = _hem_row(person, body)
    zone[hem:] = False
    torso = np.zeros((h, w), np.uint8)
    quad = np.array([body.shoulders[0], body.shoulders[1], body.hips[1], body.hips[0]])
    cv2.fillConvexPoly(torso, np.round(quad).astype(np.int32), 1)
    torso = cv2.dilate(torso, np.ones((5, 5), np.uint8)).astype(bool)
    for arm in body.arms:
        zone &= ~(_polyline((h, w), arm[1:], 0.32 * body.width) & ~torso)
    return zone


def _select_region(garment: np.ndarray, body: Body, region: str) -> np.ndarray:
    """Keep the part of the clothed body the prompt names."""
    if region == "dress":
        return garment
    h = garment.shape[0]
    # the natural waist sits well above the hip joints the pose model reports
    waist = int(round(body.shoulder_y + 0.62 * (body.hip_y - body.shoulder_y)))
    out = garment.copy()
    if region == "top":
        out[waist:] = False
    else:  # skirt, trousers
        out[:waist] = False
    return out
