"""Issue 22 §1 experiment: is there a stronger garment-presence signal than the pooled parser features?

`python tools/garments_presence_cv.py ../shared/realdata/ccp-dev [--cache .cache/garments-probs]
[--out data/results/garments-presence-cv.json]`

Per tagged photo (the 1,094 CCP photos with image-level tags, never used to train the parser
network) the cache holds, beside the trainer's half-size probabilities (same npz, same format as
helpers.maskers.garments_train):
* `embed`: the committed embedder network's 1280-d pooled ImageNet features of the whole photo
  (helpers.localembedder, 224 x 224 letterboxed);
* `deep`: the parser network's own deeper features, averaged over the photo and its mirror image:
  the spatial mean of the stride-32 (320 ch) and stride-16 (112 ch) taps and of the decoder's
  stride-8 map (64 ch), fetched from the same network run as extra graph outputs.

Candidates, each an L2 logistic regression per kind on standardised features, the added block
multiplied by a weight w (a lighter block = a stronger L2 penalty on it: 1,280 equal-weight
columns drown the 22 pooled ones), (w, C) chosen by inner 4-fold CV (AUC) on the training folds,
scored by the same 5 outer folds (helpers.maskers.garments_train.folds) as the committed head
(C = 1 on the 22 pooled features, refitted here fold by fold):
  current  : the 22 pooled parser features (the committed head's recipe)
  A        : current + embedder 1280-d
  B        : current + parser deep 496-d
  A+B      : all three
Reported: out-of-fold AUC per kind with a 95 % bootstrap interval (photos resampled) and the
paired interval of the difference to `current`, and the gate trade-off on the presence alone
(false "present" when the tags say absent, at the gate that misses a target share of the
present photos, the gate from the other folds' out-of-fold presence).

Labels: `ccp` = helpers.ccp's grouping as committed; `jumper_is_dress` = the same with CCP's
"jumper" moved from top to dress (in CCP a "jumper" is the US pinafore / one-piece: 0 of its 37
tagged photos also carry "dress"; by eye nearly all are dresses), a sensitivity check of how
much of the "false cut-outs" are label grouping, not the head.
scikit-learn is used here only (training time).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from helpers import ccp  # noqa: E402
from helpers.maskers import garments as G  # noqa: E402
from helpers.maskers import garments_train as T  # noqa: E402

DEEP_TAPS = ("/net/_blocks.15/_project_conv/Conv_output_0", "/net/_blocks.10/Add_output_0",
             "/net/head8/head8.4/Relu_output_0")
GRID = ((0.05, 0.3), (0.05, 1.0), (0.1, 0.3), (0.1, 1.0), (0.2, 0.3), (1.0, 0.001), (1.0, 0.003), (1.0, 0.01))  # (w, C)
N_BASE = len(G.FEATURE_NAMES)
MISS_TARGETS = (0.01, 0.03, 0.05, 0.1)


def deep_session(threads: int = 1):
    """The committed parser network with its deeper taps as extra outputs (same probabilities)."""
    import onnx

    from helpers import onnxmodels

    m = onnx.load(str(onnxmodels.verified("parser-net")))
    for name in DEEP_TAPS:
        m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return onnxmodels.session(m.SerializeToString(), threads)


def extract(items, cache: Path) -> None:
    """Half-size probabilities (the trainer's cache) + `embed` + `deep` for each photo."""
    from PIL import Image

    from helpers.localembedder import LocalEmbedder
    from helpers.maskers import parser as P
    from helpers.maskers import parser_backbone as pb

    cache.mkdir(parents=True, exist_ok=True)
    masker, sess, emb = P.ParserMasker(threads=1), None, None
    t0 = time.time()
    for n, (image_id, path) in enumerate(items):
        out = cache / f"{image_id}.npz"
        if out.exists():
            with np.load(out) as z:
                if "embed" in z and "deep" in z:
                    continue
        sess = sess or deep_session()
        emb = emb or LocalEmbedder(threads=1)
        image = Image.open(path).convert("RGB")
        rgb = P._photo(image)
        x = pb.to_input(rgb)
        outs = sess.run(None, {"x": np.concatenate([x, x[..., ::-1]])})
        probs = outs[0]
        views = [probs[0], np.ascontiguousarray(probs[1][..., ::-1])]
        half = masker._working(views, P._small(rgb))[0]
        deep = np.concatenate([o.mean((2, 3)).mean(0) for o in outs[1:]]).astype(np.float32)
        embed = emb.cnn_features([image])[0].astype(np.float32)
        np.savez(out, half=np.clip(np.round(half * 255), 0, 255).astype(np.uint8), size=np.array(rgb.shape[:2]),
                 deep=deep, embed=embed)
        if n % 100 == 0:
            print(f"  {n}/{len(items)} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)


def load(cache: Path, ids) -> dict[str, np.ndarray]:
    cur, deep, embed = [], [], []
    for i in ids:
        with np.load(cache / f"{i}.npz") as z:
            cur.append(G.features(z["half"].astype(np.float32) / 255.0))
            deep.append(z["deep"])
            embed.append(z["embed"])
    cur, deep, embed = np.stack(cur), np.stack(deep), np.stack(embed)
    return {"current": cur, "A": np.hstack([cur, embed]), "B": np.hstack([cur, deep]),
            "A+B": np.hstack([cur, embed, deep])}


def fit(x, y, wc):
    """A head in G's format (coef, intercept, mean, scale): standardised features, the columns
    after the first N_BASE multiplied by w (folded into `scale`), L2 logistic regression with C."""
    from sklearn.linear_model import LogisticRegression

    w, c = wc
    mean, scale = x.mean(0), x.std(0) + 1e-6
    scale[N_BASE:] /= w
    lr = LogisticRegression(C=c, max_iter=3000).fit((x - mean) / scale, y)
    return {"coef": lr.coef_[0].astype(np.float32), "intercept": float(lr.intercept_[0]),
            "mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}


def choose(x, y, seed: int = 1) -> tuple[float, float]:
    """(w, C) by inner 4-fold CV (AUC) on the training photos."""
    from sklearn.metrics import roc_auc_score

    inner = np.random.default_rng(seed).permutation(len(y)) % 4
    best, best_auc = GRID[0], -1.0
    for wc in GRID:
        p = np.zeros(len(y))
        for f in range(4):
            tr, te = inner != f, inner == f
            p[te] = G.predict(x[te], fit(x[tr], y[tr], wc))
        auc = roc_auc_score(y, p)
        if auc > best_auc:
            best, best_auc = wc, auc
    return best


def cv(x, y, fold, tune: bool) -> tuple[np.ndarray, list, list[np.ndarray]]:
    """Out-of-fold presence, the (w, C) of each fold, and each fold's training-fold presence (gates)."""
    oof = np.zeros(len(y))
    chosen, train_present = [], []
    for f in range(T.FOLDS):
        tr, te = fold != f, fold == f
        wc = choose(x[tr], y[tr]) if tune else (1.0, 1.0)
        head = fit(x[tr], y[tr], wc)
        oof[te] = G.predict(x[te], head)
        chosen.append(list(wc))
        train_present.append(G.predict(x[tr], head)[y[tr]])
    return oof, chosen, train_present


def _bootstrap_ci(y, statistic, rounds: int, seed: int) -> list[float]:
    """95 % percentile interval of statistic(idx) over photos resampled with replacement (a
    resample with only one class has no AUC and is skipped)."""
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].all() or not y[idx].any():
            continue
        vals.append(statistic(idx))
    return [round(float(v), 4) for v in np.percentile(vals, [2.5, 97.5])]


def auc_ci(y, p, rounds: int = 1000, seed: int = 0) -> list[float]:
    from sklearn.metrics import roc_auc_score

    return _bootstrap_ci(y, lambda idx: roc_auc_score(y[idx], p[idx]), rounds, seed)


def paired_delta_ci(y, p_new, p_old, rounds: int = 1000, seed: int = 0) -> list[float]:
    """95 % interval of AUC(new) - AUC(old) over the same resampled photos."""
    from sklearn.metrics import roc_auc_score

    return _bootstrap_ci(y, lambda idx: roc_auc_score(y[idx], p_new[idx]) - roc_auc_score(y[idx], p_old[idx]),
                         rounds, seed)


def tradeoff(y, oof, fold) -> list[dict]:
    """Per miss target: the gate of each fold from the out-of-fold presence of the other folds'
    present photos (as garments_train's gate_tradeoff; a gate from the training fit itself would
    be too low for a candidate with many features, whose training-fold presence is overconfident);
    false present / missed rates."""
    rows = []
    for target in MISS_TARGETS:
        ok = y.astype(bool)
        gate = np.array([T.gate_for(oof[(fold != f) & ok], target) for f in fold])
        found = oof >= gate
        rows.append({"gate_miss_target": target,
                     "false_present_when_absent": round(float(found[~y].mean()), 4),
                     "false_present_ci95": T.boot(found[~y].astype(float)),
                     "missed_when_present": round(float((~found[y]).mean()), 4),
                     "missed_ci95": T.boot((~found[y]).astype(float))})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/garments_presence_cv.py")
    ap.add_argument("dir", type=Path)
    ap.add_argument("--cache", type=Path, default=Path(".cache/garments-probs"))
    ap.add_argument("--out", type=Path, default=Path("data/results/garments-presence-cv.json"))
    ap.add_argument("--extract-only", action="store_true")
    args = ap.parse_args(argv)
    from sklearn.metrics import roc_auc_score

    tags = ccp.load_tags(args.dir)
    extract(list(zip(tags.image_id, tags.image_path)), args.cache / "tagged")
    if args.extract_only:
        return 0
    xs = load(args.cache / "tagged", tags.image_id)
    labels = {"ccp": tags[list(G.KINDS)].to_numpy(bool)}
    jumper = tags.tags.apply(lambda t: "jumper" in t).to_numpy()
    y2 = labels["ccp"].copy()
    y2[:, 0] |= jumper
    y2[:, 1] = tags.tags.apply(lambda t: any(a in ccp.TOP and a != "jumper" for a in t)).to_numpy()
    labels["jumper_is_dress"] = y2
    fold = T.folds(len(tags))
    res = {}
    for lab, y in labels.items():
        res[lab], oofs = {}, {}
        for name, x in xs.items():
            res[lab][name] = {}
            for k, kind in enumerate(G.KINDS):
                oof, chosen, _ = cv(x, y[:, k], fold, tune=name != "current")
                oofs[name, kind] = oof
                r = {"auc": round(float(roc_auc_score(y[:, k], oof)), 4), "auc_ci95": auc_ci(y[:, k], oof),
                     "w_C_by_fold": chosen, "gate_tradeoff": tradeoff(y[:, k], oof, fold)}
                if name != "current":
                    r["auc_minus_current_ci95"] = paired_delta_ci(y[:, k], oof, oofs["current", kind])
                res[lab][name][kind] = r
                print(lab, name, kind, r["auc"], r["auc_ci95"], r.get("auc_minus_current_ci95"), chosen,
                      file=sys.stderr, flush=True)
    doc = {"what": "garment-presence candidates, 5-fold CV on the 1,094 CCP photos with image-level tags "
                   "(folds of helpers.maskers.garments_train); presence alone (no pixel rule)",
           "photos": len(tags),
           "present": {lab: {kind: int(y[:, k].sum()) for k, kind in enumerate(G.KINDS)} for lab, y in labels.items()},
           "candidates": {"current": "22 pooled parser features, C = 1 (the committed recipe)",
                          "A": "current + embedder 1280-d (effnet-lite0-features.onnx, whole photo)",
                          "B": "current + parser deep taps pooled (s32 320 + s16 112 + decoder s8 64)",
                          "A+B": "all"},
           "labels": {"ccp": "helpers.ccp grouping as committed",
                      "jumper_is_dress": "CCP 'jumper' (a pinafore / one-piece) counted as dress, not top"},
           "grid_w_C": [list(g) for g in GRID], "results": res,
           "command": "python tools/garments_presence_cv.py ../shared/realdata/ccp-dev"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
