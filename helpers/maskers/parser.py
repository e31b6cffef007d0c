"""The garment parser (#14): the default offline masker ("local"; also by name "parser").

How, step by step (notebook 02 shows each):
1. *Frame*: the photo is padded to 2:3 with the mean colour and resized to 256 x 384
   (helpers.maskers.parser_backbone).
2. *Features*: a frozen EfficientNet-Lite0 (the ImageNet weights the embedder uses, exported to
   ONNX at first use and cached) gives feature maps at strides 4, 8, 16 and 32.
3. *Head*: a small trained head (committed, helpers/maskers/models/parser-head.onnx, 281 kB; how it
   was trained and on what: parser-head.json) stacks the maps at stride 8 and gives per-pixel
   probabilities of 9 classes: background, skin, hair, dress, top, skirt, trousers, other clothes,
   accessory (shoes, bags, ...).
4. *Edges*: at half the photo's size a guided filter (the photo as guide) snaps the
   garment-vs-rest probability to the photo's edges.
5. *Prompt*: "clothes" = every garment class; "top" / "skirt" / "trousers" = garment pixels whose
   likeliest garment class is that kind; "dress" = the garment minus trousers and minus pixels
   that are confidently a top (the head tells a dress from top + skirt poorly; see RESULTS in
   the README). A `box` prior cuts the mask to the box grown by 8 %.
6. *Quality*: mean certainty |2p - 1| of the prompt's probability over the mask and a 15-px band
   around it; below DOUBTFUL_QUALITY (helpers.maskers.base) the mask is reported as doubtful.

No pose model and no person mask: it also segments a garment on a plain background. A photo in
which the parser sees no person (almost no skin or hair) and that looks like a product shot
(helpers.maskers.product: plain border, one free-standing object) takes the foreground as the
garment, as the pose masker does; its quality is the parser's certainty that this is clothing.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.errors import MaskError
from helpers.maskers import parser_backbone as pb
from helpers.maskers.base import Box

HEAD_PATH = Path(__file__).resolve().parent / "models" / "parser-head.onnx"
CLASSES = ("background", "skin", "hair", "dress", "top", "skirt", "trousers", "other", "accessory")
GARMENT = (3, 4, 5, 6, 7)
PROMPT_CLASSES = {"dress": (3,), "top": (4,), "skirt": (5,), "trousers": (6,), "clothes": GARMENT}
PARSER_PROMPTS = tuple(PROMPT_CLASSES)
ALIASES = {
    "dress": "dress", "dresses": "dress", "gown": "dress", "frock": "dress",
    "top": "top", "tops": "top", "shirt": "top", "blouse": "top", "t-shirt": "top", "tshirt": "top",
    "sweater": "top", "jumper": "top", "hoodie": "top", "cardigan": "top", "jacket": "top", "coat": "top",
    "blazer": "top", "vest": "top",
    "skirt": "skirt", "skirts": "skirt",
    "trousers": "trousers", "pants": "trousers", "jeans": "trousers", "shorts": "trousers", "leggings": "trousers",
    "clothes": "clothes", "clothing": "clothes", "outfit": "clothes", "garment": "clothes", "garments": "clothes",
}
MIN_SHARE = 0.002        # a mask below this share of the image counts as "no garment"
BOX_MARGIN = 0.08        # a box prior is grown by this share of its size before cutting
PRODUCT_MAX_PERSON = 0.01  # below this share of skin + hair pixels a photo may be a product shot


def normalize_prompt(prompt: str) -> str:
    """The parser's region for a prompt ("a long red dress" -> "dress"), or MaskError."""
    words = str(prompt).lower().replace(",", " ").split()
    for word in reversed(words):
        if word in ALIASES:
            return ALIASES[word]
    raise MaskError("unsupported_prompt", f"the parser masker understands {', '.join(PARSER_PROMPTS)} "
                    f"(and synonyms such as gown, shirt, jeans, outfit), not {prompt!r}")


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class ParserMasker:
    """mask(image, prompt, *, image_id=None, box=None) -> bool mask; `last_quality` holds the
    quality score of the last mask made (None before the first)."""

    VERSION = "p2"
    price_per_call = 0.0
    parallel = "processes"

    def __init__(self, head_path: Path | str = HEAD_PATH, cache_dir: Path | str | None = None,
                 threads: int = 1, refine: bool = True):
        self.head_path = Path(head_path)
        if not self.head_path.is_file():
            raise MaskError("model_unavailable", f"the parser head {self.head_path} is missing; train one with "
                            "`python -m helpers masks train --dataset ccp DIR` or use masker='pose'")
        digest = hashlib.sha256(self.head_path.read_bytes()).hexdigest()[:12]
        self.model_id = f"parser-effl0-{digest}-{self.VERSION}" + ("" if refine else "-raw")
        self.cache_params = {"algo": self.VERSION, "refine": refine, "product": "fg1"}
        self.cache_dir, self.threads, self.refine = cache_dir, threads, refine
        self._bb = self._head = None
        self.last_quality: float | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_bb"] = state["_head"] = None   # sessions are made again in each worker
        return state

    def __repr__(self) -> str:
        return f"ParserMasker(model_id={self.model_id!r}, prompts={PARSER_PROMPTS})"

    def _sessions(self):
        if self._bb is None:
            cache_dir = self.cache_dir
            if cache_dir is None:
                from helpers.settings import load_settings

                cache_dir = load_settings().cache_dir
            self._bb = _session(pb.backbone_onnx(cache_dir), self.threads)
            self._head = _session(self.head_path, self.threads)
        return self._bb, self._head

    def raw_probabilities(self, image: Image.Image) -> np.ndarray:
        """The head's 9 x 96 x 64 class probabilities on the padded input grid."""
        bb, head = self._sessions()
        taps = bb.run(None, {"x": pb.to_input(np.asarray(image.convert("RGB")))})
        return head.run(None, dict(zip(pb.TAPS, taps)))[0][0]

    def probabilities(self, image: Image.Image) -> np.ndarray:
        """(H/2) x (W/2) x 9 class probabilities at half the image's size (edge-refined)."""
        rgb = np.asarray(image.convert("RGB"))
        probs = pb.probs_to_image(self.raw_probabilities(image), max(1, image.width // 2), max(1, image.height // 2))
        return refine(probs, rgb) if self.refine else probs

    def mask_and_quality(self, image: Image.Image, prompt: str, *, image_id: str | None = None,
                         box: Box | None = None) -> tuple[np.ndarray, float]:
        import cv2

        region = normalize_prompt(prompt)
        probs = self.probabilities(image)
        product = product_shot_mask(np.asarray(image.convert("RGB")), probs)
        if product is not None:  # the garment alone on a plain background: its foreground
            small = cv2.resize(product.astype(np.uint8), (probs.shape[1], probs.shape[0]),
                               interpolation=cv2.INTER_NEAREST).astype(bool)
            mask, score = product, quality(probs, small, "clothes")
        else:
            mask = select(probs, region)
            score = quality(probs, mask, region)
        if (mask.shape[1], mask.shape[0]) != image.size:
            mask = cv2.resize(mask.astype(np.float32), image.size, interpolation=cv2.INTER_LINEAR) > 0.5
        if box is not None:
            mask &= box_mask(mask.shape, box)
        if mask.sum() < max(64, MIN_SHARE * mask.size):
            where = f" in {image_id}" if image_id else ""
            raise MaskError("no_garment", f"no {region} found{where} (the parser saw {describe(probs)}). "
                            "The image can still be searched as a whole photo.")
        self.last_quality = score
        return mask, score

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None,
             box: Box | None = None) -> np.ndarray:
        self.last_quality = None
        return self.mask_and_quality(image, prompt, image_id=image_id, box=box)[0]

    def explain(self, image: Image.Image, prompt: str = "dress") -> dict:
        """The steps for notebook 02: image, class map (likeliest class per pixel, half size),
        class shares, the prompt's mask and its quality score."""
        probs = self.probabilities(image)
        mask, score = self.mask_and_quality(image, prompt)
        labels = probs.argmax(-1)
        shares = np.bincount(labels.ravel(), minlength=len(CLASSES)) / labels.size
        return {"image": np.asarray(image.convert("RGB")), "classes": labels, "class_names": CLASSES,
                "shares": dict(zip(CLASSES, shares.round(3).tolist())), "mask": mask, "quality": score,
                "prompt": prompt}


def refine(probs: np.ndarray, rgb: np.ndarray, radius: int = 16, eps: float = 1e-2) -> np.ndarray:
    """Guided filter (the photo as guide) on garment-vs-rest; each class is rescaled to the
    filtered garment share. Measured on the validation fold: clothes IoU +0.035."""
    import cv2

    sh, sw = probs.shape[:2]
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    out = probs.copy()
    garment = np.ascontiguousarray(out[..., list(GARMENT)].sum(-1))
    filtered = np.clip(cv2.ximgproc.guidedFilter(small, garment, radius, eps * 255 * 255), 0, 1)
    out[..., list(GARMENT)] *= (filtered / np.maximum(garment, 1e-6))[..., None]
    rest = [i for i in range(len(CLASSES)) if i not in GARMENT]
    out[..., rest] *= ((1 - filtered) / np.maximum(1 - garment, 1e-6))[..., None]
    return out


def select(probs: np.ndarray, region: str) -> np.ndarray:
    """The prompt's pixels (see the module docstring, step 5)."""
    garment = probs[..., list(GARMENT)].sum(-1) > 0.5
    if region == "clothes":
        return garment
    kinds = np.argmax(probs[..., list(GARMENT)], -1)
    if region == "dress":
        top, dress = probs[..., 4], probs[..., 3]
        return garment & (kinds != GARMENT.index(6)) & ~((top > 0.5) & (top > 2 * dress))
    want = [GARMENT.index(c) for c in PROMPT_CLASSES[region]]
    return garment & np.isin(kinds, want)


def quality(probs: np.ndarray, mask: np.ndarray, region: str) -> float:
    """Confidence of a mask in [0, 1]: mean |2p - 1| of the prompt's probability over the mask
    dilated by 15 px. Low = many pixels the parser was unsure of (see DOUBTFUL_QUALITY)."""
    import cv2

    p = probs[..., list(PROMPT_CLASSES[region])].sum(-1)
    band = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    return float(np.abs(2 * p[band] - 1).mean()) if band.any() else 0.0


def product_shot_mask(rgb: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
    """The foreground of a product shot (helpers.maskers.product), or None when the parser sees a
    person (skin + hair at least PRODUCT_MAX_PERSON of the pixels) or the photo is no product shot."""
    person = np.isin(probs.argmax(-1), (CLASSES.index("skin"), CLASSES.index("hair"))).mean()
    if person >= PRODUCT_MAX_PERSON:
        return None
    from helpers.maskers.product import product_shot_foreground

    return product_shot_foreground(rgb)


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
