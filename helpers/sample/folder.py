"""A generated catalogue's folder: what the generator wrote there, and deleting only that.

Why its own module: both catalogues (dresses in helpers.sample.generate, separates in
helpers.sample.outfits) redraw with `--force`, and both must delete only their own files.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from helpers.sample.plan import MANIFEST, META

#: the tables a catalogue's generator writes beside its photos and masks
GENERATED_FILES = (MANIFEST, META, "items.csv", "shoots.csv")


def _written_by_generator(out: Path) -> set[Path]:
    """The files a previous run of this generator wrote in `out`: its manifest's photos and masks
    (only those inside `out`) and its four tables. Empty when `out` holds no readable sample.json and manifest."""
    import pandas as pd

    try:
        json.loads((out / META).read_text())
        table = pd.read_csv(out / MANIFEST, dtype=str, keep_default_na=False)
    except (OSError, ValueError):
        return set()
    root = out.resolve()
    files = {root / name for name in GENERATED_FILES}
    for col in ("image_path", "garment_mask_path", "person_mask_path"):
        for value in table.get(col, []):
            path = Path(os.path.normpath(root / value)) if value else None
            if path is not None and path.is_relative_to(root):
                files.add(path)
    return files


def _remove_generated(out: Path, *, dry_run: bool = False) -> None:
    """Delete a previous catalogue, but only what this generator wrote: a folder holding anything else
    (own photos beside a stray sample.json, files added to a generated catalogue) is left untouched."""
    if not any(out.iterdir()):
        if not dry_run:
            out.rmdir()
        return
    ours = _written_by_generator(out)
    if not ours:
        raise FileExistsError(f"{out} exists and is not a generated catalogue (no readable {META} and {MANIFEST}); "
                              "choose another --out or remove it yourself.")
    others = sorted(p for p in out.resolve().rglob("*") if (p.is_file() or p.is_symlink()) and p not in ours)
    if others:
        names = ", ".join(str(p.relative_to(out.resolve())) for p in others[:3]) + (" ..." if len(others) > 3 else "")
        raise FileExistsError(f"{out} holds {len(others)} file(s) the generator did not write ({names}); nothing "
                              "was deleted. Move them out of the folder, or choose another --out.")
    if not dry_run:
        shutil.rmtree(out)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x768, got {text!r}") from None
    return w, h


def not_a_catalogue(out: Path) -> str | None:
    """Why `out` must not be drawn into (a file, or a folder of other things without sample.json), or
    None: both generators refuse such an --out before drawing anything."""
    if out.is_file() or (out.is_dir() and any(out.iterdir()) and not (out / META).is_file()):
        return f"{out} exists and is not a generated catalogue (no {META}); choose another --out."
    return None
