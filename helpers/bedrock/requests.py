"""Bedrock request bodies and images: what goes over the wire, byte for byte (tests compare exact bodies)."""
from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from helpers.bedrock.client import EMBED_DIMS_BY_MODEL, MAX_PROMPT_CHARS, MAX_REQUEST_IMAGE_BYTES, NOVA_EMBED, TITAN_EMBED


# --- images ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedImage:
    """An image ready for a request body: base64 text, its format and the size sent."""

    b64: str
    format: str                      # "png" or "jpeg"
    size: tuple[int, int]            # (width, height) sent
    original_size: tuple[int, int]   # (width, height) before resizing


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _encode(image: Image.Image, fmt: str) -> str:
    buf = io.BytesIO()
    if fmt == "png":
        image.save(buf, format="PNG")
    else:
        image.save(buf, format="JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def prepare_image(image: Image.Image, *, max_side: int,
                  max_bytes: int = MAX_REQUEST_IMAGE_BYTES) -> PreparedImage:
    """Fit an image to a model's limits: RGB, longer side <= max_side, base64 <= max_bytes.

    PNG first (lossless, so masks line up); JPEG q90 if PNG is too big; then shrink by 3/4
    until it fits. Small images are sent unchanged.
    """
    original = image.size
    rgb = _to_rgb(image)
    scale = min(1.0, max_side / max(rgb.size))
    while True:
        size = (max(1, round(original[0] * scale)), max(1, round(original[1] * scale)))
        sized = rgb if size == rgb.size else rgb.resize(size, Image.Resampling.LANCZOS)
        for fmt in ("png", "jpeg"):
            b64 = _encode(sized, fmt)
            if len(b64) <= max_bytes:
                return PreparedImage(b64, fmt, sized.size, original)
        if min(size) <= 16:
            raise ValueError(f"cannot fit a {original[0]}x{original[1]} image into {max_bytes} bytes")
        scale *= 0.75


def decode_mask(mask_b64: str, size: tuple[int, int]) -> np.ndarray:
    """Titan's returned mask (black = inside = garment) as bool HxW at `size` (width, height)."""
    with Image.open(io.BytesIO(base64.b64decode(mask_b64))) as im:
        grey = _to_rgb(im).convert("L")
    binary = grey.point(lambda v: 255 if v < 128 else 0)  # black -> True (garment)
    if binary.size != tuple(size):
        binary = binary.resize(tuple(size), Image.Resampling.NEAREST)
    return np.asarray(binary) > 127


def preview_body(body: dict) -> str:
    """The request body as pretty JSON with base64 images shortened, for notebooks and logs."""
    def short(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: short(v) for k, v in value.items()}
        if isinstance(value, list):
            return [short(v) for v in value]
        if isinstance(value, str) and len(value) > 200:
            return f"<base64, {len(value):,} characters>"
        return value
    return json.dumps(short(body), indent=2)


# --- request bodies ----------------------------------------------------------------------

def mask_request(image_png_b64: str, prompt: str, *, text: str | None = None,
                 negative_text: str | None = None, cfg_scale: float = 8.0,
                 quality: str = "standard") -> dict:
    """The INPAINTING body that asks Titan/Nova Canvas to find `prompt` and return its mask.

    `text` (what to paint into the masked area) defaults to the prompt itself: we keep only
    the mask, so the repainted image is discarded. `negativeText` is sent only when given.
    """
    for name, value in (("prompt", prompt), ("text", text), ("negative_text", negative_text)):
        if value is not None and (not value.strip() or len(value) > MAX_PROMPT_CHARS):
            raise ValueError(f"{name} must be 1-{MAX_PROMPT_CHARS} characters, got {len(value)}")
    params: dict[str, Any] = {"image": image_png_b64, "maskPrompt": prompt,
                              "text": text if text is not None else prompt}
    if negative_text is not None:
        params["negativeText"] = negative_text
    params["returnMask"] = True
    return {"taskType": "INPAINTING",
            "inPaintingParams": params,
            "imageGenerationConfig": {"numberOfImages": 1, "quality": quality,
                                      "cfgScale": float(cfg_scale)}}


def embed_request(*, image_b64: str | None = None, text: str | None = None,
                  dim: int = 1024) -> dict:
    """Titan Multimodal Embeddings G1 body; with both inputs Titan combines them."""
    if image_b64 is None and text is None:
        raise ValueError("embed_request needs image_b64, text or both")
    if dim not in EMBED_DIMS_BY_MODEL[TITAN_EMBED]:
        raise ValueError(f"Titan Multimodal Embeddings offers {EMBED_DIMS_BY_MODEL[TITAN_EMBED]}, not {dim}")
    body: dict[str, Any] = {}
    if image_b64 is not None:
        body["inputImage"] = image_b64
    if text is not None:
        body["inputText"] = text
    body["embeddingConfig"] = {"outputEmbeddingLength": dim}
    return body


NOVA_IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
NOVA_PURPOSES = ("GENERIC_INDEX", "GENERIC_RETRIEVAL", "IMAGE_RETRIEVAL")


def nova_embed_request(*, image_b64: str | None = None, image_format: str = "png",
                       text: str | None = None, dim: int = 1024,
                       purpose: str = "GENERIC_INDEX") -> dict:
    """Amazon Nova Multimodal Embeddings body (SINGLE_EMBEDDING, schema nova-multimodal-embed-v1).

    One modality per call (image or text; Nova has no fused vector). `purpose`: GENERIC_INDEX for
    what is stored (catalogue images), GENERIC_RETRIEVAL for queries. Shape from the Nova 2 user
    guide's embeddings schema (bedrock.md, 2026-11); no call was made by this project.
    """
    if (image_b64 is None) == (text is None):
        raise ValueError("nova_embed_request needs exactly one of image_b64 or text")
    if dim not in EMBED_DIMS_BY_MODEL[NOVA_EMBED]:
        raise ValueError(f"Nova Multimodal Embeddings offers {EMBED_DIMS_BY_MODEL[NOVA_EMBED]}, not {dim}")
    if purpose not in NOVA_PURPOSES:
        raise ValueError(f"embeddingPurpose must be one of {NOVA_PURPOSES}, not {purpose!r}")
    params: dict[str, Any] = {"embeddingPurpose": purpose, "embeddingDimension": dim}
    if image_b64 is not None:
        if image_format not in NOVA_IMAGE_FORMATS:
            raise ValueError(f"Nova takes {NOVA_IMAGE_FORMATS} images, not {image_format!r}")
        params["image"] = {"format": image_format, "source": {"bytes": image_b64}}
    else:
        if not text or not text.strip():
            raise ValueError("a text query must not be empty")
        params["text"] = {"truncationMode": "END", "value": text}
    return {"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
            "singleEmbeddingParams": params}
