"""The whole pipeline in one call, and `python -m helpers run`: load, mask, cut, embed, index, evaluate.

Why one function: the metrics notebook, the CLI, the benchmark and the tests must run exactly
the same steps in the same order with the same cache, or their numbers would not agree. Every
step goes through the content-addressed cache, so a second run makes no model call and takes
seconds. Failures are data: an image that cannot be masked or embedded is left out of that
condition and counted, never a crash.

Three conditions are embedded and compared:
- `full`: the whole photo (what the original demo searched with);
- `garment`: the garment cut out with the configured masker (local offline, or Titan on Bedrock);
- `garment_reference`: the garment cut out with the catalogue's ground-truth masks, when the
  catalogue has them: an upper bound that says how much better masks would help.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import metrics
from helpers.settings import PROJECT_ROOT, Settings, load_settings, positive_int

CONDITIONS = ("full", "garment", "garment_reference")
CUT_FORM = "square"          # the embedder's input form: tight crop, padded square on white
CUT_MARGIN = 0.06
# The embedder sees 224 px; a 256 px cut-out keeps a little headroom for display. Bigger ones only
# cost PNG encoding and decoding on every (cached) run: 1.1 s -> 0.3 s for 240 images, same Recall@1.
# Query cut-outs (helpers.search) must use the same form, margin and size.
CUT_SIZE = 256
ATTRIBUTES = ("colour", "pattern", "silhouette", "background")


@dataclass
class PipelineResult:
    """Everything one run produced; `evaluate(result)` turns it into metrics.json."""

    settings: Settings
    table: pd.DataFrame                      # the catalogue rows that were run (after `limit`)
    skipped: pd.DataFrame                    # files the catalogue loader rejected, with reasons
    embedder_id: str
    dim: int
    masks: Any                               # helpers.masking.MaskRun (configured masker)
    cuts: Any                                # helpers.cutting.CutRun
    embeddings: dict[str, Any]               # condition -> helpers.embedding.EmbedRun
    reference_masks: Any = None              # MaskRun of the ground-truth masks, if any
    reference_cuts: Any = None
    index: dict[str, Any] = field(default_factory=dict)   # collection names + Chroma checks
    timings_s: dict[str, float] = field(default_factory=dict)
    _retrievals: dict[str, metrics.Retrieval] | None = field(default=None, repr=False)

    @property
    def has_ground_truth(self) -> bool:
        return "garment_reference" in self.embeddings

    @property
    def conditions(self) -> list[str]:
        return [c for c in CONDITIONS if c in self.embeddings]

    def common_ids(self) -> list[str]:
        """Images every condition embedded, in catalogue order: the conditions are compared on
        the same queries and the same gallery (an image without a garment cut-out is counted
        as a failure of that condition, see `failures`)."""
        have = [set(self.embeddings[c].ids) for c in self.conditions]
        return [i for i in self.table["image_id"].astype(str) if all(i in h for h in have)]

    def vectors(self, condition: str, ids: list[str] | None = None) -> np.ndarray:
        run = self.embeddings[condition]
        ids = self.common_ids() if ids is None else ids
        pos = {i: n for n, i in enumerate(run.ids)}
        return run.vectors[[pos[i] for i in ids]]

    def retrievals(self) -> dict[str, metrics.Retrieval]:
        """Leave-one-out retrieval of every condition over the common images (computed once)."""
        if self._retrievals is None:
            self._retrievals = self.retrieve()
        return self._retrievals

    def retrieve(self, dims: int | None = None) -> dict[str, metrics.Retrieval]:
        """Leave-one-out retrieval of every condition over the common images, from the first
        `dims` numbers of each vector (all of them by default; see `cnn_only`)."""
        ids = self.common_ids()
        if len(ids) < 2:
            raise ValueError(f"only {len(ids)} of {len(self.table)} images have a vector in every "
                             f"condition, too few to evaluate. {self.failure_summary()}")
        items = self.table.set_index(self.table["image_id"].astype(str)).loc[ids, "item_id"].astype(str)
        return {c: metrics.evaluate_retrieval(self.vectors(c, ids)[:, :dims], items.to_numpy(), ids)
                for c in self.conditions}

    def failure_summary(self) -> str:
        """What went wrong, most common reason first, with one message each (what to do)."""
        f = self.failures()
        if not len(f):
            return "No image failed."
        parts = []
        for (cond, reason), grp in f.groupby(["condition", "reason"], sort=False):
            parts.append(f"{cond}: {len(grp)} x {reason} (e.g. {grp['message'].iloc[0]})")
        return "Failures: " + "; ".join(parts)

    def failures(self) -> pd.DataFrame:
        """One row per image and condition that produced no vector (condition, image_id, reason, message)."""
        frames = [run.failures.assign(condition=c) for c, run in self.embeddings.items() if len(run.failures)]
        cols = ["condition", "image_id", "reason", "message"]
        return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def _timed(timings: dict[str, float], name: str):
    class _T:
        def __enter__(self):
            self.t = time.perf_counter()

        def __exit__(self, *exc):
            timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - self.t, 3)
    return _T()


def run_pipeline(settings: Settings | None = None, *, limit: int | None = None, progress: bool = True,
                 index: bool = True, reference: bool = True) -> PipelineResult:
    """Run every step on the catalogue named by `settings.catalog` and return all the results.

    `limit` keeps the first N catalogue rows (a quick look; metrics need several images per
    item, so prefer whole items). `index=False` skips ChromaDB (the numbers come from numpy
    either way; the index is what the search app uses and is checked against numpy here).
    `reference=False` skips the ground-truth-mask condition even when the catalogue has masks.
    """
    from helpers.cache import Cache
    from helpers.catalog import load_catalog
    from helpers.cutting import cut_catalog
    from helpers.embedding import embed_images, get_embedder
    from helpers.masking import _mask_catalog, get_masker, mask_catalog

    settings = settings or load_settings()
    cache = Cache(settings.cache_dir)
    t: dict[str, float] = {}
    start = time.perf_counter()
    if settings.effective_masker == "local" and settings.workers > 1:
        from helpers.masking import _prestart_pool

        _prestart_pool()  # the mask workers' server imports mediapipe while the catalogue is checked
    with _timed(t, "load"):
        loaded = load_catalog(settings.catalog, settings)
        table = loaded.table.reset_index(drop=True)
        if limit is not None:
            table = table.head(int(limit)).reset_index(drop=True)
        table["image_id"] = table["image_id"].astype(str)
    if len(table) < 2:
        raise ValueError(f"the catalogue {settings.catalog} has {len(table)} usable image(s); retrieval "
                         "needs at least two images of one item (see the skipped table for why)")
    embedder = get_embedder(settings)
    with _timed(t, "mask"):
        masker = get_masker(settings, table)
        # each fresh mask's cut-out is made and cached in the same worker (image still decoded,
        # both cores busy) and, with the offline embedder, both its vectors too: the cut and
        # embed stages below then only read the cache
        after = AfterMask(str(cache.root), embedder if _embeds_in_workers(masker, embedder) else None)
        mask_run = _mask_catalog(table, settings, masker=masker, cache=cache, progress=progress, after=after)
    with _timed(t, "cut"):
        cut_run = cut_catalog(table, mask_run.masks, CUT_FORM, margin=CUT_MARGIN, size=CUT_SIZE, cache=cache,
                              settings=settings, progress=progress)
    embeddings: dict[str, Any] = {}
    with _timed(t, "embed_full"):
        embeddings["full"] = embed_images(dict(zip(table["image_id"], table["image_path"])), embedder,
                                          view="full", cache=cache, settings=settings, progress=progress)
    with _timed(t, "embed_garment"):
        embeddings["garment"] = _embed_cutouts(table, cut_run, mask_run, embedder, cache, settings, progress)
    ref_masks = ref_cuts = None
    if reference and _has_ground_truth(table):
        from helpers.masking import ReferenceMasker

        with _timed(t, "reference"):
            ref_masks = mask_catalog(table, settings, masker=ReferenceMasker(table), cache=cache, progress=False)
            ref_cuts = cut_catalog(table, ref_masks.masks, CUT_FORM, margin=CUT_MARGIN, size=CUT_SIZE, cache=cache,
                                   settings=settings, progress=False)
            embeddings["garment_reference"] = _embed_cutouts(table, ref_cuts, ref_masks, embedder, cache,
                                                             settings, progress)
    result = PipelineResult(settings=settings, table=table, skipped=loaded.skipped, embedder_id=embedder.model_id,
                            dim=int(embedder.dim), masks=mask_run, cuts=cut_run, embeddings=embeddings,
                            reference_masks=ref_masks, reference_cuts=ref_cuts, timings_s=t)
    if index:
        with _timed(t, "index"):
            result.index = _index_and_check(result)
    t["total"] = round(time.perf_counter() - start, 3)
    return result


class AfterMask:
    """What a masking worker does with each fresh mask while the photo is still decoded: cut
    the garment out and cache it, and (offline embedder only) embed the photo and the cut-out
    and cache both vectors under the keys `embed_images` looks for.

    Why in the worker: the pipeline is CPU-bound on two cores. Done afterwards in the main
    process, every photo is decoded a second time and the embedder waits for the last mask;
    done here, both cores stay busy from the first image to the last and the later stages
    only read the cache (240 images cold: 16.6 s -> 14.5 s, `make bench`). Each worker runs the ONNX
    model on one thread: a second thread per process would only fight the other worker.
    Best effort: whatever fails here is redone, and reported, by the later stages."""

    def __init__(self, cache_root: str, embedder: Any | None = None):
        self.cache_root = cache_root
        self.embedder = embedder

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.embedder is not None and hasattr(self.embedder, "threads"):
            import copy

            emb = copy.copy(self.embedder)  # (pickles without its session); the caller's keeps 2 threads
            emb.threads = 1
            state["embedder"] = emb
        return state

    def __call__(self, image_id: str, data: bytes, image, mask: np.ndarray) -> None:
        from helpers.cutting import NO_EDGE, cache_cutout

        garment = cache_cutout(self.cache_root, CUT_FORM, CUT_MARGIN, CUT_SIZE, NO_EDGE, image_id, data, image, mask)
        if self.embedder is None:
            return
        from helpers.cache import Cache
        from helpers.embedding import vector_key

        cache = Cache(self.cache_root)
        todo = [(vector_key(data, self.embedder, "full"), image)]
        if garment is not None:
            todo.append((vector_key(garment, self.embedder, "garment"), garment))
        todo = [(key, img) for key, img in todo if not cache.has("vectors", key, ".npy")]
        if todo:
            vectors = self.embedder.embed([img for _, img in todo])
            for (key, _), vec in zip(todo, vectors):
                cache.put_array("vectors", key, vec)


def _embeds_in_workers(masker: Any, embedder: Any) -> bool:
    """Vectors are made in the masking workers only for a free local embedder behind a
    process-pool masker (a priced embedder must show its cost first, in the main process)."""
    return getattr(masker, "parallel", "") == "processes" and float(embedder.price_per_call) == 0.0


def _embed_cutouts(table, cut_run, mask_run, embedder, cache, settings, progress):
    """Embed the garment cut-outs; images without one carry their masking/cutting reason."""
    from helpers.embedding import FAILURE_COLUMNS, embed_images

    prior = pd.concat([df[FAILURE_COLUMNS] for df in (mask_run.failures, cut_run.failures) if len(df)],
                      ignore_index=True) if (len(mask_run.failures) or len(cut_run.failures)) else None
    if prior is not None:
        prior = prior.drop_duplicates("image_id", keep="first")  # the masking reason is the root cause
    cutouts = {i: cut_run.cutouts[i] for i in table["image_id"] if i in cut_run.cutouts}
    return embed_images(cutouts, embedder, view="garment", cache=cache, settings=settings,
                        progress=progress, failures=prior)


def _has_ground_truth(table: pd.DataFrame) -> bool:
    if "garment_mask_path" not in table.columns:
        return False
    paths = table["garment_mask_path"]
    return bool(paths.notna().all() and all(str(p) and Path(str(p)).is_file() for p in paths))


# --------------------------------------------------------------------------- index + check

def _index_and_check(result: PipelineResult) -> dict[str, Any]:
    """Index full and garment vectors in ChromaDB and check its top-1 answers against numpy.

    Chroma's HNSW search is approximate; its Recall@1 must agree with the exact numpy figure
    within a small tolerance, or the collections' HNSW settings need a larger ef_search.
    """
    from helpers import index as chroma_index

    out: dict[str, Any] = {}
    meta = result.table.set_index("image_id")
    for view in ("full", "garment"):
        run = result.embeddings[view]
        if len(run.ids) < 2:
            continue
        ids = list(run.ids)
        items = meta.loc[ids, "item_id"].astype(str).to_numpy()
        collection = chroma_index.index_view(result.settings, view, run, meta.loc[ids].reset_index())
        neighbours = chroma_index.query_vectors(collection, run.vectors, k=2)
        top1 = []
        for own, found in zip(ids, neighbours):
            others = [i for i in found if i != own]
            top1.append([meta.loc[others[0], "item_id"]] if others else [])
        exact = metrics.evaluate_retrieval(run.vectors, items, ids)
        out[view] = {"collection": getattr(collection, "name", str(collection)), "count": len(ids),
                     "recall@1_chroma": metrics.recall_from_neighbours(items[exact._evaluated],
                                                                       [top1[n] for n in np.flatnonzero(exact._evaluated)]),
                     "recall@1_numpy": exact.recall_at(1)}
        out[view]["agree"] = abs(out[view]["recall@1_chroma"] - out[view]["recall@1_numpy"]) <= CHROMA_TOLERANCE
    return out


CHROMA_TOLERANCE = 0.02  # HNSW may miss a true nearest neighbour now and then


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
    out["by_attribute"] = {a: _records(f) for a, f in breakdowns(result).items()}
    out["cnn_only"] = cnn_only(result, rounds=rounds, seed=seed)
    out["chroma_check"] = result.index or None
    out["timings_s"] = dict(result.timings_s, evaluate=round(time.perf_counter() - t0, 3))
    return _clean(out)


def cnn_only(result: PipelineResult, *, rounds: int = metrics.BOOTSTRAP_ROUNDS,
             seed: int = metrics.BOOTSTRAP_SEED) -> dict[str, Any] | None:
    """The same evaluation with the offline embedder's CNN part alone (no colour histogram).

    Why report it: the colour histogram makes garment search find the right colour twin, and
    it makes whole-photo search worse, because a photo's colours are mostly its background.
    So the garment - full gap with colour is partly the colour part's doing; this ablation
    shows the gap without it (the CNN part is the vector's first CNN_DIM numbers: see
    `helpers.embedding.combine`), so nobody has to take the bigger number on trust.
    None for other embedders (Titan has no separable part)."""
    from helpers.embedding import CNN_DIM, LOCAL_MODEL_ID

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
    from helpers.masking import evaluate_masks

    return evaluate_masks(result.masks, result.table)


def garment_losses(result: PipelineResult, *, weak_iou: float = 0.75) -> pd.DataFrame:
    """Queries where garment search loses to full-photo search (full finds the item at rank 1,
    garment does not), worst first, each with a guess at what went wrong:

    - the query's own mask is poor (IoU < `weak_iou`): a masking error;
    - the wrong answer's mask is poor: the gallery side of the same problem;
    - otherwise the wrong answer is a look-alike: the attributes it shares with the query say
      which (same colour and pattern: only shape tells them apart; the embedder sees texture).
    """
    res = result.retrievals()
    g = res["garment"].per_query.set_index("image_id")
    f = res["full"].per_query.set_index("image_id")
    lost = g.index[(g["hit@1"] == 0) & (f.loc[g.index, "hit@1"] == 1)]
    meta = result.table.set_index("image_id")
    scores = mask_scores(result)
    iou = scores.set_index("image_id")["iou"] if scores is not None else pd.Series(dtype=float)
    attrs = [a for a in ("colour", "pattern", "silhouette", "background", "shoot_id") if a in meta.columns]
    rows = []
    for q in lost:
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
                     "full_top1": f.loc[q, "top1_image_id"], "garment_rank": int(g.loc[q, "first_relevant_rank"]),
                     "ap_garment": g.loc[q, "ap"], "ap_full": f.loc[q, "ap"],
                     "query_iou": q_iou, "answer_iou": w_iou, "shared": ", ".join(shared), "diagnosis": why})
    out = pd.DataFrame(rows, columns=["image_id", "item_id", "garment_top1", "garment_top1_item", "full_top1",
                                      "garment_rank", "ap_garment", "ap_full", "query_iou", "answer_iou",
                                      "shared", "diagnosis"])
    return out.assign(ap_loss=out["ap_full"] - out["ap_garment"]).sort_values(
        ["ap_loss", "image_id"], ascending=[False, True]).reset_index(drop=True)


def gallery_rows(result: PipelineResult, losses: pd.DataFrame, n: int = 5) -> list[dict[str, Any]]:
    """Images for the failure gallery (photo, mask, cut-out, both top-1 answers) of the first n losses."""
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


def default_run_dir(run_dir: Path) -> Path:
    """The folder for metrics.json: `run_dir` (settings.run_dir, default runs/latest) when it
    exists; a missing `runs/latest` becomes a new `runs/<UTC timestamp>/` with `latest` -> it
    (what the notebook runner does too); any other missing folder is created."""
    run_dir = Path(run_dir)
    if run_dir.is_dir():
        return run_dir
    if run_dir.name != "latest":
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = run_dir.parent / stamp
    target.mkdir(parents=True, exist_ok=True)
    if run_dir.is_symlink():
        run_dir.unlink()  # a dangling link
    run_dir.symlink_to(target.name)
    return run_dir


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
    parser.add_argument("--masker", choices=("auto", "local", "bedrock", "reference"), default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for metrics.json (default: settings.run_dir, i.e. runs/latest)")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N catalogue images")
    parser.add_argument("--no-index", action="store_true", help="skip ChromaDB (numpy metrics only)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    from helpers.settings import SettingsError

    try:
        settings = load_settings(catalog=args.catalog, backend=args.backend, masker=args.masker)
        result = run_pipeline(settings, limit=args.limit, progress=not args.quiet, index=not args.no_index)
        doc = evaluate(result)
    except (SettingsError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = write_metrics(doc, args.out if args.out else default_run_dir(settings.run_dir))
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        print(summary_table(doc))
    d = doc["delta_recall@1"]
    print(f"\ngarment - full Recall@1 = {d['value']:+.3f}  (95% CI {d['ci95'][0]:+.3f} .. {d['ci95'][1]:+.3f}, "
          f"paired bootstrap, {d['rounds']} rounds);  Wilcoxon p (AP) = {doc['wilcoxon_p_ap']}")
    print(f"wrote {path}")
    return 0


# --------------------------------------------------------------------------- benchmark

def bench_pipeline(catalog: Path | str | None = None, repeats: int = 3, quick: bool = False) -> dict[str, float]:
    """Pipeline images/s with a cold cache, and the speed-up of a fully cached re-run: medians
    of `repeats` rounds (one with `quick`), each with a cold run and a cached re-run.

    Every round runs in a fresh private temporary cache and index, so the user's cache is
    untouched and "cold" really is cold (the ONNX export is made once per round before timing:
    it is set-up, not per image).
    """
    import tempfile

    from helpers.embedding import export_onnx

    base = load_settings(backend="local", masker="local")
    catalog = Path(catalog) if catalog else base.catalog
    if not (catalog / "manifest.csv").is_file() and not any(catalog.glob("*")):
        raise FileNotFoundError(f"no catalogue at {catalog}: run `python -m helpers sample` first")
    colds, warms = [], []
    for _ in range(1 if quick else repeats):
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            settings = base.replace(catalog=catalog, cache_dir=Path(tmp) / "cache",
                                    chroma_path=Path(tmp) / "chroma")
            export_onnx(settings.cache_dir)
            cold = run_pipeline(settings, progress=False, index=False, reference=False)
            warm = run_pipeline(settings, progress=False, index=False, reference=False)
        colds.append(cold)
        warms.append(warm.timings_s["total"])
    n = len(colds[0].table)
    cold_s = float(np.median([c.timings_s["total"] for c in colds]))
    warm_s = float(np.median(warms))
    steps = ("load", "mask", "cut", "embed_full", "embed_garment")
    return {"pipeline_images": n,
            "pipeline_rounds": len(colds),
            "pipeline_cold_s": round(cold_s, 2),
            "pipeline_cold_images_per_s": round(n / cold_s, 1),
            "pipeline_cached_s": round(warm_s, 3),
            "pipeline_cached_images_per_s": round(n / warm_s, 1),
            "pipeline_cached_speedup": round(cold_s / warm_s, 1),
            **{f"pipeline_cold_{step}_s": round(float(np.median([c.timings_s[step] for c in colds])), 2)
               for step in steps if step in colds[0].timings_s}}


class _TimedMethod:
    """A stand-in for a model object that adds the time of one method's calls to `clock[label]`
    (everything else passes through): how `bench_pipeline_budget` splits a worker's time."""

    def __init__(self, target: Any, method: str, clock: dict[str, float], label: str):
        self._target, self._method, self._clock, self._label = target, method, clock, label

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name != self._method:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self._clock[self._label] += time.perf_counter() - start

        return timed


def bench_pipeline_budget(catalog: Path | str | None = None, images: int = 240) -> dict[str, float]:
    """Where one cold image's time goes on one core, and the images/s that allows on
    `settings.workers` cores with no start-up and no contention: the ceiling the cold pipeline
    figure is measured against.

    Why: a mask worker does everything for one image in a row (decode, pose, selfie
    segmentation, the masker's own array work, cut-out, two ONNX embeddings, mask PNG, cache
    writes), so the cold rate can never beat workers / (time per image). This runs the worker's
    sequence (`_open_and_mask`, `_run_after` with `AfterMask`, `encode_mask`) in this process on
    one thread, on the first `images` catalogue photos (240: the images the cold pipeline figure
    runs), in a private temporary cache, and reports the mean milliseconds per step (means, not
    medians: throughput is set by the average image, and the steps add up to the total).
    """
    import collections
    import tempfile

    import cv2
    from threadpoolctl import threadpool_limits

    from helpers.catalog import load_catalog
    from helpers.embedding import LocalEmbedder, export_onnx
    from helpers.masking import LocalMasker, MaskError, _open_and_mask, _run_after, encode_mask

    settings = load_settings(backend="local", masker="local")
    catalog = Path(catalog) if catalog else settings.catalog
    table = load_catalog(catalog, settings, validate=False).table.head(int(images))
    if table.empty:
        raise FileNotFoundError(f"no catalogue at {catalog}: run `python -m helpers sample` first")
    threads = cv2.getNumThreads()
    steps: dict[str, list[float]] = collections.defaultdict(list)
    try:
        cv2.setNumThreads(1)
        with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp, threadpool_limits(1):
            embedder = LocalEmbedder(tmp, threads=1)
            export_onnx(tmp)
            masker = LocalMasker()
            after = AfterMask(tmp, embedder)
            clock: dict[str, float] = collections.defaultdict(float)
            pose, selfie = masker._models()
            masker._pose = _TimedMethod(pose, "process", clock, "pose")
            masker._selfie = _TimedMethod(selfie, "process", clock, "selfie")
            embedder._session = _TimedMethod(embedder.session, "run", clock, "onnx")
            warm = Path(table["image_path"].iloc[0]).read_bytes()  # first call: lazy imports
            after("warm-up", warm, *_open_and_mask(masker, "warm-up", warm, "dress", settings))
            for image_id, path in table[["image_id", "image_path"]].itertuples(index=False):
                data = Path(path).read_bytes()
                clock.clear()
                t0 = time.perf_counter()
                try:
                    image, mask = _open_and_mask(masker, str(image_id), data, "dress", settings)
                except MaskError:  # an image without a garment is not timed
                    continue
                t1 = time.perf_counter()
                _run_after(after, str(image_id), data, image, mask)
                encode_mask(mask)
                t2 = time.perf_counter()
                steps["pose"].append(clock["pose"])
                steps["selfie"].append(clock["selfie"])
                steps["decode_and_mask_rest"].append(t1 - t0 - clock["pose"] - clock["selfie"])
                steps["onnx"].append(clock["onnx"])
                steps["cut_embed_rest"].append(t2 - t1 - clock["onnx"])
                steps["total"].append(t2 - t0)
    finally:
        cv2.setNumThreads(threads)
    ms = {name: round(1000 * float(np.mean(v)), 2) for name, v in steps.items()}
    workers = max(1, int(settings.workers))
    return {"budget_images": len(steps["total"]),
            **{f"budget_{name}_ms": value for name, value in ms.items()},
            "budget_workers": workers,
            "budget_ceiling_images_per_s": round(workers * 1000 / ms["total"], 1)}
