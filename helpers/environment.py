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

PACKAGES = ("numpy", "pandas", "pillow", "opencv-contrib-python", "mediapipe", "onnxruntime",
            "torch", "chromadb", "boto3", "papermill", "ipywidgets", "jupyterlab", "matplotlib")


def pinned_versions() -> dict[str, str]:
    """Exact pins from requirements.in (the project's promise)."""
    pins = {}
    for line in (PROJECT_ROOT / "requirements.in").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def package_report(packages: tuple[str, ...] = PACKAGES) -> pd.DataFrame:
    """Installed vs pinned version of each key package; `ok` is False on a mismatch."""
    pins = pinned_versions()
    rows = []
    for name in packages:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        pinned = pins.get(name.lower())
        ok = installed is not None and (pinned is None or installed.split("+")[0] == pinned)
        rows.append({"package": name, "installed": installed, "pinned": pinned, "ok": ok})
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
