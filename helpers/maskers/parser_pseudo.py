"""Tag-constrained pseudo-labels: more training signal for the parser from the CCP photos that
have image-level tags only (issue 22 §1, "more training signal").

The parser's own refined probabilities of a tagged photo (as cached by
helpers.maskers.garments_train, `.cache/garments-probs/tagged/ccp-NNNN.npz`) say *where* the
clothes are; its tags say *which* garments the photo shows. pseudo_labels() keeps the parser's
garment pixels but gives each one the likeliest garment class the tags allow (a pixel called
"top" on a photo tagged dress only becomes dress); a garment pixel with no garment kind tagged,
and every low-confidence pixel, is ignored (255).

LEAKAGE: the presence head's tagged-photo figures are honest only on tagged photos the network
never saw. Only one fixed half of the tagged photos is pseudo-labelled (`half`: even or odd photo
numbers); the head is then trained and scored on the other half alone (garments_train --tagged-half).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.maskers import garments as G

GARMENT = G.GARMENT                               # dress, top, skirt, trousers, other clothes
KIND_CLASS = {**G.KIND_CLASS, "other": GARMENT[-1]}
NON_GARMENT = (0, 1, 2, 8)                        # background, skin, hair, accessory
IGNORE = 255


def half_of(tags: pd.DataFrame, half: str) -> pd.DataFrame:
    """The tagged photos with even or odd numbers: the pseudo-labelled half and the half the
    presence head is trained and scored on never meet."""
    return tags[tags.number % 2 == (0 if half == "even" else 1)].reset_index(drop=True)


def other_clothes(tags) -> bool:
    """Do the tags name a worn garment outside the four kinds (romper, suit, swimwear, ...)?"""
    from helpers import ccp

    grouped = set(ccp.DRESS) | set(ccp.TOP) | set(ccp.TROUSERS) | {"skirt"}
    return any(t in ccp.CLOTHES and t not in grouped for t in tags)


def pseudo_labels(probs: np.ndarray, present: dict[str, bool], *, conf: float = 0.7,
                  kind_conf: float = 0.6) -> np.ndarray:
    """H x W x 9 probabilities + the garment kinds the tags say are present (dress, top, skirt,
    trousers, other) -> uint8 class ids, IGNORE where unsure.

    A pixel is a garment pixel when the summed garment probability beats every other class and
    reaches `conf`; it gets the likeliest *present* garment class, or IGNORE when no garment kind
    is present or when two or more are and the winner's share among them is below `kind_conf`.
    Any other pixel keeps its likeliest class when that reaches `conf`, else IGNORE."""
    probs = np.asarray(probs, np.float32)
    g = probs[..., list(GARMENT)]
    gsum = g.sum(-1)
    rest = probs[..., list(NON_GARMENT)]
    rest_arg = np.asarray(NON_GARMENT, np.uint8)[rest.argmax(-1)]
    rest_max = rest.max(-1)
    out = np.full(probs.shape[:2], IGNORE, np.uint8)
    keep_rest = (rest_max >= gsum) & (rest_max >= conf)
    out[keep_rest] = rest_arg[keep_rest]
    garment = (gsum > rest_max) & (gsum >= conf)
    allowed = [KIND_CLASS[k] for k in KIND_CLASS if present.get(k, False)]
    if not allowed:
        return out
    sub = probs[..., allowed]
    share = sub.max(-1) / np.maximum(sub.sum(-1), 1e-6)
    winner = np.asarray(allowed, np.uint8)[sub.argmax(-1)]
    sure = garment & ((share >= kind_conf) | (len(allowed) == 1))
    out[sure] = winner[sure]
    return out


def tagged_items(root: Path | str, probs_dir: Path | str, half: str = "even", **kw) -> tuple[np.ndarray, np.ndarray]:
    """Framed photos and pseudo-label grids (N x 384 x 256) of the tagged photos of one half
    (`even` / `odd` photo numbers), from the cached half-size probabilities in `probs_dir`
    (helpers.maskers.garments_train; a photo without a cache file is skipped)."""
    import cv2
    from PIL import Image

    from helpers import ccp
    from helpers.maskers import parser_backbone as pb

    tags = half_of(ccp.load_tags(root), half)
    images, labels = [], []
    for rec in tags.to_dict("records"):
        path = Path(probs_dir) / f"{rec['image_id']}.npz"
        if not path.is_file():
            continue
        with np.load(path) as z:
            probs = z["half"].astype(np.float32) / 255.0
        present = {k: bool(rec[k]) for k in ccp.GARMENTS}
        present["other"] = other_clothes(rec["tags"])
        small = pseudo_labels(probs, present, **kw)
        rgb = np.asarray(Image.open(rec["image_path"]).convert("RGB"))
        full = cv2.resize(small, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
        image, grid = pb.framed(rgb, full)
        images.append(image)
        labels.append(grid)
    if not images:
        raise SystemExit(f"no cached probabilities of the {half} tagged photos in {probs_dir}; run "
                         "python -m helpers.maskers.garments_train DIR first")
    return np.stack(images), np.stack(labels)
