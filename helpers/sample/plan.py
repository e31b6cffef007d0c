"""The catalogue plan: what items, figures and shoots exist, all drawn from one master seed.

Why apart from the drawing: the plan is made once in the parent process and is small and
testable; each image is then rendered from its plan entry alone (helpers.sample.render).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np



GENERATOR_VERSION = 4  # 4: one product shot per item and the `view` column
MANIFEST = "manifest.csv"
META = "sample.json"

MANIFEST_COLUMNS = [
    "image_id", "item_id", "shoot_id", "figure_id", "category", "colour", "pattern", "silhouette",
    "neckline", "sleeve", "length", "pattern_colour", "background", "lighting", "pose",
    "skin_tone", "hair", "image_path", "garment_mask_path", "person_mask_path",
    "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "width", "height", "garment_pixels", "person_pixels", "view",
]
VIEWS = ("worn", "product")  # `view`: a worn photo (a figure in a shoot) or a product shot (the garment alone)

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
