"""A generated photoshoot catalogue of dresses, with exact ground truth, made in seconds.

Why generate: the machines have no internet and real fashion photos come without labels, yet the
workbook must *measure* whether cutting the garment out before embedding finds the same garment
better. So we draw one: every image is one item (a dress) worn by a figure in a **shoot**. A shoot
fixes the background, lighting, camera framing and pose, and photographs several items; each item
appears in several shoots, worn by different figures. Whole photos from one shoot therefore look
alike even when the dresses differ - the confounder real catalogues have - while an item's dress
keeps its colour, pattern and cut across shoots. Masks are exact because we drew every pixel.

Everything derives from one master seed: the plan (items, figures, shoots) is drawn in the
parent process; each image is rendered from its plan entry with its own seed, in worker
processes, so the output is byte-identical whatever the number of workers.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from PIL import Image

GENERATOR_VERSION = 3
MANIFEST = "manifest.csv"
META = "sample.json"

MANIFEST_COLUMNS = [
    "image_id", "item_id", "shoot_id", "figure_id", "category", "colour", "pattern", "silhouette",
    "neckline", "sleeve", "length", "pattern_colour", "background", "lighting", "pose",
    "skin_tone", "hair", "image_path", "garment_mask_path", "person_mask_path",
    "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "width", "height", "garment_pixels", "person_pixels",
]

# ----------------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------------

COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 32), "ivory": (236, 232, 218), "navy": (30, 42, 92), "red": (190, 30, 40),
    "burgundy": (112, 24, 44), "emerald": (20, 120, 80), "olive": (104, 110, 48),
    "mustard": (214, 164, 40), "pink": (234, 132, 170), "lavender": (170, 150, 210),
    "sky blue": (120, 176, 226), "teal": (20, 120, 130), "rust": (180, 80, 40),
    "grey": (128, 128, 132), "cobalt": (30, 70, 180), "coral": (240, 120, 100),
    # skin-toned shades: the known hard case for person/garment separation
    "beige": (214, 190, 160), "nude": (222, 176, 150), "camel": (190, 145, 100),
}
SKIN_TONED = ("beige", "nude", "camel")
PATTERNS = ("solid", "stripes", "dots", "checks", "floral", "colour-block")
SILHOUETTES = ("sheath", "A-line", "fit-and-flare", "maxi", "mini", "slip")
NECKLINES = ("crew", "v-neck", "scoop", "square", "boat", "halter")
SLEEVES = ("sleeveless", "cap", "short", "elbow", "long")
LENGTHS = {"mini": 0.60, "above-knee": 0.67, "knee": 0.74, "midi": 0.83, "maxi": 0.955}
BACKGROUNDS = ("studio", "wall", "street")
ARM_POSES = ("down", "hips", "one-hip", "out", "one-up", "front")
LEG_POSES = ("together", "apart", "step", "cross")

SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "porcelain": (246, 216, 196), "light": (236, 196, 170), "light-medium": (222, 172, 136),
    "medium": (198, 144, 108), "olive": (184, 140, 96), "tan": (160, 112, 76),
    "brown": (124, 82, 56), "deep": (84, 54, 38),
}
HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (22, 18, 18), "dark brown": (54, 36, 26), "brown": (96, 64, 40),
    "auburn": (120, 52, 30), "blonde": (200, 168, 110), "grey": (160, 158, 156),
}
HAIR_STYLES = ("short", "bob", "long", "bun", "curly")
FACADES = [(150, 82, 62), (200, 188, 166), (150, 150, 148), (226, 214, 190), (86, 86, 96),
           (140, 150, 122), (182, 112, 82), (176, 160, 140), (110, 120, 140)]

# part ids in the label map (0 = background)
P_HAIR_BACK, P_HEAD, P_NECK, P_TORSO_SKIN = 1, 2, 3, 4
P_ARM_L, P_ARM_R, P_HAND_L, P_HAND_R, P_LEG_L, P_LEG_R = 5, 6, 7, 8, 9, 10
P_SHOE_L, P_SHOE_R, P_HAIR_FRONT, P_EYE, P_BROW, P_LIPS, P_FOREARM_L, P_FOREARM_R = 11, 12, 13, 14, 15, 16, 17, 18
P_NOSE = 19
P_DRESS, P_SLEEVE_L, P_SLEEVE_R, P_STRAP = 20, 21, 22, 23
GARMENT_PARTS = (P_DRESS, P_SLEEVE_L, P_SLEEVE_R, P_STRAP)
SKIN_PARTS = (P_HEAD, P_NECK, P_TORSO_SKIN, P_ARM_L, P_ARM_R, P_HAND_L, P_HAND_R, P_LEG_L, P_LEG_R,
              P_FOREARM_L, P_FOREARM_R)


# ----------------------------------------------------------------------------------------------
# The plan: items, figures, shoots, images (drawn in the parent from the master seed)
# ----------------------------------------------------------------------------------------------

@dataclass
class ItemSpec:
    item_id: str
    silhouette: str
    neckline: str
    sleeve: str
    length: str
    colour: str
    pattern: str
    pattern_colour: str
    pattern_params: dict = field(default_factory=dict)
    satin: bool = False

    def key(self) -> tuple:
        return (self.silhouette, self.neckline, self.sleeve, self.length, self.colour, self.pattern,
                self.pattern_colour if self.pattern != "solid" else "")


@dataclass
class FigureSpec:
    figure_id: str
    skin_tone: str
    hair_colour: str
    hair_style: str
    shoulder: float
    waist: float
    hip: float
    head: float
    leg: float
    lips: tuple[int, int, int]
    shoe: tuple[int, int, int]


@dataclass
class ShootSpec:
    shoot_id: str
    background: str
    bg: dict
    light: dict
    camera: dict
    pose: dict
    finish: dict
    figures: list[str]
    seed: int


def _choice(rng: np.random.Generator, seq: Sequence) -> Any:
    return seq[int(rng.integers(len(seq)))]


def _new_item(rng: np.random.Generator, item_id: str, colour: str | None = None) -> ItemSpec:
    sil = _choice(rng, SILHOUETTES)
    if sil == "mini":
        length = "mini"
    elif sil == "maxi":
        length = "maxi"
    elif sil == "slip":
        length = _choice(rng, ("knee", "midi", "maxi"))
    else:
        length = _choice(rng, ("above-knee", "knee", "midi"))
    if sil == "slip":
        neck, sleeve = _choice(rng, ("v-neck", "square")), "sleeveless"
    else:
        neck = _choice(rng, NECKLINES)
        sleeve = "sleeveless" if neck == "halter" else _choice(rng, SLEEVES)
    colour = colour or _choice(rng, [c for c in COLOURS if c not in SKIN_TONED])
    pattern = _choice(rng, PATTERNS)
    item = ItemSpec(item_id, sil, neck, sleeve, length, colour, pattern, "", satin=sil == "slip" or
                    bool(rng.random() < 0.15))
    _set_pattern(rng, item, pattern)
    return item


def _contrast_colour(rng: np.random.Generator, base: str) -> str:
    b = np.array(COLOURS[base], float)
    options = [c for c in COLOURS if c != base and np.abs(np.array(COLOURS[c], float) - b).sum() > 160]
    return _choice(rng, options)


def _set_pattern(rng: np.random.Generator, item: ItemSpec, pattern: str) -> None:
    item.pattern = pattern
    item.pattern_colour = "" if pattern == "solid" else _contrast_colour(rng, item.colour)
    p: dict[str, Any] = {}
    if pattern == "stripes":
        p = {"angle": float(_choice(rng, (0.0, 90.0, 45.0, -45.0, 0.0))), "period": float(rng.uniform(0.025, 0.06)),
             "duty": float(rng.uniform(0.3, 0.55))}
    elif pattern == "dots":
        p = {"period": float(rng.uniform(0.03, 0.06)), "radius": float(rng.uniform(0.2, 0.32))}
    elif pattern == "checks":
        p = {"period": float(rng.uniform(0.03, 0.07)), "duty": float(rng.uniform(0.35, 0.5))}
    elif pattern == "floral":
        p = {"period": float(rng.uniform(0.045, 0.075)), "size": float(rng.uniform(0.28, 0.4)),
             "petals": int(rng.integers(4, 7)), "leaf": _choice(rng, ("emerald", "olive", "teal"))}
    elif pattern == "colour-block":
        p = {"kind": _choice(rng, ("bodice", "vertical", "hem-band", "diagonal"))}
    p["phase"] = [float(rng.uniform(0, 1)), float(rng.uniform(0, 1))]
    item.pattern_params = p


def plan_items(rng: np.random.Generator, n: int) -> list[ItemSpec]:
    """Unique items; about a third are 'twins' differing from another item only in pattern or
    only in colour, and a few are skin-toned, so colour alone cannot solve the task."""
    items: list[ItemSpec] = []
    keys: set[tuple] = set()
    n_skin = max(2, n // 12) if n >= 4 else 0
    n_twins = n // 3
    attempts = 0
    while len(items) < n:
        attempts += 1
        if attempts > 100_000:
            raise RuntimeError("could not draw enough distinct items")
        idx = len(items)
        item_id = f"item{idx:03d}"
        twin_slot = idx % 3 == 2 and n_twins > 0 and items
        if twin_slot:
            src = items[-1]
            item = ItemSpec(**{**asdict(src), "item_id": item_id})
            if (idx // 3) % 2 == 0:  # pattern twin
                _set_pattern(rng, item, _choice(rng, [p for p in PATTERNS if p != src.pattern]))
            else:  # colour twin: same cut and pattern geometry, another colour
                item.colour = _choice(rng, [c for c in COLOURS if c not in (src.colour, *SKIN_TONED)])
                if item.pattern != "solid" and item.pattern_colour == item.colour:
                    item.pattern_colour = _contrast_colour(rng, item.colour)
        else:
            skin = sum(i.colour in SKIN_TONED for i in items) < n_skin and idx % 7 == 1
            item = _new_item(rng, item_id, colour=_choice(rng, SKIN_TONED) if skin else None)
        if item.key() in keys:
            continue
        keys.add(item.key())
        items.append(item)
    return items


def plan_figures(rng: np.random.Generator, n: int) -> list[FigureSpec]:
    tones = list(SKIN_TONES)
    out = []
    for i in range(n):
        tone = tones[(i * 3 + int(rng.integers(2))) % len(tones)]
        out.append(FigureSpec(
            figure_id=f"fig{i:02d}", skin_tone=tone, hair_colour=_choice(rng, list(HAIR_COLOURS)),
            hair_style=_choice(rng, HAIR_STYLES), shoulder=float(rng.uniform(0.215, 0.25)),
            waist=float(rng.uniform(0.125, 0.155)), hip=float(rng.uniform(0.175, 0.21)),
            head=float(rng.uniform(0.118, 0.132)), leg=float(rng.uniform(0.98, 1.02)),
            lips=tuple(int(v) for v in np.clip(np.array(SKIN_TONES[tone]) * [0.78, 0.5, 0.55]
                                               + rng.uniform(-10, 10, 3), 0, 255)),
            shoe=_choice(rng, [(20, 20, 22), (90, 60, 40), (200, 190, 180), (150, 30, 40), (40, 40, 60)])))
    return out


def _temperature_gains(kelvin_shift: float) -> list[float]:
    """Warm (>0) or cool (<0) white balance as RGB gains."""
    return [1.0 + 0.08 * kelvin_shift, 1.0 + 0.015 * kelvin_shift, 1.0 - 0.09 * kelvin_shift]


def plan_shoot(rng: np.random.Generator, shoot_id: str, background: str, figures: list[str]) -> ShootSpec:
    def col(lo, hi):
        return [float(v) for v in rng.uniform(lo, hi, 3)]

    if background == "studio":
        base = np.array(col(140, 240))
        bg = {"top": [float(v) for v in np.clip(base * rng.uniform(0.7, 0.95), 0, 255)],
              "bottom": [float(v) for v in np.clip(base * rng.uniform(1.0, 1.1), 0, 255)],
              "floor_y": float(rng.uniform(0.86, 0.98)), "glow": float(rng.uniform(0.1, 0.35))}
    elif background == "wall":
        hue = rng.uniform(0, 180)
        hsv = np.uint8([[[hue, rng.uniform(60, 180), rng.uniform(120, 225)]]])
        wall = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(float)
        bg = {"wall": [float(v) for v in wall], "floor": col(60, 170), "floor_y": float(rng.uniform(0.9, 0.99)),
              "planks": bool(rng.random() < 0.6), "plank_w": float(rng.uniform(0.06, 0.12)),
              "skirting": bool(rng.random() < 0.5), "texture": float(rng.uniform(4, 12))}
    else:
        bg = {"sky": col(150, 235), "horizon": float(rng.uniform(0.35, 0.6)),
              "pavement": [float(v) for v in rng.uniform(95, 165) + rng.uniform(-12, 12, 3)], "n_buildings": int(rng.integers(3, 7)),
              "tile": float(rng.uniform(0.08, 0.16)), "dof": float(rng.uniform(1.5, 3.5))}
    light = {"brightness": float(rng.uniform(0.8, 1.15)), "warmth": float(rng.uniform(-1, 1)),
             "dir": [float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.7, 0.1))],
             "ambient": float(rng.uniform(0.35, 0.6)), "shadow": float(rng.uniform(0.2, 0.5)),
             "vignette": float(rng.uniform(0.0, 0.35)), "contrast": float(rng.uniform(0.85, 1.15))}
    light["name"] = ("warm" if light["warmth"] > 0.33 else "cool" if light["warmth"] < -0.33 else "neutral") + \
        ("-bright" if light["brightness"] > 1.0 else "-dim")
    crop = _choice(rng, ("full", "full", "full", "knees", "tight"))
    scale = {"full": rng.uniform(0.8, 0.93), "knees": rng.uniform(1.05, 1.2), "tight": rng.uniform(0.95, 1.05)}[crop]
    camera = {"scale": float(scale), "top": float(rng.uniform(0.025, 0.07)), "x": float(rng.uniform(-0.12, 0.12)),
              "rot": float(rng.uniform(-4, 4)), "crop": crop}
    pose = {"arms": _choice(rng, ARM_POSES), "legs": _choice(rng, LEG_POSES),
            "lean": float(rng.uniform(-4, 4)), "side": int(_choice(rng, (-1, 1)))}
    finish = {"noise": float(rng.uniform(1.5, 5.0)), "blur": float(rng.uniform(0.5, 1.1)),
              "jpeg": int(rng.integers(72, 94))}
    return ShootSpec(shoot_id, background, bg, light, camera, pose, finish, figures,
                     seed=int(rng.integers(2**31)))


def make_plan(items: int, views: int, seed: int, per_shoot: int = 8) -> dict:
    """Items, figures, shoots and the image list; the whole catalogue is a function of this."""
    if items < 1 or views < 1:
        raise ValueError("items and views must be positive")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4242]))
    item_specs = plan_items(rng, items)
    n_shoots = max(views, int(math.ceil(items * views / per_shoot)))
    n_figures = max(4, int(math.ceil(n_shoots * 0.7)))
    figures = plan_figures(rng, n_figures)
    kinds = [BACKGROUNDS[i % 3] for i in range(n_shoots)]
    rng.shuffle(kinds)
    shoots = []
    order = [f.figure_id for f in figures]
    cursor = 0
    for s in range(n_shoots):
        k = int(rng.choice([1, 2, 3], p=[0.3, 0.5, 0.2]))
        if k == 1:  # single-model shoots take models in turn, so two rarely share one
            figs = [order[cursor % n_figures]]
            cursor += 1
        else:
            figs = [figures[int(j)].figure_id for j in rng.choice(n_figures, size=k, replace=False)]
        shoots.append(plan_shoot(rng, f"shoot{s:02d}", kinds[s], figs))
    # each item in `views` distinct shoots, shoot loads balanced
    load = np.zeros(n_shoots, int)
    pairs = []
    for it in rng.permutation(items):
        order_ = np.lexsort((rng.random(n_shoots), load))
        chosen = sorted(int(c) for c in order_[:views])
        load[chosen] += 1
        pairs += [(int(it), c) for c in chosen]
    # who wears the item: a model of that shoot the item has not been worn by yet (single-model
    # shoots first, since they leave no choice), else the shoot's least used model
    worn: dict[tuple[int, int], str] = {}
    used_in_shoot: dict[str, int] = {}
    for it in range(items):
        mine = sorted((s for i2, s in pairs if i2 == it), key=lambda s: (len(shoots[s].figures), s))
        seen: set[str] = set()
        for s in mine:
            cands = [f for f in shoots[s].figures if f not in seen] or list(shoots[s].figures)
            fig = min(cands, key=lambda f: (used_in_shoot.get(f"{s}/{f}", 0), shoots[s].figures.index(f)))
            used_in_shoot[f"{s}/{fig}"] = used_in_shoot.get(f"{s}/{fig}", 0) + 1
            seen.add(fig)
            worn[(it, s)] = fig
    pairs.sort()
    images = []
    for n, (it, s) in enumerate(pairs):
        images.append({"image_id": f"img{n:04d}", "item": it, "shoot": s, "figure_id": worn[(it, s)],
                       "seed": int(np.random.SeedSequence([seed, 7, n]).generate_state(1)[0])})
    return {"items": item_specs, "figures": {f.figure_id: f for f in figures}, "shoots": shoots,
            "images": images}


# ----------------------------------------------------------------------------------------------
# Geometry helpers (world units: figure height 1, head top y=0, soles y=1, x=0 body centre)
# ----------------------------------------------------------------------------------------------

def _capsule(a, b, ra, rb=None, n=10) -> np.ndarray:
    """Polygon of a tapered capsule from a (radius ra) to b (radius rb)."""
    rb = ra if rb is None else rb
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    ang = math.atan2(d[1], d[0])
    pts = []
    for t in np.linspace(-math.pi / 2, math.pi / 2, n):
        pts.append(b + rb * np.array([math.cos(ang + t), math.sin(ang + t)]))
    for t in np.linspace(math.pi / 2, 3 * math.pi / 2, n):
        pts.append(a + ra * np.array([math.cos(ang + t), math.sin(ang + t)]))
    return np.array(pts)


def _ellipse(c, rx, ry, rot=0.0, n=28) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    pts = np.stack([rx * np.cos(t), ry * np.sin(t)], 1)
    cr, sr = math.cos(rot), math.sin(rot)
    return pts @ np.array([[cr, sr], [-sr, cr]]) + np.asarray(c, float)


def _ik(shoulder, target, l1, l2, outward: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone inverse kinematics; the elbow/knee bends toward `outward` (+1 right, -1 left)."""
    s, t = np.asarray(shoulder, float), np.asarray(target, float)
    d = t - s
    dist = float(np.clip(np.linalg.norm(d), 1e-6, (l1 + l2) * 0.999))
    d = d / max(np.linalg.norm(d), 1e-9)
    t = s + d * dist
    cos_a = (l1 * l1 + dist * dist - l2 * l2) / (2 * l1 * dist)
    a = math.acos(float(np.clip(cos_a, -1, 1)))
    perp = np.array([d[1], -d[0]])
    if np.sign(perp[0]) != np.sign(outward) and perp[0] != 0:
        perp = -perp
    elbow = s + d * l1 * math.cos(a) + perp * l1 * math.sin(a)
    return elbow, t


def _smooth_side(points: list[tuple[float, float]], n: int = 6) -> list[np.ndarray]:
    """Catmull-Rom through the side outline so dresses have curves, not corners."""
    p = [np.asarray(q, float) for q in points]
    out = []
    for i in range(len(p) - 1):
        p0, p1, p2, p3 = p[max(i - 1, 0)], p[i], p[i + 1], p[min(i + 2, len(p) - 1)]
        for t in np.linspace(0, 1, n, endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                              + (-p0 + 3 * p1 - 3 * p2 + p3) * t3))
    out.append(p[-1])
    return out


@dataclass
class Body:
    """Joint positions for one figure in one pose, in world units."""
    fig: FigureSpec
    y_chin: float
    y_sh: float
    y_bust: float
    y_waist: float
    y_hip: float
    neck_r: float
    arm_r: float
    leg_r: float
    sh_l: np.ndarray
    sh_r: np.ndarray
    el_l: np.ndarray
    el_r: np.ndarray
    wr_l: np.ndarray
    wr_r: np.ndarray
    hip_l: np.ndarray
    hip_r: np.ndarray
    kn_l: np.ndarray
    kn_r: np.ndarray
    an_l: np.ndarray
    an_r: np.ndarray
    head_c: np.ndarray


def make_body(fig: FigureSpec, pose: dict, jitter: np.ndarray) -> Body:
    hl = fig.head
    y_chin = hl
    y_sh = hl + 0.04
    y_bust, y_waist, y_hip = y_sh + 0.09, y_sh + 0.205, y_sh + 0.305
    sw, hw, ww = fig.shoulder, fig.hip, fig.waist
    arm_r, leg_r = 0.027, 0.037
    sh_l = np.array([-sw / 2 + arm_r * 0.9, y_sh + 0.018])
    sh_r = np.array([sw / 2 - arm_r * 0.9, y_sh + 0.018])
    l1, l2 = 0.158, 0.142
    reach = l1 + l2
    arms, side = pose["arms"], pose["side"]
    j = jitter

    def target(kind: str, s: int, sh: np.ndarray) -> np.ndarray:
        if kind == "down":  # hanging, nearly straight, a little away from the body
            a = math.radians(9 + 3 * j[0])
            return sh + 0.985 * reach * np.array([s * math.sin(a), math.cos(a)])
        if kind == "hips":
            return np.array([s * (ww / 2 + 0.02), y_waist + 0.035 + 0.01 * j[1]])
        if kind == "out":
            a = math.radians(30 + 4 * j[2])
            return sh + 0.93 * reach * np.array([s * math.sin(a), math.cos(a)])
        if kind == "up":
            return np.array([s * 0.05, hl * 0.3 + 0.01 * j[3]])
        if kind == "front":
            return np.array([s * 0.012, y_hip + 0.035 + 0.01 * j[4]])
        raise ValueError(kind)

    kinds = {"down": ("down", "down"), "hips": ("hips", "hips"), "out": ("out", "out"),
             "front": ("front", "front"), "one-hip": ("hips", "down"), "one-up": ("up", "down")}[arms]
    if side < 0:
        kinds = kinds[::-1]
    el_l, wr_l = _ik(sh_l, target(kinds[0], -1, sh_l), l1, l2, -1)
    el_r, wr_r = _ik(sh_r, target(kinds[1], 1, sh_r), l1, l2, 1)
    hip_l = np.array([-hw * 0.26, y_hip + 0.02])
    hip_r = np.array([hw * 0.26, y_hip + 0.02])
    y_an = 0.955
    leg_len = (y_an - hip_l[1]) / 0.99 * fig.leg
    legs = pose["legs"]
    spread = {"together": 0.03, "apart": 0.075, "step": 0.04, "cross": 0.0}[legs] + 0.006 * j[5]
    al = np.array([-spread, y_an])
    ar = np.array([spread, y_an])
    if legs == "step":  # one foot forward and out, knee softly bent
        moved = al if side > 0 else ar
        moved[0] += -0.045 * side
        moved[1] -= 0.02
    if legs == "cross":
        al, ar = np.array([0.02, y_an]), np.array([-0.02, y_an - 0.006])
    kn_l, an_l = _ik(hip_l, al, 0.49 * leg_len, 0.51 * leg_len, -1)
    kn_r, an_r = _ik(hip_r, ar, 0.49 * leg_len, 0.51 * leg_len, 1)
    return Body(fig, y_chin, y_sh, y_bust, y_waist, y_hip, 0.03, arm_r, leg_r, sh_l, sh_r, el_l, el_r,
                wr_l, wr_r, hip_l, hip_r, kn_l, kn_r, an_l, an_r, np.array([0.0, hl * 0.5]))


def dress_outline(item: ItemSpec, b: Body, flare_jit: float) -> dict[str, list[np.ndarray]]:
    """Polygons (world units) of the dress body, sleeves/straps, and the skin neckline cut."""
    f = b.fig
    sw, ww, hw = f.shoulder / 2, f.waist / 2, f.hip / 2
    hem_y = LENGTHS[item.length]
    sil = item.silhouette
    flare = {"sheath": 1.0, "A-line": 1.5, "fit-and-flare": 1.85, "maxi": 1.45, "mini": 1.2, "slip": 1.1}[sil]
    hem_w = hw * (flare + 0.06 * flare_jit) * (1 + 0.4 * (hem_y - 0.74) * (flare > 1.1))
    if sil == "sheath":
        hem_w = hw * 0.96
    waist_w = ww * (1.1 if sil in ("A-line", "slip", "maxi") else 1.02)
    armpit_y = b.y_sh + 0.06
    side = [(sw * 0.86, armpit_y), (sw * 0.84, b.y_bust), (waist_w, b.y_waist)]
    if sil == "A-line":
        side = [(sw * 0.86, armpit_y), (sw * 0.86, b.y_bust), (waist_w * 1.05, b.y_waist),
                (hw * 1.15, b.y_hip), (hem_w, hem_y)]
    elif sil == "fit-and-flare":
        side += [(hw * 1.08, b.y_hip), (hw * 1.35, b.y_hip + 0.1), (hem_w, hem_y)]
    elif sil == "sheath":
        side += [(hw * 1.02, b.y_hip), (hw * 0.98, b.y_hip + 0.12), (hem_w, hem_y)]
    else:
        side += [(hw * 1.06, b.y_hip), (hem_w, hem_y)]
    if item.sleeve == "sleeveless" and item.neckline not in ("halter",) or sil == "slip":
        top_sh = sw * 0.55
    else:
        top_sh = sw * 0.98
    neck = item.neckline
    nw = 0.042 if neck != "boat" else 0.075
    depth = {"crew": 0.012, "v-neck": 0.075, "scoop": 0.06, "square": 0.05, "boat": 0.008, "halter": 0.0}[neck]
    ys = b.y_sh
    right: list[np.ndarray] = []
    if sil == "slip":
        top_y = b.y_bust - 0.035
        if neck == "v-neck":
            right += [np.array([0.0, top_y + 0.035]), np.array([sw * 0.45, top_y - 0.01])]
        else:
            right += [np.array([0.0, top_y]), np.array([sw * 0.5, top_y])]
        right += [np.array([sw * 0.82, top_y + 0.01])]
        right += _smooth_side([(sw * 0.84, b.y_bust)] + side[2:])
    elif neck == "halter":
        right += [np.array([0.0, ys + 0.06]), np.array([0.03, ys - 0.015]), np.array([0.042, ys - 0.012]),
                  np.array([sw * 0.8, armpit_y])]
        right += _smooth_side(side[1:])
    else:
        if neck == "v-neck":
            right += [np.array([0.0, ys + depth]), np.array([nw, ys - 0.004])]
        elif neck == "square":
            right += [np.array([0.0, ys + depth]), np.array([nw * 0.95, ys + depth]), np.array([nw, ys])]
        elif neck in ("scoop", "crew", "boat"):
            for t in np.linspace(0, 1, 7):
                right.append(np.array([nw * math.sin(t * math.pi / 2), ys - 0.004 + depth * math.cos(t * math.pi / 2)]))
        right.append(np.array([top_sh, ys + 0.006]))
        if top_sh < sw * 0.8:  # sleeveless: cut the armhole in
            right.append(np.array([sw * 0.72, armpit_y - 0.01]))
        else:
            right.append(np.array([sw * 0.99, ys + 0.02]))
        right += _smooth_side(side)
    right.append(np.array([hem_w * 0.5, hem_y + 0.008]))
    right.append(np.array([0.0, hem_y + 0.01]))
    left = [p * np.array([-1, 1]) for p in right[::-1]]
    body = np.array(right + left)
    parts = {"dress": [body], "sleeve_l": [], "sleeve_r": [], "strap": []}
    if sil == "slip":
        for s in (-1, 1):
            a = np.array([s * sw * 0.42, b.y_bust - 0.04])
            c = np.array([s * sw * 0.5, b.y_sh + 0.004])
            parts["strap"].append(_capsule(a, c, 0.004, n=4))
    frac = {"sleeveless": 0.0, "cap": 0.25, "short": 0.5, "elbow": 1.0, "long": 2.0}[item.sleeve]
    if frac > 0 and neck != "halter" and sil != "slip":
        for s, sh, el, wr in ((-1, b.sh_l, b.el_l, b.wr_l), (1, b.sh_r, b.el_r, b.wr_r)):
            key = "sleeve_l" if s < 0 else "sleeve_r"
            r0 = b.arm_r * 1.22
            if frac <= 1:
                end = sh + (el - sh) * frac
                parts[key].append(_capsule(sh, end, r0, b.arm_r * (1.12 + 0.12 * (frac < 0.6)), n=8))
            else:
                parts[key].append(_capsule(sh, el, r0, b.arm_r * 1.08, n=8))
                parts[key].append(_capsule(el, wr - (wr - el) * 0.04, b.arm_r * 1.08, b.arm_r * 0.92, n=8))
    return parts


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

class _Canvas:
    """Label map drawn with polygons under the camera transform (world -> pixel)."""

    def __init__(self, w: int, h: int, M: np.ndarray):
        self.w, self.h, self.M = w, h, M
        self.labels = np.zeros((h, w), np.uint8)

    def px(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, float)
        return pts @ self.M[:, :2].T + self.M[:, 2]

    def fill(self, pts: np.ndarray, label: int, target: np.ndarray | None = None) -> None:
        p = np.round(self.px(pts) * 16).astype(np.int32)
        cv2.fillPoly(self.labels if target is None else target, [p], int(label), lineType=cv2.LINE_8, shift=4)


def _noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    small = rng.standard_normal((cells[1], cells[0]), dtype=np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _camera(shoot: ShootSpec, w: int, h: int, jit: np.ndarray, lean: float) -> tuple[np.ndarray, np.ndarray]:
    """World->pixel affine for the figure (with lean) and for the background (without)."""
    cam = shoot.camera
    s = cam["scale"] * h * (1 + 0.02 * jit[0])
    rot = math.radians(cam["rot"] + 0.5 * jit[1])
    c, si = math.cos(rot), math.sin(rot)
    R = np.array([[c, -si], [si, c]]) * s
    # head top (world 0, 0) lands at (centre + x offset, top margin)
    t = np.array([w / 2 + (cam["x"] + 0.015 * jit[2]) * w, cam["top"] * h])
    bg = np.hstack([R, t[:, None]])
    lr = math.radians(lean)
    cl, sl = math.cos(lr), math.sin(lr)
    pivot = np.array([0.0, 1.0])  # lean about the feet
    L = np.array([[cl, -sl], [sl, cl]])
    Lt = pivot - L @ pivot
    fig = np.hstack([R @ L, (R @ Lt + t)[:, None]])
    return fig, bg


def _inverse_coords(M: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    A = np.linalg.inv(M[:, :2])
    x = xs - M[0, 2]
    y = ys - M[1, 2]
    return (A[0, 0] * x + A[0, 1] * y).astype(np.float32), (A[1, 0] * x + A[1, 1] * y).astype(np.float32)


def _background(shoot: ShootSpec, w: int, h: int, Mbg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The shoot's backdrop, drawn at half resolution (it is soft anyway) and scaled up."""
    full_w, full_h = w, h
    w, h = w // 2, h // 2
    Mbg = Mbg * 0.5
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    X, Y = _inverse_coords(Mbg, xx, yy)
    bg = shoot.bg
    out = np.zeros((h, w, 3), np.float32)
    if shoot.background == "studio":
        t = np.clip((Y + 0.05) / 1.1, 0, 1)[..., None]
        out[:] = np.array(bg["top"], np.float32) * (1 - t) + np.array(bg["bottom"], np.float32) * t
        glow = np.exp(-((X * 1.4) ** 2 + ((Y - 0.45) * 0.9) ** 2) * 2.0)[..., None]
        out *= 1 + bg["glow"] * (glow - 0.3)
        floor = np.clip((Y - bg["floor_y"]) / 0.12, 0, 1)[..., None]
        out *= 1 - 0.12 * floor
        out += _noise(rng, h, w, (6, 9))[..., None] * 3
    elif shoot.background == "wall":
        wall = np.array(bg["wall"], np.float32)
        tex = _noise(rng, h, w, (40, 60)) * 0.5 + _noise(rng, h, w, (8, 12))
        out[:] = wall * (1 + 0.012 * bg["texture"] * tex[..., None] / 3)
        floor_mask = Y > bg["floor_y"]
        floor = np.array(bg["floor"], np.float32)
        if bg["planks"]:
            # boards run toward a vanishing point above the floor line (straight, converging lines)
            across = X * 0.6 / np.maximum(Y - (bg["floor_y"] - 0.6), 0.05) / bg["plank_w"]
            plank = np.floor(across)
            shade = 0.9 + 0.1 * np.sin(plank * 12.9898) + 0.03 * _noise(rng, h, w, (120, 12))
            fl = floor * shade[..., None]
            gap = np.abs(across % 1.0 - 0.5) > 0.46
            fl[gap] *= 0.7
        else:
            fl = floor * (1 + 0.05 * _noise(rng, h, w, (30, 30)))[..., None]
        out[floor_mask] = fl[floor_mask]
        if bg["skirting"]:
            sk = (Y > bg["floor_y"] - 0.03) & ~floor_mask
            out[sk] = np.clip(wall * 1.15 + 20, 0, 255)
        line = np.abs(Y - bg["floor_y"]) < 0.003
        out[line] *= 0.75
    else:
        sky = np.array(bg["sky"], np.float32)
        t = np.clip(Y / max(bg["horizon"], 0.1), 0, 1)[..., None]
        out[:] = sky * (0.85 + 0.15 * t)
        brng = np.random.default_rng(shoot.seed)
        x0 = -0.9
        while x0 < 0.9:
            bw = brng.uniform(0.18, 0.45)
            top = brng.uniform(-0.35, bg["horizon"] - 0.2)
            colour = np.array(_choice(brng, FACADES), np.float32) * brng.uniform(0.85, 1.1)
            m = (X >= x0) & (X < x0 + bw) & (Y > top) & (Y < bg["horizon"] + 0.02)
            out[m] = colour
            # windows
            wx = ((X - x0) / 0.07) % 1.0
            wy = ((Y - top) / 0.09) % 1.0
            win = m & (wx > 0.25) & (wx < 0.75) & (wy > 0.3) & (wy < 0.8) & (Y > top + 0.05)
            out[win] = colour * 0.35 + brng.uniform(10, 70)
            frame = m & ~win & (wx > 0.18) & (wx < 0.82) & (wy > 0.22) & (wy < 0.88) & (Y > top + 0.04)
            out[frame] = np.minimum(colour * 1.25 + 20, 255)
            if brng.random() < 0.5:  # shop sign / awning
                aw = m & (Y > bg["horizon"] - 0.12) & (Y < bg["horizon"] - 0.07)
                out[aw] = brng.uniform(40, 230, 3).astype(np.float32)
            x0 += bw + brng.uniform(0.0, 0.05)
        pav = Y >= bg["horizon"] + 0.02
        pcol = np.array(bg["pavement"], np.float32)
        tile = bg["tile"] * (0.5 + (Y - bg["horizon"]))
        g = (np.abs((X / np.maximum(tile, 0.02)) % 1.0 - 0.5) > 0.47) | (np.abs((Y / 0.06) % 1.0 - 0.5) > 0.46)
        p = pcol * (1 + 0.06 * _noise(rng, h, w, (60, 60)))[..., None]
        p[g] *= 0.8
        out[pav] = p[pav]
        out = cv2.GaussianBlur(out, (0, 0), bg["dof"] * h / 768 * 2)
    return cv2.resize(out, (full_w, full_h), interpolation=cv2.INTER_LINEAR)


def _pattern(item: ItemSpec, u: np.ndarray, v: np.ndarray, b: Body) -> np.ndarray:
    """Per-garment-pixel RGB (n, 3) in body coordinates, so the print moves with the dress."""
    base = np.array(COLOURS[item.colour], np.float32)
    n = u.shape[0]
    out = np.broadcast_to(base, (n, 3)).copy()
    if item.pattern == "solid":
        return out
    other = np.array(COLOURS[item.pattern_colour], np.float32)
    p = item.pattern_params
    ph = p["phase"]
    if item.pattern == "stripes":
        a = math.radians(p["angle"])
        proj = (u * math.sin(a) + v * math.cos(a)) / p["period"] + ph[0]
        m = (proj % 1.0) < p["duty"]
        out[m] = other
    elif item.pattern == "dots":
        per = p["period"]
        row = np.floor(v / per + ph[1])
        uu = u / per + ph[0] + 0.5 * (row % 2)
        du = (uu % 1.0) - 0.5
        dv = ((v / per + ph[1]) % 1.0) - 0.5
        out[du * du + dv * dv < p["radius"] ** 2] = other
    elif item.pattern == "checks":
        per = p["period"]
        a = ((u / per + ph[0]) % 1.0) < p["duty"]
        c = ((v / per + ph[1]) % 1.0) < p["duty"]
        mix = (a.astype(np.float32) + c.astype(np.float32))[:, None] / 2
        out = base * (1 - mix) + other * mix
    elif item.pattern == "floral":
        per = p["period"]
        gu, gv = u / per + ph[0], v / per + ph[1]
        cu, cv = np.floor(gu), np.floor(gv)
        h1 = np.sin(cu * 12.9898 + cv * 78.233) * 43758.5453
        h2 = np.sin(cu * 39.3467 + cv * 11.135) * 24634.6345
        ju, jv = (h1 % 1.0) * 0.4 + 0.3, (h2 % 1.0) * 0.4 + 0.3
        du, dv = gu - cu - ju, gv - cv - jv
        r = np.sqrt(du * du + dv * dv)
        th = np.arctan2(dv, du) + (h1 % 1.0) * 6.28
        petal = r < p["size"] * (0.55 + 0.45 * np.abs(np.cos(th * p["petals"] / 2)))
        leaf = (~petal) & (np.abs(du + 0.2) < 0.08) & (np.abs(dv - 0.25) < 0.16)
        centre = r < p["size"] * 0.22
        out[petal] = other
        out[leaf] = np.array(COLOURS[p["leaf"]], np.float32) * 0.9
        out[centre] = np.array(COLOURS["mustard"], np.float32)
    elif item.pattern == "colour-block":
        k = p["kind"]
        if k == "bodice":
            m = v < b.y_waist
        elif k == "vertical":
            m = u < 0
        elif k == "hem-band":
            m = v > LENGTHS[item.length] - 0.09
        else:
            m = (u + (v - 0.5) * 0.6) > 0
        out[m] = other
    return out


def _dome(labels: np.ndarray, radius_px: float) -> np.ndarray:
    """Height field bulging inside each part: distance to the part's border, rounded."""
    edges = np.zeros(labels.shape, np.uint8)
    edges[:, 1:] |= (labels[:, 1:] != labels[:, :-1])
    edges[1:, :] |= (labels[1:, :] != labels[:-1, :])
    edges[:, :-1] |= (labels[:, 1:] != labels[:, :-1])
    edges[:-1, :] |= (labels[1:, :] != labels[:-1, :])
    dist = cv2.distanceTransform((edges == 0).astype(np.uint8), cv2.DIST_L2, 3)
    d = np.minimum(dist, radius_px) / radius_px
    return (np.sqrt(np.clip(1 - (1 - d) ** 2, 0, 1)) * radius_px).astype(np.float32)


def draw_figure(canvas: _Canvas, item: ItemSpec, b: Body, flare_jit: float) -> dict:
    f = b.fig
    hl = f.head
    hc = b.head_c
    hair = f.hair_style
    head_rx, head_ry = hl * 0.36, hl * 0.5
    # hair behind
    if hair == "long":
        back = np.array([[-head_rx * 1.2, hc[1] - head_ry * 0.2], [head_rx * 1.2, hc[1] - head_ry * 0.2],
                         [head_rx * 1.45, b.y_bust + 0.02], [-head_rx * 1.45, b.y_bust + 0.02]])
        canvas.fill(back, P_HAIR_BACK)
        canvas.fill(_ellipse(hc + [0, -0.005], head_rx * 1.22, head_ry * 1.08), P_HAIR_BACK)
    elif hair == "curly":
        canvas.fill(_ellipse(hc + [0, -0.004], head_rx * 1.75, head_ry * 1.35), P_HAIR_BACK)
    elif hair == "bob":
        canvas.fill(_ellipse(hc + [0, 0.0], head_rx * 1.3, head_ry * 1.12), P_HAIR_BACK)
        canvas.fill(np.array([[-head_rx * 1.3, hc[1]], [head_rx * 1.3, hc[1]], [head_rx * 1.2, hc[1] + head_ry * 0.95],
                              [-head_rx * 1.2, hc[1] + head_ry * 0.95]]), P_HAIR_BACK)
    # legs and shoes
    for part, shoe, hip, kn, an in ((P_LEG_L, P_SHOE_L, b.hip_l, b.kn_l, b.an_l), (P_LEG_R, P_SHOE_R, b.hip_r, b.kn_r, b.an_r)):
        canvas.fill(_capsule(hip, kn, b.leg_r * 1.25, b.leg_r * 0.85), part)
        canvas.fill(_capsule(kn, an, b.leg_r * 0.85, b.leg_r * 0.5), part)
        toe = an + np.array([0.012 * np.sign(an[0] + 1e-6), 0.038])
        canvas.fill(_capsule(an + [0, 0.012], toe, 0.018, 0.014, n=6), shoe)
    # torso skin and neck
    sw = f.shoulder / 2
    torso = np.array([[-sw * 0.95, b.y_sh + 0.01], [-0.03, b.y_sh - 0.012], [0.03, b.y_sh - 0.012],
                      [sw * 0.95, b.y_sh + 0.01], [sw * 0.9, b.y_sh + 0.06], [f.waist / 2, b.y_waist],
                      [f.hip / 2, b.y_hip + 0.04], [-f.hip / 2, b.y_hip + 0.04], [-f.waist / 2, b.y_waist],
                      [-sw * 0.9, b.y_sh + 0.06]])
    canvas.fill(torso, P_TORSO_SKIN)
    canvas.fill(_capsule(hc + [0, head_ry * 0.4], [0, b.y_sh + 0.005], b.neck_r, b.neck_r * 1.15, n=6), P_NECK)
    # arms (upper arms drawn under the dress sleeves)
    arm_parts = []
    for up, fore, hand, sh, el, wr in ((P_ARM_L, P_FOREARM_L, P_HAND_L, b.sh_l, b.el_l, b.wr_l),
                                       (P_ARM_R, P_FOREARM_R, P_HAND_R, b.sh_r, b.el_r, b.wr_r)):
        arm_parts.append((up, fore, hand, sh, el, wr))
    shapes = dress_outline(item, b, flare_jit)
    for poly in shapes["dress"]:
        canvas.fill(poly, P_DRESS)
    for poly in shapes["strap"]:
        canvas.fill(poly, P_STRAP)
    for up, fore, hand, sh, el, wr in arm_parts:
        canvas.fill(_capsule(sh, el, b.arm_r * 1.05, b.arm_r * 0.85), up)
        canvas.fill(_capsule(el, wr, b.arm_r * 0.85, b.arm_r * 0.6), up)  # one label: no seam at the elbow
        d = (wr - el) / (np.linalg.norm(wr - el) + 1e-9)
        canvas.fill(_ellipse(wr + d * 0.022, 0.017, 0.027, rot=math.atan2(d[1], d[0]) - math.pi / 2, n=14), up)
    for key, label in (("sleeve_l", P_SLEEVE_L), ("sleeve_r", P_SLEEVE_R)):
        for poly in shapes[key]:
            canvas.fill(poly, label)
    # head, face, hair front
    canvas.fill(_ellipse(hc, head_rx, head_ry), P_HEAD)
    for sx in (-1, 1):
        canvas.fill(_ellipse(hc + [sx * head_rx * 0.97, 0.006], head_rx * 0.15, head_ry * 0.2), P_HEAD)  # ears
        canvas.fill(_ellipse(hc + [sx * head_rx * 0.4, -head_ry * 0.0], head_rx * 0.16, head_ry * 0.065), P_EYE)
        canvas.fill(_ellipse(hc + [sx * head_rx * 0.42, -head_ry * 0.17], head_rx * 0.22, head_ry * 0.03,
                             rot=-sx * 0.12), P_BROW)
    canvas.fill(np.array([[-head_rx * 0.1, hc[1] + head_ry * 0.3], [head_rx * 0.1, hc[1] + head_ry * 0.3],
                          [0, hc[1] + head_ry * 0.1]]), P_NOSE)
    canvas.fill(_ellipse(hc + [0, head_ry * 0.52], head_rx * 0.3, head_ry * 0.075), P_LIPS)
    # hair over the top of the head down to a hairline that curves to the temples
    rx, ry = head_rx * (1.12 if hair != "curly" else 1.3), head_ry * (1.1 if hair != "curly" else 1.2)
    arc = [hc + np.array([rx * math.cos(t), ry * 0.95 * math.sin(t) - 0.004])
           for t in np.linspace(math.pi * 1.05, math.pi * 1.95, 16)]
    top = hc[1] - head_ry * (0.42 if hair != "bob" else 0.3)
    line = [np.array([x, top + head_ry * 0.5 * (abs(x) / rx) ** 2]) for x in np.linspace(rx, -rx, 12)]
    canvas.fill(np.array(arc + line), P_HAIR_FRONT)
    if hair == "bun":
        canvas.fill(_ellipse(hc + [0, -head_ry * 1.05], head_rx * 0.55, head_ry * 0.38), P_HAIR_FRONT)
    return shapes


def render_image(job: dict) -> dict:
    """Render one image and its masks into job['dir']; return its manifest row."""
    cv2.setNumThreads(1)
    item: ItemSpec = job["item_spec"]
    shoot: ShootSpec = job["shoot_spec"]
    fig: FigureSpec = job["figure_spec"]
    w, h = job["size"]
    rng = np.random.default_rng(job["seed"])
    srng = np.random.default_rng(shoot.seed)
    jit = rng.uniform(-1, 1, 12)
    lean = shoot.pose["lean"] + 0.8 * jit[6]
    Mfig, Mbg = _camera(shoot, w, h, jit[7:10], lean)
    body = make_body(fig, shoot.pose, jit)
    canvas = _Canvas(w, h, Mfig)
    draw_figure(canvas, item, body, float(jit[10]))
    labels = canvas.labels
    person = labels > 0
    garment = np.isin(labels, GARMENT_PARTS)
    scale_px = shoot.camera["scale"] * h

    # ---- colours (albedo)
    lut = np.zeros((256, 3), np.float32)
    skin = np.array(SKIN_TONES[fig.skin_tone], np.float32)
    hair = np.array(HAIR_COLOURS[fig.hair_colour], np.float32)
    for p in SKIN_PARTS:
        lut[p] = skin
    lut[P_HAND_L] = lut[P_HAND_R] = skin * 1.02
    lut[P_HAIR_BACK] = hair * 0.85
    lut[P_HAIR_FRONT] = hair
    lut[P_EYE] = (40, 30, 28)
    lut[P_BROW] = hair * 0.7
    lut[P_LIPS] = fig.lips
    lut[P_NOSE] = skin * 0.86
    lut[P_SHOE_L] = lut[P_SHOE_R] = fig.shoe
    albedo = lut[labels]
    gy, gx = np.nonzero(garment)
    if gy.size:
        Minv_u, Minv_v = _inverse_coords(Mfig, gx.astype(np.float32), gy.astype(np.float32))
        # fabric drape: folds radiate from the waist and grow toward the hem
        rel = np.clip((Minv_v - body.y_waist) / 0.5, 0, 1.5)
        ang = np.arctan2(Minv_u, Minv_v - body.y_waist + 0.25)
        fold_phase = item.pattern_params["phase"][0] * 6.28 + 0.6 * jit[11]
        n_folds = {"sheath": 9, "A-line": 13, "fit-and-flare": 17, "maxi": 15, "mini": 11, "slip": 12}[item.silhouette]
        folds = np.sin(ang * n_folds + fold_phase + 0.8 * np.sin(ang * 3.1 + jit[5]))
        disp = 0.006 * rel * folds
        albedo[gy, gx] = _pattern(item, Minv_u + disp, Minv_v, body)
        fold_h = np.zeros((h, w), np.float32)
        fold_h[gy, gx] = (0.012 * scale_px) * (0.15 + rel) * folds + 0.0005 * scale_px * np.sin(Minv_v * 97 + ang * 5 + 2 * folds)
    else:
        fold_h = np.zeros((h, w), np.float32)

    # ---- shading: rounded parts + folds, lit from the shoot's light direction
    height = _dome(labels, radius_px=0.03 * scale_px) * person + fold_h
    height = cv2.GaussianBlur(height, (0, 0), 1.2)
    dzdx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) / 8
    dzdy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) / 8
    lx, ly = shoot.light["dir"]
    L = np.array([lx, ly, 1.0], np.float32)
    L /= np.linalg.norm(L)
    norm = np.sqrt(dzdx * dzdx + dzdy * dzdy + 1)
    lambert = np.clip((-dzdx * L[0] - dzdy * L[1] + L[2]) / norm, 0, 1)
    amb = shoot.light["ambient"]
    shade = amb + (1 - amb) * lambert
    # shading falls off from top to bottom of the body a little (key light above)
    shade *= 1.0 - 0.08 * np.clip((np.arange(h, dtype=np.float32) / h), 0, 1)[:, None]
    fg = albedo * shade[..., None]
    if item.satin:
        Hv = L + np.array([0, 0, 1], np.float32)
        Hv /= np.linalg.norm(Hv)
        spec = np.clip((-dzdx * Hv[0] - dzdy * Hv[1] + Hv[2]) / norm, 0, 1) ** 40
        fg += (spec * 110 * garment)[..., None]
    # fabric weave and skin/hair micro-texture
    fine = rng.standard_normal((h, w), dtype=np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), 0.7)
    hair_tex = _noise(rng, h, w, (w // 3, h // 40))
    tex = np.where(garment, 1 + 0.05 * fine, 1 + 0.015 * fine)
    tex = np.where((labels == P_HAIR_BACK) | (labels == P_HAIR_FRONT), 1 + 0.09 * hair_tex + 0.05 * fine, tex)
    fg *= tex[..., None]

    # ---- background, cast shadow, composite
    bgimg = _background(shoot, w, h, Mbg, srng)
    small = cv2.resize(person.astype(np.float32), (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    off = np.float32([[1, 0, -lx * 0.05 * scale_px / 4], [0, 1, 0.02 * scale_px / 4]])
    sh = cv2.warpAffine(small, off, (w // 4, h // 4))
    sh = cv2.GaussianBlur(sh, (0, 0), 0.02 * scale_px / 4 + 1)
    feet = np.zeros((h // 4, w // 4), np.float32)
    fc = (Mfig[:, :2] @ np.array([0.0, 0.995]) + Mfig[:, 2]) / 4
    cv2.ellipse(feet, (int(fc[0]), int(fc[1])), (max(1, int(0.09 * scale_px / 4)), max(1, int(0.015 * scale_px / 4))),
                0, 0, 360, 1.0, -1)
    feet = cv2.GaussianBlur(feet, (0, 0), 0.01 * scale_px / 4 + 1)
    shadow = np.clip(shoot.light["shadow"] * sh + 0.5 * feet, 0, 0.8)
    shadow = cv2.resize(shadow, (w, h), interpolation=cv2.INTER_LINEAR)
    bgimg *= (1 - shadow)[..., None]
    img = np.where(person[..., None], fg, bgimg)

    # ---- light and camera finish
    gains = np.array(_temperature_gains(shoot.light["warmth"]), np.float32) * shoot.light["brightness"]
    img = img * gains
    img = (img - 128) * shoot.light["contrast"] + 128
    if shoot.light["vignette"] > 0:
        yy, xx = np.ogrid[0:h, 0:w]
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        img *= (1 - shoot.light["vignette"] * 0.35 * r2)[..., None].astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), shoot.finish["blur"])
    # sensor noise: fine luminance grain plus blotchier colour noise, as in real photos
    img += rng.standard_normal((h, w, 1), dtype=np.float32) * shoot.finish["noise"]
    chroma = rng.standard_normal((h // 2, w // 2, 3), dtype=np.float32) * shoot.finish["noise"] * 0.6
    img += cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
    img8 = np.clip(img + 0.5, 0, 255).astype(np.uint8)

    out = Path(job["dir"])
    iid = job["image_id"]
    rel_img, rel_g, rel_p = f"images/{iid}.jpg", f"masks/{iid}_garment.png", f"masks/{iid}_person.png"
    buf = io.BytesIO()
    Image.fromarray(img8).save(buf, format="JPEG", quality=shoot.finish["jpeg"])
    (out / rel_img).write_bytes(buf.getvalue())
    for rel, m in ((rel_g, garment), (rel_p, person)):
        ok, png = cv2.imencode(".png", m.astype(np.uint8) * 255)
        (out / rel).write_bytes(png.tobytes())
    ys, xs = np.nonzero(garment)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if xs.size else (0, 0, 0, 0)
    return {
        "image_id": iid, "item_id": item.item_id, "shoot_id": shoot.shoot_id, "figure_id": fig.figure_id,
        "category": "dress", "colour": item.colour, "pattern": item.pattern, "silhouette": item.silhouette,
        "neckline": item.neckline, "sleeve": item.sleeve, "length": item.length,
        "pattern_colour": item.pattern_colour, "background": shoot.background,
        "lighting": shoot.light["name"], "pose": f'{shoot.pose["arms"]}/{shoot.pose["legs"]}',
        "skin_tone": fig.skin_tone, "hair": f"{fig.hair_colour} {fig.hair_style}",
        "image_path": rel_img, "garment_mask_path": rel_g, "person_mask_path": rel_p,
        "bbox_x0": bbox[0], "bbox_y0": bbox[1], "bbox_x1": bbox[2], "bbox_y1": bbox[3],
        "width": w, "height": h, "garment_pixels": int(garment.sum()), "person_pixels": int(person.sum()),
    }


# ----------------------------------------------------------------------------------------------
# The catalogue on disk
# ----------------------------------------------------------------------------------------------

def _meta(items: int, views: int, seed: int, size: tuple[int, int]) -> dict:
    return {"generator": "helpers.sample", "version": GENERATOR_VERSION, "items": items, "views": views,
            "seed": seed, "size": [int(size[0]), int(size[1])]}


def is_complete(out: Path, items: int | None = None, views: int | None = None, seed: int | None = None,
                size: tuple[int, int] | None = None) -> bool:
    """True when `out` holds a finished generated catalogue (with these parameters, if given)."""
    out = Path(out)
    try:
        meta = json.loads((out / META).read_text())
    except (OSError, ValueError):
        return False
    want = {k: v for k, v in (("items", items), ("views", views), ("seed", seed)) if v is not None}
    if size is not None:
        want["size"] = [int(size[0]), int(size[1])]
    if any(meta.get(k) != v for k, v in want.items()) or meta.get("version") != GENERATOR_VERSION:
        return False
    import pandas as pd
    try:
        table = pd.read_csv(out / MANIFEST)
    except (OSError, ValueError):
        return False
    if len(table) != meta.get("n_images"):
        return False
    return all((out / p).is_file() for col in ("image_path", "garment_mask_path", "person_mask_path")
               for p in table[col])


def _jobs(plan: dict, out: Path, size: tuple[int, int]) -> list[dict]:
    return [{"image_id": im["image_id"], "seed": im["seed"], "size": tuple(size), "dir": str(out),
             "item_spec": plan["items"][im["item"]], "shoot_spec": plan["shoots"][im["shoot"]],
             "figure_spec": plan["figures"][im["figure_id"]]} for im in plan["images"]]


def generate_catalog(out: Path, items: int = 48, views: int = 5, seed: int = 0,
                     size: tuple[int, int] = (512, 768), workers: int = 2, progress: bool = True) -> Path:
    """Write images, exact masks and manifest.csv under `out` (replacing it) and return `out`.

    Built in a temporary sibling folder and moved into place at the end, so an interrupted run
    never leaves a half catalogue that looks complete.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    out = Path(out)
    w, h = int(size[0]), int(size[1])
    if w < 64 or h < 64:
        raise ValueError("size must be at least 64x64 pixels")
    plan = make_plan(items, views, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        jobs = _jobs(plan, tmp, (w, h))
        rows: list[dict] = []
        bar = tqdm(total=len(jobs), desc="drawing catalogue", unit="img", disable=not progress)
        if workers <= 1:
            for job in jobs:
                rows.append(render_image(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                try:
                    for row in pool.map(render_image, jobs, chunksize=4):
                        rows.append(row)
                        bar.update()
                except BrokenProcessPool:
                    raise RuntimeError(
                        "the drawing processes stopped before the catalogue was done (nothing was written). "
                        "From a Python script, call generate_catalog under `if __name__ == \"__main__\":` "
                        "(each process imports the script, so an unguarded call runs again inside it), or "
                        "pass workers=1.") from None
        bar.close()
        table = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
        table.to_csv(tmp / MANIFEST, index=False, lineterminator="\n")
        pd.DataFrame([{**asdict(i), "pattern_params": json.dumps(i.pattern_params, sort_keys=True)}
                      for i in plan["items"]]).to_csv(tmp / "items.csv", index=False, lineterminator="\n")
        pd.DataFrame([{"shoot_id": s.shoot_id, "background": s.background, "lighting": s.light["name"],
                       "arms": s.pose["arms"], "legs": s.pose["legs"], "lean": round(s.pose["lean"], 2),
                       "crop": s.camera["crop"], "scale": round(s.camera["scale"], 3),
                       "rotation": round(s.camera["rot"], 2), "figures": " ".join(s.figures),
                       "jpeg_quality": s.finish["jpeg"]} for s in plan["shoots"]]).to_csv(
            tmp / "shoots.csv", index=False, lineterminator="\n")
        meta = {**_meta(items, views, seed, (w, h)), "n_images": len(rows), "n_shoots": len(plan["shoots"]),
                "n_figures": len(plan["figures"])}
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if out.exists():
            _remove_generated(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _remove_generated(out: Path) -> None:
    """Delete a previous catalogue, but only if this generator made it (never user photos)."""
    if not (out / META).is_file() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a generated catalogue (no {META}); "
                              "choose another --out or remove it yourself.")
    shutil.rmtree(out)


def ensure_sample(path: Path | str, items: int = 48, views: int = 5, seed: int = 0,
                  workers: int = 2) -> Path:
    """Draw the sample at `path` if it is missing; leave any existing folder alone.

    Why: notebooks call this first so that running one alone works on a fresh clone, without
    ever touching a folder of the user's own photos. Only a missing folder named `sample` is
    drawn; any other missing folder is probably a typo and gets a clear error instead.
    """
    path = Path(path)
    if path.exists():
        return path
    if path.name != "sample":
        raise FileNotFoundError(f"catalogue folder {path} does not exist. Check the path, or draw a "
                                f"sample there with `python -m helpers sample --out {path}`.")
    return generate_catalog(path, items=items, views=views, seed=seed, workers=workers)


def photo_distances(table, size: tuple[int, int] = (32, 48)) -> "pd.DataFrame":
    """How alike whole photos are, by pair kind: same item (other shoot), same shoot (other item),
    neither. Mean absolute difference of small grey thumbnails (0 = identical, 1 = opposite).

    Why: it shows the confounder with a number - if same-shoot pairs are closer than same-item
    pairs, whole-photo similarity finds the shoot, not the dress.
    """
    import pandas as pd

    thumbs = {}
    for row in table.itertuples():
        with Image.open(row.image_path) as img:
            thumbs[row.image_id] = np.asarray(img.convert("L").resize(size, Image.BILINEAR), np.float32) / 255
    ids = list(thumbs)
    stack = np.stack([thumbs[i].ravel() for i in ids])
    items = table.set_index("image_id").loc[ids, "item_id"].to_numpy()
    shoots = table.set_index("image_id").loc[ids, "shoot_id"].to_numpy()
    rows = []
    for a in range(len(ids)):
        d = np.abs(stack[a + 1:] - stack[a]).mean(1)
        same_item = items[a + 1:] == items[a]
        same_shoot = shoots[a + 1:] == shoots[a]
        kind = np.where(same_item, "same item, other shoot", np.where(same_shoot, "same shoot, other item", "neither"))
        rows.append(pd.DataFrame({"pair": kind, "distance": d}))
    pairs = pd.concat(rows, ignore_index=True)
    out = pairs.groupby("pair")["distance"].agg(["count", "median", "mean"])
    out[["median", "mean"]] = out[["median", "mean"]].astype(float).round(3)
    return out


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x768, got {text!r}") from None
    return w, h


def main(argv: list[str] | None = None) -> int:
    """`python -m helpers sample`: draw the sample catalogue (skipped if already complete)."""
    ap = argparse.ArgumentParser(prog="python -m helpers sample", description=main.__doc__)
    ap.add_argument("--out", type=Path, default=Path("data/sample"))
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--views", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=_parse_size, default=(512, 768), help="WIDTHxHEIGHT, default 512x768")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="redraw even if the catalogue is complete")
    args = ap.parse_args(argv)
    if args.out.is_file() or (args.out.is_dir() and any(args.out.iterdir()) and not (args.out / META).is_file()):
        print(f"{args.out} exists and is not a generated catalogue (no {META}); choose another --out.",
              file=sys.stderr)
        return 2
    if not args.force and is_complete(args.out, args.items, args.views, args.seed, args.size):
        print(f"{args.out} is already a complete catalogue ({args.items} items x {args.views} views, "
              f"seed {args.seed}); nothing to do (use --force to redraw).")
        return 0
    t0 = time.perf_counter()
    try:
        generate_catalog(args.out, args.items, args.views, args.seed, args.size, args.workers)
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.items * args.views} images to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
