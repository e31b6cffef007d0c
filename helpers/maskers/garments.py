"""Which garments does the photo show? A presence head on the parser's class probabilities.

Why: the parser finds *where* the clothes are well (clothes IoU 0.86 on unseen photos) but
per pixel it often mistakes *which* garment they are (a skirt for a dress, a skirt's pixels split
between top and skirt). The 1,094 CCP photos with image-level tags (helpers.ccp.load_tags) say
which garments each photo shows without saying where: evidence for exactly that decision.

The head: per garment kind (dress, top, skirt, trousers) a logistic regression on a handful of
pooled features of the parser's H x W x 9 probabilities (features()). Its coefficients are a few
numbers in models/garments.json (trained by `python -m helpers.maskers.garments train`; no
scikit-learn at run time). The parser's select() uses it twice:
1. a prompt whose garment the head thinks absent (probability below the kind's threshold) is
   "no <garment> found", not a wrong garment cut out with confidence;
2. otherwise each garment pixel goes to the likeliest kind with every kind's probability
   weighted by the head's presence probability (the prompt's own kind by PROMPT_PRIOR): the image
   decides which garments are there, the pixels only where they are.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_PATH = Path(__file__).parent / "models" / "garments.json"
KINDS = ("dress", "top", "skirt", "trousers")
KIND_CLASS = {"dress": 3, "top": 4, "skirt": 5, "trousers": 6}   # the parser's class ids
GARMENT = (3, 4, 5, 6, 7)
FEATURE_NAMES = tuple(
    [f"share_{c}" for c in ("skin", "hair", "dress", "top", "skirt", "trousers", "other", "accessory")]
    + [f"garment_mean_{c}" for c in ("dress", "top", "skirt", "trousers", "other")]
    + [f"upper_{c}" for c in ("dress", "top", "skirt", "trousers")]
    + [f"lower_{c}" for c in ("dress", "top", "skirt", "trousers")]
    + ["garment_share"])


def features(probs: np.ndarray) -> np.ndarray:
    """Pooled features of H x W x 9 class probabilities: each class's share of the likeliest-class
    map, the mean garment-kind probabilities over the garment pixels, and the same in the upper
    and lower half of the garment (a dress spans both halves; a top and a skirt split them)."""
    probs = np.asarray(probs, np.float32)
    arg = probs.argmax(-1)
    shares = np.bincount(arg.ravel(), minlength=9)[1:9] / arg.size
    gprobs = probs[..., list(GARMENT)]          # a contiguous copy: its sums are fast
    garment = gprobs.sum(-1) > 0.5
    n = int(np.count_nonzero(garment))
    if n == 0:
        return np.concatenate([shares, np.zeros(5 + 4 + 4 + 1)]).astype(np.float32)
    cond = gprobs[garment] / np.maximum(gprobs[garment].sum(-1, keepdims=True), 1e-6)
    rows = np.nonzero(garment)[0]
    mid = np.median(rows)
    upper, lower = cond[rows <= mid, :4], cond[rows > mid, :4]
    up = upper.mean(0) if len(upper) else np.zeros(4)
    lo = lower.mean(0) if len(lower) else np.zeros(4)
    return np.concatenate([shares, cond.mean(0), up, lo, [n / garment.size]]).astype(np.float32)


@lru_cache(maxsize=4)
def _load(path: str) -> dict | None:
    p = Path(path)
    if not p.is_file():
        return None
    doc = json.loads(p.read_text())
    for kind in doc["kinds"].values():
        for key in ("coef", "mean", "scale"):
            kind[key] = np.asarray(kind[key], np.float32)
    return doc


def model(path: Path | str | None = None) -> dict | None:
    """The presence head (default: models/garments.json), or None when the file is missing."""
    return _load(str(MODEL_PATH if path is None else path))


def digest(path: Path | str | None = None) -> str:
    """A short hash of the head's file ("none" without one). Why: it is part of the parser's mask
    cache key, so that masks made with an older head are not served after the head is retrained
    (a `git pull` that brings a new models/garments.json recomputes the masks it changes)."""
    from helpers.onnxmodels import sha256_file

    p = Path(MODEL_PATH if path is None else path)
    return sha256_file(p)[:12] if p.is_file() else "none"


def _logit(x: np.ndarray, head: dict) -> float:
    z = float(((x - head["mean"]) / head["scale"]) @ head["coef"] + head["intercept"])
    return 1.0 / (1.0 + np.exp(-z))


def presence(probs: np.ndarray, doc: dict | None = None) -> dict[str, float]:
    """Probability that the photo shows each garment kind ({} without a model)."""
    doc = doc if doc is not None else model()
    if doc is None:
        return {}
    x = features(probs)
    return {kind: _logit(x, head) for kind, head in doc["kinds"].items()}


def predict(x: np.ndarray, head: dict) -> np.ndarray:
    """presence probabilities for a matrix of features (training and cross-validation)."""
    z = ((np.asarray(x, np.float32) - head["mean"]) / head["scale"]) @ head["coef"] + head["intercept"]
    return 1.0 / (1.0 + np.exp(-z))


def fit_head(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> dict:
    """One kind's logistic regression (scikit-learn, training time only) as plain numbers."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(0), x.std(0) + 1e-6
    lr = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
    return {"coef": lr.coef_[0].astype(np.float32), "intercept": float(lr.intercept_[0]),
            "mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}


def to_json(doc: dict) -> str:
    """The model document with arrays as lists (rounded: a few kB)."""
    def plain(v):
        if isinstance(v, np.ndarray):
            return [round(float(a), 6) for a in v]
        if isinstance(v, dict):
            return {k: plain(a) for k, a in v.items()}
        return v
    return json.dumps(plain(doc), indent=1) + "\n"


def select_kind(probs: np.ndarray, kind: str, rule: dict, present: dict[str, float] | None = None,
                garment: np.ndarray | None = None) -> np.ndarray:
    """The pixels of one garment kind (see the module docstring), as a bool mask of probs' size.

    rule: prior (the prompt's own weight), alpha (the other kinds' weight is their presence
    probability ** alpha: 0 ignores the head), gate (below this presence the kind is absent:
    an empty mask), min_part (parts smaller than this share of the largest part are dropped),
    fill (garment holes enclosed by the kind join it). garment: the garment pixels when the caller
    knows them (default: the garment classes' sum above 0.5)."""
    gprobs = probs[..., list(GARMENT)]
    if garment is None:
        garment = gprobs.sum(-1) > 0.5
    present = present or {}
    if kind in present and present[kind] < rule.get("gate", 0.0):
        return np.zeros(garment.shape, bool)
    weights = np.ones(len(GARMENT), np.float32)
    for other, p in present.items():
        weights[GARMENT.index(KIND_CLASS[other])] = max(p, 1e-3) ** rule.get("alpha", 0.0)
    weights[GARMENT.index(KIND_CLASS[kind])] = rule.get("prior", 1.0)
    pick = garment & (np.argmax(gprobs * weights, -1) == GARMENT.index(KIND_CLASS[kind]))
    if rule.get("fill"):
        pick |= fill_holes(pick) & garment
    if rule.get("min_part", 0.0) > 0 and pick.any():
        import cv2

        n, labels, stats, _ = cv2.connectedComponentsWithStats(pick.astype(np.uint8), connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = np.concatenate([[False], areas >= rule["min_part"] * areas.max()])
        pick = keep[labels]
    return pick


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with its enclosed holes filled (as scipy.ndimage.binary_fill_holes: background
    4-connected to the border stays), by one flood fill from the border: several times faster."""
    import cv2

    h, w = mask.shape
    canvas = np.zeros((h + 2, w + 2), np.uint8)
    canvas[1:-1, 1:-1] = mask
    cv2.floodFill(canvas, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 2, flags=4)
    return canvas[1:-1, 1:-1] != 2
