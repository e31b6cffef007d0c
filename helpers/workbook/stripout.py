"""nbstripout, started without jsonschema's optional IRI grammar: the git filter and `make strip`.

Why not `python -m nbstripout`: nbformat imports jsonschema, which builds the rfc3987_syntax
grammar at import (2 s); importing helpers first marks that module absent (helpers/__init__),
so one notebook is stripped in about 0.3 s instead of 2.2 s. The git filter runs once per changed
notebook on every `git status`, `git diff` and `git add`. Same arguments, same output as nbstripout.
"""
import runpy

import helpers  # noqa: F401  (sets sys.modules["rfc3987_syntax"] = None before nbformat loads)

if __name__ == "__main__":
    runpy.run_module("nbstripout", run_name="__main__", alter_sys=True)
