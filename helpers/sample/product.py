"""Product shots: each item's dress alone on a plain light background (flat lay or on a hanger).

Why: shoppers match their own photo of a worn dress against a shop's product shots, which show
the garment alone. So the catalogue gets one such shot per item, drawn from the item's own
garment shape, colour and print (the same `dress_outline` and `_pattern` as the worn photos, on
an average figure's proportions), with its exact garment mask. Each shot has its own seed from a
separate stream (`product_seed`), so adding them leaves every worn photo byte-identical.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from helpers.sample.body import dress_outline, make_body
from helpers.sample.plan import COLOURS, FigureSpec, ItemSpec
from helpers.sample.render import _inverse_coords, _noise, _pattern

# an average figure: the shots show the cut, not a body
_FIGURE = FigureSpec(figure_id="", skin_tone="", hair_colour="", hair_style="", shoulder=0.2325, waist=0.14,
                     hip=0.1925, head=0.125, leg=1.0, lips=(0, 0, 0), shoe=(0, 0, 0))
STYLES = ("flat", "hanger")


def product_seed(seed: int, item_index: int) -> int:
    """The shot's own seed: a stream apart from the plan's and the worn photos' seeds."""
    return int(np.random.SeedSequence([seed, 11, item_index]).generate_state(1)[0])


def product_id(item_index: int) -> str:
    return f"prod{item_index:04d}"


def _shapes(item: ItemSpec, style: str, jit: np.ndarray):
    pose = {"arms": "out" if style == "flat" else "down", "legs": "together", "lean": 0.0, "side": 1}
    body = make_body(_FIGURE, pose, jit * 0.5)
    shapes = dress_outline(item, body, float(jit[10]))
    polys = [p for key in ("dress", "strap", "sleeve_l", "sleeve_r") for p in shapes[key]]
    return body, shapes, polys


def _transform(polys: list[np.ndarray], w: int, h: int, rng: np.random.Generator, style: str) -> np.ndarray:
    """World -> pixel affine: the garment centred at a random scale and offset (a flat lay may
    lie slightly turned)."""
    pts = np.concatenate(polys)
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    fill = rng.uniform(0.62, 0.86)
    s = min(fill * h / (y1 - y0), 0.86 * w / (x1 - x0))
    rot = math.radians(rng.uniform(-4, 4) if style == "flat" else 0.0)
    c, si = math.cos(rot), math.sin(rot)
    R = np.array([[c, -si], [si, c]]) * s
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    room = np.array([max(0.0, w - s * (x1 - x0)), max(0.0, h - s * (y1 - y0))]) / 2
    target = np.array([w / 2, h / 2 + (0.03 * h if style == "hanger" else 0.0)]) + rng.uniform(-0.5, 0.5, 2) * room
    return np.hstack([R, (target - R @ centre)[:, None]])


def render_product(job: dict) -> dict:
    """Render one item's product shot and its masks into job['dir']; return its manifest row."""
    cv2.setNumThreads(1)
    item: ItemSpec = job["item_spec"]
    w, h = job["size"]
    rng = np.random.default_rng(job["seed"])
    style = STYLES[int(rng.integers(len(STYLES)))]
    jit = rng.uniform(-1, 1, 12)
    body, shapes, polys = _shapes(item, style, jit)
    M = _transform(polys, w, h, rng, style)
    garment = np.zeros((h, w), np.uint8)
    for p in polys:
        q = np.round((np.asarray(p, float) @ M[:, :2].T + M[:, 2]) * 16).astype(np.int32)
        cv2.fillPoly(garment, [q], 1, lineType=cv2.LINE_8, shift=4)
    garment = garment.astype(bool)
    scale_px = float(np.linalg.norm(M[:, 0]))

    # the background: white or a plain light colour, with a faint top-to-bottom gradient
    # (a plain colour is redrawn until it stands apart from the dress, as a photographer would pick it)
    if rng.random() < 0.5:
        base, background = np.full(3, rng.uniform(244, 254), np.float32), "white"
    else:
        dress = np.array(COLOURS[item.colour], np.float32)
        for _ in range(20):
            base = np.clip(rng.uniform(205, 240) + rng.uniform(-12, 12, 3), 0, 255).astype(np.float32)
            if np.abs(base - dress).sum() > 90:
                break
        background = "plain"
    ramp = (1 + rng.uniform(-0.03, 0.03) * (np.arange(h, dtype=np.float32) / h - 0.5))[:, None, None]
    bg = np.broadcast_to(base, (h, w, 3)) * ramp

    # a hanger (behind the dress: its hook and the bar's ends show above the shoulders)
    if style == "hanger":
        pts = np.array([body.sh_l + [-0.02, 0.0], [0.0, body.y_sh - 0.07], body.sh_r + [0.02, 0.0]])
        px = np.round(pts @ M[:, :2].T + M[:, 2]).astype(np.int32)
        colour = tuple(float(v) for v in (rng.uniform(60, 140) * np.array([1.0, 0.8, 0.6])))
        thick = max(2, int(round(0.006 * scale_px)))
        cv2.polylines(bg, [px], False, colour, thick, cv2.LINE_AA)
        top = px[1]
        r = max(3, int(round(0.025 * scale_px)))
        cv2.line(bg, tuple(int(v) for v in top), (int(top[0]), int(top[1] - r)), colour, thick, cv2.LINE_AA)
        cv2.ellipse(bg, (int(top[0]) + r // 2, int(top[1] - r)), (r // 2 + 1, r // 2 + 1), 0, 180, 360, colour, thick,
                    cv2.LINE_AA)

    # a soft drop shadow
    small = cv2.resize(garment.astype(np.float32), (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    off = np.float32([[1, 0, 0.01 * scale_px / 4], [0, 1, 0.015 * scale_px / 4]])
    sh = cv2.GaussianBlur(cv2.warpAffine(small, off, (w // 4, h // 4)), (0, 0), 0.01 * scale_px / 4 + 1)
    shadow = cv2.resize(sh, (w, h), interpolation=cv2.INTER_LINEAR) * rng.uniform(0.05, 0.12)
    bg = bg * (1 - shadow)[..., None]

    # the dress: its print in body coordinates (as when worn), soft folds and a little shading
    img = bg.astype(np.float32)
    gy, gx = np.nonzero(garment)
    if gy.size:
        u, v = _inverse_coords(M, gx.astype(np.float32), gy.astype(np.float32))
        rel = np.clip((v - body.y_waist) / 0.5, 0, 1.5)
        ang = np.arctan2(u, v - body.y_waist + 0.25)
        folds = np.sin(ang * 9 + item.pattern_params["phase"][0] * 6.28 + 0.8 * jit[11])
        albedo = _pattern(item, u + 0.004 * rel * folds, v, body)
        shade = 0.93 + 0.05 * rel * folds - 0.04 * (v - body.y_sh)
        fine = 1 + 0.03 * _noise(rng, h, w, (w // 3, h // 3))[gy, gx]
        img[gy, gx] = albedo * (shade * fine)[:, None]
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(1.0, 2.5)
    img8 = np.clip(img + 0.5, 0, 255).astype(np.uint8)

    out = Path(job["dir"])
    iid = job["image_id"]
    rel_img, rel_g, rel_p = f"images/{iid}.jpg", f"masks/{iid}_garment.png", f"masks/{iid}_person.png"
    buf = io.BytesIO()
    Image.fromarray(img8).save(buf, format="JPEG", quality=int(rng.integers(85, 96)))
    (out / rel_img).write_bytes(buf.getvalue())
    for rel, m in ((rel_g, garment), (rel_p, np.zeros_like(garment))):
        ok, png = cv2.imencode(".png", m.astype(np.uint8) * 255)
        (out / rel).write_bytes(png.tobytes())
    ys, xs = np.nonzero(garment)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if xs.size else (0, 0, 0, 0)
    return {
        "image_id": iid, "item_id": item.item_id, "shoot_id": "", "figure_id": "", "category": "dress",
        "colour": item.colour, "pattern": item.pattern, "silhouette": item.silhouette, "neckline": item.neckline,
        "sleeve": item.sleeve, "length": item.length, "pattern_colour": item.pattern_colour,
        "background": background, "lighting": "product", "pose": style, "skin_tone": "", "hair": "",
        "image_path": rel_img, "garment_mask_path": rel_g, "person_mask_path": rel_p,
        "bbox_x0": bbox[0], "bbox_y0": bbox[1], "bbox_x1": bbox[2], "bbox_y1": bbox[3],
        "width": w, "height": h, "garment_pixels": int(garment.sum()), "person_pixels": 0, "view": "product",
    }
