"""Drawing the separates: each garment's outline on a figure, one worn photo with its masks per
garment, and one product shot per garment. Reuses the dress catalogue's figure, shoot, print and camera
(helpers.sample.render) and runs in worker processes, one photo per plan entry and seed.
"""
from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from helpers.sample.body import Body, _capsule, _smooth_side, dress_outline, make_body
from helpers.sample.outfit_plan import (FOLDS, P_BOTTOM, P_TOP, P_TOP_SLEEVE_L, P_TOP_SLEEVE_R, SKIRT_HEM, TOP_HEM,
                                       TOP_PARTS, GarmentSpec)
from helpers.sample.plan import FigureSpec, ItemSpec, ShootSpec
from helpers.sample.render import (_camera, _Canvas, _inverse_coords, _noise, _pattern, body_albedo, draw_arms,
                                   draw_head, draw_under, photograph)

# ----------------------------------------------------------------------------------------------
# Geometry: each garment's outline on a body (world units, as the dress outline)
# ----------------------------------------------------------------------------------------------

def _clip_above(poly: np.ndarray, y: float) -> np.ndarray:
    """The part of a polygon above the line `y` (Sutherland-Hodgman against one edge)."""
    out = []
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        ina, inb = a[1] <= y, b[1] <= y
        if ina:
            out.append(a)
        if ina != inb:
            t = (y - a[1]) / (b[1] - a[1])
            out.append(a + t * (b - a))
    return np.array(out)


def top_outline(g: GarmentSpec, b: Body, jit: float) -> dict[str, list[np.ndarray]]:
    """A top: the dress outline of its neckline and sleeves, cut off at the top's hem."""
    proxy = ItemSpec(g.item_id, "A-line" if g.cut == "boxy" else "sheath", g.neckline, g.sleeve, "knee", g.colour,
                     g.pattern, g.pattern_colour)
    shapes = dress_outline(proxy, b, jit)
    hem = b.y_waist + TOP_HEM[g.cut] + 0.01 * jit
    return {"body": [_clip_above(p, hem) for p in shapes["dress"]], "sleeve_l": shapes["sleeve_l"],
            "sleeve_r": shapes["sleeve_r"]}


def bottom_outline(g: GarmentSpec, b: Body, jit: float) -> list[np.ndarray]:
    """A skirt (one flared outline from the waist) or trousers (a seat panel and two legs that
    follow the pose's knees)."""
    f = b.fig
    ww, hw = f.waist / 2, f.hip / 2
    top = b.y_waist - 0.012
    if g.category == "skirt":
        hem_y = SKIRT_HEM[g.length] + 0.005 * jit
        flare = {"A-line": 1.45, "pencil": 0.98, "flared": 1.8, "mini": 1.3}[g.cut]
        side = [(ww * 1.06, top), (hw * 1.07, b.y_hip)]
        if g.cut == "pencil":
            side += [(hw * 1.02, b.y_hip + 0.12)]
        side += [(hw * flare * (1 + 0.03 * jit), hem_y)]
        right = _smooth_side(side) + [np.array([hw * flare * 0.5, hem_y + 0.008]), np.array([0.0, hem_y + 0.01])]
        left = [p * np.array([-1, 1]) for p in right[::-1]]
        return [np.array(right + left)]
    wide = {"straight": (1.45, 1.15), "wide": (1.6, 1.75), "slim": (1.35, 0.8), "shorts": (1.5, 1.5)}[g.cut]
    seat = np.array([[-ww * 1.06, top], [ww * 1.06, top], [hw * 1.05, b.y_hip], [hw * 0.9, b.y_hip + 0.07],
                     [-hw * 0.9, b.y_hip + 0.07], [-hw * 1.05, b.y_hip]])
    polys = [seat]
    for hip, kn, an in ((b.hip_l, b.kn_l, b.an_l), (b.hip_r, b.kn_r, b.an_r)):
        if g.cut == "shorts":
            end = hip + (kn - hip) * 0.55
            polys.append(_capsule(hip, end, b.leg_r * wide[0], b.leg_r * wide[1], n=8))
        else:
            r_kn = b.leg_r * (wide[0] + wide[1]) / 2
            polys.append(_capsule(hip, kn, b.leg_r * wide[0], r_kn, n=8))
            polys.append(_capsule(kn, an - np.array([0.0, 0.005]), r_kn, b.leg_r * wide[1], n=8))
    return polys


def draw_outfit(canvas: _Canvas, top: GarmentSpec, bottom: GarmentSpec, b: Body, jit: np.ndarray) -> None:
    """A figure wearing a top over a skirt or trousers: body, bottom, top, arms, sleeves, head."""
    draw_under(canvas, b)
    for poly in bottom_outline(bottom, b, float(jit[0])):
        canvas.fill(poly, P_BOTTOM)
    shapes = top_outline(top, b, float(jit[1]))
    for poly in shapes["body"]:
        canvas.fill(poly, P_TOP)
    draw_arms(canvas, b)
    for key, label in (("sleeve_l", P_TOP_SLEEVE_L), ("sleeve_r", P_TOP_SLEEVE_R)):
        for poly in shapes[key]:
            canvas.fill(poly, label)
    draw_head(canvas, b)


def _paint(albedo: np.ndarray, fold_h: np.ndarray, where: np.ndarray, g: GarmentSpec, M: np.ndarray, b: Body,
           scale_px: float, phase: float, n_folds: int) -> None:
    """A garment's print and folds on its pixels (in body coordinates, so the print moves with it)."""
    gy, gx = np.nonzero(where)
    if not gy.size:
        return
    u, v = _inverse_coords(M, gx.astype(np.float32), gy.astype(np.float32))
    rel = np.clip((v - b.y_waist) / 0.5, 0, 1.5)
    ang = np.arctan2(u, v - b.y_waist + 0.25)
    folds = np.sin(ang * n_folds + g.pattern_params["phase"][0] * 6.28 + phase)
    albedo[gy, gx] = _pattern(g, u + 0.006 * rel * folds, v, b)
    fold_h[gy, gx] = (0.012 * scale_px) * (0.15 + rel) * folds


def _png(path: Path, mask: np.ndarray) -> None:
    ok, png = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    path.write_bytes(png.tobytes())


def render_outfit(job: dict) -> dict:
    """Render one worn photo and its per-garment masks into job['dir']; return its manifest row."""
    cv2.setNumThreads(1)
    top: GarmentSpec = job["top"]
    bottom: GarmentSpec = job["bottom"]
    shoot: ShootSpec = job["shoot"]
    fig: FigureSpec = job["figure"]
    w, h = job["size"]
    rng = np.random.default_rng(job["seed"])
    srng = np.random.default_rng(shoot.seed)
    jit = rng.uniform(-1, 1, 14)
    Mfig, Mbg = _camera(shoot, w, h, jit[7:10], shoot.pose["lean"] + 0.8 * jit[6])
    body = make_body(fig, shoot.pose, jit)
    canvas = _Canvas(w, h, Mfig)
    draw_outfit(canvas, top, bottom, body, jit[10:12])
    labels = canvas.labels
    top_mask, bottom_mask = np.isin(labels, TOP_PARTS), labels == P_BOTTOM
    clothes = top_mask | bottom_mask
    scale_px = shoot.camera["scale"] * h
    albedo = body_albedo(labels, fig)
    fold_h = np.zeros((h, w), np.float32)
    for g, where, j in ((top, top_mask, jit[12]), (bottom, bottom_mask, jit[13])):
        _paint(albedo, fold_h, where, g, Mfig, body, scale_px, 0.6 * float(j), FOLDS[g.category])
    satin = (top_mask if top.satin else np.zeros_like(top_mask)) | (bottom_mask if bottom.satin else False)
    img8 = photograph(labels, albedo, fold_h, clothes, satin if satin.any() else None, shoot, Mfig, Mbg, rng, srng)

    out, iid = Path(job["dir"]), job["image_id"]
    buf = io.BytesIO()
    Image.fromarray(img8).save(buf, format="JPEG", quality=shoot.finish["jpeg"])
    (out / f"images/{iid}.jpg").write_bytes(buf.getvalue())
    paths = {"garment": clothes, "top": top_mask, bottom.category: bottom_mask, "person": labels > 0}
    for name, m in paths.items():
        _png(out / f"masks/{iid}_{name}.png", m)
    row = {"image_id": iid, "view": "worn", "item_id": f"{top.item_id}+{bottom.item_id}", "category": "outfit",
           "top_id": top.item_id, "bottom": bottom.category, "shoot_id": shoot.shoot_id,
           "figure_id": fig.figure_id, "background": shoot.background, "lighting": shoot.light["name"],
           "pose": f'{shoot.pose["arms"]}/{shoot.pose["legs"]}', "skin_tone": fig.skin_tone,
           "image_path": f"images/{iid}.jpg", "width": w, "height": h}
    for name in paths:
        row[f"{name}_mask_path"] = f"masks/{iid}_{name}.png"
    row[f"{bottom.category}_id"] = bottom.item_id
    row["top_pixels"] = int(top_mask.sum())
    row[f"{bottom.category}_pixels"] = int(bottom_mask.sum())
    return row


# ----------------------------------------------------------------------------------------------
# Product shots: each garment alone, flat on a plain light background
# ----------------------------------------------------------------------------------------------

_FIGURE = FigureSpec(figure_id="", skin_tone="", hair_colour="", hair_style="", shoulder=0.2325, waist=0.14,
                     hip=0.1925, head=0.125, leg=1.0, lips=(0, 0, 0), shoe=(0, 0, 0))


def render_garment_shot(job: dict) -> dict:
    """One garment's product shot (flat lay, exact mask) into job['dir']; return its manifest row."""
    from helpers.sample.product import _transform

    cv2.setNumThreads(1)
    g: GarmentSpec = job["garment"]
    w, h = job["size"]
    rng = np.random.default_rng(job["seed"])
    jit = rng.uniform(-1, 1, 12)
    body = make_body(_FIGURE, {"arms": "out", "legs": "apart", "lean": 0.0, "side": 1}, jit * 0.3)
    if g.category == "top":
        shapes = top_outline(g, body, float(jit[0]))
        polys = shapes["body"] + shapes["sleeve_l"] + shapes["sleeve_r"]
    else:
        polys = bottom_outline(g, body, float(jit[0]))
    M = _transform(polys, w, h, rng, "flat")
    mask = np.zeros((h, w), np.uint8)
    for p in polys:
        q = np.round((np.asarray(p, float) @ M[:, :2].T + M[:, 2]) * 16).astype(np.int32)
        cv2.fillPoly(mask, [q], 1, lineType=cv2.LINE_8, shift=4)
    mask = mask.astype(bool)
    base = np.full(3, rng.uniform(236, 252), np.float32) if rng.random() < 0.5 else \
        np.clip(rng.uniform(205, 240) + rng.uniform(-10, 10, 3), 0, 255).astype(np.float32)
    img = np.broadcast_to(base, (h, w, 3)).astype(np.float32).copy()
    albedo = np.zeros((h, w, 3), np.float32)
    fold_h = np.zeros((h, w), np.float32)
    _paint(albedo, fold_h, mask, g, M, body, float(np.linalg.norm(M[:, 0])), float(jit[1]), FOLDS[g.category])
    shade = 0.95 + 0.04 * np.tanh(fold_h / max(1.0, float(np.abs(fold_h).max())))
    fine = 1 + 0.03 * _noise(rng, h, w, (w // 3, h // 3))
    img[mask] = (albedo * (shade * fine)[..., None])[mask]
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    img += rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(1.0, 2.5)
    img8 = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    out, iid = Path(job["dir"]), job["image_id"]
    buf = io.BytesIO()
    Image.fromarray(img8).save(buf, format="JPEG", quality=int(rng.integers(85, 96)))
    (out / f"images/{iid}.jpg").write_bytes(buf.getvalue())
    for name, m in (("garment", mask), (g.category, mask), ("person", np.zeros_like(mask))):
        _png(out / f"masks/{iid}_{name}.png", m)
    return {"image_id": iid, "view": "product", "item_id": g.item_id, "category": g.category,
            f"{g.category}_id": g.item_id, "bottom": g.category if g.category != "top" else "",
            "background": "plain", "lighting": "product", "pose": "flat", "image_path": f"images/{iid}.jpg",
            "garment_mask_path": f"masks/{iid}_garment.png", f"{g.category}_mask_path": f"masks/{iid}_{g.category}.png",
            "person_mask_path": f"masks/{iid}_person.png", f"{g.category}_pixels": int(mask.sum()),
            "width": w, "height": h}
