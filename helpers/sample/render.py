"""Drawing one photo (background, figure, dress, pattern, light, camera) and its exact masks.

Runs in worker processes: each image from its own plan entry and seed, so the output is
byte-identical whatever the number of workers.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from helpers.sample.body import Body, _capsule, _ellipse, dress_outline, make_body
from helpers.sample.plan import COLOURS, FACADES, FigureSpec, GARMENT_PARTS, HAIR_COLOURS, ItemSpec, LENGTHS, P_ARM_L, P_ARM_R, P_BROW, P_DRESS, P_EYE, P_FOREARM_L, P_FOREARM_R, P_HAIR_BACK, P_HAIR_FRONT, P_HAND_L, P_HAND_R, P_HEAD, P_LEG_L, P_LEG_R, P_LIPS, P_NECK, P_NOSE, P_SHOE_L, P_SHOE_R, P_SLEEVE_L, P_SLEEVE_R, P_STRAP, P_TORSO_SKIN, SKIN_PARTS, SKIN_TONES, ShootSpec, _choice, _temperature_gains


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


def draw_under(canvas: _Canvas, b: Body) -> None:
    """What lies under any garment: hair behind the head, legs and shoes, torso skin and neck."""
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


def draw_arms(canvas: _Canvas, b: Body) -> None:
    """Both arms with hands (drawn over the garment's body, under its sleeves)."""
    arm_parts = ((P_ARM_L, P_FOREARM_L, P_HAND_L, b.sh_l, b.el_l, b.wr_l),
                 (P_ARM_R, P_FOREARM_R, P_HAND_R, b.sh_r, b.el_r, b.wr_r))
    for up, fore, hand, sh, el, wr in arm_parts:
        canvas.fill(_capsule(sh, el, b.arm_r * 1.05, b.arm_r * 0.85), up)
        canvas.fill(_capsule(el, wr, b.arm_r * 0.85, b.arm_r * 0.6), up)  # one label: no seam at the elbow
        d = (wr - el) / (np.linalg.norm(wr - el) + 1e-9)
        canvas.fill(_ellipse(wr + d * 0.022, 0.017, 0.027, rot=math.atan2(d[1], d[0]) - math.pi / 2, n=14), up)


def draw_head(canvas: _Canvas, b: Body) -> None:
    """Head, face and the hair in front (drawn last: nothing covers them)."""
    f = b.fig
    hl = f.head
    hc = b.head_c
    hair = f.hair_style
    head_rx, head_ry = hl * 0.36, hl * 0.5
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


def draw_figure(canvas: _Canvas, item: ItemSpec, b: Body, flare_jit: float) -> dict:
    """A figure wearing the dress `item`: body under it, dress, arms, sleeves, head."""
    draw_under(canvas, b)
    shapes = dress_outline(item, b, flare_jit)
    for poly in shapes["dress"]:
        canvas.fill(poly, P_DRESS)
    for poly in shapes["strap"]:
        canvas.fill(poly, P_STRAP)
    draw_arms(canvas, b)
    for key, label in (("sleeve_l", P_SLEEVE_L), ("sleeve_r", P_SLEEVE_R)):
        for poly in shapes[key]:
            canvas.fill(poly, label)
    draw_head(canvas, b)
    return shapes


def body_albedo(labels: np.ndarray, fig: FigureSpec) -> np.ndarray:
    """The colours of the figure's skin, hair, face and shoes per pixel (garments left black:
    the caller paints them)."""
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
    return lut[labels]


def photograph(labels: np.ndarray, albedo: np.ndarray, fold_h: np.ndarray, garment: np.ndarray,
               satin: np.ndarray | None, shoot: ShootSpec, Mfig: np.ndarray, Mbg: np.ndarray,
               rng: np.random.Generator, srng: np.random.Generator) -> np.ndarray:
    """From a label map and its colours to the finished 8-bit photo: shading and folds, satin
    highlights (where `satin` is True), fabric and skin texture, the shoot's backdrop and shadow,
    light, lens and sensor. Shared by the dress and the outfit photos."""
    h, w = labels.shape
    person = labels > 0
    scale_px = shoot.camera["scale"] * h
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
    if satin is not None:
        Hv = L + np.array([0, 0, 1], np.float32)
        Hv /= np.linalg.norm(Hv)
        spec = np.clip((-dzdx * Hv[0] - dzdy * Hv[1] + Hv[2]) / norm, 0, 1) ** 40
        fg += (spec * 110 * satin)[..., None]
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

    return img8


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

    albedo = body_albedo(labels, fig)
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

    img8 = photograph(labels, albedo, fold_h, garment, garment if item.satin else None, shoot, Mfig, Mbg,
                      rng, srng)

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
