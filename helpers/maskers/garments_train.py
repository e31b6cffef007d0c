"""Train the garment-presence head and choose the per-prompt rule by cross-validation.

`python -m helpers.maskers.garments_train DIR [--probs CACHE] [--out models/garments.json]
[--results data/results] [--weights NPZ]` (--weights: judge another parser network, a `masks train`
run; tools/parser_candidates.py does that for several networks and compares them)

Honest protocol (the parser network was trained on the pixel-labelled photos with number % 5 != 0):
* the presence head is trained on the 1,094 tagged photos (never seen by the network); its
  figures (false cut-outs on photos whose tags say the garment is absent, present garments
  "not found") come from 5 folds of those photos: each fold scored by a head trained on the other 4;
* the pixel rule (prompt prior, presence weight alpha, hole filling, small parts) is chosen by
  5 folds inside the 100 held-out pixel-labelled photos (number % 5 == 0): chosen on 4, scored on
  the 5th, rotated; the held-out IoU figures are those outer-fold scores (the head used there is
  trained on all tagged photos: no overlap). Every figure has a 95 % bootstrap interval.
* the presence gate of each kind: the largest threshold that misses at most GATE_MISS of the
  tagged photos showing the kind (chosen on the training folds).
* `--tagged-half odd`: the head is trained and scored on the odd-numbered tagged photos only (for
  a network that saw pseudo-labels of the even ones, helpers.maskers.parser_pseudo).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from helpers import ccp
from helpers.errors import MissingExtra
from helpers.extras import require
from helpers.maskers import garments as G

PROMPTS = ("dress", "top", "skirt", "trousers", "clothes")
GRID = {"prior": (1.0, 2.0, 4.0, 8.0), "alpha": (0.0, 0.5, 1.0), "fill": (False, True), "min_part": (0.0, 0.15)}
BASELINE_RULES = {"dress": {"prior": 6.0}, "top": {}, "skirt": {}, "trousers": {}}   # p3's select()
GATE_MISS = {"dress": 0.03, "top": 0.01, "skirt": 0.03, "trousers": 0.02}
MIN_SHARE = 0.002   # as helpers.maskers.parser
FOLDS, SEED = 5, 0
CURVE_MISS = (0.01, 0.03, 0.05, 0.1, 0.2, 0.3)   # the gate's trade-off, reported


def half_probs(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    with np.load(path) as z:
        return z["half"].astype(np.float32) / 255.0, tuple(int(v) for v in z["size"])


def compute_probs(root: Path, items, cache: Path, weights: Path | None = None) -> None:
    """The parser's half-size refined probabilities of each photo, cached as uint8 npz; `weights`:
    another network's tuned weights (a `masks train` run) instead of the committed ones."""
    from PIL import Image

    from helpers.maskers import parser as P

    masker = None
    cache.mkdir(parents=True, exist_ok=True)
    for n, (image_id, path) in enumerate(items):
        out = cache / f"{image_id}.npz"
        if out.exists():
            continue
        masker = masker or P.ParserMasker(weights_path=weights or P.WEIGHTS_PATH)
        rgb = P._photo(Image.open(path))
        half = masker._working(masker._views(rgb), P._small(rgb))[0]
        np.savez(out, half=np.clip(np.round(half * 255), 0, 255).astype(np.uint8), size=np.array(rgb.shape[:2]))
        if n % 100 == 0:
            print(f"  probabilities {n}/{len(items)}", file=sys.stderr, flush=True)


def full_mask(small: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """The half-size pick at the photo's size, or None when it is below the parser's MIN_SHARE."""
    import cv2

    h, w = size
    mask = cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
    return None if mask.sum() < max(64, MIN_SHARE * mask.size) else mask


def iou(a: np.ndarray | None, b: np.ndarray) -> float:
    """IoU; -0.0 marks "not found" (no mask: counted as IoU 0, told apart from a wrong mask)."""
    if a is None:
        return -0.0
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


def pick(probs: np.ndarray, prompt: str, rule: dict, present: dict) -> np.ndarray:
    if prompt == "clothes":
        return probs[..., list(G.GARMENT)].sum(-1) > 0.5
    return G.select_kind(probs, prompt, rule, present)


def small_truth(truth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(truth.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) > 0.5


def small_iou(mask: np.ndarray, truth: np.ndarray) -> float:
    if mask.sum() < max(16, MIN_SHARE * mask.size):
        return 0.0
    u = np.logical_or(mask, truth).sum()
    return float(np.logical_and(mask, truth).sum() / u) if u else 1.0


def boot(values, rounds: int = 2000) -> list[float]:
    from helpers.metrics import bootstrap_mean

    v = np.asarray(values, float)
    return [round(x, 4) for x in bootstrap_mean(v, rounds=rounds)["ci95"]] if len(v) else [None, None]


def folds(n: int) -> np.ndarray:
    return np.random.default_rng(SEED).permutation(n) % FOLDS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m helpers.maskers.garments_train")
    ap.add_argument("dir", type=Path, help="the CCP tree (photos/, annotations/pixel-level, annotations/image-level)")
    ap.add_argument("--probs", type=Path, default=Path(".cache/garments-probs"),
                    help="cache of the parser's probabilities (heldout/, tagged/)")
    ap.add_argument("--out", type=Path, default=G.MODEL_PATH)
    ap.add_argument("--results", type=Path, default=Path("data/results"))
    ap.add_argument("--cached-only", action="store_true", help="a quick look: only the photos already cached")
    ap.add_argument("--dump", type=Path, default=None,
                    help="also write the tagged photos' out-of-fold presence and found flags (npz; for paired comparisons)")
    ap.add_argument("--tagged-half", choices=("even", "odd"), default=None,
                    help="train and score the head on this half of the tagged photos only (the network was "
                         "trained on pseudo-labels of the other half: helpers.maskers.parser_pseudo)")
    ap.add_argument("--weights", type=Path, default=None,
                    help="the parser network to judge: tuned weights from `masks train` (default: the committed "
                         "network; others need the train extra). Give each network its own --probs cache")
    args = ap.parse_args(argv)
    try:
        require("sklearn", "train", "training the garment-presence head")
    except MissingExtra as err:   # one line, not an ImportError deep inside the run
        print(err, file=sys.stderr)
        return 2
    t0 = time.time()
    tags = ccp.load_tags(args.dir)
    if args.tagged_half:
        from helpers.maskers.parser_pseudo import half_of

        tags = half_of(tags, args.tagged_half)
    held = ccp.load_ccp(args.dir, "heldout")
    if args.cached_only:
        tags = tags[[(args.probs / "tagged" / f"{i}.npz").exists() for i in tags.image_id]].reset_index(drop=True)
    compute_probs(args.dir, list(zip(tags.image_id, tags.image_path)), args.probs / "tagged", args.weights)
    compute_probs(args.dir, list(zip(held.image_id, held.image_path)), args.probs / "heldout", args.weights)

    # ---- tagged photos: features, presence head by 5 folds
    tprobs = [half_probs(args.probs / "tagged" / f"{i}.npz") for i in tags.image_id]
    x = np.stack([G.features(p) for p, _ in tprobs])
    y = tags[list(G.KINDS)].to_numpy(bool)
    fold = folds(len(tags))
    oof = np.zeros(y.shape)
    gates_by_fold = {}
    for f in range(FOLDS):
        tr, te = fold != f, fold == f
        gates_by_fold[f] = {}
        for k, kind in enumerate(G.KINDS):
            head = G.fit_head(x[tr], y[tr, k])
            p_tr = G.predict(x[tr], head)
            gates_by_fold[f][kind] = gate_for(p_tr[y[tr, k]], GATE_MISS[kind])
            oof[te, k] = G.predict(x[te], head)
    from sklearn.metrics import roc_auc_score

    heads = {kind: G.fit_head(x, y[:, k]) for k, kind in enumerate(G.KINDS)}
    p_all = {kind: G.predict(x, heads[kind]) for kind in G.KINDS}
    gates = {kind: gate_for(p_all[kind][y[:, k]], GATE_MISS[kind]) for k, kind in enumerate(G.KINDS)}
    auc = {kind: round(float(roc_auc_score(y[:, k], oof[:, k])), 4) for k, kind in enumerate(G.KINDS)}
    print("presence AUC (5-fold, tagged):", auc, "gates:", gates, file=sys.stderr)

    # ---- held-out pixel photos: the rule by 5 folds
    hprobs = [half_probs(args.probs / "heldout" / f"{i}.npz") for i in held.image_id]
    hfeat = np.stack([G.features(p) for p, _ in hprobs])
    hpresent = [{kind: float(G.predict(hfeat[i:i + 1], heads[kind])[0]) for kind in G.KINDS} for i in range(len(held))]
    combos = [dict(zip(GRID, v)) for v in itertools.product(*GRID.values())]
    results, chosen = {}, {}
    for prompt in PROMPTS:
        cases = []
        for i, image_id in enumerate(held.image_id):
            truth = ccp.truth_mask(args.dir, image_id, prompt)
            if truth.mean() >= 0.02:
                cases.append((i, truth))
        if prompt == "clothes":
            scores = [iou(full_mask(pick(hprobs[i][0], prompt, {}, {}), hprobs[i][1]), t) for i, t in cases]
            results[prompt] = {"heldout_cv": summary(scores, "the clothes rule is unchanged (no choice)"),
                               "per_image": [{"image": held.image_id[i], "iou": round(s, 4)} for (i, _), s in zip(cases, scores)]}
            continue
        # choosing: IoU at the probabilities' (half) size, fast; scoring: at the photo's size
        small = [(i, small_truth(t, hprobs[i][0].shape[:2])) for i, t in cases]
        table = np.zeros((len(combos), len(cases)))
        for c, rule in enumerate(combos):
            r = dict(rule, gate=gates[prompt])
            for j, (i, truth) in enumerate(small):
                table[c, j] = small_iou(pick(hprobs[i][0], prompt, r, hpresent[i]), truth)
        hfold = folds(len(cases))
        outer = np.zeros(len(cases))
        picks = []
        for f in range(FOLDS):
            best = int(np.argmax(table[:, hfold != f].mean(1)))
            picks.append(combos[best])
            for j in np.nonzero(hfold == f)[0]:
                i, truth = cases[j]
                outer[j] = iou(full_mask(pick(hprobs[i][0], prompt, dict(combos[best], gate=gates[prompt]), hpresent[i]),
                                         hprobs[i][1]), truth)
        base = [iou(full_mask(pick(hprobs[i][0], prompt, BASELINE_RULES[prompt], {}), hprobs[i][1]), t) for i, t in cases]
        best_all = int(np.argmax(table.mean(1)))
        chosen[prompt] = dict(combos[best_all], gate=round(gates[prompt], 4))
        results[prompt] = {
            "heldout_cv": summary(outer.tolist(), "5 folds inside the 100 held-out photos: rule chosen on 4, scored on the 5th"),
            "heldout_p3_baseline": summary(base, "p3's select() on the same photos (no choice made on them)"),
            "fold_choices": picks, "chosen_on_all_100": chosen[prompt],
            "per_image": [{"image": held.image_id[i], "iou": round(float(outer[j]), 4), "p3": round(float(base[j]), 4)}
                          for j, (i, _) in enumerate(cases)],
        }
        print(f"{time.time() - t0:.0f}s", prompt, results[prompt]["heldout_cv"]["iou_mean"], results[prompt]["heldout_cv"]["ci95"],
              "p3", results[prompt]["heldout_p3_baseline"]["iou_mean"], file=sys.stderr)

    which = f" with {args.tagged_half} numbers" if args.tagged_half else ""
    # ---- tagged photos: false cut-outs and misses by 5 folds (head of the other folds, rule chosen above)
    dump = {"image_id": tags.image_id.to_numpy(str), "present": y, "presence_oof": oof, "fold": fold}
    for k, kind in enumerate(G.KINDS):
        # the gate only empties a mask: the rule without it, once per photo, then each gate exactly
        found0 = np.array([full_mask(pick(probs, kind, dict(chosen[kind], gate=0.0), {kk: float(oof[j, k2])
                           for k2, kk in enumerate(G.KINDS)}), size) is not None for j, (probs, size) in enumerate(tprobs)])
        base = np.array([full_mask(pick(probs, kind, BASELINE_RULES[kind], {}), size) is not None for probs, size in tprobs])
        curve = []
        for target in CURVE_MISS:
            gate = np.array([gate_for(oof_train_present(oof, y, fold, int(fold[j]), k), target) for j in range(len(tprobs))])
            found = found0 & (oof[:, k] >= gate)
            curve.append({"gate_miss_target": target, "false_cutout_rate": round(float(found[~y[:, k]].mean()), 4),
                          "not_found_rate": round(float((~found[y[:, k]]).mean()), 4)})
        gate = np.array([gates_by_fold[int(fold[j])][kind] for j in range(len(tprobs))])
        found = found0 & (oof[:, k] >= gate)
        dump[f"found_{kind}"] = found
        cut, miss = found[~y[:, k]].astype(float), (~found[y[:, k]]).astype(float)
        base_cut, base_miss = base[~y[:, k]].astype(float), (~base[y[:, k]]).astype(float)
        results[kind]["tagged_cv"] = {
            "photos": len(tprobs), "absent": len(cut), "present": len(miss),
            "false_cutout_rate": round(float(np.mean(cut)), 4), "false_cutout_ci95": boot(cut),
            "not_found_rate": round(float(np.mean(miss)), 4), "not_found_ci95": boot(miss),
            "p3_false_cutout_rate": round(float(np.mean(base_cut)), 4), "p3_false_cutout_ci95": boot(base_cut),
            "p3_not_found_rate": round(float(np.mean(base_miss)), 4), "p3_not_found_ci95": boot(base_miss),
            "gate_tradeoff": curve,
            "presence_auc_5fold": auc[kind],
            "how": f"5 folds of the {len(tags):,} tagged photos{which}: head and gate from 4, scored on the 5th; "
                   "false cut-out = a mask returned although the tags say the garment is absent"}

    doc = {"model": "garment-presence head: logistic regression per kind on helpers.maskers.garments.features "
                    "of the parser p3's refined half-size probabilities",
           "trained_on": f"the {len(tags):,} CCP photos with image-level tags{which} (photos 1005-2098; never used to train the parser network)",
           "features": list(G.FEATURE_NAMES), "kinds": heads, "rules": chosen, "gate_miss": GATE_MISS,
           "command": "python -m helpers.maskers.garments_train ../shared/realdata/ccp-dev"
                      + (f" --tagged-half {args.tagged_half}" if args.tagged_half else "")}
    args.out.write_text(G.to_json(doc))
    if args.dump:
        np.savez(args.dump, **dump)
    args.results.mkdir(parents=True, exist_ok=True)
    for prompt, res in results.items():
        out = {"dataset": "ccp", "prompt": prompt, "masker": "parser p3 + garment-presence head (garments.json)",
               **res, "command": doc["command"]}
        (args.results / f"ccp-cv-{prompt}-parser.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"done in {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


def oof_train_present(oof: np.ndarray, y: np.ndarray, fold: np.ndarray, f: int, k: int) -> np.ndarray:
    """Out-of-fold presence of kind k on the present photos of the folds other than f (a gate for
    fold f chosen without it; approximates the gate from fold f's own training fit)."""
    keep = (fold != f) & y[:, k]
    return oof[keep, k]


def gate_for(p_present: np.ndarray, miss: float) -> float:
    """The largest threshold below which at most `miss` of the present photos fall."""
    return float(np.quantile(p_present, miss)) if len(p_present) else 0.0


def summary(scores, how: str) -> dict:
    s = np.asarray(scores, float)
    return {"photos": len(s), "iou_mean": round(float(s.mean()), 4), "ci95": boot(s),
            "iou_median": round(float(np.median(s)), 4), "share_iou_at_least_0.8": round(float((s >= 0.8).mean()), 4),
            "not_found": int(np.signbit(s).sum()), "how": how}


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
