"""Garment cut-outs: from an image and its garment mask to the forms later steps need.

Why three forms: *on white* is what a shop page shows and what a person compares by eye;
*on transparent* (RGBA) lets a reader composite the garment on anything and keeps the
mask inside the picture; the *square crop* (tight box + margin, padded to a square on white)
is the embedder's input form: the garment fills the frame, so the vector describes the garment
and not the room, the model's pose or where the figure stood.

An empty or near-empty mask is an explicit outcome (`NoGarment`, reason "no_garment"):
embedding a blank white square would silently put every such image next to each other.
This module knows nothing about where masks came from.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from helpers.cache import Cache, content_key
from helpers.errors import FAILURE_COLUMNS, ImageError, MaskError, NoGarment
from helpers.images import open_image

FORMS = ("white", "rgba", "square")
MIN_GARMENT_FRACTION = 0.002  # below 0.2 % of the image the "garment" is noise, not a garment
MIN_GARMENT_PIXELS = 64
CUT_VERSION = "cut-v2"  # part of every cache key: bump when the cutting code changes results


@dataclass(frozen=True)
class EdgeTreatment:
    """How the mask edge is softened before cutting.

    `dilate` grows the mask by that many pixels (recovers a garment border a masker shaved
    off); `feather` blurs the edge over about that many pixels so the cut-out has no jagged
    stair-steps (which an embedder would otherwise see as texture)."""

    dilate: int = 0
    feather: float = 0.0

    def params(self) -> dict[str, float]:
        return {"dilate": int(self.dilate), "feather": float(self.feather)}


NO_EDGE = EdgeTreatment()


@dataclass(frozen=True)
class GarmentView:
    """The one recipe for the embedder's cut-out: catalogue, query, workers, tests all use it.

    Why one frozen spec: a query cut at another size or margin than the catalogue gets a slightly
    different vector, so a catalogue photo searched for itself no longer scores 1.0 (#16). The
    embedder sees 224 px; 256 px keeps a little headroom for display, and bigger cut-outs only cost
    PNG encoding on every cached run (1.1 s -> 0.3 s for 240 images, same Recall@1)."""

    form: str = "square"   # tight crop, padded to a square on white
    margin: float = 0.06
    size: int | None = 256
    edge: EdgeTreatment = NO_EDGE


GARMENT_VIEW = GarmentView()


def check_mask(mask: np.ndarray, image_size: tuple[int, int] | None = None, *,
               min_fraction: float = MIN_GARMENT_FRACTION, image_id: str | None = None) -> np.ndarray:
    """Return the mask as a bool array, or raise NoGarment / ValueError with what to do."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be a 2-D array (H, W); got shape {mask.shape}")
    mask = mask.astype(bool, copy=False)
    if image_size is not None and (mask.shape[1], mask.shape[0]) != tuple(image_size):
        raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                         f"{image_size[0]}x{image_size[1]}: resize the mask to the image first")
    area = int(mask.sum())
    need = max(MIN_GARMENT_PIXELS, int(min_fraction * mask.size))
    if area < need:
        who = f" for {image_id}" if image_id else ""
        raise NoGarment(f"the garment mask{who} covers {area} px ({area / mask.size:.2%} of the image), "
                        f"fewer than the {need} px needed: no garment found. The image can still be "
                        "searched as a whole photo; try another masker or prompt for a garment cut-out.")
    return mask


def soft_alpha(mask: np.ndarray, edge: EdgeTreatment = NO_EDGE) -> np.ndarray:
    """Float alpha in [0, 1] from a bool mask after dilation and feathering."""
    m = np.asarray(mask, dtype=np.uint8)
    if edge.dilate > 0:
        k = 2 * int(edge.dilate) + 1
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    alpha = m.astype(np.float32)
    if edge.feather > 0:
        sigma = float(edge.feather) / 2.0
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return np.clip(alpha, 0.0, 1.0)


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def on_white(image: Image.Image, mask: np.ndarray, edge: EdgeTreatment = NO_EDGE) -> Image.Image:
    """The garment on a white background, at the image's full size (RGB)."""
    mask = check_mask(mask, image.size)
    a = soft_alpha(mask, edge)[..., None]
    out = _rgb(image) * a + 255.0 * (1.0 - a)
    return Image.fromarray(np.rint(out).astype(np.uint8), "RGB")


def on_transparent(image: Image.Image, mask: np.ndarray, edge: EdgeTreatment = NO_EDGE) -> Image.Image:
    """The garment on a transparent background (RGBA; alpha 0 outside the garment)."""
    mask = check_mask(mask, image.size)
    alpha = np.rint(soft_alpha(mask, edge) * 255).astype(np.uint8)
    rgba = np.dstack([np.asarray(image.convert("RGB")), alpha])
    return Image.fromarray(rgba, "RGBA")


def garment_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The tight (x0, y0, x1, y1) box around the mask, x1/y1 exclusive."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        raise ValueError("the mask is empty: there is no garment box")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def square_crop(image: Image.Image, mask: np.ndarray, *, margin: float = 0.06,
                size: int | None = None, edge: EdgeTreatment = NO_EDGE) -> Image.Image:
    """The garment on white, cropped tight with `margin` (fraction of the box's longer side)
    around it and padded with white to a centred square; resized to `size` if given."""
    mask = check_mask(mask, image.size)
    hard = edge.dilate <= 0 and edge.feather <= 0  # alpha would be the mask itself (0 or 1)
    alpha = mask if hard else soft_alpha(mask, edge)
    x0, y0, x1, y1 = garment_box(mask if hard else alpha > 0.02)
    side = int(round(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    sx0, sy0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    # the part of the square that lies inside the image
    ix0, iy0 = max(sx0, 0), max(sy0, 0)
    ix1, iy1 = min(sx0 + side, image.width), min(sy0 + side, image.height)
    a = alpha[iy0:iy1, ix0:ix1, None]
    crop = image.crop((ix0, iy0, ix1, iy1))
    if edge.feather <= 0:
        # a hard (0/1) alpha: pick pixel or white in uint8, the very same bytes as the blend below
        rgb = np.asarray(crop.convert("RGB"))
        keep = (a[..., 0] if hard else a[..., 0] > 0.5).astype(np.uint8)
        inside = cv2.copyTo(rgb, keep, np.full_like(rgb, 255))
    else:
        inside = np.rint(_rgb(crop) * a + 255.0 * (1.0 - a)).astype(np.uint8)
    if size is not None and side > size and (side > SHRINK_FIRST_SIDE * size
                                             or side * side > MAX_CANVAS_GROWTH * image.width * image.height):
        return _small_square(inside, side, size, (ix0 - sx0, iy0 - sy0))
    canvas = np.full((side, side, 3), 255, dtype=np.uint8)
    canvas[iy0 - sy0:iy1 - sy0, ix0 - sx0:ix1 - sx0] = inside
    out = Image.fromarray(canvas, "RGB")
    if size is not None and out.size != (size, size):
        # area averaging: the antialiased filter for shrinking, ~10x faster than Lanczos here
        # (this runs once per image in every cold pipeline run; upscaling small crops is cubic)
        interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        out = Image.fromarray(cv2.resize(np.asarray(out), (size, size), interpolation=interp), "RGB")
    return out


MAX_CANVAS_GROWTH = 2.0  # a square canvas above twice the photo's pixels is never built at full size
SHRINK_FIRST_SIDE = 4    # nor one above 4 x the output size (a phone photo): both are made at the output size


def _small_square(inside: np.ndarray, side: int, size: int, at: tuple[int, int]) -> Image.Image:
    """The square cut-out made directly at `size`: the garment-on-white part inside the photo is
    shrunk (area average) into its place on a white `size` square, so neither a photo of extreme
    aspect (40000 x 25: a 44800-pixel square) nor a 12 MP one builds its full canvas (issue 24,
    issue 21). It differs from shrinking the whole canvas only at the fractional edge of that part."""
    scale = size / side
    h, w = inside.shape[:2]
    x, y = max(0, int(round(at[0] * scale))), max(0, int(round(at[1] * scale)))
    nw, nh = min(size - x, max(1, int(round(w * scale)))), min(size - y, max(1, int(round(h * scale))))
    canvas = np.full((size, size, 3), 255, np.uint8)
    canvas[y:y + nh, x:x + nw] = cv2.resize(inside, (nw, nh), interpolation=cv2.INTER_AREA)
    return Image.fromarray(canvas, "RGB")


def cut(image: Image.Image, mask: np.ndarray, form: str = "square", *, margin: float = 0.06,
        size: int | None = None, edge: EdgeTreatment = NO_EDGE) -> Image.Image:
    """One cut-out in the named form ("white", "rgba" or "square")."""
    if form == "white":
        return on_white(image, mask, edge)
    if form == "rgba":
        return on_transparent(image, mask, edge)
    if form == "square":
        return square_crop(image, mask, margin=margin, size=size, edge=edge)
    raise ValueError(f"unknown cut-out form {form!r}; choose one of {', '.join(FORMS)}")


def garment_view(image: Image.Image, mask: np.ndarray, view: GarmentView = GARMENT_VIEW) -> Image.Image:
    """The cut-out the embedder sees (`GARMENT_VIEW`); raises NoGarment for an empty mask."""
    return cut(image, mask, view.form, margin=view.margin, size=view.size, edge=view.edge)


# ---------------------------------------------------------------- batch

@dataclass
class CutRun:
    """Cut-outs for a catalogue: `cutouts[image_id]` is a PIL image; `failures` one row per
    image that has none (reason "no_garment", "no_mask", "unreadable")."""

    cutouts: dict[str, Image.Image]
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILURE_COLUMNS))
    cached: int = 0
    seconds: float = 0.0


def _mask_bytes(mask: np.ndarray) -> bytes:
    m = np.asarray(mask, dtype=bool)
    return np.array(m.shape, dtype=np.int64).tobytes() + np.packbits(m).tobytes()


def cut_key(image_bytes: bytes, mask: np.ndarray, form: str, *, margin: float, size: int | None,
            edge: EdgeTreatment) -> str:
    """Cache key of one cut-out: image bytes + mask + every parameter that changes the pixels."""
    return content_key(image_bytes + _mask_bytes(mask), CUT_VERSION, form=form, margin=margin,
                       size=size, **edge.params())


def cut_catalog(table: pd.DataFrame, masks: Mapping[str, np.ndarray], form: str = "square", *,
                margin: float = 0.06, size: int | None = None, edge: EdgeTreatment = NO_EDGE,
                cache=None, settings=None, progress: bool = False) -> CutRun:
    """Cut out every image of `table` that has a mask. Images without one, or whose mask is
    empty, become failure rows; the batch always goes on. With a `cache` (helpers.cache.Cache)
    the PNG of each cut-out is stored under kind "cutouts" and re-used on the next run."""
    from helpers.progress import tqdm

    if form not in FORMS:
        raise ValueError(f"unknown cut-out form {form!r}; choose one of {', '.join(FORMS)}")
    start = time.perf_counter()
    cutouts: dict[str, Image.Image] = {}
    failures: list[dict[str, str]] = []
    cached = 0
    rows: Iterable = table[["image_id", "image_path"]].itertuples(index=False)
    for image_id, image_path in tqdm(list(rows), desc=f"cut-outs ({form})", disable=not progress):
        mask = masks.get(image_id)
        if mask is None:
            failures.append({"image_id": image_id, "reason": "no_mask",
                             "message": "no garment mask for this image (see the masking failures)"})
            continue
        try:
            data = open(image_path, "rb").read()
            key = cut_key(data, mask, form, margin=margin, size=size, edge=edge) if cache is not None else None
            hit = cache.get_decoded("cutouts", key, _decode_png, ".png") if key else None
            if hit is not None:
                cutouts[image_id] = hit
                cached += 1
                continue
            image = _open(data, settings)
            out = cut(image, mask, form, margin=margin, size=size, edge=edge)
            if key:
                buf = io.BytesIO()
                out.save(buf, "PNG", compress_level=1)
                cache.put_bytes("cutouts", key, buf.getvalue(), ".png")
            cutouts[image_id] = out
        except MaskError as err:
            failures.append({"image_id": image_id, "reason": err.reason, "message": str(err)})
        except ImageError as err:
            failures.append({"image_id": image_id, "reason": err.reason, "message": str(err)})
        except (OSError, ValueError) as err:
            failures.append({"image_id": image_id, "reason": "unreadable", "message": str(err)})
    return CutRun(cutouts, pd.DataFrame(failures, columns=FAILURE_COLUMNS),
                  cached, time.perf_counter() - start)


def cut_garment_views(table: pd.DataFrame, masks: Mapping[str, np.ndarray], *, view: GarmentView = GARMENT_VIEW,
                      cache=None, settings=None, progress: bool = False) -> CutRun:
    """`cut_catalog` with the embedder's recipe (`GARMENT_VIEW`): what the pipeline embeds."""
    return cut_catalog(table, masks, view.form, margin=view.margin, size=view.size, edge=view.edge,
                       cache=cache, settings=settings, progress=progress)


def cache_cutout(cache_root: str, view: GarmentView, image_id: str, data: bytes, image: Image.Image,
                 mask: np.ndarray) -> Image.Image | None:
    """Cut one image out with `view`, cache the PNG under the key `cut_catalog` looks for, and return it.

    Why: the pipeline runs this in the masking workers right after each mask, while the image
    is still decoded and both cores are busy anyway; `cut_catalog` then only reads the cache
    instead of decoding and cutting every image again in one process. Images that cannot be
    cut (empty mask) are left for `cut_catalog`, which reports them (None is returned)."""
    try:
        out = garment_view(image, mask, view)
    except MaskError:
        return None
    buf = io.BytesIO()
    out.save(buf, "PNG", compress_level=1)
    key = cut_key(data, mask, view.form, margin=view.margin, size=view.size, edge=view.edge)
    Cache(cache_root).put_bytes("cutouts", key, buf.getvalue(), ".png")
    return out


def _decode_png(data: bytes) -> Image.Image:
    """A cached cut-out, fully decoded (a truncated file fails here, as a cache miss)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _open(data: bytes, settings=None) -> Image.Image:
    """Open image bytes the way the catalogue does (EXIF orientation, alpha on white)."""
    if settings is None:
        return open_image(data)
    return open_image(data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
