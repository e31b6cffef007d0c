"""Workshop edition: exercise copies of the notebooks and generated navigation lines.

Why generated: navigation typed by hand goes stale the first time a notebook is renamed, and
exercise copies edited by hand drift from the notebooks they came from. Here the notebook order
is the single source: `nav` rewrites the "previous / contents / next" lines, `build` writes
`workshop/` copies in which every cell tagged `solution` becomes a stub that says what to write.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from helpers.workbook.notebooks import NOTEBOOK_DIR, list_notebooks
from helpers.settings import PROJECT_ROOT

NAV_TAG = "navigation"
SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
WORKSHOP_DIR = PROJECT_ROOT / "workshop"
CONTENTS = "README.md#contents"


def title_of(nb: nbformat.NotebookNode, path: Path) -> str:
    """The notebook's title from its first heading, e.g. '02 · Masking'."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and NAV_TAG not in cell.metadata.get("tags", []):
            match = re.search(r"^#\s+(.+?)(?::.*)?$", cell.source, re.M)
            if match:
                return match.group(1).strip()
    return path.stem


def nav_line(paths: list[Path], index: int, titles: list[str]) -> str:
    prev_link = f"[← {titles[index - 1]}]({paths[index - 1].name})" if index > 0 else "← (start)"
    next_link = f"[{titles[index + 1]} →]({paths[index + 1].name})" if index + 1 < len(paths) else "(end) →"
    return f"{prev_link} | [Contents]({CONTENTS}) | {next_link}"


def _with_nav(nb: nbformat.NotebookNode, line: str) -> nbformat.NotebookNode:
    body = [c for c in nb.cells if NAV_TAG not in c.metadata.get("tags", [])]
    top = new_markdown_cell(line, metadata={"tags": [NAV_TAG]})
    bottom = new_markdown_cell(line, metadata={"tags": [NAV_TAG]})
    top["id"], bottom["id"] = "nav-top", "nav-bottom"  # stable ids keep diffs quiet
    out = copy.deepcopy(nb)
    out.cells = [top, *body, bottom]
    return out


def _strip_ids(nb: nbformat.NotebookNode) -> list[tuple[str, str, list]]:
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]


def update_navigation(directory: Path = NOTEBOOK_DIR, check: bool = False) -> list[Path]:
    """Rewrite the navigation cells; with `check`, only report notebooks that are out of date."""
    paths = list_notebooks(directory)
    books = [nbformat.read(p, as_version=4) for p in paths]
    titles = [title_of(nb, p) for nb, p in zip(books, paths)]
    stale = []
    for i, (path, nb) in enumerate(zip(paths, books)):
        wanted = _with_nav(nb, nav_line(paths, i, titles))
        if _strip_ids(wanted) != _strip_ids(nb):
            stale.append(path)
            if not check:
                nbformat.write(wanted, path)
    return stale


def solution_hint(cell: nbformat.NotebookNode) -> str:
    """What the attendee should write: the solution's first comment line, minus 'Solution:'."""
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    hint = re.sub(r"^#\s*(Solution:?)?\s*", "", first).strip()
    return hint or "write the code for the exercise above"


def exercise_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with every `solution` cell replaced by a stub; nothing else changes."""
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            stub = new_code_cell(f"# Exercise: {solution_hint(cell)}\n# Your code here\n...",
                                 metadata={"tags": [EXERCISE_TAG]})
            stub["id"] = cell.get("id", stub["id"])
            out.cells[i] = stub
    return out


def build(out_dir: Path = WORKSHOP_DIR, directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """Write exercise copies of every notebook into `out_dir` (git-ignored)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in list_notebooks(directory):
        target = out_dir / path.name
        nbformat.write(exercise_copy(nbformat.read(path, as_version=4)), target)
        written.append(target)
    return written


AGENDA_START, AGENDA_END = "<!-- agenda:start -->", "<!-- agenda:end -->"
# Minutes of teaching per notebook on the two-hour core path (explanation, discussion, a few
# questionnaire answers): the facilitator's plan; the run times are measured. The core path must stay
# within CORE_BUDGET_MINUTES so that two hours hold it plus two 10-minute breaks. Notebooks not listed
# here (08_separates, the A* appendices) are optional: the agenda shows them, but not in the total.
TEACHING_MINUTES = {"00": 5, "01": 10, "02": 15, "03": 5, "04": 15, "05": 10, "06": 25, "07": 10}
CORE_BUDGET_MINUTES = 100


def agenda(summary_path: Path) -> str:
    """A markdown agenda from a `make run` summary: measured run time + planned teaching time."""
    import json

    summary = json.loads(Path(summary_path).read_text())
    rows = ["| notebook | measured run time (s) | teaching (min) | status |", "|---|---|---|---|"]
    total_s, total_min = 0.0, 0
    for nb in summary["notebooks"]:
        minutes = TEACHING_MINUTES.get(nb["name"][:2])
        total_s += nb["seconds"]
        total_min += minutes or 0
        rows.append(f"| `{nb['name']}` | {nb['seconds']:.0f} | {minutes if minutes else 'optional'} | {nb['status']} |")
    rows.append(f"| **total** | **{total_s:.0f}** | **{total_min}** | |")
    run = Path(summary["run_dir"]).name
    return "\n".join(rows) + f"\n\n_Run times from `runs/{run}/summary.json` (2-core machine, offline backend)._"


def write_agenda(readme: Path, summary_path: Path) -> None:
    """Replace the agenda block in the facilitator's guide with one built from `summary_path`."""
    text = readme.read_text()
    start, end = text.index(AGENDA_START) + len(AGENDA_START), text.index(AGENDA_END)
    readme.write_text(text[:start] + "\n" + agenda(summary_path) + "\n" + text[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers workshop")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write exercise copies into workshop/")
    b.add_argument("--out", type=Path, default=WORKSHOP_DIR)
    n = sub.add_parser("nav", help="regenerate the previous/contents/next lines")
    n.add_argument("--check", action="store_true", help="exit 1 if any notebook is out of date")
    a = sub.add_parser("agenda", help="rewrite the facilitator's agenda from runs/latest/summary.json")
    a.add_argument("--summary", type=Path, default=PROJECT_ROOT / "runs" / "latest" / "summary.json")
    args = parser.parse_args(argv)
    if args.cmd == "agenda":
        write_agenda(NOTEBOOK_DIR / "README.md", args.summary)
        print(agenda(args.summary))
        return 0
    if args.cmd == "build":
        written = build(args.out)
        print(f"wrote {len(written)} exercise notebooks to {args.out}")
        return 0
    stale = update_navigation(check=args.check)
    if args.check and stale:
        print("navigation out of date in: " + ", ".join(p.name for p in stale)
              + "; run `python -m helpers workshop nav`", file=sys.stderr)
        return 1
    print(f"navigation {'checked' if args.check else 'updated'}: {len(stale)} notebook(s) "
          f"{'stale' if args.check else 'rewritten'}")
    return 0
