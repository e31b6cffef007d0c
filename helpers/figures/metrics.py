"""The figures of the metrics notebook: each takes numbers or tables and returns a matplotlib Figure.

Why a module: notebook cells stay short (one call per figure), and the figures are the same
whichever catalogue or backend produced the numbers. Nothing here computes a metric.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

COLOURS = {"full": "#9e9e9e", "garment": "#1f77b4", "garment_reference": "#2ca02c"}
LABELS = {"full": "full photo", "garment": "garment (masker)", "garment_reference": "garment (true mask)"}
SHORT = {"full": "full\nphoto", "garment": "garment\n(masker)", "garment_reference": "garment\n(true mask)"}


def _plt():
    import matplotlib.pyplot as plt

    return plt


def bars_with_ci(intervals: Mapping[str, Mapping[str, Mapping[str, Any]]], title: str = ""):
    """Grouped bars: metric (x) x condition (colour), whiskers = 95 % bootstrap interval.

    `intervals[metric][condition] = {"value": v, "ci95": [lo, hi]}`.
    """
    plt = _plt()
    metric_names = list(intervals)
    conditions = list(next(iter(intervals.values())))
    fig, ax = plt.subplots(figsize=(1.8 + 1.7 * len(metric_names), 3.6))
    width = 0.8 / len(conditions)
    x = np.arange(len(metric_names))
    for j, cond in enumerate(conditions):
        vals = np.array([intervals[m][cond]["value"] for m in metric_names])
        lo = np.array([intervals[m][cond]["ci95"][0] for m in metric_names])
        hi = np.array([intervals[m][cond]["ci95"][1] for m in metric_names])
        pos = x - 0.4 + width * (j + 0.5)
        ax.bar(pos, vals, width, color=COLOURS.get(cond), label=LABELS.get(cond, cond))
        ax.errorbar(pos, vals, yerr=[vals - lo, hi - vals], fmt="none", ecolor="black", capsize=3, lw=1)
        for p, v, h in zip(pos, vals, hi):
            ax.text(p, h + 0.015, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, metric_names)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("score (higher is better)")
    ax.set_title(title or "Retrieval quality per condition (whiskers: 95 % bootstrap CI)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8, ncol=len(conditions), frameon=False)
    fig.tight_layout()
    return fig


def recall_curves(curves: Mapping[str, np.ndarray]):
    """Recall@k (hit rate) against k for each condition."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for cond, curve in curves.items():
        k = np.arange(1, len(curve) + 1)
        ax.plot(k, curve, marker="o", ms=3, color=COLOURS.get(cond), label=LABELS.get(cond, cond))
    ax.set_xlabel("k (results looked at)")
    ax.set_ylabel("Recall@k (right answer in top k)")
    ax.set_xticks(np.arange(1, max(len(c) for c in curves.values()) + 1, 2))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def breakdown_bars(frame: pd.DataFrame, title: str):
    """One attribute's per-value Recall@1 for each condition (from `metrics.breakdown`);
    None (no figure) when the catalogue has no such attribute."""
    if frame is None or not len(frame):
        return None
    plt = _plt()
    conds = [c for c in frame.columns if c != "queries"]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(frame) + 2), 3.2))
    width = 0.8 / len(conds)
    x = np.arange(len(frame))
    for j, cond in enumerate(conds):
        ax.bar(x - 0.4 + width * (j + 0.5), frame[cond].to_numpy(float), width,
               color=COLOURS.get(cond), label=LABELS.get(cond, cond))
    ax.set_xticks(x, [f"{v}\n(n={n})" for v, n in zip(frame.index, frame["queries"])], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("Recall@1")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(conds), frameon=False)
    fig.tight_layout()
    return fig


def same_shoot_bars(same_shoot: Mapping[str, Mapping[str, Any]]):
    """Of each condition's wrong top-1 answers, the share from the query's own shoot, vs chance."""
    if not same_shoot:
        return None
    plt = _plt()
    conds = list(same_shoot)
    frac = [same_shoot[c]["fraction"] or 0.0 for c in conds]
    chance = [same_shoot[c]["chance"] or 0.0 for c in conds]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    x = np.arange(len(conds))
    ax.bar(x, frac, 0.6, color=[COLOURS.get(c) for c in conds])
    ax.scatter(x, chance, marker="_", s=900, color="crimson", label="chance (random wrong answer)", zorder=3)
    for i, c in enumerate(conds):
        ax.text(i, frac[i] + 0.02, f"{same_shoot[c]['same_shoot']}/{same_shoot[c]['errors']}",
                ha="center", fontsize=8)
    ax.set_xticks(x, [SHORT.get(c, c) for c in conds], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of wrong top-1 answers\nfrom the query's own shoot")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def seed_vs_recall(seed: Mapping[str, float], recall: Mapping[str, float]):
    """The demo's number next to the measured one: they need not move together."""
    plt = _plt()
    conds = list(seed)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, values, title in ((axes[0], seed, "demo: mean top-3 cosine similarity"),
                              (axes[1], recall, "measured: Recall@1 (ground truth)")):
        v = [values[c] for c in conds]
        ax.bar(range(len(conds)), v, color=[COLOURS.get(c) for c in conds])
        for i, val in enumerate(v):
            ax.text(i, val + 0.01, f"{val:.3f}", ha="center", fontsize=8)
        ax.set_xticks(range(len(conds)), [SHORT.get(c, c) for c in conds], fontsize=8)
        ax.set_ylim(0, 1.08)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def seed_by_outcome(table: pd.DataFrame):
    """Mean top-3 similarity of queries whose first answer was right vs wrong, per condition:
    if the wrong ones score as high as the right ones, the number cannot tell them apart."""
    plt = _plt()
    conds = list(table.index)
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    x = np.arange(len(conds))
    ax.bar(x - 0.2, table["right"], 0.4, color="#4caf50", label="first answer right")
    ax.bar(x + 0.2, table["wrong"], 0.4, color="#e57373", label="first answer wrong")
    ax.set_xticks(x, [SHORT.get(c, c) for c in conds], fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("mean top-3 cosine similarity")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def failure_gallery(rows: Sequence[Mapping[str, Any]], max_rows: int = 5, tile: float = 3.6):
    """One row per missed query: photo with mask outline, its cut-out, garment search's wrong
    first answer, and full search's first answer (marked right or wrong). `rows` come from
    `report.gallery_rows(...)` over `report.garment_misses(...)` or `report.garment_losses(...)`.
    `tile` is each picture's size in inches (3.6 in: about 240 px per square picture after titles and padding in a 72 dpi inline figure, and the
    four fit the width of a notebook)."""
    import textwrap

    plt = _plt()
    rows = list(rows)[:max_rows]
    if not rows:
        return None
    titles = ["query photo + mask", "query cut-out (searched)", "garment top-1 (wrong item)", "full-photo top-1"]
    fig, axes = plt.subplots(len(rows), 4, figsize=(4 * tile, (tile + 0.6) * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        panels = [row["query_image"], row["query_cutout"], row["garment_top1_image"], row["full_top1_image"]]
        full_right = row.get("full_right")
        for c, (ax, img) in enumerate(zip(axes[r], panels)):
            ax.axis("off")
            if img is None:
                ax.text(0.5, 0.5, "no image", ha="center", va="center")
                continue
            ax.imshow(img)
            if c == 0 and row.get("query_mask") is not None:
                ax.contour(row["query_mask"], levels=[0.5], colors="lime", linewidths=1.0)
            title = titles[c]
            if c == 2:
                title += f"\n{row['garment_top1_item']}, right item at rank {row['garment_rank']}"
            elif c == 3 and full_right is not None:
                title += "\n" + ("right item" if full_right else "wrong item too")
            elif c == 0:
                title += f"\n{row['image_id']} (item {row['item_id']})"
            elif c == 1:
                title = "\n".join(textwrap.wrap(row["diagnosis"], 46))
            ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
