"""Garment masks: one interface, three implementations (local, Bedrock, reference).

(Skeleton: the protocol below is the contract; implementations are being written.)
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image


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
