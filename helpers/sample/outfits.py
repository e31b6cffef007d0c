"""A generated catalogue of separates: tops, skirts and trousers, each worn in several outfits.

Why: the dress catalogue asks "does cutting out *the* garment find the same dress?". With separates
the question becomes sharper: a photo shows two garments, and a shopper searching for a skirt means
the skirt only. Here every garment (a top, a skirt or a pair of trousers) is an item; each item is
worn `views` times, each time with a different partner (the same skirt with different tops), in
different shoots (backdrop, light, camera) on different models. Masks are exact **per garment**
(`top_mask_path`, `skirt_mask_path`, `trousers_mask_path`; `garment_mask_path` is all the clothes),
and the ground truth is per garment (`top_id`, `skirt_id`, `trousers_id`: which photos show the
same item). One product shot per garment shows it alone.

Drawing reuses the dress catalogue's figures, shoots, prints and camera (`plan`, `body`, `render`);
the dress catalogue's bytes are unchanged by this module (its own seed streams).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from helpers.sample.outfit_plan import (GARMENTS, ITEM_COLUMNS, OUTFIT_COLUMNS, OUTFITS_DIR, OUTFITS_VERSION,
                                       GarmentSpec, make_outfit_plan)
from helpers.sample.outfit_render import render_garment_shot, render_outfit
from helpers.sample.plan import META

__all__ = ["GARMENTS", "GarmentSpec", "OUTFITS_DIR", "ensure_outfits", "generate_outfits", "is_outfits",
           "load_outfits", "main", "make_outfit_plan", "outfits_complete"]


# ----------------------------------------------------------------------------------------------
# The catalogue on disk
# ----------------------------------------------------------------------------------------------

def _jobs(plan: dict, out: Path, size: tuple[int, int], seed: int, product_shots: bool) -> list[dict]:
    jobs = [{"kind": "worn", "image_id": p["image_id"], "seed": p["seed"], "size": size, "dir": str(out),
             "top": plan["tops"][p["top"]], "bottom": plan["bottoms"][p["bottom"]],
             "shoot": plan["shoots"][p["shoot"]], "figure": plan["figures"][p["figure_id"]]} for p in plan["photos"]]
    if product_shots:
        garments = plan["tops"] + sorted(plan["bottoms"], key=lambda g: g.item_id)
        jobs += [{"kind": "product", "image_id": f"prod_{g.item_id}", "size": size, "dir": str(out), "garment": g,
                  "seed": int(np.random.SeedSequence([seed, 23, n]).generate_state(1)[0])}
                 for n, g in enumerate(garments)]
    return jobs


def _render(job: dict) -> dict:
    return render_garment_shot(job) if job["kind"] == "product" else render_outfit(job)


def outfits_meta(items: int, views: int, seed: int, size: tuple[int, int], product_shots: bool = True) -> dict:
    return {"generator": "helpers.sample.outfits", "kind": "outfits", "version": OUTFITS_VERSION, "items": items,
            "views": views, "seed": seed, "size": [int(size[0]), int(size[1])], "product_shots": bool(product_shots)}


def is_outfits(out: Path) -> bool:
    """True when `out` holds a finished outfits catalogue of any size."""
    try:
        meta = json.loads((Path(out) / META).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("kind") == "outfits" and outfits_complete(out, meta["items"], meta["views"], meta["seed"],
                                                              tuple(meta["size"]), meta["product_shots"])


def outfits_complete(out: Path, items: int, views: int, seed: int, size: tuple[int, int],
                     product_shots: bool = True) -> bool:
    """True when `out` holds a finished outfits catalogue with exactly these parameters."""
    import pandas as pd

    out = Path(out)
    try:
        meta = json.loads((out / META).read_text())
        table = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    except (OSError, ValueError):
        return False
    want = outfits_meta(items, views, seed, size, product_shots)
    if any(meta.get(k) != v for k, v in want.items()) or len(table) != meta.get("n_images"):
        return False
    return all((out / p).is_file() for col in ("image_path", "garment_mask_path") for p in table[col])


def generate_outfits(out: Path | str = OUTFITS_DIR, items: int = 16, views: int = 4, seed: int = 0,
                     size: tuple[int, int] = (512, 768), workers: int = 2, progress: bool = True,
                     product_shots: bool = True) -> Path:
    """Write the separates catalogue under `out` (replacing a generated one) and return `out`:
    `items * views` worn photos, one product shot per garment, manifest.csv and items.csv.
    Built in a temporary sibling folder and moved into place at the end, as the dress catalogue."""
    import pandas as pd

    from helpers.progress import tqdm
    from helpers.sample.folder import _remove_generated

    out = Path(out)
    w, h = int(size[0]), int(size[1])
    if w < 64 or h < 64:
        raise ValueError("size must be at least 64x64 pixels")
    plan = make_outfit_plan(items, views, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        jobs = _jobs(plan, tmp, (w, h), seed, product_shots)
        bar = tqdm(total=len(jobs), desc="drawing outfits", unit="img", disable=not progress)
        if workers <= 1:
            rows = []
            for job in jobs:
                rows.append(_render(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                rows = []
                try:
                    for row in pool.map(_render, jobs, chunksize=4):
                        rows.append(row)
                        bar.update()
                except BrokenProcessPool:
                    raise RuntimeError("the drawing processes stopped before the catalogue was done (nothing was "
                                       "written); from a script, call generate_outfits under "
                                       "`if __name__ == \"__main__\":`, or pass workers=1.") from None
        bar.close()
        manifest = pd.DataFrame([{c: r.get(c, "") for c in OUTFIT_COLUMNS} for r in rows], columns=OUTFIT_COLUMNS)
        manifest.to_csv(tmp / "manifest.csv", index=False, lineterminator="\n")
        pd.DataFrame([{**{k: v for k, v in asdict(g).items() if k in ITEM_COLUMNS}}
                      for g in plan["tops"] + plan["bottoms"]], columns=ITEM_COLUMNS).sort_values("item_id").to_csv(
            tmp / "items.csv", index=False, lineterminator="\n")
        meta = {**outfits_meta(items, views, seed, (w, h), product_shots), "n_images": len(rows),
                "n_worn": len(plan["photos"]), "n_shoots": len(plan["shoots"]), "n_figures": len(plan["figures"])}
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if out.exists():
            _remove_generated(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def ensure_outfits(path: Path | str = OUTFITS_DIR, items: int = 16, views: int = 4, seed: int = 0,
                   size: tuple[int, int] = (512, 768), workers: int = 2, progress: bool = False) -> Path:
    """The outfits catalogue at `path` with these parameters, drawn only when it is not already there."""
    if not outfits_complete(Path(path), items, views, seed, size):
        generate_outfits(path, items, views, seed, size, workers, progress)
    return Path(path)


def load_outfits(path: Path | str = OUTFITS_DIR) -> "pd.DataFrame":
    """The manifest with absolute paths (empty strings where a photo has no such garment)."""
    import pandas as pd

    root = Path(path)
    if not (root / "manifest.csv").is_file():
        raise FileNotFoundError(f"{root} holds no outfits catalogue; draw one with "
                                f"`python -m helpers sample --kind outfits --out {root}`")
    table = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)
    for col in [c for c in table.columns if c.endswith("_path")]:
        table[col] = [str((root / p).resolve()) if p else "" for p in table[col]]
    return table


def main(argv: list[str] | None = None) -> int:
    """`python -m helpers sample --kind outfits`: draw the separates catalogue (skipped if complete)."""
    import argparse
    import sys
    import time

    from helpers.sample.folder import _parse_size, not_a_catalogue

    ap = argparse.ArgumentParser(prog="python -m helpers sample --kind outfits", description=main.__doc__)
    ap.add_argument("--kind", choices=("outfits",), default="outfits")
    ap.add_argument("--out", type=Path, default=OUTFITS_DIR)
    ap.add_argument("--items", type=int, default=16, help="tops, and as many bottoms (half skirts, half trousers)")
    ap.add_argument("--views", type=int, default=4, help="photos of each garment, each with another partner")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=_parse_size, default=(512, 768), help="WIDTHxHEIGHT, default 512x768")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="redraw even if the catalogue is complete")
    ap.add_argument("--no-product-shots", dest="product_shots", action="store_false",
                    help="worn photos only (no product shot per garment)")
    args = ap.parse_args(argv)
    refusal = not_a_catalogue(args.out)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if not args.force and outfits_complete(args.out, args.items, args.views, args.seed, args.size,
                                           args.product_shots):
        print(f"{args.out} is already a complete outfits catalogue ({args.items} tops and {args.items} bottoms x "
              f"{args.views} views, seed {args.seed}); nothing to do (use --force to redraw).")
        return 0
    t0 = time.perf_counter()
    try:
        generate_outfits(args.out, args.items, args.views, args.seed, args.size, args.workers,
                         product_shots=args.product_shots)
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shots = f" and {2 * args.items} product shots" if args.product_shots else ""
    print(f"wrote {args.items * args.views} outfit photos{shots} to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0
