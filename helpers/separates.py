"""Separates: does cutting out *the garment you mean* find the same skirt (top, trousers) better?

Why: on a photo of a top and a skirt, "the garment" is ambiguous. A search for the skirt can use
the whole photo, all the clothes cut out together, or the named garment's cut-out. The same skirt
is worn with different tops, so whatever of the top gets into the query pulls the search toward
photos of the *top*. This module measures the three on the outfits catalogue
(helpers.sample.outfits) with notebook 06's metrics (helpers.metrics: leave-one-out Recall@k, AP,
paired bootstrap intervals, Wilcoxon), one prompt at a time: the queries are the photos showing
that kind of garment, a right answer is another photo of the same garment.

Masks come from a masker (the reference masker, i.e. the exact masks, isolates the cut-out's
effect; the parser shows what a real masker gives); cut-outs and vectors go through the
workbook's cache, so a second run only reads it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from helpers import metrics
from helpers.cache import Cache
from helpers.cutting import cut_garment_views
from helpers.embedding import embed_images, get_embedder
from helpers.errors import MaskError
from helpers.sample.outfits import GARMENTS, OUTFITS_DIR, load_outfits

CONDITIONS = ("full", "clothes", "garment")
LABELS = {"full": "whole photo", "clothes": "all clothes cut out", "garment": "the named garment cut out"}
PROMPTS = ("skirt", "top", "trousers")
# the notebook's two sizes: seconds to draw and measure, or the figures the guide quotes
SMALL = {"items": 12, "views": 4, "size": (256, 384)}
FULL = {"items": 16, "views": 4, "size": (512, 768)}


def notebook_catalogue(small: bool = True, path: Path | str | None = None) -> Path:
    """The outfits catalogue notebook 08 measures. Without `path`: data/outfits-small (`SMALL`) or
    data/outfits (`FULL`), drawn once. A `path` that already holds an outfits catalogue is used
    as it is, whatever its size; a missing one is drawn there."""
    from helpers.sample.outfits import ensure_outfits, is_outfits
    from helpers.settings import PROJECT_ROOT

    if path is not None and is_outfits(Path(path)):
        return Path(path)
    default = PROJECT_ROOT / "data" / ("outfits-small" if small else "outfits")
    return ensure_outfits(Path(path) if path else default, **(SMALL if small else FULL))


def partner_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per kind of garment: how many items, photos per item, different partners and shoots per item
    (the ground truth's shape: every item is worn with several partners, in several shoots)."""
    worn = table[table["view"] == "worn"].copy()
    worn["bottom_id"] = worn["skirt_id"] + worn["trousers_id"]
    rows = []
    for g in GARMENTS:
        mine = worn[worn[f"{g}_id"] != ""]
        other = "bottom_id" if g == "top" else "top_id"
        per = mine.groupby(f"{g}_id").agg(photos=("image_id", "size"), partners=(other, "nunique"),
                                          shoots=("shoot_id", "nunique"), models=("figure_id", "nunique"))
        rows.append({"garment": g, "items": len(per), **{f"{c} per item (min)": int(per[c].min()) for c in per},
                     "product shots": int(((table["view"] == "product") & (table["category"] == g)).sum())})
    return pd.DataFrame(rows).set_index("garment")


def item_photos(table: pd.DataFrame, item_id: str) -> tuple[list[str], list[str]]:
    """One garment's photos (worn, then its product shot) and a title for each naming its partner."""
    col = next(f"{g}_id" for g in GARMENTS if item_id.startswith(g))
    rows = table[table[col] == item_id].sort_values("view", ascending=False)
    titles = [f"with {r.top_id if col != 'top_id' else r.skirt_id + r.trousers_id}\n{r.shoot_id}"
              if r.view == "worn" else "product shot" for r in rows.itertuples()]
    return list(rows["image_path"]), titles


def three_queries(table: pd.DataFrame, image_id: str, prompt: str = "skirt") -> tuple[list[np.ndarray], list[str]]:
    """What each condition embeds for one photo: the whole photo, all clothes cut out, the named
    garment cut out (exact masks, the embedder's square crop)."""
    from helpers.cutting import garment_view
    from helpers.maskers.reference import ReferenceMasker

    row = table.set_index("image_id").loc[image_id]
    masker = ReferenceMasker(table)
    with Image.open(row["image_path"]) as im:
        photo = im.convert("RGB")
    cuts = [garment_view(photo, masker.mask(photo, p, image_id=image_id)) for p in ("clothes", prompt)]
    return [np.asarray(i) for i in (photo, *cuts)], [LABELS["full"], LABELS["clothes"], f"the {prompt} cut out"]


def _masks(table: pd.DataFrame, masker: Any, prompt: str) -> tuple[dict[str, np.ndarray], list[dict]]:
    """{image_id: mask} for `prompt` over the table's photos, and failure rows (no garment found...)."""
    masks, failures = {}, []
    for row in table.itertuples():
        with Image.open(row.image_path) as im:
            image = im.convert("RGB")
        try:
            masks[row.image_id] = masker.mask(image, prompt, image_id=row.image_id)
        except MaskError as err:
            failures.append({"image_id": row.image_id, "prompt": prompt, "reason": err.reason})
    return masks, failures


def separates_vectors(table: pd.DataFrame, masker: Any, settings=None, prompts: Sequence[str] = PROMPTS,
                      progress: bool = False) -> tuple[dict[str, dict[str, np.ndarray]], pd.DataFrame]:
    """Vectors of every worn photo: "full", "clothes" (all clothes cut out) and one per prompt
    (that garment cut out); {view: {image_id: vector}}, plus a table of the photos a mask failed for."""
    from helpers.settings import load_settings

    settings = settings or load_settings()
    cache, embedder = Cache(settings.cache_dir), get_embedder(settings)
    worn = table[table["view"] == "worn"]
    out = {"full": embed_images(dict(zip(worn["image_id"], worn["image_path"])), embedder, view="full",
                                cache=cache, settings=settings, progress=progress).as_dict()}
    failed: list[dict] = []
    for name, prompt in [("clothes", "clothes")] + [(p, p) for p in prompts]:
        rows = worn if name == "clothes" else worn[worn[f"{name}_id"] != ""]
        masks, fails = _masks(rows, masker, prompt)
        failed += fails
        cuts = cut_garment_views(rows[rows["image_id"].isin(list(masks))], masks, cache=cache, settings=settings)
        failed += [{"image_id": i, "prompt": prompt, "reason": r} for i, r in
                   zip(cuts.failures["image_id"], cuts.failures["reason"])]
        out[name] = embed_images(cuts.cutouts, embedder, view="garment", cache=cache, settings=settings,
                                 progress=progress).as_dict()
    shots = table[(table["view"] == "product") & table["category"].isin(list(prompts))]
    if len(shots):  # the shop's gallery: each garment's product shot, whole and cut out by its exact mask
        out["product_full"] = embed_images(dict(zip(shots["image_id"], shots["image_path"])), embedder, view="full",
                                           cache=cache, settings=settings, progress=progress).as_dict()
        exact = {r.image_id: _exact_mask(r.garment_mask_path) for r in shots.itertuples()}
        cuts = cut_garment_views(shots, exact, cache=cache, settings=settings)
        out["product_cut"] = embed_images(cuts.cutouts, embedder, view="garment", cache=cache, settings=settings,
                                          progress=progress).as_dict()
    return out, pd.DataFrame(failed, columns=["image_id", "prompt", "reason"])


def _exact_mask(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def measure_shop(table: pd.DataFrame, vectors: dict[str, dict[str, np.ndarray]], prompt: str,
                 ids: Sequence[str]) -> dict[str, Any] | None:
    """Worn photo -> the shop's product shots of that kind of garment (notebook 06's shop search, per
    garment): the whole photo against whole product shots, all clothes and the named garment against
    the product shots cut out. Recall@1 per condition with its interval, and garment - clothes."""
    if "product_cut" not in vectors:
        return None
    shots = table[(table["view"] == "product") & (table["category"] == prompt)]
    shots = shots[shots["image_id"].isin(list(vectors["product_cut"]))]
    worn = table.set_index("image_id").loc[list(ids)]
    gallery = {"full": "product_full", "clothes": "product_cut", "garment": "product_cut"}
    query = {"full": "full", "clothes": "clothes", "garment": prompt}
    res = {c: metrics.evaluate_gallery(np.stack([vectors[query[c]][i] for i in ids]), worn[f"{prompt}_id"],
                                       np.stack([vectors[gallery[c]][i] for i in shots["image_id"]]),
                                       shots["item_id"], list(ids), shots["image_id"]) for c in CONDITIONS}
    return {"gallery": len(shots), "conditions": {c: r.summary() for c, r in res.items()},
            "intervals": metrics.intervals(res, ("recall@1",)),
            "delta_recall@1_garment_vs_clothes": metrics.paired_bootstrap(
                *metrics.aligned(res["garment"], res["clothes"], "hit@1"))}


def measure_prompt(table: pd.DataFrame, vectors: dict[str, dict[str, np.ndarray]], prompt: str) -> dict[str, Any]:
    """The three conditions for one prompt on the same queries: summaries, each condition's 95 %
    interval, paired differences and how often a wrong first answer shows the query's partner."""
    worn = table[(table["view"] == "worn") & (table[f"{prompt}_id"] != "")]
    views = {"full": vectors["full"], "clothes": vectors["clothes"], "garment": vectors[prompt]}
    ids = [i for i in worn["image_id"] if all(i in v for v in views.values())]
    rows = worn.set_index("image_id").loc[ids]
    items = rows[f"{prompt}_id"].to_numpy()
    # photos a condition has no vector for (the masker found no such garment): not compared, counted
    missing = {c: int(sum(i not in views[c] for i in worn["image_id"])) for c in CONDITIONS}
    if len(set(items)) == len(items):  # no item left with two photos: nothing to measure
        return {"prompt": prompt, "photos": len(ids), "items": int(len(set(items))), "missing": missing,
                "conditions": None}
    res = {c: metrics.evaluate_retrieval(np.stack([views[c][i] for i in ids]), items, ids) for c in CONDITIONS}
    # the partner: for a top its skirt or trousers, for a skirt or trousers its top
    partner = (rows["skirt_id"] + rows["trousers_id"]) if prompt == "top" else rows["top_id"]
    partners = pd.DataFrame({"image_id": ids, "partner": partner.to_numpy(), "shoot": rows["shoot_id"].to_numpy()})
    doc: dict[str, Any] = {
        "prompt": prompt, "photos": len(ids), "items": int(len(set(items))), "missing": missing,
        "conditions": {c: r.summary() for c, r in res.items()},
        "intervals": metrics.intervals(res, ("recall@1", "map")),
        "partner_errors": {c: metrics.same_shoot_errors(r, partners, "partner") for c, r in res.items()},
        "shoot_errors": {c: metrics.same_shoot_errors(r, partners, "shoot") for c, r in res.items()},
    }
    for a, b in (("garment", "full"), ("garment", "clothes"), ("clothes", "full")):
        doc[f"delta_recall@1_{a}_vs_{b}"] = metrics.paired_bootstrap(*metrics.aligned(res[a], res[b], "hit@1"))
        doc[f"delta_map_{a}_vs_{b}"] = metrics.paired_bootstrap(*metrics.aligned(res[a], res[b], "ap"))
    doc["wilcoxon_p_ap_garment_vs_clothes"] = metrics.wilcoxon_p(*metrics.aligned(res["garment"], res["clothes"], "ap"))
    doc["shop"] = measure_shop(table, vectors, prompt, ids)
    return doc


def measure_separates(path: Path | str = OUTFITS_DIR, prompts: Sequence[str] = PROMPTS, *, masker: str = "reference",
                      settings=None, progress: bool = False) -> dict[str, Any]:
    """Whole photo vs all clothes vs the named garment, for each prompt, on the outfits catalogue at
    `path`. `masker`: "reference" (the exact masks) or any masker name the settings know ("parser")."""
    from helpers.maskers import get_masker
    from helpers.settings import load_settings

    unknown = [p for p in prompts if p not in GARMENTS]
    if unknown:
        raise ValueError(f"prompts must be among {', '.join(GARMENTS)}; got {', '.join(unknown)}")
    settings = (settings or load_settings()).replace(masker=masker)
    table = load_outfits(path)
    m = get_masker(settings, table)
    vectors, failures = separates_vectors(table, m, settings, prompts, progress)
    return {"catalog": str(path), "masker": masker, "embedder": get_embedder(settings).model_id,
            "mask_failures": {f"{p}: {r}": int(n) for (p, r), n in failures.groupby(["prompt", "reason"]).size().items()},
            "prompts": {p: measure_prompt(table, vectors, p) for p in prompts}}


def measured(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The prompts that could be measured (a masker that finds no skirt leaves nothing to compare)."""
    return {p: d for p, d in doc["prompts"].items() if d["conditions"] is not None}


def key_figures(doc: dict[str, Any]) -> dict[str, Any]:
    """The figures notebook 08 records: per prompt, Recall@1 per condition, the paired
    garment - clothes and garment - full differences with their intervals, the partner share of wrong
    answers, and the photos each condition lacks a vector for."""
    out: dict[str, Any] = {}
    for p, d in doc["prompts"].items():
        out[f"{p}_missing"] = d["missing"]
        if d["conditions"] is None:
            continue
        out[f"{p}_recall@1"] = {c: d["conditions"][c]["recall@1"] for c in CONDITIONS}
        for other in ("clothes", "full"):
            x = d[f"delta_recall@1_garment_vs_{other}"]
            out[f"{p}_delta_garment_vs_{other}"] = {"value": x["value"], "ci95": x["ci95"]}
        out[f"{p}_partner_fraction"] = {c: d["partner_errors"][c]["fraction"] for c in CONDITIONS}
        if d.get("shop"):
            out[f"{p}_shop_recall@1"] = {c: d["shop"]["conditions"][c]["recall@1"] for c in CONDITIONS}
    return out


def recall_intervals(doc: dict[str, Any], metric: str = "recall@1") -> dict[str, dict[str, dict]]:
    """{prompt: {condition label: {"value", "ci95"}}} for figures.bars_with_ci (prompts on the x axis)."""
    return {p: {LABELS[c]: d["intervals"][metric][c] for c in CONDITIONS} for p, d in measured(doc).items()}


def separates_table(doc: dict[str, Any]) -> pd.DataFrame:
    """One row per prompt and condition: Recall@1 and mAP with their 95 % intervals, and the share
    of wrong first answers that show the query's partner garment (against chance)."""
    rows = []
    for p, d in measured(doc).items():
        for c in CONDITIONS:
            r1, ap = d["intervals"]["recall@1"][c], d["intervals"]["map"][c]
            pe = d["partner_errors"][c]
            rows.append({"prompt": p, "condition": c, "recall@1": r1["value"], "r@1 lo": r1["ci95"][0],
                         "r@1 hi": r1["ci95"][1], "mAP": ap["value"], "mAP lo": ap["ci95"][0],
                         "mAP hi": ap["ci95"][1], "wrong": pe["errors"], "same partner": pe["fraction"],
                         "chance": pe["chance"], "queries": d["conditions"][c]["queries"]})
    columns = ["prompt", "condition", "recall@1", "r@1 lo", "r@1 hi", "mAP", "mAP lo", "mAP hi", "wrong",
               "same partner", "chance", "queries"]
    return pd.DataFrame(rows, columns=columns).set_index(["prompt", "condition"])


def shop_table(doc: dict[str, Any]) -> pd.DataFrame:
    """Worn photo -> product shots, per prompt and condition: Recall@1 with its 95 % interval."""
    rows = [{"prompt": p, "condition": c, "recall@1": d["shop"]["intervals"]["recall@1"][c]["value"],
             "lo": d["shop"]["intervals"]["recall@1"][c]["ci95"][0], "hi": d["shop"]["intervals"]["recall@1"][c]["ci95"][1],
             "gallery": d["shop"]["gallery"]}
            for p, d in measured(doc).items() if d.get("shop") for c in CONDITIONS]
    return pd.DataFrame(rows, columns=["prompt", "condition", "recall@1", "lo", "hi", "gallery"]).set_index(
        ["prompt", "condition"])


def deltas_table(doc: dict[str, Any], metric: str = "recall@1") -> pd.DataFrame:
    """The paired differences in `metric` ("recall@1" or "map") per prompt, with their 95 % bootstrap intervals."""
    if metric not in ("recall@1", "map"):
        raise ValueError(f"metric must be recall@1 or map, got {metric!r}")
    rows = []
    for p, d in measured(doc).items():
        for a, b in (("garment", "full"), ("garment", "clothes"), ("clothes", "full")):
            x = d[f"delta_{metric}_{a}_vs_{b}"]
            rows.append({"prompt": p, "difference": f"{a} - {b}", metric: x["value"], "lo": x["ci95"][0],
                         "hi": x["ci95"][1]})
    return pd.DataFrame(rows, columns=["prompt", "difference", metric, "lo", "hi"]).set_index(["prompt", "difference"])


def main(argv: list[str] | None = None) -> int:
    """`python -m helpers.separates [--masker reference|parser] [DIR]`: the figures as JSON and tables."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m helpers.separates", description=main.__doc__)
    ap.add_argument("catalog", nargs="?", type=Path, default=OUTFITS_DIR)
    ap.add_argument("--masker", default="reference")
    ap.add_argument("--json", type=Path, help="also write the whole result here")
    args = ap.parse_args(argv)
    doc = measure_separates(args.catalog, masker=args.masker, progress=True)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(separates_table(doc).round(3))
        print(deltas_table(doc).round(3))
        print("worn photo -> product shots:")
        print(shop_table(doc).round(3))
    print("mask failures:", doc["mask_failures"])
    for p, d in doc["prompts"].items():
        if any(d["missing"].values()):
            print(f"{p}: photos without a vector per condition {d['missing']}; "
                  + ("compared on the other photos" if d["conditions"] else "too few left to measure"))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
