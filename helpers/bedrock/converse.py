"""Garment boxes from a Nova vision model through the Converse API: the request and the parsing.

Why: no live Bedrock model returns a segmentation mask for a text prompt any more (Titan Image
Generator and Nova Canvas are past their end of life). Nova vision models do detect objects:
asked through the Converse API, they answer in text with boxes on a 0-1000 scale relative to
the image (Nova user guide, "Image understanding > Bounding box detection": "outputs bounding
boxes on a scale of [0, 1000)"). helpers.maskers.boxes.BoxMasker asks for the garment's box;
this module builds that request, parses the box out of whatever text comes back (JSON in prose
or code fences, several boxes, coordinates outside the scale, no box, a refusal) and converts it
to pixels; the masker hands it to the offline masker as a prior, so the mask stays pixel-exact
and the vision model only says *where*.

Request shape (botocore's bedrock-runtime service model, ConverseRequest / ImageBlock: format
png | jpeg | gif | webp, source.bytes as raw bytes that boto3 base64-encodes on the wire).
Cost: each answer's `usage.inputTokens` / `outputTokens` priced by helpers.bedrock.prices.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

#: Longer side sent to the vision model. Boxes are relative (0-1000), so a smaller image costs
#: fewer image tokens and loses little: the pixel-exact edge comes from the offline mask.
BOX_MAX_SIDE = 1024
SCALE = 1000.0
#: Token counts used for the estimate before any call (the real counts, from each answer's
#: `usage`, go to the usage ledger). Nova's image tokens grow with resolution: about 1,300-1,800
#: for 1024 px photos per the Nova user guide's "image to tokens" table (approximate).
EST_INPUT_TOKENS = 1_800
EST_OUTPUT_TOKENS = 40
MAX_OUTPUT_TOKENS = 200
#: How far the box is grown (share of its width/height) before it clips an offline mask that
#: cannot take a box natively: vision boxes are loose or tight by a few percent.
BOX_MARGIN = 0.05

Box = tuple[float, float, float, float]


def box_prompt(template: str, garment: str) -> str:
    """The prompt sent for one garment ("{garment}" replaced)."""
    return template.replace("{garment}", garment.strip())


def converse_request(model_id: str, image_bytes: bytes, image_format: str, prompt: str,
                     *, max_tokens: int = MAX_OUTPUT_TOKENS) -> dict:
    """The exact keyword arguments of `bedrock-runtime.converse` for one photo and prompt.

    Image first, then the question (the order AWS's Nova examples use); temperature 0 so a
    re-run asks the same question the same way.
    """
    if image_format not in ("png", "jpeg", "gif", "webp"):
        raise ValueError(f"Converse takes png, jpeg, gif or webp images, not {image_format!r}")
    return {"modelId": model_id,
            "messages": [{"role": "user", "content": [
                {"image": {"format": image_format, "source": {"bytes": image_bytes}}},
                {"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0.0}}


# --- parsing the answer ------------------------------------------------------------------

class BoxParseError(ValueError):
    """The answer holds no usable box; `reason` is "no_garment" or "refused"."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_REFUSAL = re.compile(r"\b(i can(?:no|')t|i am unable|i'm unable|i cannot|sorry|not able to|"
                      r"unable to (?:help|assist|comply))\b", re.I)
_BOX_KEYS = ("boxes", "bboxes", "bounding_boxes", "box", "bbox", "bounding_box", "coordinates")


def _json_values(text: str) -> list[Any]:
    """Every JSON object or array in `text`: inside code fences first, then bare in the prose."""
    decoder = json.JSONDecoder()
    chunks = _FENCE.findall(text) + [text]
    found: list[Any] = []
    for chunk in chunks:
        i = 0
        while i < len(chunk):
            if chunk[i] in "[{":
                try:
                    value, end = decoder.raw_decode(chunk, i)
                except ValueError:
                    i += 1
                    continue
                found.append(value)
                i = end
            else:
                i += 1
        if found:
            return found
    return found


def _as_box(value: Any) -> Box | None:
    """[x1, y1, x2, y2] or {"x1"...} / {"xmin"...} / {"left"...}; None if it is not a box."""
    if isinstance(value, dict):
        for keys in (("x1", "y1", "x2", "y2"), ("xmin", "ymin", "xmax", "ymax"),
                     ("left", "top", "right", "bottom")):
            if all(k in value for k in keys):
                value = [value[k] for k in keys]
                break
        else:
            return None
    if (isinstance(value, (list, tuple)) and len(value) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    return None


def _boxes_in(value: Any) -> list[Box]:
    """All boxes in one JSON value, whatever the nesting the model chose."""
    box = _as_box(value)
    if box is not None:
        return [box]
    if isinstance(value, dict):
        for key in _BOX_KEYS:
            if key in value:
                return _boxes_in(value[key])
        return [b for v in value.values() if isinstance(v, (list, dict)) for b in _boxes_in(v)]
    if isinstance(value, list):
        return [b for v in value for b in _boxes_in(v)]
    return []


def _clean(box: Box) -> Box | None:
    """Order the corners and clip to the 0-1000 scale; None if nothing of it is in the image."""
    x1, y1, x2, y2 = box
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    x1, y1 = max(0.0, x1), max(0.0, y1)
    x2, y2 = min(SCALE, x2), min(SCALE, y2)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return (x1, y1, x2, y2)


def parse_boxes(text: str) -> list[Box]:
    """The garment boxes in a model's answer, 0-1000 scale, clipped; [] when it says "none".

    Raises BoxParseError("refused") for an answer with no JSON at all (a refusal or prose),
    and BoxParseError("no_garment") when the JSON has no box inside the image.
    """
    values = _json_values(text)
    if not values:
        kind = "refused" if _REFUSAL.search(text) else "no_box"
        raise BoxParseError(kind, f"the answer holds no JSON box: {text.strip()[:200]!r}")
    raw = [b for v in values for b in _boxes_in(v)]
    boxes = [b for b in (_clean(r) for r in raw) if b is not None]
    if not boxes:
        detail = "an empty list" if not raw else f"boxes outside the image: {raw[:3]}"
        raise BoxParseError("no_garment", f"the answer has {detail}")
    return boxes


def union(boxes: list[Box]) -> Box:
    """One box around several: the box is only a prior that clips the offline mask, so too large
    costs little while too small would cut the garment (a dress answered as top + skirt)."""
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def to_pixels(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """0-1000 box -> (left, top, right, bottom) pixels of an image of `size` (width, height);
    right/bottom exclusive, rounded outwards so the box never shrinks."""
    w, h = size
    left = max(0, math.floor(box[0] / SCALE * w))
    top = max(0, math.floor(box[1] / SCALE * h))
    right = min(w, math.ceil(box[2] / SCALE * w))
    bottom = min(h, math.ceil(box[3] / SCALE * h))
    return left, top, right, bottom


def grow(box: tuple[int, int, int, int], size: tuple[int, int],
         margin: float = BOX_MARGIN) -> tuple[int, int, int, int]:
    """The box grown by `margin` of its width/height on every side, kept inside the image."""
    left, top, right, bottom = box
    dx, dy = round((right - left) * margin), round((bottom - top) * margin)
    return max(0, left - dx), max(0, top - dy), min(size[0], right + dx), min(size[1], bottom + dy)
