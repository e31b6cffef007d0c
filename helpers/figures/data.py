"""Matplotlib figures the notebooks show: image grids, contact sheets, mask overlays.

Why here: notebooks should show a picture in one line, and every figure of the same kind should
look the same across notebooks. Functions return a `Figure` (closed from pyplot's state, so a
notebook shows it once, as the cell's value) and never change global matplotlib settings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

GARMENT_TINT = np.array([40, 220, 90], np.float32)
PERSON_TINT = np.array([230, 70, 60], np.float32)


def _load(path: str | Path, thumb: int | None = 384) -> np.ndarray:
    with Image.open(path) as img:
        img = img.convert("RGB")
        if thumb:
            img.thumbnail((thumb, thumb))
        return np.asarray(img)


def _mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as m:
        m = m.convert("L").resize((shape[1], shape[0]), Image.NEAREST)
        return np.asarray(m) > 127


def tint_person(image: np.ndarray, garment: np.ndarray | None = None, person: np.ndarray | None = None,
            alpha: float = 0.45) -> np.ndarray:
    """Tint the garment green and the rest of the person red, so mask errors are visible."""
    out = image.astype(np.float32).copy()
    if person is not None:
        rest = person & (~garment if garment is not None else True)
        out[rest] = out[rest] * (1 - alpha) + PERSON_TINT * alpha
    if garment is not None:
        out[garment] = out[garment] * (1 - alpha) + GARMENT_TINT * alpha
    return out.clip(0, 255).astype(np.uint8)


def image_grid(images: Sequence[str | Path | np.ndarray], titles: Sequence[str] | None = None,
               ncols: int = 5, size: float = 2.2, suptitle: str | None = None) -> Figure:
    """A grid of images (paths or arrays) with optional titles under each."""
    n = max(len(images), 1)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 1.55 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            img = images[i]
            ax.imshow(img if isinstance(img, np.ndarray) else _load(img))
            if titles is not None and i < len(titles):
                ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _group_sheet(table: pd.DataFrame, column: str, value: str, captions: tuple[str, ...],
                 what: str, suptitle: str, ncols: int) -> Figure:
    rows = table[table[column] == value]
    if rows.empty:
        raise KeyError(f"no images {what} {value!r}")
    titles = [_caption(r, captions) for _, r in rows.iterrows()]
    return image_grid(list(rows["image_path"]), titles, ncols=ncols, suptitle=suptitle)


def item_sheet(table: pd.DataFrame, item_id: str, ncols: int = 6) -> Figure:
    """Contact sheet of one item across its shoots: same dress, different everything else."""
    return _group_sheet(table, "item_id", item_id, ("shoot_id", "background", "figure_id"), "of item",
                        f"one item ({item_id}) across its shoots", ncols)


def shoot_sheet(table: pd.DataFrame, shoot_id: str, ncols: int = 6) -> Figure:
    """Contact sheet of one shoot: different dresses, same backdrop, light, camera and pose."""
    return _group_sheet(table, "shoot_id", shoot_id, ("item_id", "colour", "pattern"), "in shoot",
                        f"one shoot ({shoot_id}) across its items", ncols)


def mask_sheet(table: pd.DataFrame, n: int = 6, ncols: int = 6) -> Figure:
    """The first `n` images with their ground-truth masks tinted (green garment, red person)."""
    rows = table.head(n)
    images = []
    for _, r in rows.iterrows():
        img = _load(r["image_path"])
        garment = _mask(r["garment_mask_path"], img.shape[:2]) if r.get("garment_mask_path") else None
        person = _mask(r["person_mask_path"], img.shape[:2]) if r.get("person_mask_path") else None
        images.append(tint_person(img, garment, person))
    return image_grid(images, list(rows["image_id"]), ncols=ncols,
                      suptitle="ground truth: garment (green), rest of the person (red)")


#: Attributes `helpers.catalog.summary` counts once per item (the others: once per photo).
PER_ITEM = ("silhouette", "pattern", "colour", "neckline", "sleeve", "length")


def counts_chart(counts: dict[str, pd.Series], columns: Sequence[str], ncols: int = 3) -> Figure:
    """Bar charts of value counts (from `helpers.catalog.summary`) side by side; each panel's x axis
    says what it counts (items or photos), since the two scales differ."""
    columns = [c for c in columns if c in counts]
    nrows = max(1, (len(columns) + ncols - 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.8 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, col in zip(axes.flat, columns):
        ax.axis("on")
        s = counts[col]
        ax.barh([str(i) for i in s.index], s.values, color="#4a7ab5")
        unit = "items" if col in PER_ITEM else "photos"
        ax.set_title(f"{col} (per {unit[:-1]})", fontsize=10)
        ax.set_xlabel(f"number of {unit}", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.invert_yaxis()
    fig.tight_layout()
    plt.close(fig)
    return fig


def _caption(row: pd.Series, cols: Sequence[str]) -> str:
    return "\n".join(str(row[c]) for c in cols if c in row and pd.notna(row[c]))
