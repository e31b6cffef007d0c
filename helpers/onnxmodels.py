"""The committed ONNX files of both networks (the garment parser and the embedder's CNN), checked
against their manifest before they load.

Why: the run time has onnxruntime but no torch, so the networks ship as ONNX files built once by
`make models` (helpers.modelbuild, with torch from the train extra). The manifest
(models/onnx-manifest.json) records each file's sha256 with its provenance: the sha256 of the
source weights, the export recipe and the torch version. A file that differs from its manifest
(weights overwritten, truncated, replaced) is refused with one line saying how to rebuild it,
instead of loading silently and changing every figure.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from helpers.errors import ModelFileError

MODELS_DIR = Path(__file__).resolve().parent / "maskers" / "models"
MANIFEST_NAME = "onnx-manifest.json"
REBUILD = "make models"
#: network name -> file name inside MODELS_DIR
FILES = {"parser-net": "parser-net.onnx", "embedder": "effnet-lite0-features.onnx"}


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(directory: Path | str | None = None) -> dict:
    """The manifest: {"torch": ..., "command": ..., "models": {name: {"file", "sha256", ...}}}."""
    path = Path(directory or MODELS_DIR) / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{path} is missing; rebuild the ONNX files with `{REBUILD}`") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON ({exc}); rebuild it with `{REBUILD}`") from None


def entry(name: str, directory: Path | str | None = None) -> dict:
    """The manifest's record of network `name` (file, sha256, bytes, sources, recipe)."""
    models = read_manifest(directory).get("models", {})
    if name not in models:
        raise ModelFileError(f"{Path(directory or MODELS_DIR) / MANIFEST_NAME} has no entry for {name!r}; "
                             f"rebuild it with `{REBUILD}`")
    return models[name]


def verified(name: str, directory: Path | str | None = None) -> Path:
    """The ONNX file of network `name` in `directory` (default MODELS_DIR), after its sha256
    matched the manifest."""
    record = entry(name, directory)
    path = Path(directory or MODELS_DIR) / record["file"]
    stat = path.stat() if path.is_file() else None
    return _check(path, record["sha256"], (stat.st_mtime_ns, stat.st_size) if stat else None)


@functools.lru_cache(maxsize=8)
def _check(path: Path, expected: str, _version: tuple[int, int] | None) -> Path:
    """Hash once per file version and process (mtime and size are part of the cache key)."""
    if not path.is_file():
        raise ModelFileError(f"{path} is missing; rebuild the ONNX files with `{REBUILD}`")
    digest = sha256_file(path)
    if digest != expected:
        raise ModelFileError(f"{path} does not match its manifest (sha256 {digest[:12]}, expected "
                             f"{expected[:12]}): it was changed after the build; rebuild it with `{REBUILD}`")
    return path


def session(model: Path | bytes, threads: int, *, optimize: bool = False):
    """An onnxruntime CPU session of a model file (or its bytes) on `threads` threads."""
    import onnxruntime as ort

    if hasattr(ort, "disable_telemetry_events"):  # besides ORT_DISABLE_TELEMETRY (helpers/__init__)
        ort.disable_telemetry_events()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    if optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
