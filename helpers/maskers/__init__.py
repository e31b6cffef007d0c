"""Garment maskers: one protocol, one module per masker, and `get_masker(settings)` to pick one.

Why a registry: the notebooks, the pipeline and search ask for `mask(image, prompt)` and never
branch on where a mask came from. The names (setting `masker`, helpers.settings.MASKERS):

* "local" - the default offline masker: the garment parser (#14);
* "parser" - `ParserMasker` (helpers.maskers.parser): EfficientNet-Lite0 fine-tuned on real photos
  with a decoder -> 9 classes (averaged with the mirror image's) -> guided-filter edges -> the
  prompt's classes, and a quality score from the two views' agreement; works on real photos;
* "parser-fast" - the same without the mirror view: twice as fast, no quality score;
* "pose" - `LocalMasker` (helpers.maskers.pose): mediapipe pose + person segmentation + colour
  (the offline masker before #14; still selectable by name);
* "titan" (alias "bedrock") - `BedrockMasker` (helpers.maskers.titan): Titan Image Generator /
  Nova Canvas INPAINTING + maskPrompt + returnMask, on Bedrock;
* "boxes" - `BoxMasker` (helpers.maskers.boxes): a garment box from a Nova vision model on Bedrock,
  the default offline masker's mask inside it;
* "reference" - `ReferenceMasker`: the catalogue's ground-truth masks, the upper bound;
* "auto" - "local" on the local backend, "boxes" on the Bedrock backend.

Running a masker over a catalogue (cache, pool, failures) is helpers.maskpool's job; judging its
masks against the ground truth is helpers.maskeval's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from helpers.maskers.base import (DOUBTFUL_QUALITY, PROMPT_ALIASES, SUPPORTED_PROMPTS, Box, Masker,
                                  normalize_prompt)
from helpers.maskers.pose import LocalMasker
from helpers.maskers.reference import ReferenceMasker
from helpers.settings import MASKER_ALIASES

if TYPE_CHECKING:  # pragma: no cover
    from helpers.settings import Settings

DEFAULT_OFFLINE = "parser"  # what "local" means: the #14 garment parser (the pose masker before it)


def masker_name(settings: "Settings") -> str:
    """The canonical name of the masker the settings ask for ("auto", "local" and aliases resolved)."""
    kind = settings.effective_masker
    kind = MASKER_ALIASES.get(kind, kind)
    return DEFAULT_OFFLINE if kind == "local" else kind


def get_masker(settings: "Settings", table: pd.DataFrame | None = None) -> Masker:
    """The masker the settings ask for (`settings.effective_masker`)."""
    kind = masker_name(settings)
    if kind == "pose":
        if table is not None:   # a catalogue run (CLI, pipeline): every photo needs the live masker
            from helpers.extras import require

            require("mediapipe", "pose", 'the pose masker (masker = "pose")')
        return LocalMasker()   # without mediapipe it has recorded masks of a few photos only
    if kind in ("parser", "parser-fast"):
        from helpers.maskers.parser import ParserMasker  # onnxruntime only when it first masks

        return ParserMasker(cache_dir=settings.cache_dir, flip=kind == "parser")
    if kind == "titan":
        from helpers.bedrock.lifecycle import warn_if_retired  # imported lazily: boto3 only when asked for
        from helpers.maskers.titan import BedrockMasker

        warn_if_retired(settings.mask_model_id, "mask_model_id")  # before any call is made
        return BedrockMasker(settings)
    if kind == "boxes":
        from helpers.maskers.boxes import BoxMasker  # lazy: boto3 only when asked for

        return BoxMasker(settings, inner=get_masker(settings.replace(masker="local"), table))
    if kind == "reference":
        if table is None:
            raise ValueError("masker='reference' needs the catalogue table: get_masker(settings, table)")
        return ReferenceMasker(table)
    raise ValueError(f"unknown masker {settings.effective_masker!r}; "
                     "choose local, parser, pose, titan, bedrock, boxes or reference")


__all__ = ["Box", "DOUBTFUL_QUALITY", "LocalMasker", "Masker", "PROMPT_ALIASES", "ReferenceMasker", "SUPPORTED_PROMPTS",
           "get_masker", "masker_name", "normalize_prompt"]
