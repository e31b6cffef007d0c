"""What the setup notebook checks: package versions, the chosen backend, where outputs go.

Why a module: the same checks serve the notebook, the CLI and the tests, and they must never
print a secret (credentials are reported only by where they come from).
"""
from __future__ import annotations

import platform
import sys
from importlib import metadata

import pandas as pd

from helpers.settings import PROJECT_ROOT, Settings

PACKAGES = ("numpy", "pandas", "pillow", "opencv-python-headless", "onnxruntime",
            "chromadb", "boto3", "papermill", "ipywidgets", "jupyterlab", "matplotlib")
#: packages of the optional extras (requirements-<extra>.in): reported, but fine when absent
OPTIONAL = {"torch": "train", "mediapipe": "pose", "pytest": "test"}
EXTRAS = ("train", "pose", "test")   # in install order (the Makefile's install-<extra>)


def _pins(path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.split("[")[0].strip().lower()] = version.strip()
    return pins


def pinned_versions() -> dict[str, str]:
    """Exact run-time pins from requirements.in (the project's promise; what `make run` installs)."""
    return _pins(PROJECT_ROOT / "requirements.in")


def extra_pins(extra: str) -> dict[str, str]:
    """Exact pins of one optional extra, from requirements-<extra>.in."""
    return _pins(PROJECT_ROOT / f"requirements-{extra}.in")


def package_report(packages: tuple[str, ...] = PACKAGES, optional: dict[str, str] = OPTIONAL) -> pd.DataFrame:
    """Installed vs pinned version of each key package; `ok` is False on a mismatch. A package
    of an optional extra (`extra` column) is ok when absent: `make run` does not install it."""
    pins = {**pinned_versions(), **{k: v for e in EXTRAS for k, v in extra_pins(e).items()}}
    rows = []
    for name in (*packages, *optional):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        pinned = pins.get(name.lower())
        extra = optional.get(name, "")
        matches = installed is not None and (pinned is None or installed.split("+")[0] == pinned)
        rows.append({"package": name, "installed": installed, "pinned": pinned, "extra": extra,
                     "ok": matches or (bool(extra) and installed is None)})
    return pd.DataFrame(rows)


def python_report() -> dict[str, str]:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "executable": sys.executable}


def output_locations(settings: Settings) -> pd.DataFrame:
    """Where the workbook reads and writes, so a user knows what to back up or delete."""
    run_dir = settings.run_dir
    rows = [("catalogue", settings.catalog), ("cache (masks, cut-outs, vectors)", settings.cache_dir),
            ("ChromaDB index", settings.chroma_path if not settings.chroma_host
             else f"http://{settings.chroma_host}:{settings.chroma_port}"),
            ("executed notebooks, metrics.json", run_dir)]
    return pd.DataFrame(rows, columns=["what", "where"])


def created_resources(settings: Settings) -> dict[str, pd.DataFrame]:
    """What the workbook created on disk and in the cloud, for the clean-up step: ChromaDB
    collections and their sizes, cache entries per kind, and Bedrock calls with their cost."""
    from helpers import bedrock, index
    from helpers.cache import Cache

    collections = []
    if settings.chroma_host or settings.chroma_path.exists():
        client = index.get_client(settings)
        for col in client.list_collections():
            col = client.get_collection(col if isinstance(col, str) else col.name)
            collections.append({"collection": col.name, "records": col.count()})
    stats = Cache(settings.cache_dir).stats()
    cache = pd.DataFrame([{"kind": k, "entries": v["entries"], "MB": round(v["bytes"] / 1e6, 2)}
                          for k, v in stats.items()], columns=["kind", "entries", "MB"])
    return {"collections": pd.DataFrame(collections, columns=["collection", "records"]),
            "cache": cache, "bedrock_calls": bedrock.usage_summary(settings)}


def cleanup_instructions(settings: Settings) -> str:
    """How to remove what `created_resources` lists (nothing is deleted by calling this)."""
    index_line = (f"the ChromaDB server at {settings.chroma_host}:{settings.chroma_port}: delete the "
                  "collections above with chromadb.HttpClient(...).delete_collection(name)"
                  if settings.chroma_host else f"the index: rm -rf {settings.chroma_path}")
    return "\n".join([
        "To remove what this workbook created:",
        f"  - {index_line}",
        f"  - the cache (masks, cut-outs, vectors, Bedrock usage ledger): rm -rf {settings.cache_dir}",
        "  - both at once, keeping the catalogue: make reset",
        f"  - executed notebooks: rm -rf {PROJECT_ROOT / 'runs'}",
        "  - Bedrock keeps nothing of yours after a call: there is no cloud resource to delete; "
        "to stop all access, remove the model access or the workshop credentials (aws configure).",
    ])
