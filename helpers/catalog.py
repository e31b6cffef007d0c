"""Load any catalogue folder into one table: image path, item id, optional masks and metadata.

Why one table: masking, embedding, indexing and the metrics only need "which image shows which
item"; where the folder came from (the generated sample, your own photos, DeepFashion In-shop)
is decided once, here. Every image is validated on the way in; a bad file is skipped with its
reason in `skipped` - never a crash, never a silent drop - so a user sees what to fix.

Layouts, detected in this order:
- generated: `manifest.csv` (from `helpers.sample`), with exact garment/person masks;
- DeepFashion In-shop: `list_eval_partition.txt` + `img/...`;
- CSV: a folder of images plus one `*.csv` with columns `image,item_id` (other columns are kept);
- folders: sub-folders named by item id, each holding that item's photos.

Every table has a `view` column: "worn" (a photo of the garment worn) or "product" (a product
shot: the garment alone, e.g. flat or on a hanger). A manifest or CSV without the column is all
"worn" (DeepFashion In-shop: its "flat" shots are product shots, the camera angle is in `angle`).
`load_catalog` returns the worn photos unless asked for other views (`views=None`: all),
so every worn-photo figure means what it meant before product shots existed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from helpers.cache import Cache, content_key
from helpers.errors import CatalogError, ImageError
from helpers.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, open_image
from helpers.settings import load_settings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
BASE_COLUMNS = ["image_id", "item_id", "image_path", "garment_mask_path", "person_mask_path"]
VIEWS = ("worn", "product")
WORN_ONLY = ("worn",)
SKIPPED_COLUMNS = ["path", "reason", "message"]


@dataclass
class CatalogLoad:
    """`table`: one row per usable image. `skipped`: DataFrame(path, reason, message)."""
    table: pd.DataFrame
    skipped: pd.DataFrame
    layout: str = ""

    def __iter__(self):  # allows `table, skipped = load_catalog(...)`
        return iter((self.table, self.skipped))


def _is_image_name(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def detect_layout(root: Path) -> str:
    """Name of the layout of `root`: generated, deepfashion, csv or folders."""
    if (root / "manifest.csv").is_file():
        return "generated"
    if (root / "list_eval_partition.txt").is_file() or (root / "Eval" / "list_eval_partition.txt").is_file():
        return "deepfashion"
    if any(p.suffix.lower() == ".csv" for p in root.iterdir() if p.is_file()):
        return "csv"
    if any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        return "folders"
    return "none"


def _outside(root: Path, name: str) -> dict | None:
    """A skipped row when a listed path (`../x.jpg`, `/etc/x.jpg`) leads outside the catalogue folder:
    a manifest or CSV may only name files inside it, so a catalogue can never show or index other files.
    Judged on the written path (links inside the folder are the folder owner's choice)."""
    target = Path(os.path.normpath(root / name))
    if Path(name).is_absolute() or not target.is_relative_to(root):
        return {"path": str(target), "reason": "outside_catalog",
                "message": f"{name}: lies outside the catalogue folder {root}; skipped. Copy the file into the "
                           "folder and list it by its path inside."}
    return None


def _rows_generated(root: Path) -> tuple[list[dict], list[dict]]:
    manifest = pd.read_csv(root / "manifest.csv", dtype={"image_id": str, "item_id": str}, keep_default_na=False)
    missing = {"image_id", "item_id", "image_path"} - set(manifest.columns)
    if missing:
        raise CatalogError(f"{root / 'manifest.csv'} lacks column(s) {', '.join(sorted(missing))}")
    rows, skipped = [], []
    for rec in manifest.to_dict("records"):
        outside = [_outside(root, rec[c]) for c in ("image_path", "garment_mask_path", "person_mask_path")
                   if rec.get(c)]
        if any(outside):
            skipped.append({**next(o for o in outside if o), "path": str(root / rec["image_path"])})
            continue
        for col in ("image_path", "garment_mask_path", "person_mask_path"):
            value = rec.get(col) or None
            rec[col] = str((root / value).resolve()) if value else None
        rows.append(rec)
    return rows, skipped


def _broken_link(f: Path) -> dict | None:
    """A skipped row for a symbolic link that leads nowhere (dangling), into itself (a loop) or to
    a folder (not followed, so a loop can never recurse): such files used to vanish without a word."""
    if not f.is_symlink():
        return None
    try:
        target = f.resolve(strict=True)
    except (RuntimeError, OSError) as err:
        loop = isinstance(err, RuntimeError) or getattr(err, "errno", None) == 40  # ELOOP
        reason = "symlink_loop" if loop else "dangling_link"
        what = "links back into itself" if loop else f"points at {os.readlink(f)}, which does not exist"
        return {"path": str(f), "reason": reason, "message": f"{f.name}: a symbolic link that {what}; skipped. "
                "Replace it with the photo itself (or remove it)."}
    if target.is_dir():
        return {"path": str(f), "reason": "linked_folder", "message": f"{f.name}: a link to the folder {target}; "
                "linked folders are not followed (they can loop). Copy the photos in instead."}
    return None


def _rows_folders(root: Path) -> tuple[list[dict], list[dict]]:
    rows, skipped = [], []
    for p in sorted(root.iterdir()):
        if p.is_symlink() and not p.exists():
            skipped.append(_broken_link(p))
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(sub.rglob("*")):
            broken = _broken_link(f) if not f.name.startswith(".") else None
            if broken:
                skipped.append(broken)
            elif f.is_file() and not f.name.startswith("."):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    rows.append({"image_id": f"{sub.name}/{f.relative_to(sub).with_suffix('').as_posix()}",
                                 "item_id": sub.name, "image_path": str(f.resolve())})
                elif f.suffix.lower() not in {".txt", ".md", ".json", ".csv"}:
                    skipped.append({"path": str(f), "reason": "not_an_image",
                                    "message": f"{f.name}: not an image file name; skipped."})
    loose = [p for p in root.iterdir() if _is_image_name(p)]
    for f in sorted(loose):
        skipped.append({"path": str(f), "reason": "no_item_id",
                        "message": f"{f.name}: lies outside any item sub-folder, so its item is unknown. "
                                   "Move it into a folder named after its item."})
    return rows, skipped


def _rows_csv(root: Path) -> tuple[list[dict], list[dict]]:
    csvs = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if len(csvs) > 1:
        preferred = [p for p in csvs if p.stem.lower() in ("labels", "catalog", "catalogue", "items", "images")]
        if len(preferred) != 1:
            raise CatalogError(f"{root} holds several CSV files ({', '.join(p.name for p in csvs)}); keep one "
                               "with columns image,item_id (or name it labels.csv).")
        csvs = preferred
    table = pd.read_csv(csvs[0], dtype=str, keep_default_na=False)
    table.columns = [c.strip() for c in table.columns]
    if not {"image", "item_id"} <= set(table.columns):
        raise CatalogError(f"{csvs[0].name} needs columns 'image' and 'item_id' (found: {', '.join(table.columns)}).")
    rows, skipped = [], []
    for rec in table.to_dict("records"):
        name = rec.pop("image").strip()
        item = rec.pop("item_id").strip()
        path = (root / name)
        if not item:
            skipped.append({"path": str(path), "reason": "no_item_id",
                            "message": f"{name}: the item_id cell is empty; fill it in {csvs[0].name}."})
            continue
        garment = rec.pop("garment_mask", "") or rec.pop("garment_mask_path", "")
        outside = _outside(root, name) or (_outside(root, garment) if garment else None)
        if outside:
            skipped.append(outside)
            continue
        rows.append({"image_id": Path(name).with_suffix("").as_posix(), "item_id": item,
                     "image_path": str(path.resolve()),
                     "garment_mask_path": str((root / garment).resolve()) if garment else None, **rec})
    return rows, skipped


def _rows_deepfashion(root: Path) -> tuple[list[dict], list[dict]]:
    part = root / "list_eval_partition.txt"
    if not part.is_file():
        part = root / "Eval" / "list_eval_partition.txt"
    lines = part.read_text().splitlines()
    # line 1: count, line 2: header "image_name item_id evaluation_status", then rows
    body = [ln.split() for ln in lines[2:] if ln.strip()]
    rows, skipped = [], []
    for fields in body:
        if len(fields) < 2:
            skipped.append({"path": str(part), "reason": "bad_line",
                            "message": f"list_eval_partition.txt: cannot read the line {' '.join(fields)!r}."})
            continue
        name, item = fields[0], fields[1]
        status = fields[2] if len(fields) > 2 else ""
        parts = Path(name).parts  # img/WOMEN/Dresses/id_00000002/02_1_front.jpg
        gender = parts[1] if len(parts) > 3 else ""
        category = parts[2] if len(parts) > 3 else ""
        path = root / name
        if _outside(root, name):
            skipped.append(_outside(root, name))
            continue
        # the camera angle (front, side, back, full, additional; "flat" is the garment alone)
        angle = Path(name).stem.split("_", 2)[-1] if "_" in Path(name).stem else ""
        if not path.exists() and (root / "Img" / name).exists():  # the download's Img/img/... layout
            path = root / "Img" / name
        rows.append({"image_id": Path(name).with_suffix("").as_posix().removeprefix("img/"), "item_id": item,
                     "image_path": str(path.resolve()), "split": status, "gender": gender,
                     "category": category, "angle": angle, "view": "product" if angle == "flat" else "worn"})
    return rows, skipped


LOADERS: dict[str, Callable[[Path], tuple[list[dict], list[dict]]]] = {
    "generated": _rows_generated, "folders": _rows_folders, "csv": _rows_csv, "deepfashion": _rows_deepfashion,
}


def _validated_key(path: str, max_pixels: int, max_bytes: int) -> str | None:
    """A key for "this file, as it is now, passed validation": path + size + mtime, like make.
    Decoding every photo on every load is what made a fully cached pipeline run slow."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return content_key(f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode(), "validate-v1",
                       max_pixels=max_pixels, max_bytes=max_bytes)


def _validate(rows: Iterable[dict], max_pixels: int, max_bytes: int,
              cache=None) -> tuple[list[dict], list[dict]]:
    from helpers.progress import tqdm

    rows = list(rows)
    ok, skipped, seen = [], [], set()
    for row in tqdm(rows, desc="checking images", unit="img", disable=len(rows) < 1000):
        path = row["image_path"]
        if row["image_id"] in seen:
            skipped.append({"path": path, "reason": "duplicate_id",
                            "message": f"{Path(path).name}: image id {row['image_id']!r} appears twice; "
                                       "only the first is kept. Rename one of them."})
            continue
        key = _validated_key(path, max_pixels, max_bytes) if cache is not None else None
        if key is None or not cache.has("validated", key, ".json"):
            try:
                open_image(Path(path), max_pixels=max_pixels, max_bytes=max_bytes, draft=True).close()
            except ImageError as exc:
                skipped.append({"path": path, "reason": exc.reason, "message": exc.message})
                continue
            if key is not None:
                cache.put_json("validated", key, {"ok": True})  # only successes are remembered
        seen.add(row["image_id"])
        ok.append(row)
    return ok, skipped


def load_catalog(path: Path | str | None = None, settings=None, *, validate: bool = True,
                 views: Iterable[str] | None = WORN_ONLY) -> CatalogLoad:
    """Read the catalogue at `path` (default: `settings.catalog`) into a table.

    `views`: which rows to keep by their `view` column ("worn" photos by default; `None` keeps
    every row, e.g. `("worn", "product")` for the photos and the product shots).

    Raises `CatalogError` only when nothing can be loaded (missing or empty folder, unknown
    layout); individual bad images are listed in `skipped` with a reason.
    """
    if path is None:
        if settings is None:
            settings = load_settings()
        path = settings.catalog
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise CatalogError(f"catalogue folder {root} does not exist. Make the sample with "
                           "`python -m helpers sample`, or point settings.catalog at your photos.")
    if not root.is_dir():
        raise CatalogError(f"{root} is a file; settings.catalog must be a folder.")
    layout = detect_layout(root)
    if layout == "none":
        loose = [p for p in root.iterdir() if _is_image_name(p)]
        hint = (f"it holds {len(loose)} image(s) but no item ids: put each item's photos in a sub-folder "
                "named after the item, or add a CSV with columns image,item_id") if loose else "it is empty"
        raise CatalogError(f"catalogue folder {root}: {hint}.")
    rows, skipped = LOADERS[layout](root)
    for rec in rows:
        rec["view"] = str(rec.get("view") or "worn").strip().lower()
    if views is not None:
        keep = {str(v).lower() for v in ([views] if isinstance(views, str) else views)}
        unknown = keep - set(VIEWS)
        if unknown:
            raise ValueError(f"unknown view(s) {sorted(unknown)}; views are {', '.join(VIEWS)} (or None for all)")
        rows = [rec for rec in rows if rec["view"] in keep]
    max_pixels = getattr(settings, "max_image_pixels", DEFAULT_MAX_PIXELS)
    max_bytes = getattr(settings, "max_image_bytes", DEFAULT_MAX_BYTES)
    if validate:
        cache = None
        if getattr(settings, "cache_dir", None) is not None:
            cache = Cache(settings.cache_dir)
        rows, bad = _validate(rows, max_pixels, max_bytes, cache)
    else:
        bad = []
    skipped = skipped + bad
    if not rows and not skipped:
        raise CatalogError(f"catalogue folder {root} ({layout} layout) lists no images.")
    table = pd.DataFrame(rows)
    for col in BASE_COLUMNS:
        if col not in table.columns:
            table[col] = None
    if "view" not in table.columns:
        table["view"] = "worn"
    extra = [c for c in table.columns if c not in BASE_COLUMNS]
    table = table[BASE_COLUMNS + extra].reset_index(drop=True)
    table["image_id"] = table["image_id"].astype(str)
    table["item_id"] = table["item_id"].astype(str)
    return CatalogLoad(table, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS), layout)


SUMMARY_COLUMNS = ("background", "silhouette", "pattern", "colour", "neckline", "sleeve", "length",
                   "lighting", "skin_tone", "category", "split")


def summary(table: pd.DataFrame, columns: Iterable[str] = SUMMARY_COLUMNS) -> dict[str, pd.Series]:
    """Counts per value of each metadata column present, plus the overall shape of the catalogue."""
    out: dict[str, pd.Series] = {
        "overview": pd.Series({"images": len(table), "items": table["item_id"].nunique(),
                               "views per item (median)": int(table.groupby("item_id").size().median())
                               if len(table) else 0,
                               **({"shoots": table["shoot_id"].nunique()} if "shoot_id" in table else {}),
                               **({"figures": table["figure_id"].nunique()} if "figure_id" in table else {})}, dtype=object)}
    for col in columns:
        if col in table.columns:
            per_item = table.drop_duplicates("item_id") if col in ("silhouette", "pattern", "colour", "neckline",
                                                                    "sleeve", "length") else table
            out[col] = per_item[col].value_counts().sort_index()
    return out


ITEM_ATTRIBUTES = ("silhouette", "neckline", "sleeve", "length", "colour", "pattern")


def attribute_twins(table: pd.DataFrame, attributes: Iterable[str] = ITEM_ATTRIBUTES) -> pd.DataFrame:
    """Pairs of items that differ in exactly one attribute (e.g. only the pattern).

    Why: such near twins make retrieval hard on purpose - a search that only matches colour, or
    only the cut, ranks the twin as high as the real item.
    """
    attributes = [a for a in attributes if a in table.columns]
    items = table.drop_duplicates("item_id").set_index("item_id")[attributes]
    rows = []
    ids = list(items.index)
    values = items.to_numpy()
    for i in range(len(ids)):
        differ = values[i + 1:] != values[i]
        for j in np.nonzero(differ.sum(1) == 1)[0]:
            k = int(np.argmax(differ[j]))
            rows.append({"item_a": ids[i], "item_b": ids[i + 1 + j], "differs_in": attributes[k],
                         "a": values[i][k], "b": values[i + 1 + j][k]})
    return pd.DataFrame(rows, columns=["item_a", "item_b", "differs_in", "a", "b"])


def make_example_folder(table: pd.DataFrame, dest: Path | str, items: int = 2, per_item: int = 2) -> Path:
    """Copy a few catalogue images into the 'one sub-folder per item' layout, plus one empty
    file, to show what loading your own photos looks like (and what a skipped file looks like)."""
    import shutil

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for item_id in sorted(table["item_id"].unique())[:items]:
        folder = dest / str(item_id)
        folder.mkdir(exist_ok=True)
        for n, src in enumerate(table.loc[table["item_id"] == item_id, "image_path"].head(per_item)):
            shutil.copyfile(src, folder / f"photo_{n + 1}{Path(src).suffix}")
    (dest / str(sorted(table["item_id"].unique())[0]) / "broken_download.jpg").write_bytes(b"")
    return dest
