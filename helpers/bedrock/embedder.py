"""The Bedrock embedder: Titan Multimodal Embeddings / Nova Multimodal Embeddings behind the `Embedder` protocol."""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
from PIL import Image

from helpers.errors import EmbedError, SettingsError
from helpers.bedrock.client import (BATCH_MODELS, EMBED_DIMS_BY_MODEL, EMBED_MAX_SIDE, NOVA_EMBED, BedrockModel,
                                    _is_content_filter, scrub)
from helpers.bedrock.requests import embed_request, nova_embed_request, prepare_image
from helpers.settings import EMBED_MODEL_IDS, Settings


class BedrockEmbedder(BedrockModel):
    """The `Embedder` protocol on Titan Multimodal Embeddings G1 (or, unverified, Nova).

    `model_id` + `dim` name the vectors (collections are named from both). Vectors come
    back float32 and L2-normalised. Titan takes one image per call: `embed` runs a bounded
    thread pool (settings.concurrency) and raises the first EmbedError. The vectors of the
    last few hundred requests are remembered (keyed on the exact request body), so when a
    caller re-embeds a failed batch image by image to find the culprit, the images that
    succeeded are not paid for twice. `batch_size` tells batch callers a good batch length.
    """

    _error_cls = EmbedError
    _MEMO_SIZE = 512

    def __init__(self, settings: Settings, *, client: Any = None, purpose: str = "GENERIC_INDEX"):
        model_id = settings.embed_model_id
        if model_id not in EMBED_MODEL_IDS or model_id not in EMBED_DIMS_BY_MODEL:
            raise SettingsError(f"embed_model_id={model_id!r} is not a supported embedding model; "
                                f"choose one of {', '.join(EMBED_DIMS_BY_MODEL)}")
        if settings.embed_dim not in EMBED_DIMS_BY_MODEL[model_id]:
            raise SettingsError(f"embed_dim={settings.embed_dim} is not offered by {model_id}; "
                                f"choose one of {EMBED_DIMS_BY_MODEL[model_id]}")
        super().__init__(settings, model_id, client)
        self.dim = settings.embed_dim
        self.price_per_call = settings.embed_price_usd
        self.purpose = purpose
        self.batch_size = 4 * settings.concurrency
        # embed_images sends more than settings.batch_threshold misses to one batch job (helpers.bedrock.batch)
        self.supports_batch = model_id in BATCH_MODELS
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()

    def embed_batch_job(self, images, *, view: str, **kw):
        """`helpers.embedstep.embed_images` hands many uncached images here: one batch inference
        job (helpers.bedrock.batch.embed_images_batched; keyword arguments as there). Why a
        method: the batch step then never imports the Bedrock modules, which are built on it."""
        from helpers.bedrock.batch import embed_images_batched

        return embed_images_batched(images, self, view=view, **kw)

    def request_body(self, image: Image.Image) -> dict:
        """The exact body sent for one image (downscaled to the model's limits)."""
        prepared = prepare_image(image, max_side=EMBED_MAX_SIDE)
        if self.model_id == NOVA_EMBED:
            return nova_embed_request(image_b64=prepared.b64, image_format=prepared.format,
                                      dim=self.dim, purpose=self.purpose)
        return embed_request(image_b64=prepared.b64, dim=self.dim)

    def text_request_body(self, text: str) -> dict:
        if not text.strip():
            raise ValueError("a text query must not be empty")
        if self.model_id == NOVA_EMBED:
            return nova_embed_request(text=text, dim=self.dim, purpose="GENERIC_RETRIEVAL")
        return embed_request(text=text, dim=self.dim)

    def _vector(self, data: dict, image_id: str | None) -> np.ndarray:
        subject = self._subject(image_id)
        if data.get("message"):
            low = str(data["message"]).lower()
            reason = "content_filter" if _is_content_filter(low) else "bad_response"
            raise EmbedError(reason, scrub(f"{subject}: {self.model_id} answered with message "
                                           f"{data['message']!r}; leave this item out or use "
                                           f"backend='local'."))
        if self.model_id == NOVA_EMBED:
            items = data.get("embeddings")
            vec = items[0].get("embedding") if isinstance(items, list) and items and \
                isinstance(items[0], dict) else None
            key = "embeddings[0].embedding"
        else:
            vec, key = data.get("embedding"), "embedding"
        if not isinstance(vec, list):
            raise EmbedError("bad_response", f"{subject}: the response from {self.model_id} has no "
                                             f"{key!r} (keys present: {', '.join(sorted(data)) or 'none'}).")
        arr = np.asarray(vec, dtype=np.float64)
        if arr.shape != (self.dim,):
            raise EmbedError("bad_response", f"{subject}: {self.model_id} returned {arr.size} numbers, "
                                             f"expected {self.dim} (embed_dim).")
        norm = float(np.linalg.norm(arr))
        if not np.isfinite(norm) or norm == 0.0:
            raise EmbedError("bad_response", f"{subject}: {self.model_id} returned a zero or "
                                             f"non-finite vector.")
        return (arr / norm).astype(np.float32)

    def _embed_body(self, body: dict, image_id: str | None) -> np.ndarray:
        key = hashlib.sha256(json.dumps(body).encode()).hexdigest()
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key].copy()
        vec = self._vector(self.invoke(body, image_id=image_id), image_id)
        with self._lock:
            self._memo[key] = vec
            while len(self._memo) > self._MEMO_SIZE:
                self._memo.popitem(last=False)
        return vec.copy()

    def embed_one(self, image: Image.Image, *, image_id: str | None = None) -> np.ndarray:
        """One image -> float32 (dim,), L2-normalised."""
        return self._embed_body(self.request_body(image), image_id)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """float32 (n, dim), L2-normalised; calls run concurrently (settings.concurrency)."""
        return self._many(self.embed_one, list(images))

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Text queries ("red dress with white dots") in the same space as the images."""
        if isinstance(texts, str):
            texts = [texts]

        def one(text: str) -> np.ndarray:
            return self._embed_body(self.text_request_body(text), None)
        return self._many(one, list(texts))

    def _many(self, fn, items: list) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        workers = min(self._settings.concurrency, len(items))
        if workers <= 1:
            rows = [fn(x) for x in items]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                rows = list(pool.map(fn, items))
        return np.stack(rows).astype(np.float32, copy=False)
