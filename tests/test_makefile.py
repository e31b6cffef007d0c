"""The Makefile's cheap targets behave as the README says (the install and run targets are
exercised by CI itself: .ci/run calls `make test`)."""
import shutil
import subprocess
from pathlib import Path

from helpers.settings import PROJECT_ROOT


def copy_project_files(tmp_path: Path) -> Path:
    for name in ("Makefile", "requirements.lock"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    return tmp_path


def test_reset_removes_index_caches_and_exercises_but_keeps_the_catalogue(tmp_path):
    root = copy_project_files(tmp_path)
    for path in (".cache/chroma/db.sqlite3", ".cache/workbook/masks/ab/x.png", "workshop/01_data.ipynb",
                 "data/sample/manifest.csv", "runs/latest/summary.json"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")
    proc = subprocess.run(["make", "reset"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not (root / ".cache").exists() and not (root / "workshop").exists()
    assert (root / "data/sample/manifest.csv").exists() and (root / "runs/latest/summary.json").exists()
    assert "make run" in proc.stdout


def test_install_stamp_is_keyed_on_the_lock_hash():
    out = subprocess.run(["make", "-n", "-p", "install"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    import hashlib

    digest = hashlib.sha256((PROJECT_ROOT / "requirements.lock").read_bytes()).hexdigest()[:16]
    assert f"STAMP := .venv/.installed-{digest}" in out or f".venv/.installed-{digest}:" in out


def test_ci_runs_make_test():
    script = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "make test" in script


def test_make_test_hands_the_slow_files_out_first_and_every_one_named_exists(request):
    """`make test` keeps conftest's order (--no-loadscope-reorder), which puts SLOW_FILES_FIRST first;
    a renamed or deleted file in that list would silently stop counting, so each must exist, and the
    collected session must start with the first of them."""
    from conftest import SLOW_FILES_FIRST

    recipe = subprocess.run(["make", "-n", "test"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    assert "--dist loadfile --no-loadscope-reorder" in recipe
    assert [n for n in SLOW_FILES_FIRST if not (PROJECT_ROOT / "tests" / n).is_file()] == []
    names = [item.path.name for item in request.session.items]
    if SLOW_FILES_FIRST[0] in names:   # not when this file is run on its own
        assert names[0] == SLOW_FILES_FIRST[0]


def test_gitattributes_names_the_nbstripout_filter_and_install_configures_it():
    attributes = (PROJECT_ROOT / ".gitattributes").read_text()
    assert "*.ipynb filter=nbstripout" in attributes
    make = subprocess.run(["make", "-n", "-p", "install"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    assert "$(MAKE) --no-print-directory git-filter" in make and "nbstripout --install --attributes .gitattributes" in make


def test_the_git_filter_strips_outputs_that_an_app_autosaved(tmp_path):
    """A fresh clone: `make git-filter` configures the filter, and a notebook saved with outputs is
    staged without them, so `git status` stays clean after using the app."""
    import sys

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    root = copy_project_files(tmp_path)
    shutil.copy(PROJECT_ROOT / ".gitattributes", root / ".gitattributes")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    bin_dir = str(Path(sys.executable).parent)
    proc = subprocess.run(["make", "git-filter", f"BIN={bin_dir}"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run(["git", "config", "filter.nbstripout.clean"], cwd=root, capture_output=True,
                          text=True).stdout.strip()
    cell = new_code_cell("print(1)", execution_count=3, outputs=[new_output("stream", text="1\n")])
    nbformat.write(new_notebook(cells=[cell]), root / "07_search.ipynb")
    subprocess.run(["git", "add", "07_search.ipynb"], cwd=root, check=True)
    staged = subprocess.run(["git", "show", ":07_search.ipynb"], cwd=root, capture_output=True, text=True).stdout
    staged_cell = nbformat.reads(staged, as_version=4).cells[0]
    assert staged_cell.outputs == [] and staged_cell.execution_count is None
    assert staged_cell.id == cell.id  # cell ids are kept


def test_the_launcher_strips_like_nbstripout_on_stdin_and_in_place(tmp_path):
    """`python -m helpers.workbook.launch nbstripout` (the git filter, `make strip`, pre-commit) is
    nbstripout started without jsonschema's IRI grammar: the same bytes out, files stripped in
    place, and a usage line (rc != 0) without a module."""
    import sys

    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    nb = new_notebook(cells=[new_markdown_cell("# t"), new_code_cell("x = 1\nx", execution_count=7, outputs=[
        new_output("execute_result", data={"text/plain": "1"}, execution_count=7)])])
    nb.metadata["widgets"] = {"state": {"k": 1}}
    raw = nbformat.writes(nb).encode()
    stock = subprocess.run([sys.executable, "-m", "nbstripout", "--keep-id"], input=raw, capture_output=True, check=True)
    quick = subprocess.run([sys.executable, "-m", "helpers.workbook.launch", "nbstripout", "--keep-id"], input=raw,
                           capture_output=True, check=True)
    assert quick.stdout == stock.stdout and b'"outputs": []' in quick.stdout
    paths = [tmp_path / "a.ipynb", tmp_path / "b.ipynb"]
    for path in paths:
        path.write_bytes(raw)
    subprocess.run([sys.executable, "-m", "helpers.workbook.launch", "nbstripout", "--keep-id", *map(str, paths)], check=True)
    for path in paths:
        cell = nbformat.read(path, as_version=4).cells[1]
        assert cell.outputs == [] and cell.execution_count is None and cell.id == nb.cells[1].id
    bare = subprocess.run([sys.executable, "-m", "helpers.workbook.launch"], capture_output=True, text=True)
    assert bare.returncode != 0 and "usage: python -m helpers.workbook.launch MODULE" in bare.stderr


def test_make_lab_starts_jupyterlab_as_the_browser_test_does():
    """tests/test_browser.py drives the JupyterLab that `make lab` starts: the same launcher."""
    from test_browser import LAB

    recipe = subprocess.run(["make", "-n", "lab"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    assert "python -m helpers.workbook.launch jupyterlab --ServerApp.root_dir=" in recipe
    assert LAB[1:] == ["-m", "helpers.workbook.launch", "jupyterlab"]


def test_recipes_may_write_bytecode_even_where_the_environment_forbids_it(tmp_path):
    """The install compiles nothing; Python writes .pyc for what it imports. A PYTHONDONTWRITEBYTECODE
    inherited from a container would make every kernel compile pandas and chromadb again."""
    import os

    root = copy_project_files(tmp_path)
    probe = 'probe-env: ; @echo "[$$PYTHONDONTWRITEBYTECODE]" && python3 -c "import sys; print(sys.dont_write_bytecode)"'
    proc = subprocess.run(["make", "--no-print-directory", "--eval", probe, "probe-env"], cwd=root,
                          capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "False"]
