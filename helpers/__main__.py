"""`python -m helpers <command>`: one entry point for everything the workbook does headless."""
from __future__ import annotations

import importlib
import sys

from helpers.errors import CatalogError, DatasetError, IndexProblem, SearchError, SettingsError

#: errors that mean "the input is wrong" (settings, paths, catalogue, dataset, index), whichever command meets them
USER_ERRORS = (SettingsError, CatalogError, DatasetError, IndexProblem, SearchError, FileNotFoundError,
               NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError)

COMMANDS = {
    "sample": ("helpers.sample", "generate the photoshoot catalogue with ground truth"),
    "run": ("helpers.report", "run the whole pipeline and write metrics.json"),
    "masks": ("helpers.maskeval", "masks eval: a masker against ground truth (CCP photos or a catalogue); masks train"),
    "models": ("helpers.modelbuild", "models build: export both networks to the committed ONNX files (make models); models check"),
    "search": ("helpers.search", "search the index with a query photo"),
    "bench": ("helpers.workbook.bench", "print every performance figure and write runs/bench.json"),
    "notebooks": ("helpers.workbook.notebooks", "list or execute the notebooks headless"),
    "workshop": ("helpers.workbook.workshop", "build exercise copies and navigation for workshops"),
}


def usage() -> str:
    lines = ["usage: python -m helpers <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except USER_ERRORS as exc:  # bad input: one line that says what to fix, never a traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2


def one_line(exc: BaseException) -> str:
    """An error as one line; a missing or wrong path says so and what to check."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return (f"{exc.filename}: {exc.strerror or exc}. Check the path (it must exist and be readable, "
                "and every folder above it must be a folder).")
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
