"""Every error class of the workbook, and the columns of a failure table.

Why one module that imports no step module: each step (masking, cutting, embedding, Bedrock,
cost, search) raises or catches the others' errors. With the classes in the step modules, the
steps imported each other in a loop (masking/embedding <-> bedrock <-> cost). Here every step
imports this module and this module imports none of them (httpx's `_exceptions.py` habit).

An error that stands for one item (one image) carries a short `reason` code, which becomes the
`reason` column of a failure table; the message says what happened and what to do.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

#: The columns of every failure table (masking, cutting, embedding, parallel runs): one row per
#: image that produced nothing, why (a short code) and what to do.
FAILURE_COLUMNS = ["image_id", "reason", "message"]


class ItemError(Exception):
    """One item (image) failed; `reason` is a short code for failure tables."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------- per-item errors

class ImageError(ItemError):
    """An image was refused. `reason` is one of helpers.images.REASONS; the message says what to do."""

    def __init__(self, reason: str, message: str):
        super().__init__(reason, message)
        self.message = message

    def __repr__(self) -> str:
        return f"ImageError({self.reason!r}, {self.message!r})"


class MaskError(ItemError):
    """A mask could not be made for one image. `reason` is a short code for failure tables
    (e.g. "no_garment", "content_filter", "throttled", "access_denied", "model_unavailable",
    "bad_response", "unsupported_prompt"); the message says what happened and what to do."""


class NoGarment(MaskError):
    """The mask holds (almost) nothing: there is no garment to cut out for this image."""

    def __init__(self, message: str):
        super().__init__("no_garment", message)


class EmbedError(ItemError):
    """One image could not be embedded; `reason` is a short code for failure tables."""


#: Exceptions that mean "this one item failed" (each has `.reason`); anything else is a bug
#: or a problem for the whole batch and propagates.
ITEM_ERRORS: tuple[type[BaseException], ...] = (MaskError, EmbedError, ImageError)


# --------------------------------------------------------------------------- whole-run errors

class SettingsError(ValueError):
    """A setting has an unknown name or a value outside what is allowed."""


class MissingExtra(ValueError):
    """An optional extra (train: torch; pose: mediapipe) is not installed; the message is one line
    naming the command that installs it (helpers.extras)."""


class ModelFileError(ValueError):
    """A committed ONNX file is missing, or differs from its manifest (helpers.onnxmodels); the
    message says how to rebuild it (`make models`)."""


class CatalogError(ValueError):
    """The folder cannot be read as a catalogue at all (missing, empty, unknown layout)."""


class DatasetError(ValueError):
    """A ground-truth dataset (Clothing Co-Parsing) is incomplete or damaged: which file, and what to do."""


class BudgetExceeded(RuntimeError):
    """A batch would cost more than the configured maximum spend; nothing was called."""

    def __init__(self, message: str, estimate: Any, limit: float):
        super().__init__(message)
        self.estimate = estimate  # helpers.cost.CostEstimate
        self.limit = limit


class WorkersFailed(RuntimeError):
    """The mask worker processes stopped before the batch was done (masks made so far are cached)."""


class IndexProblem(RuntimeError):
    """Base for index problems that a user can fix (wrong collection, empty index)."""


class DimensionMismatch(IndexProblem, ValueError):
    """Vectors of one dimension met a collection made for another."""


class EmptyIndexError(IndexProblem):
    """A search ran against an index that has no records yet."""


class IndexMismatch(IndexProblem):
    """The index was built from another catalogue, masker, embedder or cut than the one asked about."""


class IndexBusy(IndexProblem):
    """Another run holds the index's write lock (two writers would delete each other's records)."""


class SearchError(RuntimeError):
    """A search could not run; `reason` is a short code (the app shows it), the message says
    what to do."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class CorruptCacheEntry(UserWarning):
    """A cache entry that could not be decoded was deleted and its value is being recomputed."""


# --------------------------------------------------------------------------- workbook tooling

class NotebookError(RuntimeError):
    """A notebook cannot be run as asked (bad parameters cell, unknown parameter, bad name)."""


class NotebookFailed(RuntimeError):
    """A cell raised while the notebook ran; names the notebook and the cell."""

    def __init__(self, notebook: str, cell: int | None, message: str, output: Path):
        self.notebook, self.cell, self.output = notebook, cell, output
        where = f"cell {cell}" if cell is not None else "an unknown cell"
        super().__init__(f"{notebook} failed in {where}: {message} (executed copy: {output})")


class SecretLeak(RuntimeError):
    """An executed notebook contained something that looks like an AWS credential."""
