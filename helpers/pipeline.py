"""The whole pipeline in one call: load, mask, cut, embed, index (report.py judges it and writes metrics.json).

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

These use the worn photos only (catalogue `view` = "worn"). When the catalogue also has product
shots (`view` = "product": the garment alone), they are masked, cut and embedded the same way
into `result.shop`, the gallery of the shop condition: a worn photo as the query, the product
shots as the gallery (`shop_retrievals`, metrics.json `conditions_shop`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import metrics, provenance
from helpers import index as chroma_index
from helpers.cache import Cache
from helpers.catalog import load_catalog
from helpers.cutting import GARMENT_VIEW, cache_cutout, cut_garment_views
from helpers.embedding import FAILURE_COLUMNS, embed_images, get_embedder, vector_key
from helpers.maskers import ReferenceMasker, get_masker, masker_name
from helpers.maskpool import mask_catalog, prestart_pool
from helpers.settings import Settings, load_settings

CONDITIONS = ("full", "garment", "garment_reference")


@dataclass
class PipelineResult:
    """Everything one run produced; `evaluate(result)` turns it into metrics.json."""

    settings: Settings
    table: pd.DataFrame                      # the catalogue rows that were run (after `limit`)
    skipped: pd.DataFrame                    # files the catalogue loader rejected, with reasons
    embedder_id: str
    dim: int
    masks: Any                               # helpers.maskpool.MaskRun (configured masker)
    cuts: Any                                # helpers.cutting.CutRun
    embeddings: dict[str, Any]               # condition -> helpers.embedding.EmbedRun
    reference_masks: Any = None              # MaskRun of the ground-truth masks, if any
    reference_cuts: Any = None
    index: dict[str, Any] = field(default_factory=dict)   # collection names + Chroma checks
    timings_s: dict[str, float] = field(default_factory=dict)
    limit: int | None = None                 # `limit` of the run (its index gets its own collections)
    catalog_hash: str = ""                   # content hash of the whole listed catalogue (product shots too)
    shop: Any = None                         # ShopRun of the product shots, if the catalogue has any
    prompts: dict[str, Any] = field(default_factory=dict)  # PromptRun of every other indexed garment prompt
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

    def shop_retrievals(self) -> dict[str, metrics.Retrieval] | None:
        """Worn photo as query, product shots as the gallery, for `full` and `garment`: the
        queries are the worn photos both conditions embedded whose item has a product shot, the
        gallery the product shots both conditions embedded (None without product shots)."""
        shop = self.shop
        if shop is None or not len(shop.table):
            return None
        gallery = [i for i in shop.table["image_id"] if all(i in set(shop.embeddings[c].ids) for c in SHOP_CONDITIONS)]
        g_items = shop.table.set_index("image_id").loc[gallery, "item_id"].astype(str)
        ids = [i for i in self.common_ids()]
        q_items = self.table.set_index("image_id").loc[ids, "item_id"].astype(str)
        keep = q_items.isin(set(g_items)).to_numpy()
        ids = [i for i, k in zip(ids, keep) if k]
        if not ids or not gallery:
            return None
        out = {}
        for c in SHOP_CONDITIONS:
            run = shop.embeddings[c]
            pos = {i: n for n, i in enumerate(run.ids)}
            out[c] = metrics.evaluate_gallery(self.vectors(c, ids), q_items.loc[ids].to_numpy(),
                                              run.vectors[[pos[i] for i in gallery]], g_items.to_numpy(), ids, gallery)
        return out

    def failure_summary(self) -> str:
        """What went wrong, most common reason first, with one message each (what to do)."""
        f, w = self.failures(), self.warnings()
        doubt = (f" Warnings: {len(w)} doubtful masks (still indexed, e.g. {w['image_id'].iloc[0]})."
                 if len(w) else "")
        if not len(f):
            return "No image failed." + doubt
        parts = []
        for (cond, reason), grp in f.groupby(["condition", "reason"], sort=False):
            parts.append(f"{cond}: {len(grp)} x {reason} (e.g. {grp['message'].iloc[0]})")
        return "Failures: " + "; ".join(parts) + doubt

    def warnings(self) -> pd.DataFrame:
        """Images that were indexed but whose mask is doubtful (#14: the masker's quality score is
        below helpers.maskers.DOUBTFUL_QUALITY): condition "garment", image_id, reason "doubtful",
        message. Not failures - shown next to them so a poor cut-out is not a silent one."""
        cols = ["condition", "image_id", "reason", "message"]
        warn = self.masks.warnings() if hasattr(self.masks, "warnings") else pd.DataFrame()
        return warn.assign(condition="garment")[cols] if len(warn) else pd.DataFrame(columns=cols)

    def failures(self) -> pd.DataFrame:
        """One row per image and condition that produced no vector (condition, image_id, reason, message)."""
        frames = [run.failures.assign(condition=c) for c, run in self.embeddings.items() if len(run.failures)]
        cols = ["condition", "image_id", "reason", "message"]
        return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


SHOP_CONDITIONS = ("full", "garment")


@dataclass
class PromptRun:
    """One more garment the catalogue is indexed for (settings.index_prompts): its masks,
    cut-outs and garment vectors. Metrics judge the first prompt only; these feed the index."""

    prompt: str
    masks: Any
    cuts: Any
    garment: Any  # EmbedRun of the cut-outs


@dataclass
class ShopRun:
    """The product shots of one run: their table, masks, cut-outs and `full`/`garment` vectors."""

    table: pd.DataFrame
    masks: Any
    cuts: Any
    embeddings: dict[str, Any]


def _timed(timings: dict[str, float], name: str):
    class _T:
        def __enter__(self):
            self.t = time.perf_counter()

        def __exit__(self, *exc):
            timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - self.t, 3)
    return _T()


def run_pipeline(settings: Settings | None = None, *, limit: int | None = None, progress: bool = True,
                 index: bool = True, reference: bool = True, shop: bool = True) -> PipelineResult:
    """Run every step on the catalogue named by `settings.catalog` and return all the results.

    `limit` keeps the first N catalogue rows (a quick look; metrics need several images per
    item, so prefer whole items). `index=False` skips ChromaDB (the numbers come from numpy
    either way; the index is what the search app uses and is checked against numpy here).
    `reference=False` skips the ground-truth-mask condition even when the catalogue has masks.
    `shop=False` skips the product shots (the worn-photo conditions are the same either way).
    """
    settings = settings or load_settings()
    cache = Cache(settings.cache_dir)
    t: dict[str, float] = {}
    start = time.perf_counter()
    if masker_name(settings) == "pose" and settings.workers > 1:
        prestart_pool()  # the mask workers' server imports the maskers while the catalogue is checked
    with _timed(t, "load"):
        loaded = load_catalog(settings.catalog, settings, views=None)
        every = loaded.table
        table = every[every["view"] == "worn"].reset_index(drop=True)
        if limit is not None:
            table = table.head(int(limit)).reset_index(drop=True)
        table["image_id"] = table["image_id"].astype(str)
        products = every[(every["view"] == "product") & every["item_id"].isin(set(table["item_id"]))]
        products = products.reset_index(drop=True).astype({"image_id": str})
    if len(table) < 2:
        raise ValueError(f"the catalogue {settings.catalog} has {len(table)} usable image(s); retrieval "
                         "needs at least two images of one item (see the skipped table for why)")
    if int(table["item_id"].astype(str).value_counts().max()) < 2:
        hint = (f"`--limit {limit}` kept only the first {len(table)} images; raise it" if limit is not None
                else "put two or more photos of the same garment in its item folder")
        raise ValueError(f"no item in the catalogue {settings.catalog} has two images ({len(table)} images, "
                         f"{table['item_id'].nunique()} items), so no query has a right answer to find: {hint}")
    embedder = get_embedder(settings)
    with _timed(t, "mask"):
        masker = get_masker(settings, table)
        # each fresh mask's cut-out is made and cached in the same worker (image still decoded,
        # both cores busy) and, with the offline embedder, both its vectors too: the cut and
        # embed stages below then only read the cache
        after = AfterMask(str(cache.root), embedder if _embeds_in_workers(masker, embedder) else None)
        mask_run = mask_catalog(table, settings, masker=masker, cache=cache, progress=progress, after=after)
    with _timed(t, "cut"):
        cut_run = cut_garment_views(table, mask_run.masks, cache=cache, settings=settings, progress=progress)
    embeddings: dict[str, Any] = {}
    with _timed(t, "embed_full"):
        embeddings["full"] = embed_images(dict(zip(table["image_id"], table["image_path"])), embedder,
                                          view="full", cache=cache, settings=settings, progress=progress)
    with _timed(t, "embed_garment"):
        embeddings["garment"] = _embed_cutouts(table, cut_run, mask_run, embedder, cache, settings, progress)
    ref_masks = ref_cuts = None
    if reference and _has_ground_truth(table):
        with _timed(t, "reference"):
            ref_masks = mask_catalog(table, settings, masker=ReferenceMasker(table), cache=cache, progress=False)
            ref_cuts = cut_garment_views(table, ref_masks.masks, cache=cache, settings=settings)
            embeddings["garment_reference"] = _embed_cutouts(table, ref_cuts, ref_masks, embedder, cache,
                                                             settings, progress)
    others: dict[str, PromptRun] = {}
    for prompt in settings.prompts[1:]:
        with _timed(t, "prompts"):
            others[prompt] = _prompt_run(prompt, table, settings, masker, embedder, cache, progress)
    shop_run = None
    if shop and len(products):
        with _timed(t, "shop"):
            shop_run = _shop(products, settings, embedder, cache, progress)
    result = PipelineResult(settings=settings, table=table, skipped=loaded.skipped, embedder_id=embedder.model_id,
                            dim=int(embedder.dim), masks=mask_run, cuts=cut_run, embeddings=embeddings,
                            reference_masks=ref_masks, reference_cuts=ref_cuts, timings_s=t, shop=shop_run, prompts=others,
                            limit=None if limit is None else int(limit),
                            catalog_hash=provenance.table_hash(
                                load_catalog(settings.catalog, settings, validate=False, views=None).table))
    if index:
        index_result(result)
    t["total"] = round(time.perf_counter() - start, 3)
    return result


def index_result(result: PipelineResult, *, lock_timeout: float = provenance.LOCK_TIMEOUT_S) -> dict[str, Any]:
    """Write a run's vectors into its own collections (named after its catalogue and `limit`)
    under the index's write lock, record what built them, and check Chroma against numpy.

    Why separate from `run_pipeline`: `python -m helpers run` indexes only after the evaluation
    succeeded, so a failing run leaves the index as it was."""
    with _timed(result.timings_s, "index"), provenance.write_lock(result.settings, timeout=lock_timeout):
        result.index = _index_and_check(result)
    return result.index


def _prompt_run(prompt: str, table: pd.DataFrame, settings: Settings, masker, embedder, cache: Cache,
                progress: bool) -> PromptRun:
    """Mask, cut and embed the worn photos for one more garment prompt, with the same masker,
    cut and embedder as the first (the whole-photo vectors are shared, so only these are new)."""
    after = AfterMask(str(cache.root), embedder if _embeds_in_workers(masker, embedder) else None)
    masks = mask_catalog(table, settings, masker=masker, cache=cache, progress=progress, after=after, prompt=prompt)
    cuts = cut_garment_views(table, masks.masks, cache=cache, settings=settings, progress=progress)
    garment = _embed_cutouts(table, cuts, masks, embedder, cache, settings, progress)
    return PromptRun(prompt=prompt, masks=masks, cuts=cuts, garment=garment)


def _shop(products: pd.DataFrame, settings: Settings, embedder, cache: Cache, progress: bool) -> ShopRun:
    """Mask, cut and embed the product shots exactly as the worn photos (same masker, recipe, cache)."""
    masker = get_masker(settings, products)
    after = AfterMask(str(cache.root), embedder if _embeds_in_workers(masker, embedder) else None)
    masks = mask_catalog(products, settings, masker=masker, cache=cache, progress=progress, after=after)
    cuts = cut_garment_views(products, masks.masks, cache=cache, settings=settings, progress=progress)
    full = embed_images(dict(zip(products["image_id"], products["image_path"])), embedder, view="full",
                        cache=cache, settings=settings, progress=progress)
    garment = _embed_cutouts(products, cuts, masks, embedder, cache, settings, progress)
    return ShopRun(table=products, masks=masks, cuts=cuts, embeddings={"full": full, "garment": garment})


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
        garment = cache_cutout(self.cache_root, GARMENT_VIEW, image_id, data, image, mask)
        if self.embedder is None:
            return

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
    out: dict[str, Any] = {}
    meta = result.table.set_index("image_id")
    first = result.settings.garment_prompt
    # (key in the report, view, prompt, vectors): full, the first prompt's garment, then every other prompt's
    todo = [("full", "full", first, result.embeddings["full"]), ("garment", "garment", first, result.embeddings["garment"])]
    todo += [(f"garment-{p}", "garment", p, run.garment) for p, run in result.prompts.items()]
    for key, view, prompt, run in todo:
        if len(run.ids) < 2:
            continue
        ids = list(run.ids)
        items = meta.loc[ids, "item_id"].astype(str).to_numpy()
        facts = {**provenance.recipe(result.settings, result.table, result.embedder_id, limit=result.limit,
                                     prompt=prompt),
                 "catalog_hash": result.catalog_hash}
        collection = chroma_index.index_view(result.settings, view, run, meta.loc[ids].reset_index(),
                                             scope=provenance.catalog_scope(result.settings.catalog, result.limit),
                                             facts=facts, prompt=prompt)
        neighbours = chroma_index.query_vectors(collection, run.vectors, k=2)
        top1 = []
        for own, found in zip(ids, neighbours):
            others = [i for i in found if i != own]
            top1.append([meta.loc[others[0], "item_id"]] if others else [])
        exact = metrics.evaluate_retrieval(run.vectors, items, ids)
        out[key] = {"collection": getattr(collection, "name", str(collection)), "count": len(ids),
                    "recall@1_chroma": metrics.recall_from_neighbours(items[exact._evaluated],
                                                                      [top1[n] for n in np.flatnonzero(exact._evaluated)]),
                    "recall@1_numpy": exact.recall_at(1)}
        out[key]["agree"] = abs(out[key]["recall@1_chroma"] - out[key]["recall@1_numpy"]) <= CHROMA_TOLERANCE
    return out


CHROMA_TOLERANCE = 0.02  # HNSW may miss a true nearest neighbour now and then
