"""The reference masker: the catalogue's ground-truth garment masks, the upper bound for any masker."""
from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from helpers.errors import MaskError
from helpers.maskers.base import Box


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

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None,
             box: Box | None = None) -> np.ndarray:
        """The ground-truth mask of catalogue image `image_id` (`box` is ignored: the truth needs no prior)."""
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
