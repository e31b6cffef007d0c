"""What a pipeline run means: metrics.json, its tables and sentences, and `python -m helpers run`.

Why apart from the pipeline: the pipeline makes vectors; this module judges them (leave-one-out
retrieval, paired bootstrap, per-attribute breakdowns, losses), writes metrics.json atomically
and words the conclusion from the numbers, for notebook 06 and the CLI alike.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import metrics
from helpers.embedding import CNN_DIM, LOCAL_MODEL_ID
from helpers.errors import IndexProblem, SettingsError
from helpers.maskeval import evaluate_masks
from helpers.pipeline import CONDITIONS, PipelineResult, index_result, run_pipeline
from helpers.settings import MASKERS, load_settings, positive_int

ATTRIBUTES = ("colour", "pattern", "silhouette", "background")


# --------------------------------------------------------------------------- evaluation

def evaluate(result: PipelineResult, *, rounds: int = metrics.BOOTSTRAP_ROUNDS,
             seed: int = metrics.BOOTSTRAP_SEED) -> dict[str, Any]:
    """metrics.json (the schema of issue 7, plus breakdowns) for one pipeline result."""
    t0 = time.perf_counter()
    res = result.retrievals()
    table = result.table
    conditions: dict[str, Any] = {c: None for c in CONDITIONS}
    for c, r in res.items():
        conditions[c] = r.summary()
        conditions[c]["failed_images"] = int(len(result.embeddings[c].failures))
    g_ap, f_ap = metrics.aligned(res["garment"], res["full"], "ap")
    out: dict[str, Any] = {
        "catalog": {"images": int(len(table)), "items": int(table["item_id"].nunique()),
                    "skipped": int(len(result.skipped)), "evaluated_images": len(result.common_ids()),
                    "path": str(result.settings.catalog)},
        "backend": result.settings.backend,
        "masker": result.masks.model_id,
        "doubtful_masks": int(len(result.warnings())),
        "embedder": result.embedder_id,
        "dim": result.dim,
        "conditions": conditions,
        "delta_recall@1": {**_delta_recall1(res, "garment", "full", rounds, seed), "rounds": rounds, "seed": seed},
        "wilcoxon_p_ap": metrics.wilcoxon_p(g_ap, f_ap),
        "mask_iou": None,
        "seed_statistic": {c: metrics.seed_statistic(r) for c, r in res.items()},
        "seed_statistic_by_outcome": {c: metrics.seed_statistic_by_outcome(r) for c, r in res.items()},
    }
    if "garment_reference" in res:
        out["delta_recall@1_reference_vs_garment"] = _delta_recall1(res, "garment_reference", "garment",
                                                                    rounds, seed)
        out["mask_iou"] = mask_iou_summary(result)
    if "shoot_id" in table.columns:
        out["same_shoot_errors"] = {c: metrics.same_shoot_errors(r, table) for c, r in res.items()}
    out["conditions_shop"] = conditions_shop(result, rounds=rounds, seed=seed)
    out["by_attribute"] = {a: _records(f) for a, f in breakdowns(result).items()}
    out["cnn_only"] = cnn_only(result, rounds=rounds, seed=seed)
    out["chroma_check"] = result.index or None
    out["timings_s"] = dict(result.timings_s, evaluate=round(time.perf_counter() - t0, 3))
    return _clean(out)


SHOP_KEYS = ("recall@1", "recall@5", "map", "queries")


def conditions_shop(result: PipelineResult, *, rounds: int = metrics.BOOTSTRAP_ROUNDS,
                    seed: int = metrics.BOOTSTRAP_SEED) -> dict[str, Any] | None:
    """Worn photo as the query, the product shots as the gallery: what a shopper's own photo
    finds in a shop. Rows `full` and `garment` (recall@1, recall@5, map, queries), the gallery
    size, failed product shots per condition, and garment - full Recall@1 with its paired
    bootstrap CI. None when the catalogue has no product shots."""
    res = result.shop_retrievals()
    if res is None:
        return None
    out: dict[str, Any] = {c: {k: r.summary()[k] for k in SHOP_KEYS} for c, r in res.items()}
    out["gallery"] = int(res["full"].relevant.shape[1])
    out["failed_product_shots"] = {c: int(len(run.failures)) for c, run in result.shop.embeddings.items()}
    out["delta_recall@1"] = {**_delta_recall1(res, "garment", "full", rounds, seed), "rounds": rounds, "seed": seed}
    table = result.shop.table
    if "garment_mask_path" in table.columns and table["garment_mask_path"].notna().all():
        scores = evaluate_masks(result.shop.masks, table)
        out["mask_iou"] = {"mean": float(scores["iou"].mean()), "median": float(scores["iou"].median()),
                           "min": float(scores["iou"].min()), "images": int(len(scores))}
    else:
        out["mask_iou"] = None
    return out


def shop_table(doc: dict[str, Any]) -> pd.DataFrame | None:
    """conditions_shop as a table (worn photo -> product shots), one row per view, or None."""
    shop = doc.get("conditions_shop")
    if not shop:
        return None
    return pd.DataFrame({c: shop[c] for c in ("full", "garment")}).T[list(SHOP_KEYS)]


def cnn_only(result: PipelineResult, *, rounds: int = metrics.BOOTSTRAP_ROUNDS,
             seed: int = metrics.BOOTSTRAP_SEED) -> dict[str, Any] | None:
    """The same evaluation with the offline embedder's CNN part alone (no colour histogram).

    Why report it: the colour histogram makes garment search find the right colour twin, and
    it makes whole-photo search worse, because a photo's colours are mostly its background.
    So the garment - full gap with colour is partly the colour part's doing; this ablation
    shows the gap without it (the CNN part is the vector's first CNN_DIM numbers: see
    `helpers.embedding.combine`), so nobody has to take the bigger number on trust.
    None for other embedders (Titan has no separable part)."""

    if result.embedder_id != LOCAL_MODEL_ID:
        return None
    res = result.retrieve(CNN_DIM)
    out: dict[str, Any] = {"dim": CNN_DIM, "conditions": {c: r.summary() for c, r in res.items()},
                           "delta_recall@1": _delta_recall1(res, "garment", "full", rounds, seed)}
    if "garment_reference" in res:
        out["delta_recall@1_reference_vs_garment"] = _delta_recall1(res, "garment_reference", "garment",
                                                                    rounds, seed)
    return out


def _delta_recall1(res: dict[str, metrics.Retrieval], a: str, b: str, rounds: int, seed: int) -> dict[str, Any]:
    """Recall@1 of condition `a` minus `b` on the same queries, with its paired-bootstrap CI."""
    hit_a, hit_b = metrics.aligned(res[a], res[b], "hit@1")
    d = metrics.paired_bootstrap(hit_a, hit_b, rounds=rounds, seed=seed)
    return {"value": d["value"], "ci95": d["ci95"]}


def mask_iou_summary(result: PipelineResult) -> dict[str, float] | None:
    """Mean and median IoU of the configured masker against the ground-truth masks."""
    scores = mask_scores(result)
    if scores is None or not len(scores):
        return None
    return {"mean": float(scores["iou"].mean()), "median": float(scores["iou"].median()),
            "images": int(len(scores)), "failed": int(scores["failed"].sum())}


def breakdowns(result: PipelineResult, metric: str = "hit@1") -> dict[str, pd.DataFrame]:
    """Per-attribute breakdowns (colour, pattern, silhouette, background) the catalogue has."""
    res = result.retrievals()
    return {a: metrics.breakdown(res, result.table, a, metric) for a in ATTRIBUTES if a in result.table.columns}


def breakdown_table(by: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """All breakdowns in one table indexed by (attribute, value), rounded for reading."""
    if not by:
        return pd.DataFrame(columns=["queries"])
    return pd.concat({a: f.round(3) for a, f in by.items()}, names=["attribute", "value"])


def mask_scores(result: PipelineResult) -> pd.DataFrame | None:
    """Per-image IoU of the configured masker's masks against ground truth (None without it)."""
    if "garment_mask_path" not in result.table.columns or not result.has_ground_truth:
        return None

    return evaluate_masks(result.masks, result.table)


def garment_misses(result: PipelineResult, *, weak_iou: float = 0.75) -> pd.DataFrame:
    """Every query whose first garment-search answer is another item, with a guess at what went
    wrong, losses to full-photo search first (`full_right`: whole-photo search put the query's item
    first), then the worst (highest `garment_rank`) first:

    - the query's own mask is poor (IoU < `weak_iou`): a masking error;
    - the wrong answer's mask is poor: the gallery side of the same problem;
    - otherwise the wrong answer is a look-alike: the attributes it shares with the query say
      which (same colour and pattern: only shape tells them apart; the embedder sees texture).
    """
    res = result.retrievals()
    g = res["garment"].per_query.set_index("image_id")
    f = res["full"].per_query.set_index("image_id")
    missed = g.index[g["hit@1"] == 0]  # per_query holds only queries that have a right answer
    meta = result.table.set_index("image_id")
    scores = mask_scores(result)
    iou = scores.set_index("image_id")["iou"] if scores is not None else pd.Series(dtype=float)
    attrs = [a for a in ("colour", "pattern", "silhouette", "background", "shoot_id") if a in meta.columns]
    rows = []
    for q in missed:
        wrong = g.loc[q, "top1_image_id"]
        shared = [a for a in attrs if meta.loc[q, a] == meta.loc[wrong, a]]
        q_iou, w_iou = iou.get(q, np.nan), iou.get(wrong, np.nan)
        if q_iou < weak_iou:
            why = f"the query's mask is poor (IoU {q_iou:.2f})"
        elif w_iou < weak_iou:
            why = f"the wrong answer's mask is poor (IoU {w_iou:.2f})"
        else:
            same = [a for a in shared if a != "shoot_id"]
            why = ("look-alike: a different item with the same " + " and ".join(same)) if same \
                else "the embedder confuses two different garments"
        rows.append({"image_id": q, "item_id": meta.loc[q, "item_id"],
                     "garment_top1": wrong, "garment_top1_item": meta.loc[wrong, "item_id"],
                     "full_top1": f.loc[q, "top1_image_id"], "full_right": bool(f.loc[q, "hit@1"] == 1),
                     "garment_rank": int(g.loc[q, "first_relevant_rank"]),
                     "ap_garment": g.loc[q, "ap"], "ap_full": f.loc[q, "ap"],
                     "query_iou": q_iou, "answer_iou": w_iou, "shared": ", ".join(shared), "diagnosis": why})
    out = pd.DataFrame(rows, columns=["image_id", "item_id", "garment_top1", "garment_top1_item", "full_top1",
                                      "full_right", "garment_rank", "ap_garment", "ap_full", "query_iou",
                                      "answer_iou", "shared", "diagnosis"])
    return out.assign(ap_loss=out["ap_full"] - out["ap_garment"]).sort_values(
        ["full_right", "garment_rank", "ap_loss", "image_id"], ascending=[False, False, False, True]
    ).reset_index(drop=True)


def garment_losses(result: PipelineResult, *, weak_iou: float = 0.75) -> pd.DataFrame:
    """Queries where garment search loses to full-photo search (full finds the item at rank 1,
    garment does not), worst first; a subset of `garment_misses`."""
    misses = garment_misses(result, weak_iou=weak_iou)
    lost = misses[misses["full_right"]]
    return lost.sort_values(["ap_loss", "image_id"], ascending=[False, True]).reset_index(drop=True)


def miss_causes(misses: pd.DataFrame) -> pd.Series:
    """How many misses each kind of cause explains (the diagnosis without its numbers)."""
    kinds = misses["diagnosis"].str.split(":").str[0].str.replace(r" \(IoU.*", "", regex=True)
    return kinds.value_counts().rename("queries").rename_axis("cause")


def gallery_rows(result: PipelineResult, losses: pd.DataFrame, n: int = 5) -> list[dict[str, Any]]:
    """Images for the failure gallery (photo, mask, cut-out, both top-1 answers) of the first n rows
    of `garment_misses` or `garment_losses`."""
    from PIL import Image

    paths = result.table.set_index("image_id")["image_path"]
    cut = result.cuts.cutouts
    rows = []
    for rec in losses.head(n).to_dict("records"):
        rows.append(dict(rec, query_image=Image.open(paths[rec["image_id"]]).convert("RGB"),
                         query_mask=result.masks.masks.get(rec["image_id"]),
                         query_cutout=cut.get(rec["image_id"]),
                         garment_top1_image=cut.get(rec["garment_top1"]),
                         full_top1_image=Image.open(paths[rec["full_top1"]]).convert("RGB")))
    return rows


def _records(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {str(k): {c: (None if pd.isna(v) else float(v)) for c, v in row.items()} for k, row in frame.iterrows()}


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN to null."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    return value


def write_metrics(doc: dict[str, Any], out_dir: Path) -> Path:
    """Write `out_dir/metrics.json` atomically (a killed run never leaves half a file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)
    return path


def new_run_folder(root: Path) -> Path:
    """A new, empty `root/<UTC timestamp>/` of this run's own (`-1`, `-2`, ... when another run
    took that second): created with an exclusive mkdir, so two concurrent runs never share one."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for suffix in range(10_000):
        folder = root / (stamp if suffix == 0 else f"{stamp}-{suffix}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"{root} already holds 10000 runs named {stamp}*; remove old runs")


def default_run_dir(run_dir: Path) -> Path:
    """The folder for metrics.json. `runs/latest` (the default) is never written into: it names the
    newest notebook run in which every notebook succeeded, and only the notebook runner moves it
    (`helpers.workbook.notebooks.point_latest`). So the default gives this run a new folder of its own
    beside it, `runs/<UTC timestamp>/`; any other folder (`--out`, a notebook run's own folder) is used,
    created when missing."""
    run_dir = Path(run_dir)
    if run_dir.name == "latest":
        return new_run_folder(run_dir.parent)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


LEFT_OUT_COLUMNS = ["image_id", "path", "step", "reason", "message"]


def left_out(result: PipelineResult) -> pd.DataFrame:
    """Every file or image the run left out, one row per (image, step): files the catalogue
    loader skipped (step "load"), images without a mask, cut-out or vector (step "mask", "cut",
    "embed_<condition>"; an image counts once per condition, at its first failing step)."""
    paths = dict(zip(result.table["image_id"].astype(str), result.table["image_path"].astype(str)))
    rows = [{"image_id": "", "path": r["path"], "step": "load", "reason": r["reason"], "message": r["message"]}
            for r in result.skipped.to_dict("records")]
    seen: set[tuple[str, str]] = set()
    steps = [("mask", result.masks), ("cut", result.cuts)]
    for step, run in steps:
        for r in getattr(run, "failures", pd.DataFrame()).to_dict("records"):
            if ("garment", str(r["image_id"])) not in seen:
                seen.add(("garment", str(r["image_id"])))
                rows.append({"image_id": str(r["image_id"]), "path": paths.get(str(r["image_id"]), ""),
                             "step": step, "reason": r["reason"], "message": r["message"]})
    for cond, run in result.embeddings.items():
        for r in run.failures.to_dict("records"):
            key = ("garment" if cond == "garment" else cond, str(r["image_id"]))
            if key not in seen:
                seen.add(key)
                rows.append({"image_id": str(r["image_id"]), "path": paths.get(str(r["image_id"]), ""),
                             "step": f"embed_{cond}", "reason": r["reason"], "message": r["message"]})
    return pd.DataFrame(rows, columns=LEFT_OUT_COLUMNS)


def left_out_report(result: PipelineResult, out_dir: Path) -> str:
    """Write `left_out.csv` (every left-out image with its step and reason) to `out_dir` and
    return a short table of counts per (step, reason) for the terminal."""
    frame = left_out(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "left_out.csv"
    frame.to_csv(path, index=False)
    if not len(frame):
        return f"left out: nothing (every file loaded, every image masked, cut and embedded); list: {path}"
    counts = frame.groupby(["step", "reason"], sort=False).size().rename("images").reset_index()
    return f"left out ({len(frame)} rows, per image in {path}):\n" + counts.to_string(index=False)


def conclusion(doc: dict[str, Any]) -> str:
    """The one-sentence answer, worded from the numbers (so it stays true on any catalogue)."""
    full, garment = doc["conditions"]["full"]["recall@1"], doc["conditions"]["garment"]["recall@1"]
    d = doc["delta_recall@1"]
    lo, hi = d["ci95"]
    cat = doc["catalog"]
    verdict = ("finds the same garment more often" if lo > 0 else
               "finds the same garment less often" if hi < 0 else
               "is not measurably different from whole-photo search")
    text = (f"On {cat['evaluated_images']} photos of {cat['items']} garments, searching with the garment cut "
            f"out {verdict}: Recall@1 {full:.2f} -> {garment:.2f} ({d['value']:+.2f}, 95% CI {lo:+.2f} to {hi:+.2f})")
    shoot = (doc.get("same_shoot_errors") or {}).get("full") or {}
    if shoot.get("fraction") is not None:
        text += (f", because whole-photo search mostly confuses photos from the same shoot "
                 f"({shoot['fraction']:.0%} of its wrong first answers)" if shoot["fraction"] >= 0.5 else
                 f"; {shoot['fraction']:.0%} of whole-photo search's wrong first answers came from the same shoot")
    return text + "."


def reference_note(doc: dict[str, Any]) -> str:
    """How much perfect masks would add, or why that cannot be measured on this catalogue."""
    if not doc["conditions"].get("garment_reference"):
        return ("This catalogue has no ground-truth masks, so the reference condition and mask IoU "
                "cannot be measured (they are null in metrics.json).")
    iou = doc["mask_iou"]
    d = doc["delta_recall@1_reference_vs_garment"]
    ref, gar = doc["conditions"]["garment_reference"], doc["conditions"]["garment"]
    return (f"The masker's masks overlap the true ones with mean IoU {iou['mean']:.3f} (median {iou['median']:.3f}). "
            f"Perfect masks change Recall@1 by {d['value']:+.3f} (95% CI {d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f}) "
            f"and mAP from {gar['map']:.3f} to {ref['map']:.3f}.")


def summary_table(doc: dict[str, Any]) -> pd.DataFrame:
    """The metrics table, one row per condition (for printing)."""
    rows = {c: m for c, m in doc["conditions"].items() if m}
    cols = ["recall@1", "recall@5", "recall@10", "map", "mrr", "ndcg@10", "queries"]
    return pd.DataFrame(rows).T[cols]


def colour_ablation_table(doc: dict[str, Any]) -> pd.DataFrame | None:
    """Recall@1 and mAP of every condition with the whole embedding and with its CNN part
    alone, plus the two headline differences (garment - full, reference - garment)."""
    block = doc.get("cnn_only")
    if not block:
        return None
    rows = {}
    for name, conds, top in (("CNN + colour", doc["conditions"], doc),
                             ("CNN only", block["conditions"], block)):
        row = {f"{m} {c}": (conds.get(c) or {}).get(m) for m in ("recall@1", "map") for c in conds}
        row["garment - full (R@1)"] = top["delta_recall@1"]["value"]
        ref = top.get("delta_recall@1_reference_vs_garment")
        row["reference - garment (R@1)"] = ref["value"] if ref else None
        rows[name] = row
    return pd.DataFrame(rows).T


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers run",
                                     description="Run the whole pipeline (load, mask, cut, embed, index, "
                                                 "evaluate) and write metrics.json.")
    parser.add_argument("--catalog", type=Path, default=None, help="catalogue folder (default: settings)")
    parser.add_argument("--backend", choices=("local", "bedrock"), default=None)
    parser.add_argument("--masker", choices=MASKERS, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for metrics.json (default: a new runs/<UTC timestamp>/; runs/latest is left alone)")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N catalogue images")
    parser.add_argument("--no-index", action="store_true", help="skip ChromaDB (numpy metrics only)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--prompts", default=None, metavar="GARMENT[,GARMENT...]",
                        help="garments to index, e.g. dress,top,skirt,trousers: one garment collection each, "
                             "so search --prompt can use any of them; metrics judge the first (default: dress)")
    args = parser.parse_args(argv)
    prompts = [p.strip() for p in (args.prompts or "").split(",") if p.strip()]
    if args.prompts is not None and not prompts:
        parser.error("--prompts needs garment names separated by commas, e.g. --prompts dress,skirt")
    try:
        settings = load_settings(catalog=args.catalog, backend=args.backend, masker=args.masker,
                                 garment_prompt=prompts[0] if prompts else None,
                                 index_prompts=",".join(prompts) if prompts else None)
        result = run_pipeline(settings, limit=args.limit, progress=not args.quiet, index=False)
        doc = evaluate(result)  # judged before the index is touched: a failing run leaves it as it was
        if not args.no_index:
            doc["chroma_check"] = _clean(index_result(result))
    except (SettingsError, ValueError, FileNotFoundError, IndexProblem) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out_dir = args.out if args.out else default_run_dir(settings.run_dir)
    path = write_metrics(doc, out_dir)
    print(left_out_report(result, out_dir) + "\n")
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        print(summary_table(doc))
    d = doc["delta_recall@1"]
    print(f"\ngarment - full Recall@1 = {d['value']:+.3f}  (95% CI {d['ci95'][0]:+.3f} .. {d['ci95'][1]:+.3f}, "
          f"paired bootstrap, {d['rounds']} rounds);  Wilcoxon p (AP) = {doc['wilcoxon_p_ap']}")
    shop = doc.get("conditions_shop")
    if shop:
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
            print(f"\nworn photo -> product shots ({shop['gallery']} in the gallery):")
            print(shop_table(doc))
        d = shop["delta_recall@1"]
        print(f"garment - full Recall@1 = {d['value']:+.3f}  (95% CI {d['ci95'][0]:+.3f} .. {d['ci95'][1]:+.3f})")
    if len(settings.prompts) > 1 and doc.get("chroma_check"):
        check = doc["chroma_check"]
        counts = [(p, (check.get("garment" if n == 0 else f"garment-{p}") or {}).get("count", 0))
                  for n, p in enumerate(settings.prompts)]
        print("indexed garments (search --prompt ...): " + ", ".join(f"{p} ({c} cut-outs)" for p, c in counts))
    print(f"wrote {path}")
    return 0
