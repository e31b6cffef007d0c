"""The batch step of embedding: `embed_images` embeds a dict of images for one view ("full" photo or
"garment" cut-out) with any embedder, cached by content (`vector_key`), with progress and a cost
check, and returns the failures as a table instead of stopping.

Why a module of its own (re-exported by helpers.embedding): helpers.embedding also chooses the
embedder (`get_embedder`, which imports the Bedrock adapters), and the Bedrock batch job
(helpers.bedrock.batch) is built on this step; with both in one module the two imported each other.
A Bedrock embedder with many uncached images runs its own batch job (`embed_batch_job`), so this
module imports no Bedrock code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, Union, runtime_checkable

import numpy as np
import pandas as pd
from PIL import Image

from helpers import cost
from helpers.cache import Cache, content_key
from helpers.errors import FAILURE_COLUMNS, EmbedError
from helpers.images import open_image
from helpers.localembedder import COLOUR_AB_RANGE, COLOUR_STRIDE, COLOUR_WEIGHT, INPUT_SIZE, WHITE_LEVEL, LocalEmbedder
from helpers.settings import load_settings


@runtime_checkable
class Embedder(Protocol):
    """embed(images) -> float32 (n, dim), each row L2-normalised."""

    model_id: str          # names the vectors; collections are named from model_id + dim
    dim: int
    price_per_call: float  # dollars per uncached image (0 for local)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...


ImageSource = Union[Image.Image, Path, str, bytes]
VIEWS = ("full", "garment")


@dataclass
class EmbedRun:
    """What one batch step produced: vectors for `ids` (row i = ids[i]) and the failures.

    `calls` counts images sent to the model (cache misses), `cached` the cache hits.
    """

    view: str
    model_id: str
    dim: int
    ids: list[str]
    vectors: np.ndarray
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILURE_COLUMNS))
    calls: int = 0
    cached: int = 0

    def as_dict(self) -> dict[str, np.ndarray]:
        """{image_id: vector}, handy for looking one up."""
        return dict(zip(self.ids, self.vectors))


def vector_key(source: ImageSource, embedder: Embedder, view: str) -> str:
    """The cache key of one image's vector.

    Files and bytes are keyed on their encoded bytes (cheap: no decode on a cache hit).
    In-memory images - the garment cut-outs - are keyed on their decoded pixels, mode and
    size: a cut-out's pixels already depend on the photo, the mask and every cut parameter,
    so a new mask or padding gives a new key without this module knowing how cuts are made.
    """
    params: dict[str, Any] = {"dim": int(embedder.dim), "view": view}
    if isinstance(embedder, LocalEmbedder):
        params.update(input=INPUT_SIZE, frame="letterbox-white", colour_weight=COLOUR_WEIGHT,
                      white=WHITE_LEVEL, ab_range=list(COLOUR_AB_RANGE), colour_stride=COLOUR_STRIDE)
    if isinstance(source, Image.Image):
        params.update(pixels=source.mode, size=list(source.size))
        data = source.tobytes()
    elif isinstance(source, bytes):
        data = source
    else:
        data = Path(source).read_bytes()
    return content_key(data, embedder.model_id, **params)


def _load(source: ImageSource, settings) -> Image.Image:
    if isinstance(source, Image.Image):
        return source.convert("RGB") if source.mode != "RGB" else source

    data = source if isinstance(source, bytes) else Path(source)
    return open_image(data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)


def embed_images(images: Mapping[str, ImageSource], embedder: Embedder, *, view: str,
                 cache: Cache | None = None, settings=None, progress: bool = True,
                 failures: pd.DataFrame | None = None, batch: bool = True) -> EmbedRun:
    """Embed `images` ({image_id: PIL image | path | bytes}) for one view, cached by content.

    Order of work: key every image (reading files, not decoding them), count cache misses,
    show and check the cost of the misses (priced embedders only), then embed the misses in
    batches with a progress bar, storing each vector as soon as its batch returns (a killed
    run resumes). Unreadable images and images the model refuses become rows of
    `failures` (image_id, reason, message); pass earlier failures (e.g. "no_garment" from
    masking) in `failures` and they are carried into the result. With `batch` (the default), a
    Bedrock embedder whose model supports batch inference and that has more than
    settings.batch_threshold misses embeds them through one batch job (same cache keys).
    """
    from helpers.progress import tqdm

    if view not in VIEWS:
        raise ValueError(f"view={view!r}: use one of {VIEWS}")
    if settings is None:
        settings = load_settings()
    cache = cache or Cache(settings.cache_dir)
    failed: list[dict[str, str]] = [] if failures is None else failures[FAILURE_COLUMNS].to_dict("records")
    vectors: dict[str, np.ndarray] = {}
    todo: list[tuple[str, str, ImageSource]] = []
    for image_id, source in images.items():
        try:
            key = vector_key(source, embedder, view)
        except OSError as exc:
            failed.append({"image_id": image_id, "reason": "unreadable",
                           "message": f"{source}: cannot be read ({exc.strerror or exc}); check the path"})
            continue
        hit = cache.get_array("vectors", key)
        if hit is not None and hit.shape == (embedder.dim,):
            vectors[image_id] = hit
        else:
            todo.append((image_id, key, source))
    cached = len(vectors)
    if batch and getattr(embedder, "supports_batch", False) and len(todo) > settings.batch_threshold:
        # A Bedrock embedder with many misses: one batch job, started by the embedder itself
        # (BedrockEmbedder.embed_batch_job -> helpers.bedrock.batch), so this module needs no Bedrock code.
        return embedder.embed_batch_job(images, view=view, cache=cache, settings=settings,
                                        progress=progress, failures=failures)
    if todo and embedder.price_per_call > 0:
        _check_cost(len(todo), cached, embedder, settings, view)

    calls = 0
    batch_size = int(getattr(embedder, "batch_size", 32) or 32)
    with tqdm(total=len(todo), desc=f"embed {view}", unit="img", disable=not progress or not todo) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            loaded = []
            for image_id, key, source in batch:
                try:
                    loaded.append((image_id, key, _load(source, settings)))
                except Exception as exc:  # ImageError or a PIL decode error: record, go on
                    failed.append({"image_id": image_id, "reason": getattr(exc, "reason", "unreadable"),
                                   "message": str(exc)})
            got, errors, n = _embed_batch(embedder, loaded)
            calls += n
            for image_id, key, vec in got:
                cache.put_array("vectors", key, vec)
                vectors[image_id] = vec
            failed.extend(errors)
            bar.update(len(batch))

    ids = [i for i in images if i in vectors]
    matrix = (np.stack([vectors[i] for i in ids]).astype(np.float32) if ids
              else np.zeros((0, embedder.dim), dtype=np.float32))
    table = pd.DataFrame(failed, columns=FAILURE_COLUMNS).drop_duplicates("image_id", keep="last")
    return EmbedRun(view=view, model_id=embedder.model_id, dim=embedder.dim, ids=ids,
                    vectors=matrix, failures=table.reset_index(drop=True), calls=calls, cached=cached)


def _embed_batch(embedder: Embedder, loaded: list) -> tuple[list, list, int]:
    """Embed one batch; if the batch fails, embed its images one by one to find the culprit."""
    if not loaded:
        return [], [], 0
    try:
        vecs = _checked(embedder, embedder.embed([img for _, _, img in loaded]), len(loaded))
        return [(i, k, v) for (i, k, _), v in zip(loaded, vecs)], [], len(loaded)
    except EmbedError as exc:
        if len(loaded) == 1:
            return [], [{"image_id": loaded[0][0], "reason": exc.reason, "message": str(exc)}], 1
    got, errors, calls = [], [], len(loaded)
    for item in loaded:
        g, e, n = _embed_batch(embedder, [item])
        got += g
        errors += e
        calls += n
    return got, errors, calls


def _checked(embedder: Embedder, vecs: np.ndarray, n: int) -> np.ndarray:
    vecs = np.asarray(vecs, dtype=np.float32)
    if vecs.shape != (n, embedder.dim):
        raise RuntimeError(f"{embedder!r} returned shape {vecs.shape}, expected {(n, embedder.dim)}")
    return vecs


def _check_cost(n_calls: int, n_cached: int, embedder: Embedder, settings, view: str) -> None:
    """Show what the uncached calls will cost and stop before spending over the budget."""
    est = cost.estimate(n_calls + n_cached, n_cached, embedder.price_per_call,
                        f"{view} embeddings ({embedder.model_id})")
    print(est)
    cost.check_budget(est, settings.max_spend_usd)
