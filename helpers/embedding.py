"""Image embeddings: one interface, local (ONNX Runtime) and Bedrock (Titan Multimodal).

An embedder turns images into unit-length float32 vectors whose cosine similarity says how
alike two images look to the model. Two implementations share the `Embedder` protocol:

- `LocalEmbedder` (helpers.localembedder, offline default): EfficientNet-Lite0 ImageNet features, the last conv
  layer mean-pooled to 1280 numbers, joined by a 64-number colour histogram (1344 in all; see
  `colour_histogram` for why). The network runs with ONNX Runtime because eager torch is 5-10x
  slower on small CPUs; the ONNX file is exported once from the packaged weights and cached
  under a key made from the weights' sha256, so a changed weights file re-exports.
- `helpers.bedrock.BedrockEmbedder` (Titan Multimodal Embeddings), chosen by
  `settings.backend == "bedrock"` and imported lazily so the offline path never needs boto3.

`embed_images` is the batch step: it embeds a dict of images for one view ("full" photo or
"garment" cut-out), cached by content, with progress and a cost check, and returns the
failures as a table instead of stopping.
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
from helpers.localembedder import (CNN_DIM, COLOUR_AB_RANGE, COLOUR_DIM, COLOUR_STRIDE, COLOUR_WEIGHT, IMAGENET_MEAN,
                                   IMAGENET_STD, INPUT_SIZE, LOCAL_DIM, LOCAL_MODEL_ID, WHITE_LEVEL, LocalEmbedder,
                                   colour_histogram, combine, export_onnx, letterbox_batch, preprocess, weights_path)
from helpers.settings import load_settings


@runtime_checkable
class Embedder(Protocol):
    """embed(images) -> float32 (n, dim), each row L2-normalised."""

    model_id: str          # names the vectors; collections are named from model_id + dim
    dim: int
    price_per_call: float  # dollars per uncached image (0 for local)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...




def get_embedder(settings=None) -> Embedder:
    """The embedder the settings choose: local ONNX (default) or Bedrock Titan Multimodal."""
    if settings is None:
        settings = load_settings()
    if settings.backend == "bedrock":
        from helpers.bedrock import BedrockEmbedder  # lazy: offline runs never import boto3

        return BedrockEmbedder(settings)
    return LocalEmbedder(settings.cache_dir)


# --------------------------------------------------------------------------- batch step

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
        # A Bedrock embedder with many misses: one batch job (helpers.bedrock.batch; boto3 only then).
        from helpers.bedrock.batch import embed_images_batched

        return embed_images_batched(images, embedder, view=view, cache=cache, settings=settings,
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


def embed_catalog(table: pd.DataFrame, cutouts: Mapping[str, ImageSource], embedder: Embedder | None = None,
                  *, settings=None, cache: Cache | None = None, mask_failures: pd.DataFrame | None = None,
                  progress: bool = True) -> dict[str, EmbedRun]:
    """Embed every catalogue image twice: the full photo and its garment cut-out.

    `cutouts` maps image_id -> cut-out (from masking + cutting). Images without a cut-out are
    garment-view failures: their reason comes from `mask_failures` (image_id, reason, message)
    when given (e.g. "no_garment", "content_filter"), else "no_cutout".
    Returns {"full": EmbedRun, "garment": EmbedRun}.
    """
    if settings is None:
        settings = load_settings()
    embedder = embedder or get_embedder(settings)
    cache = cache or Cache(settings.cache_dir)
    full = embed_images(dict(zip(table["image_id"], table["image_path"])), embedder, view="full",
                        cache=cache, settings=settings, progress=progress)
    missing = [i for i in table["image_id"] if i not in cutouts]
    known = (mask_failures.set_index("image_id") if mask_failures is not None and len(mask_failures)
             else pd.DataFrame(columns=["reason", "message"]))
    prior = pd.DataFrame([{"image_id": i,
                           "reason": known.loc[i, "reason"] if i in known.index else "no_cutout",
                           "message": known.loc[i, "message"] if i in known.index
                           else "no garment cut-out was made for this image"} for i in missing],
                         columns=FAILURE_COLUMNS)
    garment = embed_images({i: cutouts[i] for i in table["image_id"] if i in cutouts}, embedder,
                           view="garment", cache=cache, settings=settings, progress=progress,
                           failures=prior)
    return {"full": full, "garment": garment}


# --------------------------------------------------------------------------- looking at a space

def nearest(vectors: np.ndarray, query: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine neighbours of row `query` among the other rows: (row indices, scores)."""
    sims = vectors @ vectors[query]
    sims[query] = -np.inf
    order = np.argsort(-sims)[:k]
    return order, sims[order]


def neighbour_share(vectors: np.ndarray, labels: Mapping[str, Sequence[Any]]) -> dict[str, float]:
    """How often an image's nearest other image shares each label (e.g. item_id, shoot_id).

    Why: a space that groups by shoot answers "same room, same light"; one that groups by
    item answers "same dress". This one number per label says which a space does.
    """
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nn = sims.argmax(axis=1)
    return {name: float(np.mean(np.asarray(vals)[nn] == np.asarray(vals))) for name, vals in labels.items()}


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """A 2-D PCA projection (scikit-learn) for plotting: the two directions of most variance."""
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=0).fit_transform(np.asarray(vectors, dtype=np.float64))


__all__ = ["EmbedError", "Embedder", "LocalEmbedder", "EmbedRun", "get_embedder", "embed_images",
           "embed_catalog", "export_onnx", "nearest", "neighbour_share", "project_2d", "preprocess", "vector_key",
           "colour_histogram", "combine", "letterbox_batch",
           "LOCAL_MODEL_ID", "LOCAL_DIM", "CNN_DIM", "COLOUR_DIM", "COLOUR_WEIGHT", "VIEWS",
           "COLOUR_AB_RANGE", "COLOUR_STRIDE", "IMAGENET_MEAN", "IMAGENET_STD", "INPUT_SIZE", "WHITE_LEVEL", "weights_path"]
