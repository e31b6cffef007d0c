"""Garment masks: one interface, three implementations (local, Bedrock, reference).

Why one interface: the notebooks and the pipeline ask for `mask(image, prompt)` and never
branch on where the mask came from. `get_masker(settings)` picks the implementation once:

* `LocalMasker` - offline, from mediapipe's person segmentation and pose
  plus image processing; the default, because most accounts can no longer call Titan's image
  models (see notes on Bedrock lifecycle).
* `BedrockMasker` (helpers.bedrock) - Titan Image Generator INPAINTING + maskPrompt + returnMask.
* `ReferenceMasker` - the catalogue's ground-truth masks: the upper bound for any masker.

`mask_catalog` runs a masker over a catalogue table with the content-addressed cache (a re-run
makes zero calls; an interrupted run resumes), a cost line and budget check first, a process
pool (local) or thread pool (Bedrock), and failures as rows of a table instead of exceptions.
"""
from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol, runtime_checkable

import cv2
import numpy as np
import pandas as pd
from PIL import Image

if TYPE_CHECKING:  # pragma: no cover
    from helpers.cache import Cache
    from helpers.settings import Settings


class MaskError(Exception):
    """A mask could not be made for one image. `reason` is a short code for failure tables
    (e.g. "no_garment", "content_filter", "throttled", "access_denied", "model_unavailable",
    "bad_response", "unsupported_prompt"); the message says what happened and what to do."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@runtime_checkable
class Masker(Protocol):
    """mask(image, prompt) -> bool array (True = garment) at the image's original size."""

    model_id: str          # names the masks it made; part of every cache key
    price_per_call: float  # dollars per uncached call (0 for local/reference)
    parallel: str          # "threads" (network-bound) or "processes" (CPU-bound)

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None) -> np.ndarray: ...


FAILURE_COLUMNS = ["image_id", "reason", "message"]
CACHE_KIND = "masks"


# ---------------------------------------------------------------- reference masker

class ReferenceMasker:
    """Ground-truth garment masks from the catalogue (its `garment_mask_path` column).

    Why: the best mask any masker could give, so later notebooks can show how much mask
    quality matters. It answers for any prompt, because the catalogue's masks are of its
    one garment; images without a ground-truth mask raise MaskError("no_reference")."""

    model_id = "reference"
    price_per_call = 0.0
    parallel = "threads"
    use_cache = False  # reading the mask file is as cheap as reading the cache

    def __init__(self, table: pd.DataFrame):
        if "garment_mask_path" not in table.columns:
            raise ValueError("the catalogue table has no garment_mask_path column: the reference "
                             "masker needs a catalogue with ground-truth masks (the generated one)")
        self._paths = {str(i): p for i, p in zip(table["image_id"], table["garment_mask_path"])}

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None) -> np.ndarray:
        path = self._paths.get(str(image_id)) if image_id is not None else None
        if image_id is None:
            raise MaskError("no_reference", "the reference masker needs the image_id of a catalogue "
                            "image; for other images use the local or Bedrock masker")
        if path is None or (isinstance(path, float) and np.isnan(path)) or not str(path):
            raise MaskError("no_reference", f"{image_id} has no ground-truth garment mask in the "
                            "catalogue; use the local or Bedrock masker for it")
        try:
            with Image.open(path) as im:
                mask = np.asarray(im.convert("L")) > 127
        except OSError as err:
            raise MaskError("no_reference", f"the ground-truth mask of {image_id} ({path}) cannot be "
                            f"read ({err}); regenerate the catalogue") from None
        if mask.shape != (image.height, image.width):
            raise MaskError("no_reference", f"the ground-truth mask of {image_id} is "
                            f"{mask.shape[1]}x{mask.shape[0]} but the image is {image.width}x"
                            f"{image.height}; regenerate the catalogue")
        return mask


# ---------------------------------------------------------------- local (offline) masker

# Which prompts the local masker understands, as body regions of the clothed person.
PROMPT_ALIASES = {
    "dress": "dress", "dresses": "dress", "gown": "dress", "frock": "dress", "garment": "dress",
    "top": "top", "tops": "top", "shirt": "top", "blouse": "top", "t-shirt": "top", "tshirt": "top",
    "skirt": "skirt", "skirts": "skirt",
    "trousers": "trousers", "pants": "trousers", "jeans": "trousers", "shorts": "trousers",
}
SUPPORTED_PROMPTS = ("dress", "top", "skirt", "trousers")
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


class _quiet_stderr:
    """Silence file descriptor 2 (C++ logging) for a moment; Python errors still propagate."""

    def __enter__(self):
        import sys

        sys.stderr.flush()
        self._saved = os.dup(2)
        self._null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self._null, 2)

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        os.close(self._null)
        return False


def normalize_prompt(prompt: str) -> str:
    """The body region a prompt names ("a red dress" -> "dress"), or MaskError listing the
    supported prompts: the local masker never silently answers a dress for a hat."""
    words = [w for w in str(prompt).lower().replace(",", " ").split() if w]
    for word in reversed(words):  # the noun comes last in "a long red dress"
        if word in PROMPT_ALIASES:
            return PROMPT_ALIASES[word]
    raise MaskError("unsupported_prompt",
                    f"the local masker cannot find {prompt!r}: it supports the prompts "
                    f"{', '.join(SUPPORTED_PROMPTS)} (body regions of a clothed person; synonyms such as "
                    "gown, shirt, blouse, pants, jeans are accepted). Use one of these, or the Bedrock "
                    "masker (backend='bedrock') for free-text prompts.")


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


class LocalMasker:
    """Offline garment masks from mediapipe (person segmentation + pose) and colour geometry.

    How (each step is shown in notebook 02):
    1. *Person*: mediapipe Pose (with segmentation) gives the person mask and 33 landmarks; if it
       finds nobody (common on drawn figures) selfie segmentation gives the person mask and the
       body parts are estimated from the silhouette's proportions.
    2. *Colour references*, sampled where the body says they must be: skin on the face, hair on
       top of the head, shoes at the feet, background in a ring just outside the person, and the
       garment's palette (k-means) in the torso core between shoulders and hips.
    3. *Garment* = person pixels not nearer to skin / hair / shoes / background than to the
       garment palette, minus the head, keeping the part connected to the torso. In the gaps
       between an arm and the torso and between the legs (which segmenters call "person"),
       pixels the colour of the wall right behind them (inpainted from around the person) are
       background too.
    4. *Skin-coloured garments* (the garment palette is as close to skin as skin is to itself):
       colour cannot separate them, so geometry decides: the garment is the torso plus the skirt
       down to the hem, where the hem is the row where the silhouette narrows from skirt to
       legs; arms (capsules along shoulder-elbow-wrist) and the head are taken away.
    5. *Prompt*: "dress" keeps everything from the neckline to the hem; "top" the part above the
       hips, "skirt" and "trousers" the part below the waist.
    """

    VERSION = "v5"
    price_per_call = 0.0
    parallel = "processes"

    def __init__(self) -> None:
        from importlib.metadata import version

        # the version from the package metadata: importing mediapipe here would cost the main
        # process half a second that only the mask workers need
        self.model_id = f"local-mediapipe-{version('mediapipe')}-{self.VERSION}"
        self.cache_params = {"algo": self.VERSION}
        self._pose = None
        self._selfie = None

    # models are created lazily, once per process, and never pickled
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_pose"] = state["_selfie"] = None
        return state

    def _models(self):
        if self._pose is None:
            from mediapipe.python.solutions import pose as mp_pose
            from mediapipe.python.solutions import selfie_segmentation as mp_selfie

            with _quiet_stderr():  # mediapipe's C++ start-up warnings say nothing useful
                self._pose = mp_pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True)
                self._selfie = mp_selfie.SelfieSegmentation(model_selection=0)
                warm = np.zeros((64, 64, 3), np.uint8)
                self._pose.process(warm)
                self._selfie.process(warm)
        return self._pose, self._selfie

    def __repr__(self) -> str:
        return f"LocalMasker(model_id={self.model_id!r}, prompts={SUPPORTED_PROMPTS})"

    # ------------------------------------------------------------ public
    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None) -> np.ndarray:
        region = normalize_prompt(prompt)
        steps = self.explain(image, region)
        mask = steps["garment"]
        if mask.sum() < max(64, 0.002 * mask.size):
            who = f" in {image_id}" if image_id else ""
            raise MaskError("no_garment", f"no {region} found{who}: "
                            + ("no person was found in the image" if not steps["person"].any()
                               else "the person's clothing could not be told apart from skin and background")
                            + ". The image can still be searched as a whole photo.")
        if mask.shape != (image.height, image.width):  # back to the image's own size
            mask = cv2.resize(mask.astype(np.float32), image.size, interpolation=cv2.INTER_LINEAR) > 0.5
        return mask

    def explain(self, image: Image.Image, prompt: str = "dress") -> dict[str, Any]:
        """Every intermediate step (image, person, body, references, colour classes, garment),
        all at the working resolution (longer side <= WORK_SIDE)."""
        region = normalize_prompt(prompt)
        rgb = np.asarray(image.convert("RGB"))
        h, w = rgb.shape[:2]
        if max(h, w) > WORK_SIDE:
            f = WORK_SIDE / max(h, w)
            rgb = cv2.resize(rgb, (int(round(w * f)), int(round(h * f))), interpolation=cv2.INTER_AREA)
        return self._explain(rgb, region)

    # ------------------------------------------------------------ steps
    def _person_and_body(self, rgb: np.ndarray) -> tuple[np.ndarray, Body | None, str]:
        """Person mask and body parts: the pose model's own segmentation when it finds a pose
        (closer to the true outline than selfie segmentation on the catalogue: person IoU
        0.92 vs 0.89) - joined with selfie segmentation when that finds a much bigger figure
        (the pose model sometimes drops a long skirt) - and selfie segmentation plus silhouette
        proportions when it finds no pose."""
        pose, selfie = self._models()
        h, w = rgb.shape[:2]
        small = rgb
        if max(h, w) > POSE_SIDE:  # the pose model works at 256 px anyway: feed it less
            f = POSE_SIDE / max(h, w)
            small = cv2.resize(rgb, (int(round(w * f)), int(round(h * f))), interpolation=cv2.INTER_AREA)
        with _quiet_stderr():  # a one-time C++ warning on the first pose found
            res = pose.process(small)
        if res.pose_landmarks is not None and res.segmentation_mask is not None:
            lm = np.array([(p.x * w, p.y * h, p.visibility) for p in res.pose_landmarks.landmark], np.float32)
            seg = res.segmentation_mask
            if seg.shape != (h, w):
                seg = cv2.resize(seg, (w, h), interpolation=cv2.INTER_LINEAR)
            person = _largest(seg > 0.5)
            rescue = _largest(selfie.process(rgb).segmentation_mask > 0.5)
            if person.sum() < 0.8 * rescue.sum():  # the pose model dropped part of the figure
                person = _largest(person | rescue)
            if person.sum() > 0.01 * person.size:
                return person, _body_from_pose(lm), "pose"
        return _largest(selfie.process(rgb).segmentation_mask > 0.5), None, "selfie"

    def _explain(self, rgb: np.ndarray, region: str) -> dict[str, Any]:
        h, w = rgb.shape[:2]
        person, body, source = self._person_and_body(rgb)
        out: dict[str, Any] = {"image": rgb, "person": person, "source": source}
        if person.sum() < 0.005 * person.size:
            out.update(body=None, garment=np.zeros((h, w), bool))
            return out
        if body is not None and not _plausible(body, person):
            body, source = None, "silhouette"  # the pose model found a "person" in the wrong place
            out["source"] = source
        if body is None:
            body = _body_from_silhouette(person)
        out["body"] = body
        # every later step only looks near the person: work in its bounding box (plus more than
        # the widest dilation below) - the same pixels in the same order, so the same mask, but
        # a third of the array work. The results are pasted back into the full frame at the end.
        frame = _person_box(person, CROP_PAD)
        y0, y1, x0, x1 = frame
        full_person, full_rgb = person, rgb
        # (inpainting looks beyond the box, so it is done on the whole frame first)
        behind = _background_behind(rgb, person)[y0:y1, x0:x1]
        rgb, person = rgb[y0:y1, x0:x1], person[y0:y1, x0:x1]
        body = body.shifted(x0, y0)
        h, w = rgb.shape[:2]
        lab = _lab(rgb)
        shape = (h, w)
        bw = body.width
        # --- colour references, sampled where the body says they must be
        face = _disc(shape, body.head + np.array([0, 0.15 * body.head_r]), 0.45 * body.head_r) & person
        skin_ref = _centres(lab[face], 2)
        crown = _disc(shape, body.head - np.array([0, 0.75 * body.head_r]), 0.55 * body.head_r) & person & ~face
        hair_ref = _centres(lab[crown], 2)
        hair_ref = hair_ref[_dist(hair_ref[None], skin_ref)[0] > 10] if len(hair_ref) else hair_ref
        core = _torso_core(shape, body) & person
        core_lab = lab[core]
        d_core_skin = _dist(core_lab, skin_ref)
        # arms and hands may cross the torso: the palette is learnt from the non-skin part,
        # unless most of the torso is skin-coloured - then the garment itself is (step 4)
        skin_like = bool(len(core_lab)) and float((d_core_skin < 12.0).mean()) > 0.5
        garment_ref = _centres(core_lab if skin_like else core_lab[d_core_skin >= 12.0], 4)
        if len(garment_ref) == 0:
            garment_ref = _centres(core_lab, 4)
        erode = lambda m, k: cv2.erode(m.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
        dilate = lambda m, k: cv2.dilate(m.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
        ring = dilate(person, 15) & ~dilate(person, 5)
        bg_ref = _centres(lab[ring], 5)
        feet = np.zeros(shape, bool)
        for p in body.feet:
            feet |= _disc(shape, p, 0.1 * bw)
        shoe_ref = _centres(lab[feet & person], 2)
        shoe_ref = shoe_ref[_dist(shoe_ref[None], garment_ref)[0] > 12] if len(shoe_ref) else shoe_ref
        # --- classify the candidate pixels (person grown by a few px) by nearest reference
        cand = dilate(person, 5)
        band = cand & ~erode(person, 9)  # only near the outline can a pixel be background
        where = np.nonzero(cand)
        cand_lab = lab[where]
        cand_xx = np.einsum("ij,ij->i", cand_lab, cand_lab)

        def dist(centres: np.ndarray) -> np.ndarray:
            full = np.full(shape, np.inf, np.float32)
            full[where] = _dist(cand_lab, centres, cand_xx)
            return full

        d_garm, d_skin, d_bg = dist(garment_ref), dist(skin_ref), dist(bg_ref)
        d_hair, d_shoe = dist(hair_ref), dist(shoe_ref)
        yy = np.arange(h, dtype=np.float32)[:, None]
        above_shoulders = yy < body.shoulder_y - 0.05 * bw
        skin = (d_skin < d_garm) & (d_skin < 22.0) & cand
        hair = (d_hair < d_garm) & (d_hair < 22.0) & above_shoulders
        shoes = (d_shoe < d_garm) & (d_shoe < 22.0) & dilate(feet, 9)
        background = band & (d_bg < d_garm) & ((d_bg < 12.0) | ~person)
        # the pose model's mask often bridges the gap between the legs with background
        legs_zone = yy > body.hip_y + 0.3 * bw
        background |= cand & legs_zone & (d_bg < 10.0) & (d_garm > 2.0 * d_bg)
        # ... and the gap between an arm and the torso (hands on hips), which both segmenters
        # call person and which lies far from the outline: a little looser than between the
        # legs (bg_share > 5 % on 10 of 240 sample images before, 1 after; IoU not lower)
        arm_zone = (yy > body.shoulder_y + 0.1 * bw) & ~legs_zone & ~core
        background |= cand & arm_zone & (d_bg < 14.0) & (d_garm > 1.5 * d_bg)
        # ... and, in those two gaps, pixels that look like the background right behind them:
        # the wall inpainted from around the person. The global palette above cannot do this
        # when the garment is the colour of *some* of the background (mustard on a yellow wall)
        gaps = cand & (arm_zone | legs_zone)
        d_local = _chroma_distance(lab, behind, gaps)
        seen = (gaps & (d_local < LOCAL_T) & (d_garm > LOCAL_R * d_local)).astype(np.uint8)
        seen = cv2.morphologyEx(seen, cv2.MORPH_OPEN, np.ones((LOCAL_OPEN, LOCAL_OPEN), np.uint8))
        background |= seen.astype(bool)
        head = _disc(shape, body.head, 1.05 * body.head_r)
        garment = cand & ~background & ~hair & ~shoes & ~head
        if skin_like:
            zone = _garment_zone(person, body)
            garment &= zone
            out["zone"] = zone
        else:
            garment &= ~skin
        # --- clean up: specks away, parts connected to the torso kept, pattern specks filled
        garment = cv2.morphologyEx(garment.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
        garment = _body_parts(garment, core, body)
        # skin-coloured patches enclosed by fabric (a beige check, a pale dot) are garment;
        # enclosed holes at a hand or the face stay holes
        garment = _fill_small_holes(garment, max_area=int(HOLE_SHARE * garment.sum()) + 10,
                                    protect=_skin_anchors(shape, body, face))
        garment = _select_region(garment, body, region)
        steps = dict(core=core, face=face, skin=skin & cand, hair=hair & cand, shoes=shoes & cand,
                     background=background & cand, head=head, garment=garment)
        if "zone" in out:
            steps["zone"] = out["zone"]
        out.update({k: _paste(v, frame, full_person.shape) for k, v in steps.items()})
        out.update(skin_ref=skin_ref, hair_ref=hair_ref, garment_ref=garment_ref, bg_ref=bg_ref,
                   shoe_ref=shoe_ref, skin_like=skin_like, body=body.shifted(-x0, -y0),
                   person=full_person, image=full_rgb)
        return out


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


# ---------------------------------------------------------------- choosing a masker

def get_masker(settings: "Settings", table: pd.DataFrame | None = None) -> Masker:
    """The masker the settings ask for (`settings.effective_masker`)."""
    kind = settings.effective_masker
    if kind == "local":
        return LocalMasker()
    if kind in ("titan", "bedrock"):
        from helpers.bedrock import BedrockMasker  # imported lazily: boto3 only when asked for
        from helpers.bedrock_lifecycle import warn_if_retired

        warn_if_retired(settings.mask_model_id, "mask_model_id")  # before any call is made
        return BedrockMasker(settings)
    if kind == "boxes":
        from helpers.bedrock_converse import BoxMasker  # lazy: boto3 only when asked for

        return BoxMasker(settings, inner=LocalMasker())
    if kind == "reference":
        if table is None:
            raise ValueError("masker='reference' needs the catalogue table: get_masker(settings, table)")
        return ReferenceMasker(table)
    raise ValueError(f"unknown masker {kind!r}; choose local, boxes, titan or reference")


# ---------------------------------------------------------------- mask <-> bytes

def encode_mask(mask: np.ndarray) -> bytes:
    """A bool mask as a 1-bit PNG (compact: ~5-15 kB at 512x768, and viewable as a file)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=bool)).save(buf, "PNG", optimize=False)
    return buf.getvalue()


def decode_mask(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("1"), dtype=bool)


def mask_key(image_bytes: bytes, masker: Masker, prompt: str) -> str:
    """Cache key: image bytes + masker id + prompt + the masker's own result-changing params."""
    from helpers.cache import content_key

    params = dict(getattr(masker, "cache_params", None) or {})
    return content_key(image_bytes, masker.model_id, prompt=prompt, **params)


# ---------------------------------------------------------------- batch step

@dataclass
class MaskRun:
    """The result of masking a catalogue.

    masks: image_id -> bool array (True = garment); failures: one row per image without a mask
    (image_id, reason, message); calls: masker calls made now; cached: masks read from the cache;
    seconds: wall time; estimate: the cost estimate printed before the run."""

    masks: dict[str, np.ndarray]
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILURE_COLUMNS))
    calls: int = 0
    cached: int = 0
    seconds: float = 0.0
    estimate: Any = None
    model_id: str = ""
    prompt: str = ""

    def __repr__(self) -> str:
        return (f"MaskRun(model_id={self.model_id!r}, prompt={self.prompt!r}, masks={len(self.masks)}, "
                f"failures={len(self.failures)}, calls={self.calls}, cached={self.cached}, "
                f"seconds={self.seconds:.2f})")


def _fail(image_id: str, reason: str, message: str) -> dict[str, str]:
    return {"image_id": image_id, "reason": reason, "message": message}


def _open(path_or_bytes, settings: "Settings | None"):
    from helpers.images import open_image

    if settings is None:
        return open_image(path_or_bytes)
    return open_image(path_or_bytes, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)


def _mask_one(masker: Masker, image_id: str, data: bytes, prompt: str, settings) -> np.ndarray:
    """Open one image and mask it; raises MaskError (also for unreadable images)."""
    return _open_and_mask(masker, image_id, data, prompt, settings)[1]


def _open_and_mask(masker: Masker, image_id: str, data: bytes, prompt: str, settings):
    """(image, mask) for one image; raises MaskError (also for unreadable images)."""
    from helpers.images import ImageError

    try:
        image = _open(data, settings)
    except ImageError as err:
        raise MaskError(err.reason, str(err)) from None
    mask = np.asarray(masker.mask(image, prompt, image_id=image_id))
    if mask.dtype != bool:
        mask = mask.astype(bool)
    if mask.shape != (image.height, image.width):
        raise MaskError("bad_response", f"the masker returned a {mask.shape[1]}x{mask.shape[0]} mask for a "
                        f"{image.width}x{image.height} image")
    return image, mask


def _run_after(after, image_id: str, data: bytes, image, mask: np.ndarray) -> None:
    """Run the caller's follow-up step on a fresh mask while the image is still decoded (the
    pipeline caches the cut-out here). Best effort: a failure is left to the later stage,
    which redoes that image and reports why."""
    if after is None:
        return
    try:
        after(image_id, data, image, mask)
    except Exception:  # noqa: BLE001 - the cut stage redoes and reports this image
        pass


# Worker-process state: one masker per process, its models created lazily on first use.
_WORKER: dict[str, Any] = {}


def _worker_init(masker_bytes: bytes, settings, after=None) -> None:
    import pickle

    _WORKER["masker"] = pickle.loads(masker_bytes)  # a fresh copy: no models shared across fork
    _WORKER["settings"] = settings
    _WORKER["after"] = after
    # one thread per worker: the pool already keeps every core busy, and OpenCV's / OpenBLAS's
    # own thread pools on top only add switching (results are the same either way)
    cv2.setNumThreads(1)
    try:
        from threadpoolctl import threadpool_limits

        _WORKER["threads"] = threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


def _worker_task(task: tuple[str, str, bytes, str]) -> tuple[str, bytes | None, tuple[str, str] | None]:
    image_id, key, data, prompt = task
    try:
        image, mask = _open_and_mask(_WORKER["masker"], image_id, data, prompt, _WORKER["settings"])
        _run_after(_WORKER.get("after"), image_id, data, image, mask)
        return image_id, encode_mask(mask), None
    except MaskError as err:
        return image_id, None, (err.reason, str(err))


def _cost_line(masker: Masker, todo: int, cached: int, settings) -> Any:
    """Print the cost line and stop if over budget (helpers.cost); returns the estimate."""
    from helpers import cost

    est = cost.estimate(todo + cached, cached, masker.price_per_call, f"Garment masks ({masker.model_id})")
    print(est)
    cost.check_budget(est, settings.max_spend_usd)
    return est


def mask_catalog(table: pd.DataFrame, settings: "Settings", masker: Masker | None = None,
                 cache: "Cache | None" = None, progress: bool = True,
                 prompt: str | None = None) -> MaskRun:
    """Mask every image of the catalogue `table` (columns image_id, image_path).

    Cached masks are read, not recomputed; the rest run in a process pool (`settings.workers`,
    local masker) or a thread pool (`settings.concurrency`, Bedrock). Every finished mask is
    written to the cache at once, so an interrupted run resumes where it stopped. Images that
    cannot be masked become rows of `failures`; the batch goes on."""
    return _mask_catalog(table, settings, masker, cache, progress, prompt)


def _mask_catalog(table: pd.DataFrame, settings: "Settings", masker: Masker | None = None,
                  cache: "Cache | None" = None, progress: bool = True, prompt: str | None = None,
                  after=None) -> MaskRun:
    """`mask_catalog`, plus `after(image_id, image_bytes, image, mask)`: a picklable follow-up
    run on every freshly made mask in the same worker, while the image is still decoded (the
    pipeline cuts the garment out there instead of decoding every image again in one process)."""
    from tqdm.auto import tqdm

    from helpers.cache import Cache

    start = time.perf_counter()
    masker = masker if masker is not None else get_masker(settings, table)
    prompt = prompt if prompt is not None else settings.garment_prompt
    cache = cache if cache is not None else Cache(settings.cache_dir)
    use_cache = getattr(masker, "use_cache", True)
    masks: dict[str, np.ndarray] = {}
    failures: list[dict[str, str]] = []
    todo: list[tuple[str, str, bytes, str]] = []
    cached = 0
    for image_id, image_path in table[["image_id", "image_path"]].itertuples(index=False):
        image_id = str(image_id)
        try:
            data = Path(image_path).read_bytes()
        except OSError as err:
            failures.append(_fail(image_id, "unreadable", f"{image_path}: cannot be read ({err}); "
                                  "check the catalogue folder"))
            continue
        key = mask_key(data, masker, prompt)
        hit = cache.get_bytes(CACHE_KIND, key, ".png") if use_cache else None
        if hit is not None:
            masks[image_id] = decode_mask(hit)
            cached += 1
        else:
            if not todo and masker.parallel == "processes" and settings.workers > 1:
                _prestart_pool()  # it loads mediapipe while this loop reads and hashes the rest
            todo.append((image_id, key, data, prompt))
    estimate = _cost_line(masker, len(todo), cached, settings)

    def store(image_id: str, key: str, png: bytes | None, mask: np.ndarray | None) -> None:
        if use_cache:
            cache.put_bytes(CACHE_KIND, key, png if png is not None else encode_mask(mask), ".png")
        masks[image_id] = mask if mask is not None else decode_mask(png)

    calls = 0
    bar = tqdm(total=len(todo), desc=f"masks ({masker.model_id})", disable=not progress or not todo)
    try:
        if masker.parallel == "processes" and settings.workers > 1 and len(todo) > 1:
            calls = _run_processes(masker, todo, settings, store, failures, bar, after)
        elif masker.parallel == "threads" and settings.concurrency > 1 and len(todo) > 1:
            calls = _run_threads(masker, todo, settings, store, failures, bar, after)
        else:
            for image_id, key, data, p in todo:
                calls += 1
                try:
                    image, mask = _open_and_mask(masker, image_id, data, p, settings)
                except MaskError as err:
                    failures.append(_fail(image_id, err.reason, str(err)))
                else:
                    store(image_id, key, None, mask)
                    _run_after(after, image_id, data, image, mask)
                bar.update(1)
    finally:
        bar.close()
    order = {str(i): n for n, i in enumerate(table["image_id"])}
    masks = dict(sorted(masks.items(), key=lambda kv: order.get(kv[0], 0)))
    return MaskRun(masks=masks, failures=pd.DataFrame(failures, columns=FAILURE_COLUMNS), calls=calls,
                   cached=cached, seconds=time.perf_counter() - start, estimate=estimate,
                   model_id=masker.model_id, prompt=prompt)


def _pool_context():
    """A forkserver context: workers are forked from a clean server process that has imported
    mediapipe but never run it. Plain fork is unsafe once the parent has used mediapipe (its
    threads and allocator state do not survive a fork: "malloc(): unaligned tcache chunk"),
    and spawn would re-import everything for every pool."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():  # pragma: no cover - Windows
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    # everything a worker runs is imported once, in the server, before any worker is forked
    # (the pipeline's workers also cut and embed: onnxruntime alone takes ~0.2 s to import)
    ctx.set_forkserver_preload(["helpers.masking", "mediapipe", "cv2", "onnxruntime",
                                "helpers.cutting", "helpers.embedding", "helpers.pipeline"])
    return ctx


def _prestart_pool() -> None:
    """Start the forkserver (it imports mediapipe and OpenCV, about a second) without waiting
    for it; the pool's workers are forked from it once it is ready. A no-op when it runs."""
    ctx = _pool_context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


WORKER_CHUNK = 2  # images per worker task: fewer round trips, and the last tasks still share out evenly


class WorkersFailed(RuntimeError):
    """The mask worker processes stopped before the batch was done (masks made so far are cached)."""


def _worker_chunk(tasks: list[tuple[str, str, bytes, str]]) -> list[tuple[str, bytes | None, tuple[str, str] | None]]:
    return [_worker_task(task) for task in tasks]


def _run_processes(masker, todo, settings, store, failures, bar, after=None) -> int:
    """Mask `todo` in worker processes, WORKER_CHUNK images per task, results as they finish.

    A `concurrent.futures` pool, not `multiprocessing.Pool`: when a worker dies (most often
    because it re-ran a script that starts the workbook without an `if __name__ ==
    "__main__":` guard) it reports a broken pool instead of starting new workers for ever."""
    import pickle
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    keys = {t[0]: t[1] for t in todo}
    workers = min(settings.workers, len(todo))
    calls = 0
    pool = ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_worker_init,
                               initargs=(pickle.dumps(masker), settings, after))
    try:
        futures = [pool.submit(_worker_chunk, todo[i:i + WORKER_CHUNK]) for i in range(0, len(todo), WORKER_CHUNK)]
        for future in as_completed(futures):
            for image_id, png, err in future.result():
                calls += 1
                if err is not None:
                    failures.append(_fail(image_id, *err))
                else:
                    store(image_id, keys[image_id], png, None)
                bar.update(1)
    except BrokenProcessPool:
        raise WorkersFailed(
            f"the mask worker processes stopped after {calls} of {len(todo)} images (those are cached; a "
            "re-run resumes). If you started this from a Python script, put the call under "
            "`if __name__ == \"__main__\":` - each worker imports your script, and an unguarded call starts "
            "the workbook again inside it. A script read from stdin cannot be imported: save it to a file. "
            "Or set WORKBOOK_WORKERS=1 to mask in this process.") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return calls


def _run_threads(masker, todo, settings, store, failures, bar, after=None) -> int:
    from helpers import cost

    def one(task):
        image_id, key, data, p = task
        try:
            image, mask = _open_and_mask(masker, image_id, data, p, settings)
        finally:
            bar.update(1)
        store(image_id, key, None, mask)  # cache at once: an interrupted run keeps it
        _run_after(after, image_id, data, image, mask)
        return image_id

    _, failed = cost.run_parallel(one, [(t[0], t) for t in todo], settings.concurrency,
                                  f"masks ({masker.model_id})", progress=False)
    for rec in failed.to_dict("records"):
        failures.append(_fail(str(rec["id"]), str(rec["reason"]), str(rec["message"])))
    return len(todo)


# ---------------------------------------------------------------- quality

def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} vs {truth.shape}")
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)


ATTRIBUTES = ("category", "colour", "pattern", "silhouette", "sleeve", "length", "skin_tone", "background", "pose")


def _read_mask(path) -> np.ndarray | None:
    if path is None or (isinstance(path, float) and np.isnan(path)) or not str(path):
        return None
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def evaluate_masks(run: MaskRun | dict[str, np.ndarray], table: pd.DataFrame) -> pd.DataFrame:
    """Per-image quality against the ground truth: iou, precision (share of the mask that is
    garment), recall (share of the garment found), background (share of the mask outside the
    person: the "never more than a few % background" check), plus the catalogue's attributes.
    Images the masker failed on get iou 0 and a `failed` flag."""
    masks = run.masks if isinstance(run, MaskRun) else run
    attrs = [a for a in ATTRIBUTES if a in table.columns]
    rows = []
    for rec in table.to_dict("records"):
        truth = _read_mask(rec.get("garment_mask_path"))
        if truth is None:
            continue
        image_id = str(rec["image_id"])
        pred = masks.get(image_id)
        row: dict[str, Any] = {"image_id": image_id, "item_id": rec.get("item_id")}
        row.update({a: rec[a] for a in attrs})
        if pred is None:
            row.update(iou=0.0, precision=0.0, recall=0.0, bg_share=0.0, failed=True)
        else:
            inter = float(np.logical_and(pred, truth).sum())
            area = float(pred.sum())
            person = _read_mask(rec.get("person_mask_path"))
            bg = float(np.logical_and(pred, ~person).sum() / area) if person is not None and area else 0.0
            row.update(iou=mask_iou(pred, truth), precision=inter / area if area else 0.0,
                       recall=inter / float(truth.sum()) if truth.any() else 1.0, bg_share=bg,
                       failed=False)
        rows.append(row)
    return pd.DataFrame(rows)


def summarize_iou(scores: pd.DataFrame, by: Iterable[str] | None = None) -> pd.DataFrame:
    """Mean / median / worst IoU overall and per value of each attribute (weak cases visible)."""
    by = [b for b in (by or ("colour", "pattern", "background", "silhouette")) if b in scores.columns]
    out = [{"attribute": "all", "value": "all", "n": len(scores), "mean_iou": scores["iou"].mean(),
            "median_iou": scores["iou"].median(), "min_iou": scores["iou"].min(),
            "mean_bg_share": scores["bg_share"].mean()}]
    for attr in by:
        for value, grp in scores.groupby(attr, sort=True):
            out.append({"attribute": attr, "value": value, "n": len(grp), "mean_iou": grp["iou"].mean(),
                        "median_iou": grp["iou"].median(), "min_iou": grp["iou"].min(),
                        "mean_bg_share": grp["bg_share"].mean()})
    return pd.DataFrame(out)


# ---------------------------------------------------------------- benchmark

def bench_masking(catalog_path: Path | str | None = None, limit: int | None = None, repeats: int = 3,
                  quick: bool = False) -> dict[str, float]:
    """Local masks per second with a cold cache (process pool, both cores) and the speed-up of
    a fully cached re-run, medians of `repeats` rounds (one with `quick`). Each round uses a
    fresh private temporary cache, so it never touches the user's and "cold" really is cold."""
    import tempfile

    from helpers.cache import Cache
    from helpers.catalog import load_catalog
    from helpers.settings import load_settings

    settings = load_settings(masker="local", backend="local")
    path = Path(catalog_path) if catalog_path else settings.catalog
    table = load_catalog(path, settings).table
    if limit:
        table = table.head(limit)
    cold_s, warm_s, failures = [], [], 0
    for _ in range(1 if quick else repeats):
        with tempfile.TemporaryDirectory(prefix="bench-masks-") as tmp:
            cache = Cache(tmp)
            cold = mask_catalog(table, settings, cache=cache, progress=False)
            warm = mask_catalog(table, settings, cache=cache, progress=False)
        cold_s.append(cold.seconds)
        warm_s.append(max(warm.seconds, 1e-9))
        failures = len(cold.failures)
    cold_med, warm_med = float(np.median(cold_s)), float(np.median(warm_s))
    return {"masks_per_s_cold": round(len(table) / cold_med, 2),
            "mask_cached_speedup": round(cold_med / warm_med, 1),
            "mask_images": len(table), "mask_rounds": len(cold_s), "mask_failures_cold": failures}
