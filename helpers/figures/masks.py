"""Figures for the masking and cutting notebooks (02, 03): masker steps, mask errors, cut-outs.

Why a module: notebook cells stay short, and the figures are the same wherever masks are
shown. Colours: green = garment found correctly, red = taken but not garment (false
positive), blue = garment missed (false negative).
"""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from helpers import cutting
from helpers.figures.data import image_grid


# overlay tints (RGB 0-255) and what they mean; `overlay_key` turns them into a legend
OVERLAY_COLOURS = {"green: mask and truth agree": (40, 200, 60),
                   "red: masked, not garment (extra)": (230, 30, 30),
                   "blue: garment, not masked (missed)": (30, 80, 230)}


def overlay(image: Image.Image | np.ndarray, pred: np.ndarray, truth: np.ndarray | None = None,
            alpha: float = 0.55) -> np.ndarray:
    """The image with the mask tinted: green hit, red extra, blue missed (no truth: green)."""
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image).astype(np.float32)
    out = rgb.copy()
    truth = pred if truth is None else truth
    hit, extra, missed = OVERLAY_COLOURS.values()
    for sel, colour in ((pred & truth, hit), (pred & ~truth, extra), (~pred & truth, missed)):
        out[sel] = (1 - alpha) * rgb[sel] + alpha * np.array(colour, np.float32)
    return out.astype(np.uint8)


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def show_steps(steps: dict[str, Any], title: str = "") -> plt.Figure:
    """The local masker's steps: image, person + body parts, colour classes, garment."""
    image = steps["image"]
    fig, axes = plt.subplots(1, 4, figsize=(13, 5))
    axes[0].imshow(image)
    axes[0].set_title("1. the photo")
    axes[1].imshow(overlay(image, steps["person"]))
    body = steps.get("body")
    if body is not None:
        for part in list(body.arms) + list(body.legs):
            axes[1].plot(part[:, 0], part[:, 1], "-o", color="yellow", ms=3, lw=1.5)
        pts = np.vstack([body.shoulders, body.hips])
        axes[1].plot(pts[[0, 1, 3, 2, 0], 0], pts[[0, 1, 3, 2, 0], 1], "-", color="orange", lw=1.5)
        axes[1].add_patch(plt.Circle(tuple(body.head), body.head_r, fill=False, color="cyan", lw=1.5))
    axes[1].set_title(f"2. person + body ({steps['source']})")
    classes = np.zeros_like(image)
    for name, colour in (("background", (90, 90, 90)), ("skin", (255, 200, 150)),
                         ("hair", (110, 60, 20)), ("shoes", (0, 220, 220)), ("core", (255, 0, 255))):
        if name in steps:
            classes[steps[name]] = colour
    axes[2].imshow(classes)
    axes[2].set_title("3. background, skin, hair, shoes;\ntorso core (magenta)")
    axes[3].imshow(overlay(image, steps["garment"]))
    mode = "geometry (skin-coloured garment)" if steps.get("skin_like") else "colour"
    axes[3].set_title(f"4. garment, by {mode}")
    for ax in axes:
        _off(ax)
    fig.tight_layout(rect=(0, 0, 1, 0.93) if title else None)
    if title:
        fig.suptitle(title)
    return fig


def iou_histogram(scores: pd.DataFrame, goal: float = 0.85) -> plt.Figure:
    """Distribution of per-image IoU, with the mean, the median and the goal marked."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(scores["iou"], bins=np.linspace(0, 1, 41), color="#4c72b0")
    for value, label, style in ((scores["iou"].mean(), "mean", "-"), (scores["iou"].median(), "median", "--"),
                                (goal, "goal", ":")):
        ax.axvline(value, color="black", ls=style, lw=1.2, label=f"{label} {value:.3f}")
    ax.set_xlabel("IoU with the ground-truth garment mask")
    ax.set_ylabel("images")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def diagnose(row: pd.Series) -> str:
    """A one-line reason for a poor mask, from precision/recall and the catalogue attributes."""
    if row.get("failed"):
        return "no mask at all (the masker failed on this image)"
    parts = []
    if row["recall"] < 0.85:
        parts.append(f"missed {1 - row['recall']:.0%} of the garment")
    if row["precision"] < 0.9:
        parts.append(f"{1 - row['precision']:.0%} of the mask is not garment"
                     + (f" ({row['bg_share']:.0%} background)" if row.get("bg_share", 0) > 0.02 else
                        " (skin, hair or legs)"))
    colour = str(row.get("colour", ""))
    if colour in ("beige", "nude", "camel"):
        parts.append(f"skin-toned {colour} garment")
    elif row.get("pattern") in ("checks", "colour-block", "floral"):
        parts.append(f"{row['pattern']} pattern: several colours and inner edges in one garment")
    return "; ".join(parts) or "small errors along the outline"


def show_worst(scores: pd.DataFrame, masks: dict[str, np.ndarray], table: pd.DataFrame,
               n: int = 5) -> plt.Figure:
    """The n worst masks against the ground truth (green hit, red extra, blue missed)."""
    worst = scores.nsmallest(n, "iou")
    rows = table.set_index("image_id")
    fig, axes = plt.subplots(1, len(worst), figsize=(3.4 * len(worst), 6.0), squeeze=False)
    for ax, (_, rec) in zip(axes[0], worst.iterrows()):
        row = rows.loc[rec["image_id"]]
        image = Image.open(row["image_path"]).convert("RGB")
        with Image.open(row["garment_mask_path"]) as im:
            truth = np.asarray(im.convert("L")) > 127
        pred = masks.get(rec["image_id"], np.zeros_like(truth))
        ax.imshow(overlay(image, pred, truth))
        ax.set_title(f"{rec['image_id']}  IoU {rec['iou']:.2f}\n{row.get('colour', '')} "
                     f"{row.get('pattern', '')}, {row.get('background', '')}", fontsize=9)
        _off(ax)
    fig.legend(handles=overlay_key(), loc="lower center", ncol=3, fontsize=10, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # room for the colour key under the pictures
    return fig


def overlay_key() -> list:
    """Legend handles for `overlay`'s colours: the key travels with the figure."""
    from matplotlib.patches import Patch

    return [Patch(color=np.array(rgb) / 255, label=label) for label, rgb in OVERLAY_COLOURS.items()]


def show_forms(image: Image.Image, mask: np.ndarray, size: int = 224) -> plt.Figure:
    """The three cut-out forms side by side, the transparent one on a checkerboard."""
    forms = [("photo", image), ("on white", cutting.on_white(image, mask)),
             ("on transparent (RGBA)", cutting.on_transparent(image, mask)),
             (f"square crop, {size} px", cutting.square_crop(image, mask, size=size))]
    fig, axes = plt.subplots(1, 4, figsize=(15, 5.6),
                             gridspec_kw={"width_ratios": [image.width / image.height] * 3 + [1]})
    for ax, (name, im) in zip(axes, forms):
        if im.mode == "RGBA":
            ax.imshow(_checker(im.size), interpolation="nearest")
        ax.imshow(im)
        ax.set_title(f"{name}\n{im.width}x{im.height} {im.mode}", fontsize=10)
        _off(ax)
    fig.tight_layout()
    return fig


def _checker(size: tuple[int, int], cell: int = 16) -> np.ndarray:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    board = ((yy // cell + xx // cell) % 2).astype(np.float32)
    return (200 + 40 * board)[..., None].repeat(3, axis=2).astype(np.uint8)


def show_edges(image: Image.Image, mask: np.ndarray,
               treatments: Sequence[cutting.EdgeTreatment], zoom: int = 90) -> plt.Figure:
    """A close-up of the garment's outline under each edge treatment (on a dark ground, so the
    edge shows)."""
    x0, y0, x1, y1 = cutting.garment_box(mask)
    cy = (y0 + y1) // 2
    row = np.nonzero(mask[cy])[0]
    cx = int(row.min()) if len(row) else x0  # the left outline, half-way down
    box = (max(cx - zoom // 2, 0), max(cy - zoom // 2, 0), cx + zoom // 2, cy + zoom // 2)
    fig, axes = plt.subplots(1, len(treatments), figsize=(3.4 * len(treatments), 3.8))
    for ax, edge in zip(np.atleast_1d(axes), treatments):
        rgba = cutting.on_transparent(image, mask, edge).crop(box)
        dark = Image.new("RGBA", rgba.size, (30, 30, 30, 255))
        ax.imshow(Image.alpha_composite(dark, rgba), interpolation="nearest")
        ax.set_title(f"dilate {edge.dilate} px, feather {edge.feather:g} px", fontsize=10)
        _off(ax)
    fig.tight_layout()
    return fig


def show_grid(images: dict[str, Image.Image], n: int = 8, cols: int = 4, tile: float = 3.4) -> plt.Figure:
    """Rows of cut-outs with their image ids; `tile` inches per picture (3.4 in is about 245 px
    in an inline figure: large enough to judge an edge)."""
    items = list(images.items())[:n]
    rows = max(1, int(np.ceil(len(items) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(tile * cols, (tile + 0.3) * rows), squeeze=False)
    for ax in axes.ravel():
        _off(ax)
    for ax, (name, im) in zip(axes.ravel(), items):
        ax.imshow(im)
        ax.set_title(name, fontsize=10)
    fig.tight_layout()
    return fig


PARSER_PALETTE = np.array([[235, 235, 235], [240, 190, 160], [90, 60, 40], [200, 40, 60], [60, 110, 210],
                           [240, 160, 40], [50, 50, 120], [150, 80, 170], [90, 160, 90]], np.uint8)


def show_parser_steps(steps: dict[str, Any], title: str = "") -> plt.Figure:
    """The garment parser's steps (ParserMasker.explain): photo, likeliest class per pixel, mask."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 5))
    axes[0].imshow(steps["image"])
    axes[0].set_title("1. the photo")
    axes[1].imshow(PARSER_PALETTE[steps["classes"]])
    axes[1].set_title("2. likeliest class per pixel")
    handles = [plt.Rectangle((0, 0), 1, 1, color=PARSER_PALETTE[i] / 255) for i in range(len(steps["class_names"]))]
    axes[1].legend(handles, steps["class_names"], fontsize=7, loc="lower left", framealpha=0.8)
    axes[2].imshow(overlay(steps["image"], steps["mask"]))
    axes[2].set_title(f"3. mask for {steps['prompt']!r} (quality {steps['quality']:.2f})")
    for ax in axes:
        _off(ax)
    fig.suptitle(title)
    fig.tight_layout()
    return fig



def show_examples(examples: Sequence[dict[str, Any]]) -> plt.Figure | None:
    """Real photos with their predicted mask against the ground truth (green hit, red extra,
    blue missed), titled with IoU and quality: `helpers.maskeval.ccp_examples` rows. None when
    no example has a mask (every one failed)."""
    shown = [e for e in examples if e.get("pred") is not None]
    if not shown:
        return None
    titles = [f"{e['image_id']}: IoU {e['iou']:.2f}" + ("" if e.get("quality") is None else f", quality {e['quality']:.2f}")
              for e in shown]
    return image_grid([overlay(e["image"], e["pred"], e["truth"]) for e in shown], titles, ncols=len(shown), size=3.4)
