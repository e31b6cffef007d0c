"""The reference masker: the catalogue's ground-truth garment masks, the upper bound for any masker."""
from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from helpers.errors import MaskError, NoGarment
from helpers.maskers.base import Box, normalize_prompt

# a catalogue of separates (helpers.sample.outfits) has one mask column per garment as well
GARMENT_COLUMNS = {"top": "top_mask_path", "skirt": "skirt_mask_path", "trousers": "trousers_mask_path"}


class ReferenceMasker:
    """Ground-truth garment masks from the catalogue (its `garment_mask_path` column).

    Why: the best mask any masker could give, so later notebooks can show how much mask
    quality matters. In the dress catalogue it answers for any prompt, because its masks are of
    its one garment. A catalogue of separates also has one mask per garment (`top_mask_path`,
    `skirt_mask_path`, `trousers_mask_path`): prompt top / skirt / trousers (and their synonyms)
    gives that garment's mask, NoGarment when the photo does not show one (a skirt asked of a
    photo of trousers); any other prompt ("clothes") gives all the clothes (`garment_mask_path`).
    Images without a ground-truth mask raise MaskError("no_reference")."""

    model_id = "reference"
    price_per_call = 0.0
    parallel = "threads"
    use_cache = False  # reading the mask file is as cheap as reading the cache

    def __init__(self, table: pd.DataFrame):
        if "garment_mask_path" not in table.columns:
            raise ValueError("the catalogue table has no garment_mask_path column: the reference "
                             "masker needs a catalogue with ground-truth masks (the generated one)")
        self._paths = {str(i): p for i, p in zip(table["image_id"], table["garment_mask_path"])}
        self._garments = {g: {str(i): p for i, p in zip(table["image_id"], table[col])}
                          for g, col in GARMENT_COLUMNS.items() if col in table.columns}

    def _garment(self, prompt: str) -> str | None:
        """The garment a prompt names when the catalogue has per-garment masks, else None (all clothes)."""
        if not self._garments:
            return None
        try:
            garment = normalize_prompt(prompt)
        except MaskError:  # "clothes", "outfit": every garment of the photo
            return None
        return garment if garment in self._garments else None

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None,
             box: Box | None = None) -> np.ndarray:
        """The ground-truth mask of catalogue image `image_id` (`box` is ignored: the truth needs no prior)."""
        if image_id is None:
            raise MaskError("no_reference", "the reference masker needs the image_id of a catalogue "
                            "image; for other images use the local or Bedrock masker")
        garment = self._garment(prompt)
        path = self._paths.get(str(image_id)) if garment is None else self._garments[garment].get(str(image_id))
        if garment is not None and str(image_id) in self._paths and not _given(path):
            raise NoGarment(f"{image_id} shows no {garment}: the catalogue's ground truth has no {garment} "
                            "in this photo")
        if not _given(path):
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


def _given(path) -> bool:
    """A mask path is given: not None, not NaN, not an empty string."""
    return path is not None and not (isinstance(path, float) and np.isnan(path)) and bool(str(path))
