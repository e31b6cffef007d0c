"""The plan of the separates catalogue: garments, pairings, shoots and models from one seed.

Why apart from the drawing: as for the dress catalogue (helpers.sample.plan), the plan is made once in
the parent process and is small and testable; each photo is then drawn from its plan entry alone
(helpers.sample.outfit_render). The catalogue itself: helpers.sample.outfits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.sample.plan import (BACKGROUNDS, COLOURS, NECKLINES, SKIN_TONED, ShootSpec, _choice, _set_pattern,
                                 plan_figures, plan_shoot)

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
FOLDS = {"top": 9, "skirt": 13, "trousers": 7}  # fold count of the drape per kind


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
