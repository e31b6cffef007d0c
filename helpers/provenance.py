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
import socket
import stat
import threading
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
    """Content hash of a catalogue table: image ids, item ids, file names and a digest of each
    file's bytes (a photo replaced by another of the same size changes it, as does a changed, added or
    removed photo; a copied folder with the same photos does not). Only regular files are read."""
    h = hashlib.sha256()
    for image_id, item_id, path in sorted(zip(table["image_id"].astype(str), table["item_id"].astype(str),
                                              table["image_path"].astype(str))):
        h.update(f"{image_id}\t{item_id}\t{Path(path).name}\t{file_digest(path)}\n".encode())
    return h.hexdigest()[:16]


_DIGESTS: dict[tuple, str] = {}


def file_digest(path: str | Path) -> str:
    """SHA-256 of a regular file's bytes ("-" for anything else: missing, a FIFO, a device), remembered
    for this process by (device, inode, size, mtime, ctime): the ctime changes whenever the file is
    replaced or rewritten, even when its mtime is set back, so a remembered digest is never stale."""
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    if not stat.S_ISREG(st.st_mode):
        return "-"
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _DIGESTS:
        try:
            with open(path, "rb") as fh:
                _DIGESTS[key] = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError:
            return "-"
    return _DIGESTS[key]


def recipe(settings: Any, table: pd.DataFrame, embedder_id: str, *, limit: int | None = None,
           prompt: str | None = None) -> dict[str, Any]:
    """What builds a garment index: catalogue (path + content hash of the *whole* listed table,
    before validation, so image size limits do not change it),
    limit, masker, prompt (default: the settings' garment prompt), embedder and the cut-out recipe."""
    return {"catalog": str(Path(settings.catalog).expanduser().resolve()), "catalog_hash": table_hash(table),
            "limit": -1 if limit is None else int(limit), "masker": canonical_masker(settings.effective_masker),
            "prompt": str(settings.garment_prompt if prompt is None else prompt), "embedder": str(embedder_id),
            "cut": repr(GARMENT_VIEW)}


#: masker names that mean one model ("local" is the garment parser: helpers.maskers.masker_name)
SAME_MODEL = {"local": "parser", "bedrock": "titan"}


def canonical_masker(name: str) -> str:
    """One name per model, so an index built with masker "local" answers for "parser" and back."""
    return SAME_MODEL.get(name, name)


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
    same = {"masker": canonical_masker}
    diff = [f"{k} {have[k]!r} (asked for {want[k]!r})" for k in keys
            if same.get(k, str)(str(have[k])) != same.get(k, str)(str(want[k]))]
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
    has no shared folder to lock: there the lock is a collection on the server (`server_lock`)."""
    if getattr(settings, "chroma_host", None):
        with server_lock(settings, timeout=timeout):
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


SERVER_LOCK = "workbook-write-lock"
BEAT_S = 5.0  # the holder refreshes its lock this often; a lock not refreshed for STALE_S was left by a dead writer
STALE_S = 30.0


@contextlib.contextmanager
def server_lock(settings: Any, *, timeout: float = LOCK_TIMEOUT_S, beat_s: float = BEAT_S,
                stale_s: float = STALE_S) -> Iterator[str]:
    """One writer at a time on a Chroma server: the lock is the collection `workbook-write-lock`,
    made with create_collection, which the server grants to exactly one caller (a second create of
    the same name fails). The holder refreshes its `beat` while it writes; a lock whose beat is older
    than `stale_s` (its writer was killed) is taken over. Yields the holder's name."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port,
                                 settings=ChromaSettings(anonymized_telemetry=False))
    me = f"pid {os.getpid()} on {socket.gethostname()} ({threading.get_ident()})"
    deadline = time.monotonic() + timeout
    while True:
        try:
            col = client.create_collection(SERVER_LOCK, metadata={"holder": me, "beat": time.time()})
            break
        except Exception as exc:  # it exists: another writer holds it (or the server refused: judged below)
            try:
                held = dict(client.get_collection(SERVER_LOCK).metadata or {})
            except Exception:  # released between our create and our look, or the server is failing
                if time.monotonic() >= deadline:
                    raise IndexBusy(f"cannot take the write lock on the Chroma server {settings.chroma_host}:"
                                    f"{settings.chroma_port} ({exc}); check that the server runs") from None
                time.sleep(0.1)
                continue
            if time.time() - float(held.get("beat", 0)) > stale_s:
                with contextlib.suppress(Exception):
                    client.delete_collection(SERVER_LOCK)  # its writer died: free it
                continue
            if time.monotonic() >= deadline:
                raise IndexBusy(f"the index on the Chroma server {settings.chroma_host}:{settings.chroma_port} is "
                                f"being written by {held.get('holder', 'another process')}; waited {timeout:.0f} s. "
                                "Wait for that run to finish and run again.") from None
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(beat_s):
            with contextlib.suppress(Exception):
                col.modify(metadata={"holder": me, "beat": time.time()})

    beater = threading.Thread(target=beat, name="server-lock-beat", daemon=True)
    beater.start()
    try:
        yield me
    finally:
        stop.set()
        beater.join()
        with contextlib.suppress(Exception):
            if dict(client.get_collection(SERVER_LOCK).metadata or {}).get("holder") == me:
                client.delete_collection(SERVER_LOCK)
