"""Adds (or refreshes) each notebook's closing sections for the workshop edition:
"What you learned", a questionnaire and exercises whose solutions are cells tagged `solution`.

The content lives here, next to the notebook order, so that it can be reviewed in one place;
running the script is idempotent (cells tagged `closing` or `solution` are replaced).
Usage: .venv/bin/python tools/closing_sections.py && .venv/bin/python -m helpers workshop nav
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from closing_content import CONTENT  # noqa: E402  (tools/closing_content.py)

TAGS = {"closing", "solution"}


def closing_cells(stem: str) -> list:
    spec = CONTENT[stem]
    cells = []
    for md, code in spec.get("before", []):  # e.g. the clean-up step of the last notebook
        cells += [new_markdown_cell(md, metadata={"tags": ["closing"]}),
                  new_code_cell(code, metadata={"tags": ["closing"]})]
    cells += [new_markdown_cell("## What you learned\n\n" + "\n".join(f"- {b}" for b in spec["learned"]),
                               metadata={"tags": ["closing"]}),
             new_markdown_cell("## Questionnaire\n\nThe answers are all in this notebook.\n\n"
                               + "\n".join(f"{i}. {q}" for i, q in enumerate(spec["questions"], 1)),
                               metadata={"tags": ["closing"]}),
             new_markdown_cell("## Exercises\n\n" + spec["exercises_intro"], metadata={"tags": ["closing"]})]
    for i, (task, solution) in enumerate(spec["exercises"], 1):
        cells.append(new_markdown_cell(f"**Exercise {i}.** {task}", metadata={"tags": ["closing"]}))
        cells.append(new_code_cell(solution, metadata={"tags": ["solution"]}))
    cells.append(new_markdown_cell(spec["after"], metadata={"tags": ["closing"]}))
    for j, cell in enumerate(cells):
        cell["id"] = f"closing-{j}"
    return cells


def apply(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    body = [c for c in nb.cells if not TAGS & set(c.metadata.get("tags", []))
            and "navigation" not in c.metadata.get("tags", [])]
    nav = [c for c in nb.cells if "navigation" in c.metadata.get("tags", [])]
    # keep the notebook's own "Next:" paragraph as the very last content cell
    tail = [body.pop()] if body and body[-1].cell_type == "markdown" and "**Next:**" in body[-1].source else []
    nb.cells = nav[:1] + body + closing_cells(path.stem) + tail + nav[1:]
    nbformat.write(nb, path)


if __name__ == "__main__":
    only = set(sys.argv[1:])  # optional: notebook stems to touch
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if only and path.stem not in only:
            continue
        if path.stem in CONTENT:
            apply(path)
            print("closing sections:", path.name)
        else:
            print("no closing content yet for", path.name)
