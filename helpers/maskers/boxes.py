"""The box masker (masker name "boxes"): a garment box from a Nova vision model on Bedrock, the
mask from the offline masker inside it.

Why: no live Bedrock model returns a segmentation mask for a text prompt any more (Titan Image
Generator and Nova Canvas are past their end of life), but Nova vision models draw boxes. The
request and the parsing of the answer are helpers.bedrock.converse; this module is the `Masker`.
boto3 loads with this module, which helpers.maskers.get_masker imports only when it is asked for.
"""
from __future__ import annotations

import base64
import inspect
import threading
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from helpers.bedrock.client import BedrockModel, _is_content_filter, scrub, translate_error
from helpers.bedrock.converse import (BOX_MARGIN, BOX_MAX_SIDE, EST_INPUT_TOKENS, EST_OUTPUT_TOKENS,
                                      BoxParseError, box_prompt, converse_request, grow, parse_boxes,
                                      to_pixels, union)
from helpers.bedrock.prices import token_cost
from helpers.bedrock.requests import prepare_image
from helpers.bedrock.usage import record_usage
from helpers.errors import MaskError
from helpers.maskers.base import Box
from helpers.settings import Settings


def _takes_box(masker: Any) -> bool:
    try:
        return "box" in inspect.signature(masker.mask).parameters
    except (TypeError, ValueError):
        return False


class BoxMasker(BedrockModel):
    """The `Masker` protocol: Nova vision box (Converse) + offline mask inside it.

    `inner` is the offline masker (the workbook's default). If it takes `box=` natively it gets
    the pixel box as a prior; otherwise its mask is intersected with the box grown by
    BOX_MARGIN. Masks are cached by `model_id` + `cache_params` (box model, prompt, inner
    masker, margin), so a changed prompt or model never reuses old masks.
    """

    parallel = "threads"
    _error_cls = MaskError

    def __init__(self, settings: Settings, *, inner: Any, client: Any = None):
        super().__init__(settings, settings.box_model_id, client)
        self.box_model_id = settings.box_model_id
        self.prompt_template = settings.box_prompt
        self.inner = inner
        self.inner_takes_box = _takes_box(inner)
        self.model_id = f"boxes:{settings.box_model_id}+{getattr(inner, 'model_id', type(inner).__name__)}"
        try:
            est = token_cost(settings.box_model_id, EST_INPUT_TOKENS, EST_OUTPUT_TOKENS)
        except KeyError:  # a model without a recorded price: estimate as Nova 2 Lite, say so
            est = token_cost("amazon.nova-2-lite-v1:0", EST_INPUT_TOKENS, EST_OUTPUT_TOKENS)
        self.price_per_call = est
        self._inner_lock = threading.Lock()  # the offline masker (mediapipe) is not thread-safe
        self._local = threading.local()       # last_quality per thread: Bedrock calls overlap
        self.cache_params = {"box_prompt": self.prompt_template, "margin": BOX_MARGIN,
                             "max_side": BOX_MAX_SIDE, "inner_box": self.inner_takes_box}

    @property
    def label(self) -> str:
        return f"Nova box ({self.box_model_id}) + offline mask"

    def request(self, image: Image.Image, prompt: str) -> dict:
        """The exact `converse` arguments for this photo (shrunk to BOX_MAX_SIDE)."""
        prepared = prepare_image(image, max_side=BOX_MAX_SIDE)
        return converse_request(self.box_model_id, base64.b64decode(prepared.b64), prepared.format,
                                box_prompt(self.prompt_template, prompt))

    def _translate(self, exc: BaseException, image_id: str | None = None) -> Exception:
        err = translate_error(exc, model_id=self.box_model_id, region=self.region,
                              error_cls=MaskError, image_id=image_id,
                              concurrency=self._settings.concurrency,
                              max_retries=self._settings.max_retries)
        text = str(err).replace("mask_model_id (WORKBOOK_MASK_MODEL_ID)",
                                "box_model_id (WORKBOOK_BOX_MODEL_ID)")
        return MaskError(err.reason, text)

    def find_box(self, image: Image.Image, prompt: str, *,
                 image_id: str | None = None) -> tuple[int, int, int, int]:
        """The garment's box in pixels of `image` (one Converse call)."""
        client = self._get_client()
        subject = self._subject(image_id)
        try:
            response = client.converse(**self.request(image, prompt))
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, image_id) from None
        usage = response.get("usage") or {}
        try:
            dollars = token_cost(self.box_model_id, int(usage.get("inputTokens", 0)),
                                 int(usage.get("outputTokens", 0)))
        except KeyError:
            dollars = self.price_per_call
        record_usage(self._settings, self.box_model_id, dollars)
        stop = response.get("stopReason")
        parts = ((response.get("output") or {}).get("message") or {}).get("content") or []
        text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
        if stop in ("content_filtered", "guardrail_intervened") or _is_content_filter(text.lower()):
            raise MaskError("content_filter",
                            scrub(f"{subject}: {self.box_model_id} declined the photo (stopReason "
                                  f"{stop!r}). Fashion photos sometimes trip the filter; use "
                                  f"masker='local' for this image, or leave it out."))
        try:
            boxes = parse_boxes(text)
        except BoxParseError as exc:
            if exc.reason == "no_garment":
                raise MaskError("no_garment", f"{subject}: {self.box_model_id} found no {prompt!r} "
                                              f"({exc}). Check garment_prompt, or use the full image "
                                              f"for this one.") from None
            cut = " (cut off at maxTokens)" if stop == "max_tokens" else ""
            raise MaskError("bad_response" if exc.reason == "no_box" else "refused",
                            scrub(f"{subject}: {self.box_model_id} did not answer with a box{cut} "
                                  f"({exc}). Adjust box_prompt (WORKBOOK_BOX_PROMPT), or use "
                                  f"masker='local' for this image.")) from None
        return to_pixels(union(boxes), image.size)

    def mask(self, image: Image.Image, prompt: str, *, image_id: str | None = None,
             box: Box | None = None) -> np.ndarray:
        """bool HxW at the image's size, True = garment: the offline mask within the Nova box.
        A `box` given by the caller is used as is (no call)."""
        self._local.quality = None
        box = box or self.find_box(image, prompt, image_id=image_id)
        with self._inner_lock:  # Bedrock calls overlap across threads; the CPU part takes turns
            if self.inner_takes_box:
                mask = np.asarray(self.inner.mask(image, prompt, image_id=image_id, box=box), dtype=bool)
            else:
                mask = np.asarray(self.inner.mask(image, prompt, image_id=image_id), dtype=bool)
            quality = getattr(self.inner, "last_quality", None)
            left, top, right, bottom = grow(box, image.size)
            keep = np.zeros_like(mask)
            keep[top:bottom, left:right] = True
            mask = mask & keep
        if not mask.any():
            raise MaskError("no_garment", f"{self._subject(image_id)}: the offline mask has nothing "
                                          f"inside the box {box} that {self.box_model_id} drew for "
                                          f"{prompt!r}; check garment_prompt, or use masker='local'.")
        self._local.quality = quality
        return mask

    @property
    def last_quality(self) -> float | None:
        """The offline masker's quality score of this thread's last mask (None if it gives none):
        doubtful masks are flagged on the Bedrock track too."""
        return getattr(self._local, "quality", None)

    def __getstate__(self) -> dict:  # no client, no locks in a pickle
        state = super().__getstate__()
        state.pop("_inner_lock", None)
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._inner_lock = threading.Lock()
        self._local = threading.local()
