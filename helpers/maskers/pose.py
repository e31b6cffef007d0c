"""The pose masker (v5): offline garment masks from mediapipe's pose and person segmentation plus
colour geometry. Selectable as masker "pose"; the default offline masker ("local") before the #14 parser.

mediapipe is imported lazily, in the mask workers only: the main process never pays for it.
"""
from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np
from PIL import Image

from helpers.errors import MaskError
from helpers.extras import available, require
from helpers.maskers import pose_recorded
from helpers.maskers.base import SUPPORTED_PROMPTS, Box, normalize_prompt
from helpers.maskers.product import product_shot_foreground
from helpers.maskers.body import (Body, CROP_PAD, HOLE_SHARE, LOCAL_OPEN, LOCAL_R, LOCAL_T, POSE_SIDE, WORK_SIDE, _background_behind, _body_from_pose, _body_from_silhouette, _body_parts, _centres, _chroma_distance, _disc, _dist, _fill_small_holes, _garment_zone, _lab, _largest, _paste, _person_box, _plausible, _select_region, _skin_anchors, _torso_core)


def _mediapipe_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mediapipe")
    except PackageNotFoundError:
        from helpers.workbook.environment import extra_pins

        return extra_pins("pose")["mediapipe"]


def record_masks(table=None, n: int = 3, prompt: str = "dress", directory=None) -> dict:
    """Mask the first `n` photos of `table` (default: the bundled catalogue) live and record them
    (helpers.maskers.pose_recorded) for environments without mediapipe. Needs the pose extra."""
    from helpers.catalog import load_catalog
    from helpers.images import open_image
    from helpers.settings import load_settings

    require("mediapipe", "pose", "recording pose masks")
    if table is None:
        settings = load_settings()
        table = load_catalog(settings.catalog, settings).table
    masker = LocalMasker()
    masks = {}
    for row in table.head(n).itertuples():
        image = open_image(row.image_path)
        masks[row.image_id] = (image, masker.mask(image, prompt, image_id=row.image_id))
    return pose_recorded.write(masks, normalize_prompt(prompt), masker.model_id, directory)


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
    0. *No person* (the pose model finds nobody) on a plain background with one free-standing
       object: a product shot (the garment alone, flat or on a hanger). The garment is then the
       foreground against the border's colour (`helpers.maskers.product`); source "product".
    5. *Prompt*: "dress" keeps everything from the neckline to the hem; "top" the part above the
       hips, "skirt" and "trousers" the part below the waist.
    """

    VERSION = "v5"
    price_per_call = 0.0
    parallel = "processes"

    def __init__(self) -> None:
        # the version from the package metadata: importing mediapipe here would cost the main
        # process half a second that only the mask workers need. Without the pose extra: the
        # version it pins, so recorded masks (helpers.maskers.pose_recorded) keep the same cache keys.
        self.model_id = f"local-mediapipe-{_mediapipe_version()}-{self.VERSION}"
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
    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None,
             box: Box | None = None) -> np.ndarray:
        region = normalize_prompt(prompt)
        if not available("mediapipe"):   # the run time without the pose extra: recorded masks only
            recorded = pose_recorded.recorded_mask(image, region)
            if recorded is not None:
                return recorded
            require("mediapipe", "pose", 'the pose masker (masker = "pose")')
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
        if source != "pose":  # nobody found by the pose model: maybe the garment alone (a product shot)
            garment = product_shot_foreground(rgb)
            if garment is not None:
                return {"image": rgb, "person": np.zeros((h, w), bool), "source": "product", "body": None,
                        "garment": garment}
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
