"""Figures for notebooks 04 and 05: neighbour grids with scores, 2-D maps of embedding spaces,
and the HNSW trade-off chart.

Same conventions as `helpers.figures`: each function returns a closed matplotlib `Figure` (a
notebook shows it once, as the cell's value) and never changes global matplotlib settings.
Green frames mark results of the query's own item, so a reader counts hits at a glance.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

SAME = "#1a7f37"
OTHER = "#b0b0b0"
QUERY = "#1f4e9c"
ImageLike = Image.Image | np.ndarray | str | Path


def _array(img: ImageLike, thumb: int = 256) -> np.ndarray:
    if isinstance(img, np.ndarray):
        return img
    if isinstance(img, Image.Image):
        im = img.convert("RGB")
        im.thumbnail((thumb, thumb))
        return np.asarray(im)
    with Image.open(img) as im:
        im = im.convert("RGB")
        im.thumbnail((thumb, thumb))
        return np.asarray(im)


def _frame(ax, colour: str, width: float = 3.0) -> None:
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(colour)
        spine.set_linewidth(width)
    ax.set_xticks([])
    ax.set_yticks([])


def neighbour_rows(rows: Sequence[Mapping[str, Any]], size: float = 2.4) -> Figure:
    """One row per query: the query (blue frame), then its results.

    Each row is {"label": str, "query": image, "results": [(image, caption, same_item), ...]}.
    """
    ncols = 1 + max((len(r["results"]) for r in rows), default=0)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(size * ncols, size * 1.25 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for ax in axes[r]:
            ax.axis("off")
        ax = axes[r][0]
        ax.axis("on")
        ax.imshow(_array(row["query"]))
        _frame(ax, QUERY)
        ax.set_title(row.get("label", "query"), fontsize=8, color=QUERY)
        for c, (img, caption, same) in enumerate(row["results"], start=1):
            ax = axes[r][c]
            ax.axis("on")
            ax.imshow(_array(img))
            _frame(ax, SAME if same else OTHER)
            ax.set_title(caption, fontsize=7, color=SAME if same else "#333")
    fig.tight_layout()
    plt.close(fig)
    return fig


def search_grid(results: Mapping[str, pd.DataFrame], query: ImageLike, *, query_item: str | None = None,
                images: Mapping[str, Mapping[str, ImageLike]] | None = None) -> Figure:
    """The output of `helpers.search.search` as image rows with scores, one row per mode.

    In garment mode the row starts with the query's cut-out (what was searched). `images`
    may map mode -> {image_id: picture} to show, e.g., catalogue cut-outs in the garment row;
    by default each result shows its photo (`image_path`).
    """
    rows = []
    for mode, frame in results.items():
        shown = (images or {}).get(mode, {})
        q = frame.attrs.get("query_cutout", query) if mode == "garment" else query
        rows.append({"label": f"{mode}: query", "query": q, "results": [
            (shown.get(r.image_id, r.image_path), f"{r.rank}. {r.item_id}\n{r.score:.3f}",
             query_item is not None and r.item_id == query_item)
            for r in frame.itertuples(index=False)]})
    return neighbour_rows(rows)


def projection_panels(points: Mapping[str, np.ndarray], labels: Mapping[str, Sequence[Any]],
                      highlight: int = 8, size: float = 4.6) -> Figure:
    """Scatter plots of 2-D projections: one row per space (e.g. full, garment), one column
    per labelling (e.g. item, shoot). The `highlight` largest groups of each labelling get
    their own colour, every other image is a small grey dot: with dozens of groups, colours
    would repeat and the eye could not follow one group."""
    fig, axes = plt.subplots(len(points), len(labels), figsize=(size * len(labels), size * len(points)),
                             squeeze=False)
    cmap = plt.get_cmap("tab10")
    for c, (name, values) in enumerate(labels.items()):
        values = np.asarray(values)
        counts = pd.Series(values).value_counts(sort=True)
        groups = list(counts.index[:highlight])
        for r, (space, xy) in enumerate(points.items()):
            ax = axes[r][c]
            rest = ~np.isin(values, groups)
            ax.scatter(xy[rest, 0], xy[rest, 1], s=6, color="#d0d0d0", linewidths=0)
            for n, value in enumerate(groups):
                sel = values == value
                ax.scatter(xy[sel, 0], xy[sel, 1], s=26, color=cmap(n % 10), alpha=0.9, linewidths=0,
                           label=str(value))
            ax.set_title(f"{space} vectors: {len(groups)} {name}s in colour", fontsize=11)
            ax.set_xticks([])
            ax.set_yticks([])
            # every panel gets its key, outside the plot so it hides no dot
            ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=1.0,
                      ncol=1, frameon=False, title=name, title_fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig


def tradeoff_chart(tables: Mapping[str, pd.DataFrame], k: int = 10) -> Figure:
    """recall@k and median query latency against ef_search, one line per data set."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, t in tables.items():
        left.plot(t["ef"], t[f"recall@{k}"], marker="o", label=name)
        right.plot(t["ef"], t["p50_ms"], marker="o", label=name)
    for ax, title in ((left, f"recall@{k} vs exact search"), (right, "median query time (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ef_search")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    left.axhline(0.99, color="#999", linestyle="--", linewidth=1)
    left.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def search_view_figure(view: Any, query_image: ImageLike | None = None, *, size: float = 1.9) -> Figure:
    """A static picture of what the search app shows (a `helpers.appview.SearchView`): one row per
    mode, the query (its cut-out in garment mode) and the top-k with rank, score and item, green
    frames on the query's own item. Why: an executed or exported notebook keeps no live widget;
    this figure keeps the same results. `query_image` is the query photo (the app passes it)."""
    if view.query is None or not view.results:
        raise ValueError(f"nothing to draw: {view.message or 'the app has not searched yet'}")
    rows = []
    for mode, cards in view.results.items():
        shown = view.query_cutout if mode == "garment" and view.query_cutout is not None else query_image
        label = f"{mode}: {view.query.label}" + (" (cut-out)" if shown is view.query_cutout else "")
        rows.append({"label": label, "query": shown if shown is not None else np.full((8, 8, 3), 255, np.uint8),
                     "results": [(c.image_path, f"#{c.rank} · {c.score:.3f}\nitem {c.item_id}", c.same_item)
                                 for c in cards]})
    fig = neighbour_rows(rows, size=size)
    fig.suptitle(f"query {view.query.label}: top {view.k} per mode (green = same item)", fontsize=9)
    fig.tight_layout()
    return fig
