"""Image embeddings: one interface, local (ONNX Runtime) and Bedrock (Titan Multimodal).

An embedder turns images into unit-length float32 vectors whose cosine similarity says how
alike two images look to the model. Two implementations share the `Embedder` protocol:

- `LocalEmbedder` (helpers.localembedder, offline default): EfficientNet-Lite0 ImageNet features, the last conv
  layer mean-pooled to 1280 numbers, joined by a 64-number colour histogram (1344 in all; see
  `colour_histogram` for why). The network runs with ONNX Runtime because eager torch is 5-10x
  slower on small CPUs; the ONNX file is committed (built by `make models` from the packaged
  weights, checked against its sha256 at load: helpers.onnxmodels), so the run time needs no torch.
- `helpers.bedrock.BedrockEmbedder` (Titan Multimodal Embeddings), chosen by
  `settings.backend == "bedrock"` and imported lazily so the offline path never needs boto3.

`embed_images` (helpers.embedstep, re-exported here) is the batch step: it embeds a dict of images
for one view ("full" photo or "garment" cut-out), cached by content, with progress and a cost
check, and returns the failures as a table instead of stopping.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from helpers.cache import Cache
from helpers.embedstep import VIEWS, EmbedRun, Embedder, ImageSource, embed_images, vector_key
from helpers.errors import FAILURE_COLUMNS, EmbedError
from helpers.localembedder import (CNN_DIM, COLOUR_AB_RANGE, COLOUR_DIM, COLOUR_STRIDE, COLOUR_WEIGHT, IMAGENET_MEAN,
                                   IMAGENET_STD, INPUT_SIZE, LOCAL_DIM, LOCAL_MODEL_ID, WHITE_LEVEL, LocalEmbedder,
                                   colour_histogram, combine, export_onnx, letterbox_batch, preprocess, weights_path)
from helpers.settings import load_settings


def get_embedder(settings=None) -> Embedder:
    """The embedder the settings choose: local ONNX (default) or Bedrock Titan Multimodal."""
    if settings is None:
        settings = load_settings()
    if settings.backend == "bedrock":
        from helpers.bedrock import BedrockEmbedder  # lazy: offline runs never import boto3

        return BedrockEmbedder(settings)
    return LocalEmbedder(settings.cache_dir)


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
    """A 2-D PCA projection for plotting: the vectors, centred, on the two directions of most
    variance (exact SVD with numpy; each direction's sign makes its largest loading positive, so
    the same vectors always give the same picture). Why not scikit-learn: importing it took 0.9 s
    of a notebook kernel, and its default solver for a few hundred vectors is randomised."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    directions = vt[:2]
    directions = directions * np.sign(directions[np.arange(len(directions)), np.abs(directions).argmax(axis=1)])[:, None]
    return x @ directions.T


__all__ = ["EmbedError", "Embedder", "LocalEmbedder", "EmbedRun", "get_embedder", "embed_images",
           "embed_catalog", "export_onnx", "nearest", "neighbour_share", "project_2d", "preprocess", "vector_key",
           "colour_histogram", "combine", "letterbox_batch",
           "LOCAL_MODEL_ID", "LOCAL_DIM", "CNN_DIM", "COLOUR_DIM", "COLOUR_WEIGHT", "VIEWS",
           "COLOUR_AB_RANGE", "COLOUR_STRIDE", "IMAGENET_MEAN", "IMAGENET_STD", "INPUT_SIZE", "WHITE_LEVEL", "weights_path"]
