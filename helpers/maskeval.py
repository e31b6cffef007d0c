"""How good are a masker's masks? IoU, precision, recall and background share against the
catalogue's ground-truth masks, per image and summarised per attribute (weak cases visible).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from helpers.maskers.garments import KINDS
from helpers.maskpool import MaskRun


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} vs {truth.shape}")
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)


ATTRIBUTES = ("category", "colour", "pattern", "silhouette", "sleeve", "length", "skin_tone", "background", "pose")


def _read_mask(path) -> np.ndarray | None:
    if path is None or (isinstance(path, float) and np.isnan(path)) or not str(path):
        return None
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def evaluate_masks(run: MaskRun | dict[str, np.ndarray], table: pd.DataFrame) -> pd.DataFrame:
    """Per-image quality against the ground truth: iou, precision (share of the mask that is
    garment), recall (share of the garment found), background (share of the mask outside the
    person: the "never more than a few % background" check), plus the catalogue's attributes.
    Images the masker failed on get iou 0 and a `failed` flag."""
    masks = run.masks if isinstance(run, MaskRun) else run
    attrs = [a for a in ATTRIBUTES if a in table.columns]
    rows = []
    for rec in table.to_dict("records"):
        truth = _read_mask(rec.get("garment_mask_path"))
        if truth is None:
            continue
        image_id = str(rec["image_id"])
        pred = masks.get(image_id)
        row: dict[str, Any] = {"image_id": image_id, "item_id": rec.get("item_id")}
        row.update({a: rec[a] for a in attrs})
        if pred is None:
            row.update(iou=0.0, precision=0.0, recall=0.0, bg_share=0.0, failed=True)
        else:
            inter = float(np.logical_and(pred, truth).sum())
            area = float(pred.sum())
            person = _read_mask(rec.get("person_mask_path"))
            bg = float(np.logical_and(pred, ~person).sum() / area) if person is not None and area else 0.0
            row.update(iou=mask_iou(pred, truth), precision=inter / area if area else 0.0,
                       recall=inter / float(truth.sum()) if truth.any() else 1.0, bg_share=bg,
                       failed=False)
        rows.append(row)
    return pd.DataFrame(rows)


def summarize_iou(scores: pd.DataFrame, by: Iterable[str] | None = None) -> pd.DataFrame:
    """Mean / median / worst IoU overall and per value of each attribute (weak cases visible)."""
    by = [b for b in (by or ("colour", "pattern", "background", "silhouette")) if b in scores.columns]
    out = [{"attribute": "all", "value": "all", "n": len(scores), "mean_iou": scores["iou"].mean(),
            "median_iou": scores["iou"].median(), "min_iou": scores["iou"].min(),
            "mean_bg_share": scores["bg_share"].mean()}]
    for attr in by:
        for value, grp in scores.groupby(attr, sort=True):
            out.append({"attribute": attr, "value": value, "n": len(grp), "mean_iou": grp["iou"].mean(),
                        "median_iou": grp["iou"].median(), "min_iou": grp["iou"].min(),
                        "mean_bg_share": grp["bg_share"].mean()})
    return pd.DataFrame(out)


# ---------------------------------------------------------------- `python -m helpers masks eval`
# A masker against ground truth on real photos (Clothing Co-Parsing, helpers.ccp) or on a
# generated catalogue. Every photo whose ground truth holds the prompt's garment on at least
# MIN_TRUTH_SHARE of the image is masked; a photo the masker fails on counts as IoU 0 and is
# listed with its reason. CCP figures default to the held-out split (never trained or tuned on).

MIN_TRUTH_SHARE = 0.02
DOUBT_AUC_BELOW = (0.5, 0.7)   # IoU thresholds the quality score is judged against


def eval_cases(dataset: str, root: Path | str | None, prompt: str, split: str = "heldout",
               limit: int | None = None, settings=None) -> list[tuple[str, str, np.ndarray]]:
    """(image_id, image_path, truth mask) for every photo whose truth holds >= 2 % garment."""
    out = []
    if dataset == "ccp":
        from helpers import ccp

        for rec in ccp.load_ccp(root, split).to_dict("records"):
            truth = ccp.truth_mask(root, rec["image_id"], prompt)
            if truth.mean() >= MIN_TRUTH_SHARE:
                out.append((rec["image_id"], rec["image_path"], truth))
            if limit and len(out) >= limit:
                break
        return out
    from helpers.catalog import load_catalog

    for rec in load_catalog(root, settings).table.to_dict("records"):
        truth = _read_mask(rec.get("garment_mask_path"))
        if truth is not None and truth.mean() >= MIN_TRUTH_SHARE:
            out.append((str(rec["image_id"]), str(rec["image_path"]), truth))
        if limit and len(out) >= limit:
            break
    return out


def quality_auc(quality: Sequence[float], ious: Sequence[float], below: float) -> float | None:
    """How well a low quality score picks out masks with IoU < `below`: the probability that a
    random bad mask scores lower than a random good one (ties count half); None without both."""
    q, iou = np.asarray(quality, float), np.asarray(ious, float)
    bad, good = q[iou < below], q[iou >= below]
    if not len(bad) or not len(good):
        return None
    wins = (bad[:, None] < good[None, :]).sum() + 0.5 * (bad[:, None] == good[None, :]).sum()
    return round(float(wins / (len(bad) * len(good))), 3)


def eval_masker(masker, cases, prompt: str, *, dataset: str, ask: str | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Mask every case (no cache: a fresh measurement) -> the result document (see main)."""
    import sys
    import time

    from helpers.maskers.base import DOUBTFUL_QUALITY

    per, failed, qualities, times = [], [], [], []
    start = time.perf_counter()
    for n, (image_id, path, truth) in enumerate(cases):
        t0 = time.perf_counter()
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
            pred = np.asarray(masker.mask(image, ask or prompt, image_id=image_id), bool)
            quality = getattr(masker, "last_quality", None)
            per.append({"image": image_id, "iou": round(mask_iou(pred, truth), 4),
                        **({"quality": round(float(quality), 4)} if quality is not None else {})})
            qualities.append(quality)
        except Exception as err:  # noqa: BLE001 - every failure is a row (IoU 0); the run goes on
            reason = getattr(err, "reason", type(err).__name__)
            per.append({"image": image_id, "iou": 0.0, "reason": reason})
            failed.append({"image": image_id, "reason": reason, "message": str(err)[:300]})
            qualities.append(None)
        times.append(time.perf_counter() - t0)
        if progress and n % 20 == 19:
            print(f"  {n + 1}/{len(cases)}", file=sys.stderr, flush=True)
    ious = np.array([p["iou"] for p in per], float)
    doc: dict[str, Any] = {
        "dataset": dataset, "prompt": prompt, "masker": getattr(masker, "model_id", type(masker).__name__),
        "images": len(per), "failed": failed,
        "iou": {"mean": round(float(ious.mean()), 4) if len(ious) else None,
                "median": round(float(np.median(ious)), 4) if len(ious) else None},
        "share_iou_at_least_0.8": round(float((ious >= 0.8).mean()), 4) if len(ious) else None,
        "seconds": round(time.perf_counter() - start, 1), "per_image": per,
        "ms_per_image_median": round(1000 * float(np.median(times)), 1) if times else None,
    }
    scored = [(q, p["iou"]) for q, p in zip(qualities, per) if q is not None]
    if scored:
        q, i = zip(*scored)
        doc["quality"] = {"threshold": DOUBTFUL_QUALITY, "flagged_share": round(float(np.mean(np.array(q) < DOUBTFUL_QUALITY)), 3),
                          **{f"auc_iou_below_{b}": quality_auc(q, i, b) for b in DOUBT_AUC_BELOW}}
    return doc


def format_eval(doc: dict[str, Any]) -> str:
    """The result document as a short table (+ the first failures)."""
    head = f"{'masker':<34}{'prompt':<10}{'images':>7}{'failed':>7}{'mean':>7}{'median':>8}{'>=0.8':>7}{'ms':>7}"
    row = (f"{doc['masker'][:33]:<34}{doc['prompt']:<10}{doc['images']:>7}{len(doc['failed']):>7}"
           f"{doc['iou']['mean'] or 0:>7.3f}{doc['iou']['median'] or 0:>8.3f}"
           f"{doc['share_iou_at_least_0.8'] or 0:>7.2f}{doc['ms_per_image_median'] or 0:>7.0f}")
    lines = [head, row] + [f"  failed {f['image']}: {f['reason']}: {f['message'][:100]}" for f in doc["failed"][:10]]
    if "quality" in doc:
        lines.append("  quality score: " + ", ".join(f"{k} {v}" for k, v in doc["quality"].items()))
    return "\n".join(lines)


def results_table(directory: Path | str, pattern: str = "ccp-heldout-*.json") -> pd.DataFrame:
    """The committed eval results (JSON written by `masks eval --out`) as one table."""
    import json

    rows = []
    for path in sorted(Path(directory).glob(pattern)):
        doc = json.loads(path.read_text())
        rows.append({"masker": doc["masker"], "prompt": doc["prompt"], "photos": doc["images"],
                     "failed": len(doc["failed"]), "mean IoU": doc["iou"]["mean"], "median IoU": doc["iou"]["median"],
                     "share IoU >= 0.8": doc["share_iou_at_least_0.8"],
                     "quality AUC (IoU < 0.7)": (doc.get("quality") or {}).get("auc_iou_below_0.7"),
                     "file": path.name})
    return pd.DataFrame(rows)


PROMPT_ORDER = ("clothes", *KINDS)   # every worn garment first, then each kind


def prompt_table(directory: Path | str, pattern: str = "ccp-cv-*-parser.json") -> pd.DataFrame:
    """Every prompt's committed cross-validated figures (helpers.maskers.garments_train) as one
    table: held-out mask IoU with its 95 % interval, and on the tagged photos how often a garment
    is cut out although the photo has none, or "not found" although it has one (percentages)."""
    import json

    rows = []
    for path in Path(directory).glob(pattern):
        doc = json.loads(path.read_text())
        held, tagged = doc["heldout_cv"], doc.get("tagged_cv") or {}
        rows.append({"prompt": doc["prompt"], "held-out photos": held["photos"], "mean IoU": held["iou_mean"],
                     "IoU 95 % CI": _interval(held["ci95"]),
                     "wrong cut-out when absent (%)": _percent(tagged.get("false_cutout_rate")),
                     "its 95 % CI (%)": _interval(tagged.get("false_cutout_ci95"), percent=True),
                     "not found when present (%)": _percent(tagged.get("not_found_rate")),
                     "presence AUC": tagged.get("presence_auc_5fold")})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    rank = {p: n for n, p in enumerate(PROMPT_ORDER)}
    return table.sort_values("prompt", key=lambda c: c.map(lambda p: rank.get(p, len(rank)))).reset_index(drop=True)


def _percent(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 1)


def _interval(pair: list[float] | None, *, percent: bool = False) -> str | None:
    """[low, high] as "0.86-0.89", or in percent "45-51"."""
    if not pair:
        return None
    return f"{100 * pair[0]:.0f}–{100 * pair[1]:.0f}" if percent else f"{pair[0]:.2f}–{pair[1]:.2f}"


def ccp_examples(masker, root: Path | str, n: int = 3, prompt: str = "clothes", split: str = "heldout") -> list[dict]:
    """The first `n` photos of a CCP split with the masker's mask and the ground truth (for a
    figure): image_id, image, pred, truth, iou, quality; a failure gives pred None and its reason."""
    out = []
    for image_id, path, truth in eval_cases("ccp", root, prompt, split, n):
        with Image.open(path) as im:
            image = im.convert("RGB")
        row = {"image_id": image_id, "image": image, "truth": truth, "pred": None, "iou": 0.0, "quality": None}
        try:
            row["pred"] = np.asarray(masker.mask(image, prompt, image_id=image_id), bool)
            row.update(iou=mask_iou(row["pred"], truth), quality=getattr(masker, "last_quality", None))
        except Exception as err:  # noqa: BLE001 - shown as a line, not a traceback
            row["reason"] = getattr(err, "reason", type(err).__name__)
        out.append(row)
    return out


ALL_PROMPTS = ("clothes", "dress", "top", "skirt", "trousers")   # `--prompt all`


def all_prompts_doc(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`--prompt all`: one document with every prompt's result (as a single prompt writes it) under
    "prompts", and a summary row per prompt (photos, mean IoU with a 95 % bootstrap interval,
    share >= 0.8, not found)."""
    from helpers.metrics import bootstrap_mean

    first = next(iter(docs.values()))
    summary = {}
    for prompt, d in docs.items():
        ious = [p["iou"] for p in d["per_image"]]
        ci = bootstrap_mean(ious)["ci95"] if ious else [None, None]
        summary[prompt] = {"photos": d["images"], "iou_mean": d["iou"]["mean"],
                           "iou_ci95": [round(v, 4) for v in ci] if ious else ci,
                           "share_iou_at_least_0.8": d["share_iou_at_least_0.8"],
                           "not_found": sum(f["reason"] == "no_garment" for f in d["failed"]),
                           "failed": len(d["failed"])}
    return {"dataset": first["dataset"], "prompt": "all", "masker": first["masker"],
            **({"split": first["split"]} if "split" in first else {}), "summary": summary, "prompts": docs}


def main(argv: list[str] | None = None) -> int:
    """`python -m helpers masks eval ...` and `python -m helpers masks train ...`."""
    import argparse
    import json

    import sys

    argv = list(argv or [])
    if argv[:1] == ["train"]:
        from helpers.maskers import parser_train

        return parser_train.main(argv[1:])
    if argv[:1] != ["eval"]:
        print("usage: python -m helpers masks eval --dataset ccp DIR | --dataset catalog [DIR] [options]\n"
              "       python -m helpers masks train --dataset ccp DIR [--catalog DIR] [--out FILE]")
        return 0 if argv[:1] in ([], ["-h"], ["--help"]) else 2
    from helpers.settings import positive_int

    ap = argparse.ArgumentParser(prog="python -m helpers masks eval")
    ap.add_argument("--dataset", choices=("ccp", "catalog"), required=True)
    ap.add_argument("dir", type=Path, nargs="?", help="the CCP tree, or a catalogue (default: the settings' catalogue)")
    ap.add_argument("--prompt", help="dress, top, skirt, trousers, clothes, or all (every one of them into one "
                    "JSON; default: clothes on ccp, the settings' garment_prompt on a catalogue)")
    ap.add_argument("--split", choices=("heldout", "train", "all"), default="heldout",
                    help="CCP photos: heldout (number %% 5 == 0, default; never trained on), train or all")
    ap.add_argument("--limit", type=positive_int, help="only the first N photos (a count >= 1)")
    ap.add_argument("--masker", default="local", help="local (= parser), parser, pose, titan, ...")
    ap.add_argument("--out", type=Path, help="write the JSON here")
    args = ap.parse_args(argv[1:])
    if args.dataset == "ccp" and args.dir is None:
        ap.error("--dataset ccp needs the Clothing Co-Parsing directory")
    from helpers.maskers import get_masker, masker_name
    from helpers.settings import load_settings

    settings = load_settings(masker=args.masker)
    prompt = args.prompt or ("clothes" if args.dataset == "ccp" else settings.garment_prompt)
    if args.dataset == "ccp":
        from helpers.ccp import PROMPT_LABELS

        if prompt.strip().lower() not in (*PROMPT_LABELS, "all"):  # "person" has truth, but no masker draws it
            print(f"error: --prompt {prompt!r} cannot be judged on CCP: maskers cut out garments; choose one of "
                  f"{', '.join(PROMPT_LABELS)} or all", file=sys.stderr)
            return 2
    table = None
    if args.dataset == "catalog" and masker_name(settings) == "reference":
        from helpers.catalog import load_catalog

        table = load_catalog(args.dir, settings).table   # the reference masker reads its truth masks
    masker = get_masker(settings, table)
    docs = {}
    for one in (ALL_PROMPTS if prompt == "all" else (prompt,)):
        # the pose masker knows no "clothes": its "dress" (neckline to hem) is its whole outfit
        ask = "dress" if one == "clothes" and masker_name(settings) == "pose" else one
        cases = eval_cases(args.dataset, args.dir, one, args.split, args.limit, settings)
        if not cases and prompt != "all":   # `all` keeps a prompt no photo shows, with 0 images
            print(f"error: no photo of {args.dir or settings.catalog} ({args.split if args.dataset == 'ccp' else 'catalogue'}) "
                  f"has ground truth with at least {MIN_TRUTH_SHARE:.0%} {one}; choose another --prompt or --split",
                  file=sys.stderr)
            return 2
        docs[one] = eval_masker(masker, cases, one, dataset=args.dataset, ask=ask)
        if args.dataset == "ccp":
            docs[one]["split"] = args.split
        print(format_eval(docs[one]))
    if not any(d["images"] for d in docs.values()):
        print(f"error: no photo of {args.dir or settings.catalog} has ground truth for any garment; "
              "choose another --split", file=sys.stderr)
        return 2
    doc = docs[prompt] if prompt != "all" else all_prompts_doc(docs)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0
