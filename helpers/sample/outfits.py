"""A generated catalogue of separates: tops, skirts and trousers, each worn in several outfits.

Why: the dress catalogue asks "does cutting out *the* garment find the same dress?". With separates
the question becomes sharper: a photo shows two garments, and a shopper searching for a skirt means
the skirt only. Here every garment (a top, a skirt or a pair of trousers) is an item; each item is
worn `views` times, each time with a different partner (the same skirt with different tops), in
different shoots (backdrop, light, camera) on different models. Masks are exact **per garment**
(`top_mask_path`, `skirt_mask_path`, `trousers_mask_path`; `garment_mask_path` is all the clothes),
and the ground truth is per garment (`top_id`, `skirt_id`, `trousers_id`: which photos show the
same item). One product shot per garment shows it alone.

Drawing reuses the dress catalogue's figures, shoots, prints and camera (`plan`, `body`, `render`);
the dress catalogue's bytes are unchanged by this module (its own seed streams).
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from helpers.sample.body import Body, _capsule, _smooth_side, dress_outline, make_body
from helpers.sample.plan import (BACKGROUNDS, COLOURS, META, NECKLINES, SKIN_TONED, FigureSpec, ItemSpec,
                                 ShootSpec, _choice, _set_pattern, plan_figures, plan_shoot)
from helpers.sample.render import (_camera, _Canvas, _inverse_coords, _noise, _pattern, body_albedo, draw_arms,
                                   draw_head, draw_under, photograph)

OUTFITS_VERSION = 1
OUTFITS_DIR = Path("data/outfits")
GARMENTS = ("top", "skirt", "trousers")
BOTTOMS = ("skirt", "trousers")
OUTFIT_COLUMNS = [
    "image_id", "view", "item_id", "category", "top_id", "skirt_id", "trousers_id", "bottom",
    "shoot_id", "figure_id", "background", "lighting", "pose", "skin_tone",
    "image_path", "garment_mask_path", "top_mask_path", "skirt_mask_path", "trousers_mask_path", "person_mask_path",
    "top_pixels", "skirt_pixels", "trousers_pixels", "width", "height",
]
ITEM_COLUMNS = ["item_id", "category", "cut", "length", "neckline", "sleeve", "colour", "pattern", "pattern_colour",
                "satin"]
CUTS = {"top": ("fitted", "boxy", "cropped", "tunic"), "skirt": ("A-line", "pencil", "flared", "mini"),
        "trousers": ("straight", "wide", "slim", "shorts")}
TOP_HEM = {"fitted": 0.05, "boxy": 0.07, "cropped": -0.03, "tunic": 0.11}  # below the waist line
SKIRT_LENGTH = {"A-line": ("knee", "midi"), "pencil": ("knee", "midi"), "flared": ("knee", "midi"), "mini": ("mini",)}
SKIRT_HEM = {"mini": 0.60, "knee": 0.74, "midi": 0.83}
SLEEVES = ("sleeveless", "cap", "short", "elbow", "long")
PRINTS = ("solid", "stripes", "dots", "checks", "floral")  # colour blocks are cut to a dress's proportions
# label ids in the label map (the figure's own parts are 1..19, see helpers.sample.plan)
P_TOP, P_TOP_SLEEVE_L, P_TOP_SLEEVE_R, P_BOTTOM = 30, 31, 32, 33
TOP_PARTS = (P_TOP, P_TOP_SLEEVE_L, P_TOP_SLEEVE_R)


@dataclass
class GarmentSpec:
    """One separate: its kind, cut and print (the print fields are the dress items' own)."""
    item_id: str
    category: str
    cut: str
    length: str
    colour: str
    pattern: str = "solid"
    pattern_colour: str = ""
    pattern_params: dict = field(default_factory=dict)
    satin: bool = False
    neckline: str = ""
    sleeve: str = ""

    def key(self) -> tuple:
        return (self.category, self.cut, self.length, self.neckline, self.sleeve, self.colour, self.pattern,
                self.pattern_colour)


# ----------------------------------------------------------------------------------------------
# The plan
# ----------------------------------------------------------------------------------------------

def _new_garment(rng: np.random.Generator, item_id: str, category: str) -> GarmentSpec:
    cut = _choice(rng, CUTS[category])
    if category == "skirt":
        length = _choice(rng, SKIRT_LENGTH[cut])
    else:
        length = {"top": "hip", "trousers": "thigh" if cut == "shorts" else "full"}[category]
    neck = _choice(rng, [n for n in NECKLINES if n != "halter"]) if category == "top" else ""
    sleeve = _choice(rng, SLEEVES) if category == "top" else ""
    colour = _choice(rng, [c for c in COLOURS if c not in SKIN_TONED] + ["beige", "camel"])
    g = GarmentSpec(item_id, category, cut, length, colour, neckline=neck, sleeve=sleeve,
                    satin=bool(category != "trousers" and rng.random() < 0.12))
    _set_pattern(rng, g, _choice(rng, PRINTS))
    return g


def plan_garments(rng: np.random.Generator, n: int) -> dict[str, list[GarmentSpec]]:
    """`n` tops and `n` bottoms (half skirts, half trousers), all distinct."""
    counts = {"top": n, "skirt": (n + 1) // 2, "trousers": n // 2}
    out: dict[str, list[GarmentSpec]] = {}
    keys: set[tuple] = set()
    for category, k in counts.items():
        out[category] = []
        while len(out[category]) < k:
            g = _new_garment(rng, f"{category}{len(out[category]):03d}", category)
            if g.key() not in keys:
                keys.add(g.key())
                out[category].append(g)
    return out


def _pairings(rng: np.random.Generator, n: int, views: int) -> list[tuple[int, int]]:
    """(top, bottom) index pairs: each top and each bottom `views` times, each with different partners."""
    used: list[set[int]] = [set() for _ in range(n)]
    pairs = []
    for r in range(views):
        for _ in range(2000):
            perm = rng.permutation(n)
            if all(int(perm[t]) not in used[t] for t in range(n)):
                break
        else:  # a cyclic shift never repeats a partner
            perm = np.roll(np.arange(n), r)
        for t in range(n):
            used[t].add(int(perm[t]))
            pairs.append((t, int(perm[t])))
    return pairs


def _assign_shoots(rng: np.random.Generator, pairs: list[tuple[int, int]], tops: list[GarmentSpec],
                   bottoms: list[GarmentSpec], shoots: list[ShootSpec]) -> tuple[list[dict], bool]:
    """Each photo to the least loaded shoot that has neither of its garments yet, worn by the shoot's
    model who wore them least; True when some photo found no such shoot."""
    n_shoots = len(shoots)
    load = np.zeros(n_shoots, int)
    in_shoot: list[set[str]] = [set() for _ in range(n_shoots)]
    worn_by: dict[str, set[str]] = {}
    photos, clash = [], False
    for n in rng.permutation(len(pairs)):
        t, b = pairs[int(n)]
        ids = (tops[t].item_id, bottoms[b].item_id)
        free = [s for s in range(n_shoots) if not (set(ids) & in_shoot[s])]
        clash |= not free
        s = min(free or range(n_shoots), key=lambda s: (load[s], rng.random()))
        load[s] += 1
        in_shoot[s].update(ids)
        fig = min(shoots[s].figures, key=lambda f: (sum(f in worn_by.get(i, set()) for i in ids), rng.random()))
        for i in ids:
            worn_by.setdefault(i, set()).add(fig)
        photos.append({"pair": int(n), "top": t, "bottom": b, "shoot": s, "figure_id": fig})
    return photos, clash


def make_outfit_plan(items: int, views: int, seed: int, per_shoot: int = 8) -> dict:
    """Garments, figures, shoots and the photo list: the whole catalogue is a function of this.

    `items` tops and `items` bottoms; each garment is photographed `views` times, so there are
    `items * views` worn photos. A shoot never shows the same garment twice, and a garment's
    photos go to different models where the shoots allow it.
    """
    if items < 2 or views < 1 or views > items:
        raise ValueError("outfits need items >= 2 and 1 <= views <= items (each view a different partner)")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 5151]))
    garments = plan_garments(rng, items)
    bottoms = garments["skirt"] + garments["trousers"]
    order = rng.permutation(len(bottoms))
    bottoms = [bottoms[int(i)] for i in order]  # skirts and trousers mixed before pairing
    pairs = _pairings(rng, items, views)
    n_photos = len(pairs)
    n_shoots = max(views + 1, int(math.ceil(n_photos / per_shoot)))
    figures = plan_figures(rng, max(4, int(math.ceil(n_shoots * 0.7))))
    kinds = [BACKGROUNDS[i % 3] for i in range(n_shoots)]
    rng.shuffle(kinds)
    shoots: list[ShootSpec] = []
    for s in range(n_shoots):
        k = int(rng.choice([1, 2], p=[0.4, 0.6]))
        figs = [figures[int(j)].figure_id for j in rng.choice(len(figures), size=k, replace=False)]
        shoots.append(plan_shoot(rng, f"shoot{s:02d}", kinds[s], figs))
    for attempt in range(200):  # a random order that puts no garment twice in one shoot
        photos, clash = _assign_shoots(rng, pairs, garments["top"], bottoms, shoots)
        if not clash:
            break
    photos.sort(key=lambda p: p["pair"])
    for k, p in enumerate(photos):
        p["image_id"] = f"out{k:04d}"
        p["seed"] = int(np.random.SeedSequence([seed, 17, k]).generate_state(1)[0])
    return {"tops": garments["top"], "bottoms": bottoms, "figures": {f.figure_id: f for f in figures},
            "shoots": shoots, "photos": photos}


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


FOLDS = {"top": 9, "skirt": 13, "trousers": 7}


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


# ----------------------------------------------------------------------------------------------
# The catalogue on disk
# ----------------------------------------------------------------------------------------------

def _jobs(plan: dict, out: Path, size: tuple[int, int], seed: int, product_shots: bool) -> list[dict]:
    jobs = [{"kind": "worn", "image_id": p["image_id"], "seed": p["seed"], "size": size, "dir": str(out),
             "top": plan["tops"][p["top"]], "bottom": plan["bottoms"][p["bottom"]],
             "shoot": plan["shoots"][p["shoot"]], "figure": plan["figures"][p["figure_id"]]} for p in plan["photos"]]
    if product_shots:
        garments = plan["tops"] + sorted(plan["bottoms"], key=lambda g: g.item_id)
        jobs += [{"kind": "product", "image_id": f"prod_{g.item_id}", "size": size, "dir": str(out), "garment": g,
                  "seed": int(np.random.SeedSequence([seed, 23, n]).generate_state(1)[0])}
                 for n, g in enumerate(garments)]
    return jobs


def _render(job: dict) -> dict:
    return render_garment_shot(job) if job["kind"] == "product" else render_outfit(job)


def outfits_meta(items: int, views: int, seed: int, size: tuple[int, int], product_shots: bool = True) -> dict:
    return {"generator": "helpers.sample.outfits", "kind": "outfits", "version": OUTFITS_VERSION, "items": items,
            "views": views, "seed": seed, "size": [int(size[0]), int(size[1])], "product_shots": bool(product_shots)}


def is_outfits(out: Path) -> bool:
    """True when `out` holds a finished outfits catalogue of any size."""
    try:
        meta = json.loads((Path(out) / META).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("kind") == "outfits" and outfits_complete(out, meta["items"], meta["views"], meta["seed"],
                                                              tuple(meta["size"]), meta["product_shots"])


def outfits_complete(out: Path, items: int, views: int, seed: int, size: tuple[int, int],
                     product_shots: bool = True) -> bool:
    """True when `out` holds a finished outfits catalogue with exactly these parameters."""
    import pandas as pd

    out = Path(out)
    try:
        meta = json.loads((out / META).read_text())
        table = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    except (OSError, ValueError):
        return False
    want = outfits_meta(items, views, seed, size, product_shots)
    if any(meta.get(k) != v for k, v in want.items()) or len(table) != meta.get("n_images"):
        return False
    return all((out / p).is_file() for col in ("image_path", "garment_mask_path") for p in table[col])


def generate_outfits(out: Path | str = OUTFITS_DIR, items: int = 16, views: int = 4, seed: int = 0,
                     size: tuple[int, int] = (512, 768), workers: int = 2, progress: bool = True,
                     product_shots: bool = True) -> Path:
    """Write the separates catalogue under `out` (replacing a generated one) and return `out`:
    `items * views` worn photos, one product shot per garment, manifest.csv and items.csv.
    Built in a temporary sibling folder and moved into place at the end, as the dress catalogue."""
    import pandas as pd

    from helpers.progress import tqdm
    from helpers.sample.generate import _remove_generated

    out = Path(out)
    w, h = int(size[0]), int(size[1])
    if w < 64 or h < 64:
        raise ValueError("size must be at least 64x64 pixels")
    plan = make_outfit_plan(items, views, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        jobs = _jobs(plan, tmp, (w, h), seed, product_shots)
        bar = tqdm(total=len(jobs), desc="drawing outfits", unit="img", disable=not progress)
        if workers <= 1:
            rows = []
            for job in jobs:
                rows.append(_render(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                rows = []
                try:
                    for row in pool.map(_render, jobs, chunksize=4):
                        rows.append(row)
                        bar.update()
                except BrokenProcessPool:
                    raise RuntimeError("the drawing processes stopped before the catalogue was done (nothing was "
                                       "written); from a script, call generate_outfits under "
                                       "`if __name__ == \"__main__\":`, or pass workers=1.") from None
        bar.close()
        manifest = pd.DataFrame([{c: r.get(c, "") for c in OUTFIT_COLUMNS} for r in rows], columns=OUTFIT_COLUMNS)
        manifest.to_csv(tmp / "manifest.csv", index=False, lineterminator="\n")
        pd.DataFrame([{**{k: v for k, v in asdict(g).items() if k in ITEM_COLUMNS}}
                      for g in plan["tops"] + plan["bottoms"]], columns=ITEM_COLUMNS).sort_values("item_id").to_csv(
            tmp / "items.csv", index=False, lineterminator="\n")
        meta = {**outfits_meta(items, views, seed, (w, h), product_shots), "n_images": len(rows),
                "n_worn": len(plan["photos"]), "n_shoots": len(plan["shoots"]), "n_figures": len(plan["figures"])}
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if out.exists():
            _remove_generated(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def ensure_outfits(path: Path | str = OUTFITS_DIR, items: int = 16, views: int = 4, seed: int = 0,
                   size: tuple[int, int] = (512, 768), workers: int = 2, progress: bool = False) -> Path:
    """The outfits catalogue at `path` with these parameters, drawn only when it is not already there."""
    if not outfits_complete(Path(path), items, views, seed, size):
        generate_outfits(path, items, views, seed, size, workers, progress)
    return Path(path)


def load_outfits(path: Path | str = OUTFITS_DIR) -> "pd.DataFrame":
    """The manifest with absolute paths (empty strings where a photo has no such garment)."""
    import pandas as pd

    root = Path(path)
    if not (root / "manifest.csv").is_file():
        raise FileNotFoundError(f"{root} holds no outfits catalogue; draw one with "
                                f"`python -m helpers sample --kind outfits --out {root}`")
    table = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)
    for col in [c for c in table.columns if c.endswith("_path")]:
        table[col] = [str((root / p).resolve()) if p else "" for p in table[col]]
    return table


def main(argv: list[str] | None = None) -> int:
    """`python -m helpers sample --kind outfits`: draw the separates catalogue (skipped if complete)."""
    import argparse
    import sys
    import time

    from helpers.sample.generate import _parse_size

    ap = argparse.ArgumentParser(prog="python -m helpers sample --kind outfits", description=main.__doc__)
    ap.add_argument("--kind", choices=("outfits",), default="outfits")
    ap.add_argument("--out", type=Path, default=OUTFITS_DIR)
    ap.add_argument("--items", type=int, default=16, help="tops, and as many bottoms (half skirts, half trousers)")
    ap.add_argument("--views", type=int, default=4, help="photos of each garment, each with another partner")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=_parse_size, default=(512, 768), help="WIDTHxHEIGHT, default 512x768")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="redraw even if the catalogue is complete")
    ap.add_argument("--no-product-shots", dest="product_shots", action="store_false",
                    help="worn photos only (no product shot per garment)")
    args = ap.parse_args(argv)
    if args.out.is_file() or (args.out.is_dir() and any(args.out.iterdir()) and not (args.out / META).is_file()):
        print(f"{args.out} exists and is not a generated catalogue (no {META}); choose another --out.",
              file=sys.stderr)
        return 2
    if not args.force and outfits_complete(args.out, args.items, args.views, args.seed, args.size,
                                           args.product_shots):
        print(f"{args.out} is already a complete outfits catalogue ({args.items} tops and {args.items} bottoms x "
              f"{args.views} views, seed {args.seed}); nothing to do (use --force to redraw).")
        return 0
    t0 = time.perf_counter()
    try:
        generate_outfits(args.out, args.items, args.views, args.seed, args.size, args.workers,
                         product_shots=args.product_shots)
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shots = f" and {2 * args.items} product shots" if args.product_shots else ""
    print(f"wrote {args.items * args.views} outfit photos{shots} to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0
