"""The Titan masker: Titan Image Generator (or Nova Canvas) INPAINTING + maskPrompt + returnMask on
Bedrock. Masker names "titan" and its alias "bedrock". boto3 loads with this module, which
helpers.maskers.get_masker imports only when this masker is asked for.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from helpers.errors import MaskError, SettingsError
from helpers.maskers.base import Box
from helpers.bedrock.client import BedrockModel, MASK_MAX_SIDE, TITAN_MASK_V2, scrub
from helpers.bedrock.requests import decode_mask, mask_request, prepare_image
from helpers.settings import MASK_MODEL_IDS, Settings


class BedrockMasker(BedrockModel):
    """The `Masker` protocol on Titan Image Generator (or Nova Canvas) INPAINTING + maskPrompt.

    One call per image; run batches through `helpers.cost.run_parallel` (threads) with the
    cache in front, so a re-run makes zero calls.
    """

    _error_cls = MaskError

    def __init__(self, settings: Settings, *, client: Any = None):
        if settings.mask_model_id not in MASK_MODEL_IDS:
            raise SettingsError(f"mask_model_id={settings.mask_model_id!r} is not a supported mask "
                                f"model; choose one of {', '.join(MASK_MODEL_IDS)}")
        super().__init__(settings, settings.mask_model_id, client)
        self.price_per_call = settings.mask_price_usd

    def request_body(self, image: Image.Image, prompt: str) -> dict:
        """The exact body `mask` sends for this image (resized to the model's limits)."""
        return mask_request(prepare_image(image, max_side=MASK_MAX_SIDE).b64, prompt)

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None,
             box: Box | None = None) -> np.ndarray:
        """Titan's garment mask for `prompt` (`box` is ignored: Titan finds the garment from the text)."""
        """bool HxW at the image's original size, True = garment."""
        data = self.invoke(self.request_body(image, prompt), image_id=image_id)
        subject = self._subject(image_id)
        if data.get("error"):
            raise MaskError("content_filter",
                            scrub(f"{subject} was flagged by Bedrock's content moderation on "
                                  f"{self.model_id}: {data['error']!r}. The batch skipped it; use "
                                  f"masker='local' for it, or leave it out."))
        mask_b64 = data.get("maskImage")
        if not isinstance(mask_b64, str) or not mask_b64:
            keys = ", ".join(sorted(data)) or "none"
            raise MaskError("bad_response",
                            f"{subject}: the response from {self.model_id} has no 'maskImage' "
                            f"(keys present: {keys}). This model may not return masks "
                            f"(returnMask); use {TITAN_MASK_V2} or masker='local'.")
        try:
            mask = decode_mask(mask_b64, image.size)
        except (ValueError, OSError) as exc:
            raise MaskError("bad_response", f"{subject}: 'maskImage' from {self.model_id} is not a "
                                            f"readable image ({exc}).") from None
        if not mask.any():
            raise MaskError("no_garment",
                            f"{subject}: {self.model_id} returned an empty mask — the prompt "
                            f"{prompt!r} matched nothing. Check garment_prompt, or use the full "
                            f"image for this one.")
        return mask
