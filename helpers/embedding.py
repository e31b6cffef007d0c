"""Image embeddings: one interface, local (ONNX Runtime) and Bedrock (Titan Multimodal).

(Skeleton: the protocol below is the contract; implementations are being written.)
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image


class EmbedError(Exception):
    """One image could not be embedded; `reason` is a short code for failure tables."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@runtime_checkable
class Embedder(Protocol):
    """embed(images) -> float32 (n, dim), each row L2-normalised."""

    model_id: str          # names the vectors; collections are named from model_id + dim
    dim: int
    price_per_call: float  # dollars per uncached image (0 for local)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...
