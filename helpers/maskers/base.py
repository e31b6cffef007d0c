"""What every garment masker is: the `Masker` protocol and the prompts an offline masker understands.

Why a module of its own: the maskers (one module each), the batch engine (helpers.maskpool) and
the pipeline all code against this contract and never branch on where a mask came from.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from helpers.errors import MaskError

Box = tuple[int, int, int, int]  # (left, top, right, bottom) in pixels


@runtime_checkable
class Masker(Protocol):
    """mask(image, prompt, *, image_id=None, box=None) -> bool array (True = garment) at the image's size.

    `box` = (left, top, right, bottom) in pixels: where a vision model saw the garment, a prior
    the masker may use. The maskers here (reference, pose, titan) accept it and ignore it; a
    masker that cannot use a box natively is wrapped by the box masker (helpers.maskers.boxes),
    which intersects its mask with the box grown by a margin."""

    model_id: str          # names the masks it made; part of every cache key
    price_per_call: float  # dollars per uncached call (0 for local/reference)
    parallel: str          # "threads" (network-bound) or "processes" (CPU-bound)

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None,
             box: Box | None = None) -> np.ndarray: ...


# Which prompts the offline maskers understand, as body regions of the clothed person.
PROMPT_ALIASES = {
    "dress": "dress", "dresses": "dress", "gown": "dress", "frock": "dress", "garment": "dress",
    "top": "top", "tops": "top", "shirt": "top", "blouse": "top", "t-shirt": "top", "tshirt": "top",
    "skirt": "skirt", "skirts": "skirt",
    "trousers": "trousers", "pants": "trousers", "jeans": "trousers", "shorts": "trousers",
}
SUPPORTED_PROMPTS = ("dress", "top", "skirt", "trousers")

# A mask whose quality score (a masker's `last_quality`, today the parser's: the IoU of the masks
# made from the photo and from its mirror image) is below this is "doubtful": still used, but
# flagged in the pipeline's warnings, the CLI search and the app. Chosen on the CCP validation
# fold (photo number % 5 == 1, network trained without it): prompt dress - it flagged 35 % of the
# masks, every one with IoU < 0.5 and none with IoU >= 0.8 (AUC 0.98); prompt clothes - it flags
# 2 % and does not find the few poorer masks (AUC 0.6). Held-out figures: README.
DOUBTFUL_QUALITY = 0.8


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
