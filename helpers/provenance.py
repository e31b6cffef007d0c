"""Which catalogue and recipe built an index, and one writer at a time.

Why: the index is shared on disk. Without a record of what built it, a `--limit 10` run or a run
on another catalogue silently replaced the workbook's records and search answered from them. So
every run writes to collections named after its catalogue (its resolved path, plus the limit),
records the catalogue's content hash, masker, prompt, embedder and cut recipe in the collections'
metadata, and holds an exclusive lock while it writes; search checks the record before it answers.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import pandas as pd

from helpers.cutting import GARMENT_VIEW
from helpers.errors import IndexBusy, IndexMismatch

LOCK_NAME = ".write.lock"
DEFAULT_PROMPT = "dress"  # Settings.garment_prompt's default: its garment collection keeps the plain name
LOCK_TIMEOUT_S = 600.0
# metadata keys of a collection that describe what built it (compared by `check`)
RECIPE_KEYS = ("catalog", "catalog_hash", "limit", "masker", "prompt", "embedder", "cut")


def catalog_scope(catalog: Path | str, limit: int | None = None) -> str:
    """A short name for a catalogue folder (and a `--limit` subset): part of the collection names,
    so two catalogues, or a quick limited run, never write into each other's collections."""
    key = hashlib.sha256(str(Path(catalog).expanduser().resolve()).encode()).hexdigest()[:8]
    return f"{key}-n{int(limit)}" if limit is not None else key


def table_hash(table: pd.DataFrame) -> str:
    """Content hash of a catalogue table: image ids, item ids, file names and sizes (a changed,
    added or removed photo changes it; a copied folder with the same photos does not)."""
    h = hashlib.sha256()
    for image_id, item_id, path in sorted(zip(table["image_id"].astype(str), table["item_id"].astype(str),
                                              table["image_path"].astype(str))):
        try:
            size = os.path.getsize(path)
        except OSError:
            size = -1
        h.update(f"{image_id}\t{item_id}\t{Path(path).name}\t{size}\n".encode())
    return h.hexdigest()[:16]


def recipe(settings: Any, table: pd.DataFrame, embedder_id: str, *, limit: int | None = None,
           prompt: str | None = None) -> dict[str, Any]:
    """What builds a garment index: catalogue (path + content hash of the *whole* listed table,
    before validation, so image size limits do not change it),
    limit, masker, prompt (default: the settings' garment prompt), embedder and the cut-out recipe."""
    return {"catalog": str(Path(settings.catalog).expanduser().resolve()), "catalog_hash": table_hash(table),
            "limit": -1 if limit is None else int(limit), "masker": str(settings.effective_masker),
            "prompt": str(settings.garment_prompt if prompt is None else prompt), "embedder": str(embedder_id),
            "cut": repr(GARMENT_VIEW)}


def record(collection: Any, facts: Mapping[str, Any]) -> None:
    """Write `facts` into a collection's metadata (keeping its model id, dimension and view)."""
    meta = {k: v for k, v in dict(collection.metadata or {}).items() if not k.startswith("hnsw:")}
    meta.update({k: v for k, v in facts.items() if v is not None})
    collection.modify(metadata=meta)


def check(collection: Any, want: Mapping[str, Any], *, view: str, fix: str) -> None:
    """Refuse (IndexMismatch, naming the difference and `fix`, the command that rebuilds it) when
    the collection's recorded recipe differs from `want`. Keys it never recorded are not judged."""
    have = dict(collection.metadata or {})
    keys = [k for k in RECIPE_KEYS if k in want and k in have and (view == "garment" or k not in
                                                                  ("masker", "prompt", "cut"))]
    diff = [f"{k} {have[k]!r} (asked for {want[k]!r})" for k in keys if str(have[k]) != str(want[k])]
    if diff:
        what = "the catalogue changed since" if keys and diff[0].startswith("catalog_hash") else "another recipe"
        raise IndexMismatch(f"the {view} index {collection.name!r} was built with {what}: " + "; ".join(diff)
                            + f". It cannot answer for this catalogue. Rebuild it: {fix}")


def run_command(settings: Any, prompts: Any = None) -> str:
    """The command that (re)builds the index for these settings (and, when given, for these
    garment prompts: `--prompts dress,skirt`; by default the settings' own prompts)."""
    parts = ["python -m helpers run", f"--catalog {settings.catalog}"]
    if settings.backend != "local":
        parts.append(f"--backend {settings.backend}")
    if settings.masker != "auto":
        parts.append(f"--masker {settings.masker}")
    wanted = tuple(prompts) if prompts is not None else tuple(getattr(settings, "prompts", ()) or ())
    if wanted and wanted != (DEFAULT_PROMPT,):
        parts.append("--prompts " + ",".join(wanted))
    return " ".join(parts)


@contextlib.contextmanager
def write_lock(settings: Any, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[Path | None]:
    """Hold the index's write lock (fcntl.flock on `chroma_path/.write.lock`); wait up to
    `timeout` seconds for another writer, then raise IndexBusy. A Chroma server (chroma_host)
    has no shared folder to lock: yields None."""
    if getattr(settings, "chroma_host", None):
        yield None
        return
    folder = Path(settings.chroma_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise IndexBusy(f"the index at {folder} is being written by {holder} (lock {path}); "
                                    f"waited {timeout:.0f} s. Wait for that run to finish and run again, or "
                                    "point this run elsewhere: WORKBOOK_CHROMA_PATH=/tmp/other-index "
                                    "python -m helpers run ...") from None
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield path
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
