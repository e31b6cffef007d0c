"""Shared helpers for the tools/build_*_notebook.py scripts.

`write` saves a notebook with the standard kernel metadata, then re-applies its closing
sections (tools/closing_content.py) and the generated navigation, so a rebuilt notebook is
complete and passes tests/test_conventions.py and tests/test_workshop.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

md, code = new_markdown_cell, new_code_cell
METADATA = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}}


def write(stem: str, cells: list) -> Path:
    """Write notebooks/<stem>.ipynb, then add closing sections and navigation."""
    import closing_sections

    from helpers import workshop

    out = ROOT / "notebooks" / f"{stem}.ipynb"
    for i, cell in enumerate(cells):
        cell["id"] = f"{stem[:2]}-{i:02d}"  # stable ids: a rebuild changes only what changed
    nbformat.write(new_notebook(cells=cells, metadata=METADATA), out)
    if stem in closing_sections.CONTENT:
        closing_sections.apply(out)
    workshop.update_navigation()
    print(f"wrote {out}")
    return out
