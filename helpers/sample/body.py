"""A drawn figure's body and the dress outline on it: 2-D geometry of the generated photos."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from helpers.sample.plan import FigureSpec, ItemSpec, LENGTHS


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
