"""A content-addressed, crash-safe store for every expensive result (masks, cut-outs, vectors).

Why: a model call is slow (local) or costs money (Bedrock). The key is a hash of the input
bytes, the model id and every parameter that changes the result, so a changed image or
setting never reuses a stale value, and a re-run makes zero calls. Writes go to a temporary
file in the same folder and are renamed into place (atomic on POSIX), so a run killed at any
moment leaves either a whole entry or none, and a re-run resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from helpers.errors import CorruptCacheEntry

T = TypeVar("T")


def content_key(data: bytes, model_id: str, **params: Any) -> str:
    """The cache key: sha256 over input bytes, model id and sorted parameters."""
    h = hashlib.sha256()
    h.update(hashlib.sha256(data).digest())
    h.update(model_id.encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()


_WARNED_KINDS: set[str] = set()  # kinds already warned about in this process: one line, not one per entry


def discard_corrupt(path: Path | str, kind: str, reason: BaseException | str) -> None:
    """Delete a cache file that failed to decode, and say so once per kind per process.

    Why: a run killed mid-write is safe (writes are atomic), but a full disk, a copied folder or
    a crash of the file system can still leave a truncated file; read as a hit it would fail the
    same way on every run. As a miss it is simply made again."""
    path = Path(path)
    path.unlink(missing_ok=True)
    if kind in _WARNED_KINDS:
        return
    _WARNED_KINDS.add(kind)
    warnings.warn(CorruptCacheEntry(
        f"cache entry {path} could not be read ({reason}); deleted it and recomputing. Other "
        f"damaged {kind!r} entries are recomputed without another message; `make reset` clears "
        "the whole cache."), stacklevel=3)


class Cache:
    """Entries live at `root/kind/ab/abcdef….suffix`; `kind` groups them (masks, vectors…)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, kind: str, key: str, suffix: str = ".bin") -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def has(self, kind: str, key: str, suffix: str = ".bin") -> bool:
        return self.path(kind, key, suffix).is_file()

    def get_bytes(self, kind: str, key: str, suffix: str = ".bin") -> bytes | None:
        try:
            return self.path(kind, key, suffix).read_bytes()
        except FileNotFoundError:
            return None

    def put_bytes(self, kind: str, key: str, data: bytes, suffix: str = ".bin") -> Path:
        target = self.path(kind, key, suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def get_decoded(self, kind: str, key: str, decode: Callable[[bytes], T], suffix: str = ".bin") -> T | None:
        """`decode(entry bytes)`, or None on a miss. An entry that fails to decode counts as a
        miss: it is deleted (see `discard_corrupt`), so the caller recomputes and re-stores it."""
        data = self.get_bytes(kind, key, suffix)
        if data is None:
            return None
        try:
            return decode(data)
        except Exception as exc:  # noqa: BLE001 - any decode failure means the entry is damaged
            discard_corrupt(self.path(kind, key, suffix), kind, f"{type(exc).__name__}: {exc}")
            return None

    def get_array(self, kind: str, key: str) -> np.ndarray | None:
        return self.get_decoded(kind, key, lambda b: np.load(io.BytesIO(b), allow_pickle=False), ".npy")

    def put_array(self, kind: str, key: str, array: np.ndarray) -> Path:
        buf = io.BytesIO()
        np.save(buf, np.asarray(array), allow_pickle=False)
        return self.put_bytes(kind, key, buf.getvalue(), ".npy")

    def get_json(self, kind: str, key: str) -> Any | None:
        return self.get_decoded(kind, key, json.loads, ".json")

    def put_json(self, kind: str, key: str, value: Any) -> Path:
        return self.put_bytes(kind, key, json.dumps(value, sort_keys=True).encode(), ".json")

    def stats(self) -> dict[str, dict[str, int]]:
        """Entries and bytes per kind, for the clean-up step."""
        out: dict[str, dict[str, int]] = {}
        if not self.root.is_dir():
            return out
        for kind_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = [p for p in kind_dir.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")]
            out[kind_dir.name] = {"entries": len(files), "bytes": sum(p.stat().st_size for p in files)}
        return out

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
