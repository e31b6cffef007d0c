"""The notebook standard, enforced for every notebook now and later (like pinecone's checker):
title + what it teaches + prerequisites first, one `parameters` cell, kernel metadata, outputs
cleared in git, short code cells with no logic that `helpers` should hold. The optional appendix
notebooks (A1_parser, ...) follow the same standard.

Outputs are judged in the form git commits (the nbstripout clean filter's output), so a learner whose
JupyterLab autosaved the search app's outputs can still run the tests; and every committed notebook is
byte for byte what the filter makes, so `git status` stays clean after `make run` on a fresh clone."""
import ast
import functools
import re
import subprocess
import sys

import nbformat
import pytest

from helpers.workbook.notebooks import list_appendices, list_notebooks, parameter_names

NOTEBOOKS = list_notebooks()
ALL = NOTEBOOKS + list_appendices()
MAX_CODE_LINES = 12


def content_cells(nb):
    """Cells other than the generated navigation lines."""
    return [c for c in nb.cells if "navigation" not in c.metadata.get("tags", [])]


def git_form(path) -> str:
    """The notebook as git commits it: the clean filter `make install` configures
    (`python -m helpers.workbook.launch nbstripout --keep-id`, see the Makefile's git-filter target)
    applied to the file."""
    return _filtered(path.read_bytes())


@functools.lru_cache(maxsize=None)
def _filtered(raw: bytes) -> str:
    done = subprocess.run([sys.executable, "-m", "helpers.workbook.launch", "nbstripout", "--keep-id"], input=raw,
                          capture_output=True, check=True)
    return done.stdout.decode()


@pytest.fixture(scope="module", params=ALL, ids=[p.stem for p in ALL])
def notebook(request):
    return request.param, nbformat.reads(git_form(request.param), as_version=4)


def test_there_are_numbered_notebooks_starting_with_setup():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_setup.ipynb"
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == sorted(set(numbers))


def test_appendices_are_optional_and_listed_as_such_in_the_guide():
    """Appendix notebooks stay out of `make run` (list_notebooks) and the guide names each one as optional."""
    guide = (NOTEBOOKS[0].parent / "README.md").read_text()
    for path in list_appendices():
        assert path not in NOTEBOOKS
        line = next((l for l in guide.splitlines() if f"({path.name})" in l), "")
        assert "optional" in line.lower(), f"the guide must list {path.name} as optional"


def test_opens_with_title_what_it_teaches_and_prerequisites(notebook):
    path, nb = notebook
    first = content_cells(nb)[0]
    assert first.cell_type == "markdown"
    assert re.match(rf"# {path.name[:2]} · \S", first.source), first.source[:60]
    assert "What you will learn" in first.source and "Prerequisites" in first.source


def test_has_exactly_one_parameters_cell_of_simple_assignments(notebook):
    _, nb = notebook
    names = parameter_names(nb)  # raises unless exactly one
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    tree = ast.parse(cell.source)
    assert names and all(isinstance(n, (ast.Assign, ast.AnnAssign)) for n in tree.body)


def test_kernel_metadata(notebook):
    _, nb = notebook
    assert nb.metadata.kernelspec.name == "python3" and nb.metadata.language_info.name == "python"


def test_outputs_and_execution_counts_are_cleared(notebook):
    _, nb = notebook
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"cells with outputs: {dirty}; run `make strip` or clear outputs before committing"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_a_notebook_without_outputs_is_exactly_what_the_filter_commits(path):
    """A notebook with no outputs (as committed, and as `make run` leaves it) is byte for byte the
    filter's form: otherwise git sees the filter's reordered keys as a change after a fresh clone."""
    raw = nbformat.reads(path.read_text(), as_version=4)
    if any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in raw.cells):
        pytest.skip(f"{path.name} holds outputs (the app autosaves them); git commits them stripped")
    assert path.read_text() == git_form(path), (
        f"{path.name} differs from what git commits: run `make strip` (nbstripout --keep-id) on it")


def test_the_filter_form_check_sees_reordered_keys(tmp_path):
    """The byte check above is not vacuous: the same notebook with its cells' keys in another order
    (what an editor may write) differs from the filter's form."""
    import json
    nb = json.loads(NOTEBOOKS[0].read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell.pop("execution_count", None), cell.pop("outputs", None)
            cell.update({"execution_count": None, "outputs": []})  # now after "source", as seen in 00/04/06
    moved = tmp_path / "moved.ipynb"
    moved.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    assert moved.read_text() != git_form(moved)


def test_code_cells_are_short_and_hold_no_logic(notebook):
    _, nb = notebook
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        lines = [l for l in cell.source.splitlines() if l.strip() and not l.strip().startswith("#")]
        assert len(lines) <= MAX_CODE_LINES, f"cell {i} has {len(lines)} lines: move logic into helpers"
        tree = ast.parse(cell.source)
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.While))]
        assert not defs, f"cell {i} defines functions/classes/loops: they belong in helpers"
        stars = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)]
        assert not stars and "%store" not in cell.source, f"cell {i}: no star imports, no %store"


def test_every_step_is_explained_before_and_interpreted_after(notebook):
    _, nb = notebook
    cells = content_cells(nb)
    code_runs = 0
    for prev, cell in zip(cells, cells[1:]):
        if cell.cell_type == "code" and prev.cell_type == "code":
            code_runs += 1
    assert code_runs <= 2, "code cells should be separated by markdown that explains/interprets"
    assert cells[-1].cell_type == "markdown", "end with prose: what the result means, what comes next"


def test_recorded_floats_are_shown_rounded_and_kept_exact():
    """`record()` prints what a learner can read (no float noise) and records the exact value."""
    from helpers.workbook.notebooks import shown
    assert shown(0.10833333333333334) == 0.1083 and repr(shown(0.10833333333333334)) == "0.1083"
    assert shown([0.8, 0.8916666666666667]) == [0.8, 0.8917]
    assert shown(4.015234e-41) == 4.015e-41 and shown({"a": 2 / 3}) == {"a": 0.6667}
    assert shown(48) == 48 and shown("dress") == "dress" and shown(None) is None
