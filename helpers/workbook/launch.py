"""`python -m helpers.workbook.launch MODULE [ARGS...]`: `python -m MODULE ARGS...`, started fast.

Why: nbformat and jupyter_server import jsonschema, whose optional "iri" format check imports
rfc3987_syntax, which builds a grammar at import (2 s). Importing helpers first marks that module
absent (helpers/__init__), and nothing here validates IRIs. Used where the 2 s is paid often: the
nbstripout git filter (once per changed notebook on every `git status`, `git diff`, `git add`;
0.3 s instead of 2.2 s), `make strip`, pre-commit and `make lab` (JupyterLab imports in about 1 s
instead of 2.8 s). Same arguments, same behaviour as the module run directly.
"""
import runpy
import sys

import helpers  # noqa: F401  (sets sys.modules["rfc3987_syntax"] = None before jsonschema loads)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit("usage: python -m helpers.workbook.launch MODULE [ARGS...]  (e.g. nbstripout --keep-id)")
    del sys.argv[0]   # the module sees its own name first, then its arguments, as with `python -m`
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
