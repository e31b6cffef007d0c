"""How good are a masker's masks? IoU, precision, recall and background share against the
catalogue's ground-truth masks, per image and summarised per attribute (weak cases visible).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd
from PIL import Image

from helpers.maskpool import MaskRun


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} vs {truth.shape}")
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)


ATTRIBUTES = ("category", "colour", "pattern", "silhouette", "sleeve", "length", "skin_tone", "background", "pose")


def _read_mask(path) -> np.ndarray | None:
    if path is None or (isinstance(path, float) and np.isnan(path)) or not str(path):
        return None
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def evaluate_masks(run: MaskRun | dict[str, np.ndarray], table: pd.DataFrame) -> pd.DataFrame:
    """Per-image quality against the ground truth: iou, precision (share of the mask that is
    garment), recall (share of the garment found), background (share of the mask outside the
    person: the "never more than a few % background" check), plus the catalogue's attributes.
    Images the masker failed on get iou 0 and a `failed` flag."""
    masks = run.masks if isinstance(run, MaskRun) else run
    attrs = [a for a in ATTRIBUTES if a in table.columns]
    rows = []
    for rec in table.to_dict("records"):
        truth = _read_mask(rec.get("garment_mask_path"))
        if truth is None:
            continue
        image_id = str(rec["image_id"])
        pred = masks.get(image_id)
        row: dict[str, Any] = {"image_id": image_id, "item_id": rec.get("item_id")}
        row.update({a: rec[a] for a in attrs})
        if pred is None:
            row.update(iou=0.0, precision=0.0, recall=0.0, bg_share=0.0, failed=True)
        else:
            inter = float(np.logical_and(pred, truth).sum())
            area = float(pred.sum())
            person = _read_mask(rec.get("person_mask_path"))
            bg = float(np.logical_and(pred, ~person).sum() / area) if person is not None and area else 0.0
            row.update(iou=mask_iou(pred, truth), precision=inter / area if area else 0.0,
                       recall=inter / float(truth.sum()) if truth.any() else 1.0, bg_share=bg,
                       failed=False)
        rows.append(row)
    return pd.DataFrame(rows)


def summarize_iou(scores: pd.DataFrame, by: Iterable[str] | None = None) -> pd.DataFrame:
    """Mean / median / worst IoU overall and per value of each attribute (weak cases visible)."""
    by = [b for b in (by or ("colour", "pattern", "background", "silhouette")) if b in scores.columns]
    out = [{"attribute": "all", "value": "all", "n": len(scores), "mean_iou": scores["iou"].mean(),
            "median_iou": scores["iou"].median(), "min_iou": scores["iou"].min(),
            "mean_bg_share": scores["bg_share"].mean()}]
    for attr in by:
        for value, grp in scores.groupby(attr, sort=True):
            out.append({"attribute": attr, "value": value, "n": len(grp), "mean_iou": grp["iou"].mean(),
                        "median_iou": grp["iou"].median(), "min_iou": grp["iou"].min(),
                        "mean_bg_share": grp["bg_share"].mean()})
    return pd.DataFrame(out)
