"""Workshop edition: navigation is generated and current; exercise copies differ from their
notebooks only in `solution` cells; every notebook ends with what you learned, a questionnaire
and exercises."""
import re
import shutil

import nbformat
import pytest

from helpers.workbook import workshop
from helpers.workbook.notebooks import list_notebooks

NOTEBOOKS = list_notebooks()


def test_navigation_is_up_to_date():
    stale = workshop.update_navigation(check=True)
    assert not stale, f"run `python -m helpers workshop nav`: stale {[p.name for p in stale]}"


def test_navigation_check_fails_when_a_notebook_is_added(tmp_path):
    for p in NOTEBOOKS:
        shutil.copy(p, tmp_path / p.name)
    shutil.copy(NOTEBOOKS[-1], tmp_path / "99_extra.ipynb")
    stale = workshop.update_navigation(tmp_path, check=True)
    assert NOTEBOOKS[-1].name in [p.name for p in stale] and "99_extra.ipynb" in [p.name for p in stale]
    workshop.update_navigation(tmp_path)  # regenerate, then it is current
    assert workshop.update_navigation(tmp_path, check=True) == []
    last = nbformat.read(tmp_path / NOTEBOOKS[-1].name, as_version=4)
    assert "99_extra.ipynb" in last.cells[0].source and "99_extra.ipynb" in last.cells[-1].source


def test_first_and_last_cells_link_previous_contents_next():
    for i, path in enumerate(NOTEBOOKS):
        nb = nbformat.read(path, as_version=4)
        for cell in (nb.cells[0], nb.cells[-1]):
            assert "navigation" in cell.metadata.tags and "[Contents](README.md#contents)" in cell.source
            if i + 1 < len(NOTEBOOKS):
                assert f"]({NOTEBOOKS[i + 1].name})" in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_ends_with_what_you_learned_questionnaire_and_exercises(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## What you learned" in text and "## Questionnaire" in text and "## Exercises" in text
    learned = text.split("## What you learned", 1)[1].split("##", 1)[0]
    assert 3 <= sum(l.lstrip().startswith("- ") for l in learned.splitlines()) <= 5
    questions = text.split("## Questionnaire", 1)[1].split("##", 1)[0]
    assert 4 <= sum(bool(re.match(r"\d+\. \S", l.strip())) for l in questions.splitlines()) <= 8
    assert any("solution" in c.metadata.get("tags", []) for c in nb.cells)


def test_exercise_copies_differ_only_in_solution_cells(tmp_path):
    written = workshop.build(tmp_path)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for source, copy in zip(NOTEBOOKS, written):
        full, ex = nbformat.read(source, as_version=4), nbformat.read(copy, as_version=4)
        assert len(full.cells) == len(ex.cells)
        changed = 0
        for a, b in zip(full.cells, ex.cells):
            if "solution" in a.metadata.get("tags", []):
                changed += 1
                assert b.metadata.tags == ["exercise"] and b.source.startswith("# Exercise: ")
                assert a.source not in b.source
            else:
                assert a == b
        assert changed >= 1
        assert ex.metadata == full.metadata


def test_solution_hint_comes_from_the_first_comment():
    cell = nbformat.v4.new_code_cell("# Solution: mask with prompt 'skirt'\nx = 1")
    assert workshop.solution_hint(cell) == "mask with prompt 'skirt'"


def test_agenda_is_built_from_a_run_summary(tmp_path):
    import json

    summary = {"run_dir": str(tmp_path / "20260101T000000Z"), "notebooks": [
        {"name": "00_setup.ipynb", "status": "ok", "seconds": 4.2, "output": "x"},
        {"name": "06_metrics.ipynb", "status": "ok", "seconds": 61.0, "output": "y"}]}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    summary["notebooks"].append({"name": "08_separates.ipynb", "status": "ok", "seconds": 9.0, "output": "z"})
    path.write_text(json.dumps(summary))
    table = workshop.agenda(path)
    setup, metrics = workshop.TEACHING_MINUTES["00"], workshop.TEACHING_MINUTES["06"]
    assert f"| `00_setup.ipynb` | 4 | {setup} | ok |" in table
    assert f"| `06_metrics.ipynb` | 61 | {metrics} | ok |" in table
    assert "| `08_separates.ipynb` | 9 | optional | ok |" in table   # optional: not in the teaching total
    assert f"| **total** | **74** | **{setup + metrics}** | |" in table and "runs/20260101T000000Z/summary.json" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{workshop.AGENDA_START}\nold\n{workshop.AGENDA_END}\nrest\n")
    workshop.write_agenda(readme, path)
    text = readme.read_text()
    assert "old" not in text and "| **total** | **74**" in text and text.endswith("rest\n")


def test_the_core_path_fits_two_hours_with_breaks():
    """Every core notebook has planned minutes, and together they fit the budget (two hours minus breaks)."""
    core = {p.name[:2] for p in NOTEBOOKS} & set(workshop.TEACHING_MINUTES)
    assert {"00", "01", "02", "03", "04", "05", "06", "07"} <= core
    assert sum(workshop.TEACHING_MINUTES.values()) <= workshop.CORE_BUDGET_MINUTES <= 100
