"""What the search app shows, as plain data: the query, one result card, the whole view (and its text form).

Why apart from the widgets: tests and an executed notebook read these without a browser; the
app (helpers.app) only turns them into ipywidgets.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image


K_MIN, K_MAX, K_DEFAULT = 1, 20, 5
THUMB_SIZE = (112, 150)  # (w, h) box a result thumbnail is fitted into
#: The garments a person can search by (value, as the drop-down says it); the maskers know them all.
PROMPTS = (("dress", "dress"), ("top", "top"), ("skirt", "skirt"), ("trousers", "trousers"),
           ("clothes", "all clothes"))


def garment_words(prompt: str) -> str:
    """How the app names a prompt's garment in a sentence ("clothes" -> "clothing")."""
    return "clothing" if prompt.strip().lower() in ("clothes", "all clothes") else prompt.strip()


@dataclass(frozen=True)
class Query:
    """What was searched. `kind` is "catalog" (an image of the catalogue, whose item id is
    known, so results can be marked), "upload" (a validated photo) or "text" (Bedrock only)."""

    kind: str
    label: str
    image_id: str | None = None
    item_id: str | None = None
    image: Image.Image | None = None  # the decoded upload (RGB), or None
    data: bytes | None = None         # the upload's bytes, as received
    text: str | None = None


@dataclass(frozen=True)
class ResultCard:
    """One result as the app shows it."""

    mode: str
    rank: int
    image_id: str
    item_id: str
    score: float
    image_path: str
    same_item: bool  # same item as a catalogue query (always False for uploads / text)
    is_query: bool   # the query image itself


@dataclass
class SearchView:
    """Everything the app shows after one action, as plain data (what tests read)."""

    query: Query | None = None
    mode: str = "garment"
    k: int = K_DEFAULT
    where: dict | None = None
    prompt: str = "dress"     # the garment that was (or would be) cut out of the query
    results: dict[str, list[ResultCard]] = field(default_factory=dict)
    query_mask: np.ndarray | None = None
    query_cutout: Image.Image | None = None
    message: str = ""
    warning: str = ""         # e.g. a doubtful query mask (#14): shown, but the search still ran
    notice: str = ""          # "both" mode without the garment in the query: why the garment side is empty
    error: str | None = None  # a reason code ("not_an_image", "truncated", ...) or None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def same_item_count(self, mode: str) -> int:
        return sum(card.same_item for card in self.results.get(mode, []))

    def table(self) -> pd.DataFrame:
        """All result rows, one per (mode, rank)."""
        rows = [card.__dict__ for cards in self.results.values() for card in cards]
        cols = list(ResultCard.__dataclass_fields__)
        return pd.DataFrame(rows, columns=cols)

    def to_text(self) -> str:
        """A plain-text rendering, so an executed notebook is useful without a browser."""
        if self.query is None:
            return self.message or "no query yet"
        lines = [f"query: {self.query.label} ({self.query.kind}"
                 + (f", item {self.query.item_id}" if self.query.item_id else "") + ")",
                 f"mode: {self.mode}, garment: {self.prompt}, top-k: {self.k}, filter: {self.where or 'none'}, "
                 f"{self.seconds:.2f} s"]
        if self.error:
            lines.append(f"error ({self.error}): {self.message}")
        if self.warning:
            lines.append(f"warning: {self.warning}")
        if self.notice:
            lines.append(f"note: {self.notice}")
        for mode, cards in self.results.items():
            marks = f", {self.same_item_count(mode)} of {len(cards)} same item" if self.query.item_id else ""
            lines.append(f"-- {mode}{marks}")
            for c in cards:
                mark = "  <- same item" if c.same_item else ""
                mark += " (the query itself)" if c.is_query else ""
                lines.append(f"  {c.rank:>2}. {c.image_id:<24} item {c.item_id:<12} score {c.score:.3f}{mark}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- image helpers

def thumbnail_bytes(image: Image.Image, size: tuple[int, int] = THUMB_SIZE) -> bytes:
    """A small JPEG for an Image widget (keeps the notebook and the comm traffic light)."""
    img = image.convert("RGB") if image.mode != "RGB" else image.copy()
    img.thumbnail(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def mask_image(mask: np.ndarray) -> Image.Image:
    """A bool mask as a black/white picture (white = garment)."""
    return Image.fromarray(np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8), "L")
