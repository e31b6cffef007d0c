"""Writing the generated catalogue: render every planned image in worker processes, write the
images, masks and manifest, and tell whether a catalogue on disk is complete for its seed. Why the
catalogue is generated at all: see the package docstring (`helpers.sample`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.sample.folder import GENERATED_FILES, _parse_size, _remove_generated, not_a_catalogue  # noqa: F401 (outfits, tests)
from helpers.sample.plan import GENERATOR_VERSION, MANIFEST, MANIFEST_COLUMNS, META, make_plan
from helpers.sample.product import product_id, product_seed, render_product
from helpers.sample.render import render_image


# ----------------------------------------------------------------------------------------------
# The catalogue on disk
# ----------------------------------------------------------------------------------------------

def _meta(items: int, views: int, seed: int, size: tuple[int, int], product_shots: bool = True) -> dict:
    return {"generator": "helpers.sample", "version": GENERATOR_VERSION, "items": items, "views": views,
            "seed": seed, "size": [int(size[0]), int(size[1])], "product_shots": bool(product_shots)}


def is_complete(out: Path, items: int | None = None, views: int | None = None, seed: int | None = None,
                size: tuple[int, int] | None = None) -> bool:
    """True when `out` holds a finished generated catalogue (with these parameters, if given)."""
    out = Path(out)
    try:
        meta = json.loads((out / META).read_text())
    except (OSError, ValueError):
        return False
    want = {k: v for k, v in (("items", items), ("views", views), ("seed", seed)) if v is not None}
    if size is not None:
        want["size"] = [int(size[0]), int(size[1])]
    if any(meta.get(k) != v for k, v in want.items()) or meta.get("version") != GENERATOR_VERSION:
        return False
    import pandas as pd
    try:
        table = pd.read_csv(out / MANIFEST)
    except (OSError, ValueError):
        return False
    if len(table) != meta.get("n_images"):
        return False
    return all((out / p).is_file() for col in ("image_path", "garment_mask_path", "person_mask_path")
               for p in table[col])


def _jobs(plan: dict, out: Path, size: tuple[int, int]) -> list[dict]:
    return [{"image_id": im["image_id"], "seed": im["seed"], "size": tuple(size), "dir": str(out),
             "item_spec": plan["items"][im["item"]], "shoot_spec": plan["shoots"][im["shoot"]],
             "figure_spec": plan["figures"][im["figure_id"]]} for im in plan["images"]]


def _product_jobs(plan: dict, out: Path, size: tuple[int, int], seed: int) -> list[dict]:
    """One product shot per item, each with a seed from its own stream (worn photos unchanged)."""
    return [{"image_id": product_id(n), "seed": product_seed(seed, n), "size": tuple(size), "dir": str(out),
             "item_spec": item, "product": True} for n, item in enumerate(plan["items"])]


def _render(job: dict) -> dict:
    row = render_product(job) if job.get("product") else render_image(job)
    row.setdefault("view", "worn")
    return row


def generate_catalog(out: Path, items: int = 48, views: int = 5, seed: int = 0,
                     size: tuple[int, int] = (512, 768), workers: int = 2, progress: bool = True,
                     product_shots: bool = True) -> Path:
    """Write images, exact masks and manifest.csv under `out` (replacing it) and return `out`.

    `items * views` worn photos (manifest `view` = "worn") and, with `product_shots`, one product
    shot per item (`view` = "product": the dress alone on a plain light background, flat or on a
    hanger). The worn photos are the same bytes with or without product shots.

    Built in a temporary sibling folder and moved into place at the end, so an interrupted run
    never leaves a half catalogue that looks complete.
    """
    import pandas as pd
    from helpers.progress import tqdm

    out = Path(out)
    w, h = int(size[0]), int(size[1])
    if w < 64 or h < 64:
        raise ValueError("size must be at least 64x64 pixels")
    plan = make_plan(items, views, seed)
    if out.is_dir():
        _remove_generated(out, dry_run=True)  # refuse before drawing, not after
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        jobs = _jobs(plan, tmp, (w, h))
        if product_shots:
            jobs += _product_jobs(plan, tmp, (w, h), seed)
        rows: list[dict] = []
        bar = tqdm(total=len(jobs), desc="drawing catalogue", unit="img", disable=not progress)
        if workers <= 1:
            for job in jobs:
                rows.append(_render(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                try:
                    for row in pool.map(_render, jobs, chunksize=4):
                        rows.append(row)
                        bar.update()
                except BrokenProcessPool:
                    raise RuntimeError(
                        "the drawing processes stopped before the catalogue was done (nothing was written). "
                        "From a Python script, call generate_catalog under `if __name__ == \"__main__\":` "
                        "(each process imports the script, so an unguarded call runs again inside it), or "
                        "pass workers=1.") from None
        bar.close()
        table = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
        table.to_csv(tmp / MANIFEST, index=False, lineterminator="\n")
        pd.DataFrame([{**asdict(i), "pattern_params": json.dumps(i.pattern_params, sort_keys=True)}
                      for i in plan["items"]]).to_csv(tmp / "items.csv", index=False, lineterminator="\n")
        pd.DataFrame([{"shoot_id": s.shoot_id, "background": s.background, "lighting": s.light["name"],
                       "arms": s.pose["arms"], "legs": s.pose["legs"], "lean": round(s.pose["lean"], 2),
                       "crop": s.camera["crop"], "scale": round(s.camera["scale"], 3),
                       "rotation": round(s.camera["rot"], 2), "figures": " ".join(s.figures),
                       "jpeg_quality": s.finish["jpeg"]} for s in plan["shoots"]]).to_csv(
            tmp / "shoots.csv", index=False, lineterminator="\n")
        meta = {**_meta(items, views, seed, (w, h), product_shots), "n_images": len(rows),
                "n_product_shots": sum(r["view"] == "product" for r in rows), "n_shoots": len(plan["shoots"]),
                "n_figures": len(plan["figures"])}
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if out.exists():
            _remove_generated(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out




def ensure_sample(path: Path | str, items: int = 48, views: int = 5, seed: int = 0,
                  workers: int = 2) -> Path:
    """Draw the sample at `path` if it is missing; leave any existing folder alone.

    Why: notebooks call this first so that running one alone works on a fresh clone, without
    ever touching a folder of the user's own photos. Only a missing folder named `sample` is
    drawn; any other missing folder is probably a typo and gets a clear error instead.
    """
    path = Path(path)
    if path.exists():
        return path
    if path.name != "sample":
        raise FileNotFoundError(f"catalogue folder {path} does not exist. Check the path, or draw a "
                                f"sample there with `python -m helpers sample --out {path}`.")
    return generate_catalog(path, items=items, views=views, seed=seed, workers=workers)


def photo_distances(table, size: tuple[int, int] = (32, 48)) -> "pd.DataFrame":
    """How alike whole photos are, by pair kind: same item (other shoot), same shoot (other item),
    neither. Mean absolute difference of small grey thumbnails (0 = identical, 1 = opposite).

    Why: it shows the confounder with a number - if same-shoot pairs are closer than same-item
    pairs, whole-photo similarity finds the shoot, not the dress.
    """
    import pandas as pd

    thumbs = {}
    for row in table.itertuples():
        with Image.open(row.image_path) as img:
            thumbs[row.image_id] = np.asarray(img.convert("L").resize(size, Image.BILINEAR), np.float32) / 255
    ids = list(thumbs)
    stack = np.stack([thumbs[i].ravel() for i in ids])
    items = table.set_index("image_id").loc[ids, "item_id"].to_numpy()
    shoots = table.set_index("image_id").loc[ids, "shoot_id"].to_numpy()
    rows = []
    for a in range(len(ids)):
        d = np.abs(stack[a + 1:] - stack[a]).mean(1)
        same_item = items[a + 1:] == items[a]
        same_shoot = shoots[a + 1:] == shoots[a]
        kind = np.where(same_item, "same item, other shoot", np.where(same_shoot, "same shoot, other item", "neither"))
        rows.append(pd.DataFrame({"pair": kind, "distance": d}))
    pairs = pd.concat(rows, ignore_index=True)
    out = pairs.groupby("pair")["distance"].agg(["count", "median", "mean"])
    out[["median", "mean"]] = out[["median", "mean"]].astype(float).round(3)
    return out


def _kind_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--kind", choices=("dresses", "outfits"), default="dresses",
                    help="dresses (the default catalogue) or outfits (tops, skirts and trousers worn together; "
                         "`--kind outfits --help` for its options)")
    return ap


def main(argv: list[str] | None = None) -> int:
    """`python -m helpers sample`: draw the sample catalogue (skipped if already complete)."""
    kind, _ = _kind_parser().parse_known_args(argv)
    if kind.kind == "outfits":  # separates: its own defaults (helpers.sample.outfits)
        from helpers.sample.outfits import main as outfits_main

        return outfits_main(argv)
    ap = argparse.ArgumentParser(prog="python -m helpers sample", description=main.__doc__,
                                 parents=[_kind_parser()])
    ap.add_argument("--out", type=Path, default=Path("data/sample"))
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--views", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=_parse_size, default=(512, 768), help="WIDTHxHEIGHT, default 512x768")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="redraw even if the catalogue is complete")
    ap.add_argument("--no-product-shots", dest="product_shots", action="store_false",
                    help="worn photos only (no product shot per item)")
    args = ap.parse_args(argv)
    refusal = not_a_catalogue(args.out)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if not args.force and is_complete(args.out, args.items, args.views, args.seed, args.size):
        print(f"{args.out} is already a complete catalogue ({args.items} items x {args.views} views, "
              f"seed {args.seed}); nothing to do (use --force to redraw).")
        return 0
    t0 = time.perf_counter()
    try:
        generate_catalog(args.out, args.items, args.views, args.seed, args.size, args.workers,
                         product_shots=args.product_shots)
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shots = f" and {args.items} product shots" if args.product_shots else ""
    print(f"wrote {args.items * args.views} photos{shots} to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
