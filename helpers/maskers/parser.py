"""The garment parser (#14): the default offline masker ("local"; also by name "parser").

How, step by step (notebook 02 shows each):
1. *Frame*: the photo is padded to 2:3 with the mean colour and resized to 256 x 384
   (helpers.maskers.parser_backbone).
2. *Network*: EfficientNet-Lite0 (the ImageNet weights the embedder uses), fine-tuned on real
   street photos, with a small decoder (helpers.maskers.parser_net). It runs as the committed
   ONNX file models/parser-net.onnx (sha256 checked at load, onnx-manifest.json), exported by
   `make models` from the tuned weights (parser-net.npz; how it was trained and on what:
   parser-net.json), so the run time needs no torch. It gives
   per-pixel probabilities of 9 classes at a quarter of the input size: background, skin, hair,
   dress, top, skirt, trousers, other clothes, accessory (shoes, bags, ...). By default the
   photo and its mirror image go through together and their probabilities are averaged.
3. *Edges*: at half the photo's size a guided filter (the photo as guide) snaps the
   garment-vs-rest probability to the photo's edges.
4. *Prompt*: "clothes" = every garment class; "dress" / "top" / "skirt" / "trousers" = garment
   pixels whose likeliest garment kind is the prompt's, after a presence head decided once per
   photo which kinds the photo shows (helpers.maskers.garments, models/garments.json: "no skirt
   found" below its gate; the other kinds weighted by their presence, the prompt's own by a
   prior, both chosen by cross-validation). Without garments.json: p3's rule, the dress
   probability weighted by DRESS_PRIOR (validation fold: dress IoU 0.43 unweighted, 0.63 at 6).
   A `box` prior cuts the mask to the box grown by 8 %.
5. *Quality*: the agreement (IoU) of the masks made from the photo and from its mirror image;
   below DOUBTFUL_QUALITY (helpers.maskers.base) the mask is reported as doubtful. Without `flip`
   there is no second view and no score (None).

No pose model and no person mask: it also segments a garment on a plain background. A photo in
which the parser sees no person (almost no skin or hair) and that looks like a product shot
(helpers.maskers.product: plain border, one free-standing object) takes the foreground as the
garment, as the pose masker does; its quality is how well that foreground agrees with the
parser's own clothes mask.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from helpers.errors import MaskError
from helpers.maskers import parser_backbone as pb
from helpers.maskers import parser_net
from helpers.maskers.base import Box
from helpers.maskers.guided import GuidedFilter

WEIGHTS_PATH = parser_net.WEIGHTS_PATH
CLASSES = ("background", "skin", "hair", "dress", "top", "skirt", "trousers", "other", "accessory")
GARMENT = (3, 4, 5, 6, 7)   # one run of class ids (refine slices it)
PROMPT_CLASSES = {"dress": (3,), "top": (4,), "skirt": (5,), "trousers": (6,), "clothes": GARMENT}
PARSER_PROMPTS = tuple(PROMPT_CLASSES)
ALIASES = {
    "dress": "dress", "dresses": "dress", "gown": "dress", "frock": "dress",
    "top": "top", "tops": "top", "shirt": "top", "blouse": "top", "t-shirt": "top", "tshirt": "top",
    "sweater": "top", "jumper": "top", "hoodie": "top", "cardigan": "top", "jacket": "top", "coat": "top",
    "blazer": "top", "vest": "top", "sweatshirt": "top", "cape": "top", "poncho": "top", "bodysuit": "top",
    "skirt": "skirt", "skirts": "skirt",
    "trousers": "trousers", "pants": "trousers", "jeans": "trousers", "shorts": "trousers", "leggings": "trousers",
    "clothes": "clothes", "clothing": "clothes", "outfit": "clothes", "garment": "clothes", "garments": "clothes",
    "suit": "clothes",   # jacket and trousers; "suit jacket" ends on jacket: a top
}
MIN_SHARE = 0.002        # a mask below this share of the image counts as "no garment"
BOX_MARGIN = 0.08        # a box prior is grown by this share of its size before cutting
DRESS_PRIOR = 6.0        # "dress": the dress probability counts this many times against top / skirt / ...
PRODUCT_MAX_PERSON = 0.01  # below this share of skin + hair pixels a photo may be a product shot
WORK_MAX_SIDE = 512      # the per-pixel work (edges, prompt, quality) runs at half the photo's size, at most this long
PRODUCT_MAX_SIDE = 1024  # a product shot's foreground is found at most this large, then brought to the photo's size


def work_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) of the working grid: half the photo's size, its long side at most WORK_MAX_SIDE.

    Why bounded: the guided filter, the prompt and the quality score cost per pixel; above this
    size a 12-megapixel photo spent seconds there for a mask the network sees at 256 x 384
    (CCP photos, 550 x 830, and the catalogue's, 512 x 768, are below it: their masks are unchanged)."""
    w, h = max(1, width // 2), max(1, height // 2)
    scale = WORK_MAX_SIDE / max(w, h)
    if scale < 1:
        w, h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    return w, h


def _rgb(image: Image.Image) -> np.ndarray:
    """The photo as uint8 H x W x 3 (no extra copy when it is RGB already)."""
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def normalize_prompt(prompt: str) -> str:
    """The parser's region for a prompt ("a long red dress" -> "dress"), or MaskError."""
    words = str(prompt).lower().replace(",", " ").split()
    for word in reversed(words):
        if word in ALIASES:
            return ALIASES[word]
    raise MaskError("unsupported_prompt", f"the parser masker understands {', '.join(PARSER_PROMPTS)} "
                    f"(and synonyms such as gown, shirt, jeans, outfit), not {prompt!r}")


class ParserMasker:
    """mask(image, prompt, *, image_id=None, box=None) -> bool mask; `last_quality` holds the
    quality score of the last mask made (None before the first)."""

    VERSION = "p3g"   # p3 + the garment-presence head (helpers.maskers.garments): new masks, new cache keys
    price_per_call = 0.0
    parallel = "processes"

    def __init__(self, weights_path: Path | str = WEIGHTS_PATH, cache_dir: Path | str | None = None,
                 threads: int = 1, refine: bool = True, flip: bool = True):
        self.weights_path = Path(weights_path)
        if not self.weights_path.is_file():
            raise MaskError("model_unavailable", f"the parser weights {self.weights_path} are missing; train them "
                            "with `python -m helpers masks train --dataset ccp DIR` or use masker='pose'")
        from helpers.maskers import garments
        from helpers.onnxmodels import sha256_file

        digest = sha256_file(self.weights_path)[:12]
        self.model_id = f"parser-effl0-{digest}-{self.VERSION}" + ("" if refine else "-raw") + ("" if flip else "-noflip")
        # the presence head decides which garment a prompt cuts out: its hash is part of the key
        self.cache_params = {"algo": self.VERSION, "refine": refine, "flip": flip, "product": "fg1",
                             "head": garments.digest()}
        self.cache_dir, self.threads, self.refine, self.flip = cache_dir, threads, refine, flip
        self._net = None
        self.last_quality: float | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_net"] = None   # the session is made again in each worker
        return state

    def __repr__(self) -> str:
        return f"ParserMasker(model_id={self.model_id!r}, prompts={PARSER_PROMPTS})"

    def _session(self):
        if self._net is None:
            cache_dir = self.cache_dir
            if cache_dir is None:
                from helpers.settings import load_settings

                cache_dir = load_settings().cache_dir
            self._net = parser_net.session(cache_dir, self.weights_path, self.threads)
        return self._net

    def views(self, image: Image.Image) -> list[np.ndarray]:
        """The network's 9 x 96 x 64 class probabilities on the padded input grid: of the photo,
        and with `flip` also of its mirror image (mirrored back; one batch of two)."""
        return self._views(_rgb(image))

    def _views(self, rgb: np.ndarray) -> list[np.ndarray]:
        x = pb.to_input(rgb)
        if not self.flip:
            return [self._session().run(None, {"x": x})[0][0]]
        probs = self._session().run(None, {"x": np.concatenate([x, x[..., ::-1]])})[0]
        return [probs[0], np.ascontiguousarray(probs[1][..., ::-1])]

    def raw_probabilities(self, image: Image.Image) -> np.ndarray:
        """The mean of views(): averaging the mirror image's view adds clothes IoU +0.007
        (validation fold)."""
        return np.mean(self.views(image), axis=0)

    def _working(self, views: list[np.ndarray], small: np.ndarray
                 ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray | None]]]:
        """The mean of the views on the working grid, edge-refined; and for the quality score (two
        views), each view's probabilities with its edge-refined garment pixels.

        Why together: bilinear resizing and the guided filter are both linear, so the mean's
        refinement is the mean of the views' refinements, and the views share the guide's half
        of the filter: the quality score costs half a refinement instead of two. Why a view keeps
        its unrefined probabilities: select() needs of a view only which pixels are garment (the
        refined garment share above 0.5) and which garment kind is likeliest there, and rescaling a
        pixel's garment classes by one factor does not change which is likeliest; the two rescales
        it skips were 6 % of a mask's time (same masks; same scores up to float rounding)."""
        h, w = small.shape[:2]
        each = [pb.probs_to_image(v, w, h) for v in views]
        mean = each[0] if len(each) == 1 else (each[0] + each[1]) * np.float32(0.5)
        if len(each) == 1:
            return (refine(mean, small) if self.refine else mean), []
        if not self.refine:
            return mean, [(p, None) for p in each]
        g0, g1 = GARMENT[0], GARMENT[-1] + 1
        gf = GuidedFilter(small, REFINE_RADIUS, REFINE_EPS * 255 * 255)
        garments = [np.ascontiguousarray(p[..., g0:g1].sum(-1)) for p in each]
        filtered = [gf(g) for g in garments]
        mean_garment = (garments[0] + garments[1]) * np.float32(0.5)
        mean_filtered = (filtered[0] + filtered[1]) * np.float32(0.5)
        return (_rescale(mean, mean_garment, mean_filtered),
                [(p, _rescaled_share(g, f) > 0.5) for p, g, f in zip(each, garments, filtered)])

    def probabilities(self, image: Image.Image) -> np.ndarray:
        """h x w x 9 class probabilities on the working grid (half the image's size, long side at
        most WORK_MAX_SIDE; edge-refined)."""
        rgb = _photo(image)
        return self._working(self._views(rgb), _small(rgb))[0]

    def mask_and_quality(self, image: Image.Image, prompt: str, *, image_id: str | None = None,
                         box: Box | None = None) -> tuple[np.ndarray, float | None]:
        return self._mask_quality_probs(image, prompt, image_id, box)[:2]

    def _mask_quality_probs(self, image: Image.Image, prompt: str, image_id: str | None,
                            box: Box | None) -> tuple[np.ndarray, float | None, np.ndarray]:
        """mask_and_quality, plus the half-size probabilities it was made from (for explain)."""
        import cv2

        region = normalize_prompt(prompt)
        rgb = _photo(image)
        small = _small(rgb)
        probs, view_probs = self._working(self._views(rgb), small)
        product = product_shot_mask(rgb, probs)
        if product is not None and product.shape != (image.height, image.width):
            product = to_size(product, image.size)
        if product is not None:  # the garment alone on a plain background: its foreground
            small_fg = cv2.resize(product.astype(np.uint8), (probs.shape[1], probs.shape[0]),
                                  interpolation=cv2.INTER_NEAREST).astype(bool)
            mask, score = product, agreement(small_fg, select(probs, "clothes"))
        else:
            # which garments the photo shows is decided once, from the views' mean, and used for
            # the mask and for both views' masks: the quality score measures where the views
            # disagree, and the head runs once, not three times (mask time -10 %)
            present = presence(probs, region)
            mask = select(probs, region, present)
            score = (agreement(*(select(p, region, present, garment=g) for p, g in view_probs))
                     if len(view_probs) == 2 else None)
        if (mask.shape[1], mask.shape[0]) != image.size:
            mask = to_size(mask, image.size)
        if box is not None:
            mask &= box_mask(mask.shape, box)
        if mask.sum() < max(64, MIN_SHARE * mask.size):
            where = f" in {image_id}" if image_id else ""
            raise MaskError("no_garment", f"no {region} found{where} (the parser saw {describe(probs)}). "
                            "The image can still be searched as a whole photo.")
        self.last_quality = score
        return mask, score, probs

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None,
             box: Box | None = None) -> np.ndarray:
        self.last_quality = None
        return self.mask_and_quality(image, prompt, image_id=image_id, box=box)[0]

    def explain(self, image: Image.Image, prompt: str = "dress") -> dict:
        """The steps for notebook 02: image, class map (likeliest class per pixel, half size),
        class shares, the prompt's mask and its quality score."""
        mask, score, probs = self._mask_quality_probs(image, prompt, None, None)   # one network run
        labels = probs.argmax(-1)
        shares = np.bincount(labels.ravel(), minlength=len(CLASSES)) / labels.size
        return {"image": np.asarray(image.convert("RGB")), "classes": labels, "class_names": CLASSES,
                "shares": dict(zip(CLASSES, shares.round(3).tolist())), "mask": mask, "quality": score,
                "prompt": prompt}


def _photo(image: Image.Image) -> np.ndarray:
    """The photo as the masker works on it (_reduced). A photo at least twice that size is first
    box-averaged by Pillow (Image.reduce, an integer factor), so a 12-megapixel photo never
    becomes a full-size array here (that copy alone cost more than the network)."""
    factor = max(image.size) // (2 * WORK_MAX_SIDE)
    if factor >= 2:
        image = (image if image.mode == "RGB" else image.convert("RGB")).reduce(factor)
    return _reduced(_rgb(image))


def _reduced(rgb: np.ndarray) -> np.ndarray:
    """The photo itself, or (long side above 2 x WORK_MAX_SIDE) one area-averaged copy with its
    long side at 2 x WORK_MAX_SIDE: the network's input, the refinement's guide and the product
    shot's foreground all come from it, so a 12-megapixel photo is read once, not three times."""
    import cv2

    h, w = rgb.shape[:2]
    scale = 2 * WORK_MAX_SIDE / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, int(round(w * scale))), max(1, int(round(h * scale)))),
                      interpolation=cv2.INTER_AREA)


def _small(rgb: np.ndarray) -> np.ndarray:
    """The photo at work_size (area-averaged): the guide of the edge refinement. (work_size of
    the _reduced photo is work_size of the photo: both halve, then cap the long side.)"""
    import cv2

    w, h = work_size(rgb.shape[1], rgb.shape[0])
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)


BIG_MASK_PIXELS = 4_000_000   # above this a mask is brought to size in uint8 (4x less memory traffic)


def to_size(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A working-grid mask brought to the photo's (width, height): bilinear, then halved."""
    import cv2

    if size[0] * size[1] <= BIG_MASK_PIXELS:
        return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) > 0.5
    return cv2.resize(mask.astype(np.uint8) * np.uint8(254), size, interpolation=cv2.INTER_LINEAR) > 127


REFINE_RADIUS, REFINE_EPS = 8, 1e-3


def refine(probs: np.ndarray, rgb: np.ndarray, radius: int = REFINE_RADIUS, eps: float = REFINE_EPS) -> np.ndarray:
    """Guided filter (the photo as guide) on garment-vs-rest; each class is rescaled to the
    filtered garment share. Measured on the validation fold (network trained without it):
    clothes IoU 0.818 unrefined, 0.833 at radius 16 / eps 1e-2, 0.842 at radius 8 / eps 1e-3."""
    import cv2

    sh, sw = probs.shape[:2]
    small = rgb if rgb.shape[:2] == (sh, sw) else cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    garment = np.ascontiguousarray(probs[..., GARMENT[0]:GARMENT[-1] + 1].sum(-1))
    return _rescale(probs.copy(), garment, GuidedFilter(small, radius, eps * 255 * 255)(garment))


def _rescale(probs: np.ndarray, garment: np.ndarray, filtered: np.ndarray) -> np.ndarray:
    """`probs` (changed in place) with the garment classes scaled to the filtered garment share
    (clipped to 0..1) and the other classes to the rest."""
    g0, g1 = GARMENT[0], GARMENT[-1] + 1            # the garment classes are one run: slices, not copies
    filtered = np.clip(filtered, 0, 1)
    out = probs
    out[..., g0:g1] *= (filtered / np.maximum(garment, 1e-6))[..., None]
    rest = ((1 - filtered) / np.maximum(1 - garment, 1e-6))[..., None]
    out[..., :g0] *= rest
    out[..., g1:] *= rest
    return out


def _rescaled_share(garment: np.ndarray, filtered: np.ndarray) -> np.ndarray:
    """The garment share _rescale() leaves (the garment classes' sum after it), computed without it."""
    return np.clip(filtered, 0, 1) * (garment / np.maximum(garment, 1e-6))


def presence(probs: np.ndarray, region: str) -> dict[str, float] | None:
    """The garment-presence head's probability of each kind on these probabilities (the whole
    photo's), or None where select() does not use it ("clothes", or no models/garments.json)."""
    from helpers.maskers import garments

    if region == "clothes":
        return None
    doc = garments.model()
    return None if doc is None else garments.presence(probs, doc)


def select(probs: np.ndarray, region: str, present: dict[str, float] | None = None,
           garment: np.ndarray | None = None) -> np.ndarray:
    """The prompt's pixels (see the module docstring, step 4). "clothes": every garment pixel. A
    garment kind: helpers.maskers.garments decides from the whole photo's probabilities whether
    the kind is there at all (absent: an empty mask, so the masker says "no <kind> found") and
    weights each kind's pixels by how present it is; the rule per prompt was chosen by
    cross-validation (models/garments.json). Without that file: p3's rule (DRESS_PRIOR).
    `present`: the head's decision made once for the photo (presence()); by default it is made
    from `probs` themselves. `garment`: the garment pixels when already known (a view's refined
    share, see ParserMasker._working); by default the garment classes' sum above 0.5."""
    from helpers.maskers import garments

    if garment is None:
        garment = probs[..., list(GARMENT)].sum(-1) > 0.5
    if region == "clothes":
        return garment
    doc = garments.model()
    if doc is None:
        return garments.select_kind(probs, region, {"prior": DRESS_PRIOR if region == "dress" else 1.0},
                                    garment=garment)
    if present is None:
        present = garments.presence(probs, doc)
    return garments.select_kind(probs, region, doc["rules"][region], present, garment=garment)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """The quality score: IoU of two masks of the same garment made independently (the photo's
    and its mirror image's; for a product shot, the foreground's and the parser's clothes). Two
    views that disagree mean the network was unsure: validation fold, prompt dress, below
    DOUBTFUL_QUALITY it flagged every mask with IoU < 0.5 and none with IoU >= 0.8."""
    union = np.logical_or(a, b).sum()
    return round(float(np.logical_and(a, b).sum() / union), 4) if union else 0.0


def product_shot_mask(rgb: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
    """The foreground of a product shot (helpers.maskers.product), or None when the parser sees a
    person (skin + hair at least PRODUCT_MAX_PERSON of the pixels) or the photo is no product shot."""
    person = np.isin(probs.argmax(-1), (CLASSES.index("skin"), CLASSES.index("hair"))).mean()
    if person >= PRODUCT_MAX_PERSON:
        return None
    import cv2

    from helpers.maskers.product import product_shot_foreground

    h, w = rgb.shape[:2]
    scale = PRODUCT_MAX_SIDE / max(h, w)
    if scale >= 1:
        return product_shot_foreground(rgb)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    fg = product_shot_foreground(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
    return None if fg is None else to_size(fg, (w, h))


def describe(probs: np.ndarray) -> str:
    """The three most frequent classes, e.g. "background 71%, skin 20%"."""
    arg = probs.argmax(-1)
    shares = np.bincount(arg.ravel(), minlength=len(CLASSES)) / arg.size
    return ", ".join(f"{CLASSES[i]} {shares[i]:.0%}" for i in np.argsort(-shares)[:3] if shares[i] > 0.01)


def box_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    """True inside `box` (left, top, right, bottom) grown by BOX_MARGIN."""
    h, w = shape
    left, top, right, bottom = box
    mx, my = BOX_MARGIN * (right - left), BOX_MARGIN * (bottom - top)
    out = np.zeros(shape, bool)
    out[max(0, int(top - my)):min(h, int(np.ceil(bottom + my))),
        max(0, int(left - mx)):min(w, int(np.ceil(right + mx)))] = True
    return out
