"""Clothing Co-Parsing (CCP) loader: photos + pixel-level ground truth per prompt.

Layout (as in github.com/bearpaw/clothing-co-parsing): DIR/photos/NNNN.jpg,
DIR/annotations/pixel-level/NNNN.mat (variable `groundtruth`, one label id per pixel),
DIR/label_list.mat (variable `label_list`; id v is entry v counted from 0).

`load_ccp(DIR)` -> a catalogue-like table (image_id, image_path, annotation_path, number, split);
`truth_mask(DIR, image_id_or_path, prompt)` -> bool array for a prompt:
dress, top, skirt, trousers, clothes (every worn garment), also "person" (every non-background
pixel). Split: held-out = photo number % 5 == 0 (fixed; never train or tune on it).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.errors import DatasetError

# Garment groups by CCP label name (names as in label_list.mat). CCP's "jumper" is the US
# pinafore, a one-piece dress (none of its 37 tagged photos also carries "dress"; by eye nearly
# all are dresses), not the British sweater: it counts as a dress. CCP's "suit" marks the suit
# jacket only (the suit's trousers are labelled pants / shorts), "cape" a cape or poncho worn like a
# coat, "bodysuit" a leotard worn as a top: all three count as tops. CCP's "jeans" names the cloth,
# not the garment: a denim jacket is "jeans" too, so a separate jeans region worn on the upper body
# counts as a top (`class_map`).
DRESS = ("dress", "jumper")
TOP = ("top", "blouse", "shirt", "t-shirt", "sweater", "sweatshirt", "hoodie", "cardigan",
       "blazer", "jacket", "coat", "vest", "suit", "cape", "bodysuit")
TROUSERS = ("pants", "jeans", "shorts", "leggings")
DENIM = "jeans"
UPPER_BODY = 0.45   # a jeans region whose centre lies above this share of the person's height is a top
CLOTHES = ("blazer", "blouse", "bodysuit", "bra", "cape", "cardigan", "coat", "dress", "hoodie", "intimate",
           "jacket", "jeans", "jumper", "leggings", "panties", "pants", "romper", "shirt", "shorts", "skirt",
           "suit", "sweater", "sweatshirt", "swimwear", "t-shirt", "top", "vest")
PROMPT_LABELS = {"dress": DRESS, "top": TOP, "skirt": ("skirt",), "trousers": TROUSERS, "clothes": CLOTHES}
PROMPTS = tuple(PROMPT_LABELS) + ("person",)

# The parser's classes (index = class id). "other" = worn clothes not in the four kinds.
CLASSES = ("background", "skin", "hair", "dress", "top", "skirt", "trousers", "other", "accessory")
SKIN_LABELS, HAIR_LABELS = ("skin",), ("hair",)

HELDOUT_MOD = 5  # held-out split: photo number % 5 == 0 (~100 of the 502 odd-numbered photos)


def split_of(number: int) -> str:
    return "heldout" if number % HELDOUT_MOD == 0 else "train"


@lru_cache(maxsize=8)
def label_names(root: str) -> tuple[str, ...]:
    """Label names by id, from DIR/label_list.mat."""
    raw = _read_mat(Path(root) / "label_list.mat", "label_list")
    names = [str(np.asarray(x).ravel()[0]) if np.asarray(x).size else "" for x in np.asarray(raw, dtype=object).ravel()]
    return tuple(n.strip().lower() for n in names)


def _ids(root: str, names) -> np.ndarray:
    table = label_names(root)
    return np.array([i for i, n in enumerate(table) if n in names], dtype=np.int64)


def load_ccp(root: Path | str, split: str = "all", annotated_only: bool = True) -> pd.DataFrame:
    """Every photo (with a pixel-level annotation, by default) as a table sorted by number."""
    root = Path(root)
    photos = root / "photos"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist (or is not a folder); give the Clothing Co-Parsing "
                                "folder, the one holding photos/, annotations/ and label_list.mat")
    if not photos.is_dir():
        raise FileNotFoundError(f"{root} has no photos/ folder: not a Clothing Co-Parsing tree")
    if annotated_only and not (root / "annotations" / "pixel-level").is_dir():
        raise DatasetError(f"{root} has no annotations/pixel-level/ folder, so no photo has ground truth; "
                           "download the whole Clothing Co-Parsing tree (github.com/bearpaw/clothing-co-parsing)")
    rows = []
    for p in sorted(photos.glob("*.jpg")):
        ann = root / "annotations" / "pixel-level" / f"{p.stem}.mat"
        if annotated_only and not ann.is_file():
            continue
        try:
            number = int(p.stem)
        except ValueError:
            continue
        rows.append({"image_id": f"ccp-{p.stem}", "image_path": str(p), "annotation_path": str(ann) if ann.is_file() else "",
                     "number": number, "split": split_of(number)})
    table = pd.DataFrame(rows, columns=["image_id", "image_path", "annotation_path", "number", "split"])
    if split != "all":
        if split not in ("heldout", "train"):
            raise ValueError(f"split must be heldout, train or all, got {split!r}")
        table = table[table["split"] == split].reset_index(drop=True)
    return table


def _annotation_path(root: Path, image: str | Path) -> Path:
    s = str(image)
    stem = Path(s).stem
    if stem.startswith("ccp-"):
        stem = stem[4:]
    return root / "annotations" / "pixel-level" / f"{stem}.mat"


def label_map(root: Path | str, image: str | Path) -> np.ndarray:
    """The per-pixel label ids (uint8, H x W) of one photo (image_id 'ccp-0001', '0001' or a path)."""
    path = _annotation_path(Path(root), image)
    return np.asarray(_read_mat(path, "groundtruth")).astype(np.uint8)


def _read_mat(path: Path, variable: str) -> np.ndarray:
    """`variable` of a MATLAB file, or a DatasetError naming the file and what to do."""
    from scipy.io import loadmat

    fix = "download the Clothing Co-Parsing tree again (github.com/bearpaw/clothing-co-parsing)"
    if not path.is_file():
        raise DatasetError(f"{path} is missing; {fix}")
    try:
        data = loadmat(str(path), variable_names=[variable])
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError, ... for a damaged file
        raise DatasetError(f"{path} is not a readable MATLAB file ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:120]}); {fix}") from None
    if variable not in data:
        raise DatasetError(f"{path} holds no variable {variable!r}; {fix}")
    return data[variable]


def truth_mask(root: Path | str, image: str | Path, prompt: str) -> np.ndarray:
    """Bool ground-truth mask of `prompt` (dress / top / skirt / trousers / clothes / person)."""
    prompt = prompt.strip().lower()
    if prompt == "person":
        return label_map(root, image) != 0
    if prompt not in PROMPT_LABELS:
        raise ValueError(f"unknown prompt {prompt!r}; choose from {', '.join(PROMPTS)}")
    return np.isin(class_map(root, image), PROMPT_CLASSES[prompt])


def class_map(root: Path | str, image: str | Path) -> np.ndarray:
    """Per-pixel parser class ids (see CLASSES) of one photo; the prompts' truth is made of these."""
    labels = label_map(root, image)
    r = str(root)
    lut = np.full(256, CLASSES.index("accessory"), np.uint8)  # any other named label: shoes, bags, ...
    lut[0] = 0
    groups = {"skin": SKIN_LABELS, "hair": HAIR_LABELS, "dress": DRESS, "top": TOP, "skirt": ("skirt",),
              "trousers": TROUSERS, "other": tuple(set(CLOTHES) - set(DRESS) - set(TOP) - set(TROUSERS) - {"skirt"})}
    for name, members in groups.items():
        lut[_ids(r, members)] = CLASSES.index(name)
    classes = lut[labels]
    classes[upper_body_denim(labels, _ids(r, (DENIM,)))] = CLASSES.index("top")
    return classes


def upper_body_denim(labels: np.ndarray, denim_ids: np.ndarray) -> np.ndarray:
    """The "jeans" pixels that are a denim jacket or shirt, not trousers: each separate jeans region
    (8-connected) whose centre lies in the upper UPPER_BODY of the person's height (rows holding any
    labelled pixel). A denim shirt that touches the jeans below it stays trousers, as labelled."""
    import cv2

    denim = np.isin(labels, denim_ids)
    if not denim.any():
        return denim
    rows = np.flatnonzero((labels != 0).any(1))
    top, height = rows[0], max(1, rows[-1] - rows[0])
    n, regions, _, centres = cv2.connectedComponentsWithStats(denim.astype(np.uint8), connectivity=8)
    return np.isin(regions, [c for c in range(1, n) if (centres[c, 1] - top) / height < UPPER_BODY])


# class ids each prompt's mask is the union of
PROMPT_CLASSES = {"dress": (3,), "top": (4,), "skirt": (5,), "trousers": (6,), "clothes": (3, 4, 5, 6, 7)}


# ---------------------------------------------------------------- image-level tags
# DIR/annotations/image-level/NNNN.mat, variable `tags`: the label ids (as in label_list.mat) of
# every garment and accessory the photo shows, without saying where. Evidence for *which* garments
# a photo holds (dress, or top + skirt, trousers or not): what the parser gets wrong.

GARMENTS = ("dress", "top", "skirt", "trousers")


def image_tags(root: Path | str, image: str | Path) -> tuple[str, ...]:
    """The label names tagged on one photo (without id 0, the background) (image_id 'ccp-1005', '1005' or a path), sorted."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    stem = Path(str(image)).stem
    stem = stem[4:] if stem.startswith("ccp-") else stem
    path = Path(root) / "annotations" / "image-level" / f"{stem}.mat"
    try:
        raw = loadmat(str(path))["tags"]
    except (OSError, ValueError, KeyError, MatReadError) as err:
        raise ValueError(f"{path} is not a CCP image-level annotation (a .mat file with a `tags` "
                         f"variable): {err}") from err
    names = label_names(str(root))
    ids = np.asarray(raw, dtype=np.int64).ravel()
    bad = [int(i) for i in ids if not 0 <= i < len(names)]
    if bad:
        raise ValueError(f"{path}: tag ids {bad} are not in label_list.mat (0..{len(names) - 1})")
    return tuple(sorted({names[i] for i in ids if i > 0}))   # id 0 ("null", the background) is on every photo


def load_tags(root: Path | str) -> pd.DataFrame:
    """Every photo with an image-level annotation: image_id, image_path, number, tags (label
    names) and one bool column per garment kind (dress, top, skirt, trousers: the kinds the
    parser's prompts name, grouped as in PROMPT_LABELS), sorted by number."""
    root = Path(root)
    folder = root / "annotations" / "image-level"
    if not folder.is_dir():
        raise FileNotFoundError(f"{root} has no annotations/image-level/ folder: not a CCP tree with image-level tags")
    rows = []
    for ann in sorted(folder.glob("*.mat")):
        try:
            number = int(ann.stem)
        except ValueError:
            continue
        photo = root / "photos" / f"{ann.stem}.jpg"
        if not photo.is_file():
            continue
        tags = image_tags(root, ann.stem)
        rows.append({"image_id": f"ccp-{ann.stem}", "image_path": str(photo), "number": number, "tags": tags,
                     **{g: any(t in PROMPT_LABELS[g] for t in tags) for g in GARMENTS}})
    return pd.DataFrame(rows, columns=["image_id", "image_path", "number", "tags", *GARMENTS])
