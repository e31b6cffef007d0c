"""The pose masker's masks of a few bundled catalogue photos, recorded, so that notebook 02's
pose-vs-parser comparison shows where mediapipe (the optional pose extra) is not installed.

Why: `make run` installs only the run time, without mediapipe and the jax it pulls (~400 MB).
The comparison is a figure, not a measurement: where mediapipe is installed the pose masker
(helpers.maskers.pose.LocalMasker) masks live; elsewhere it returns the mask recorded here for a
photo with exactly the recorded pixels, and for any other photo says how to install the extra.
Recorded by helpers.maskers.pose.record_masks (needs the pose extra):
    python -c "from helpers.maskers.pose import record_masks; record_masks()"
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.settings import PROJECT_ROOT

RECORDED_DIR = PROJECT_ROOT / "data" / "results" / "pose-masks"
INDEX = "pose-masks.json"


def pixels_sha256(image: Image.Image) -> str:
    """sha256 of the photo's RGB pixels (and shape): a record belongs to exactly this photo."""
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    return hashlib.sha256(f"{rgb.shape}".encode() + rgb.tobytes()).hexdigest()


def read_index(directory: Path | str | None = None) -> dict:
    """{"<pixels sha256>/<prompt>": {"file", "image_id", "model_id", "date"}} ({} when none)."""
    path = Path(directory or RECORDED_DIR) / INDEX
    return json.loads(path.read_text()) if path.is_file() else {}


def recorded_mask(image: Image.Image, prompt: str, directory: Path | str | None = None) -> np.ndarray | None:
    """The recorded `prompt` mask of this very photo, or None."""
    record = read_index(directory).get(f"{pixels_sha256(image)}/{prompt}")
    if record is None:
        return None
    with Image.open(Path(directory or RECORDED_DIR) / record["file"]) as png:
        return np.asarray(png.convert("1"), dtype=bool)


def write(masks: dict[str, tuple[Image.Image, np.ndarray]], prompt: str, model_id: str,
          directory: Path | str | None = None) -> dict:
    """Record {image_id: (photo, mask)} as 1-bit PNGs plus the index; returns the index."""
    from datetime import date

    directory = Path(directory or RECORDED_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    index = {}
    for image_id, (image, mask) in masks.items():
        name = f"{image_id}-{prompt}.png"
        Image.fromarray(mask).convert("1").save(directory / name, optimize=True)
        index[f"{pixels_sha256(image)}/{prompt}"] = {"file": name, "image_id": image_id, "model_id": model_id,
                                                     "date": date.today().isoformat()}
    (directory / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    return index
