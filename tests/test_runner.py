"""The notebook runner: it refuses what papermill only warns about, names failing cells,
writes summary.json, and fails on credentials in outputs. Real kernels, scratch notebooks."""
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers.workbook import notebooks as runner

META = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}}


def scratch(tmp_path, name, *sources, params="x = 1"):
    cells = [new_markdown_cell("# scratch")]
    if params is not None:
        cells.append(new_code_cell(params, metadata={"tags": ["parameters"]}))
    cells += [new_code_cell(s) for s in sources]
    path = tmp_path / name
    nbformat.write(new_notebook(cells=cells, metadata=META), path)
    return path


def test_refuses_a_notebook_without_a_parameters_cell(tmp_path):
    nb = scratch(tmp_path, "01_a.ipynb", "print(1)", params=None)
    with pytest.raises(runner.NotebookError, match="exactly one cell tagged 'parameters', found 0"):
        runner.run_notebook(nb, tmp_path / "out.ipynb")
    assert not (tmp_path / "out.ipynb").exists()


def test_refuses_two_parameters_cells(tmp_path):
    nb = scratch(tmp_path, "01_a.ipynb", "print(1)")
    book = nbformat.read(nb, as_version=4)
    book.cells.append(new_code_cell("y = 2", metadata={"tags": ["parameters"]}))
    nbformat.write(book, nb)
    with pytest.raises(runner.NotebookError, match="found 2"):
        runner.run_notebook(nb, tmp_path / "out.ipynb")


def test_refuses_an_unknown_parameter_and_names_the_known_ones(tmp_path):
    nb = scratch(tmp_path, "01_a.ipynb", "print(x)", params="x = 1\nlimit: int = 3")
    with pytest.raises(runner.NotebookError, match=r"unknown parameter\(s\) limt; .*defines: limit, x"):
        runner.run_notebook(nb, tmp_path / "out.ipynb", {"limt": 2})


def test_cli_refuses_unknown_parameter_with_exit_code_2(capsys):
    assert runner.main(["run", "00_setup", "-p", "no_such_key", "1"]) == 2
    assert "no_such_key" in capsys.readouterr().err


def test_runs_with_parameters_and_records_values(tmp_path):
    nb = scratch(tmp_path, "01_a.ipynb",
                 "from helpers.workbook.notebooks import record\nrecord('double', x * 2)")
    out = tmp_path / "run" / "01_a.ipynb"
    runner.run_notebook(nb, out, {"x": 21})
    assert runner.read_records(out) == {"double": 42}


def test_run_all_stops_at_failure_names_the_cell_and_writes_summary(tmp_path):
    ok = scratch(tmp_path, "01_ok.ipynb", "print('fine')")
    bad = scratch(tmp_path, "02_bad.ipynb", "a = 1", "raise ValueError('broken on purpose')")
    after = scratch(tmp_path, "03_after.ipynb", "print('never')")
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    results = runner.run_all([ok, bad, after], {}, run_dir=run_dir)
    assert [r.status for r in results] == ["ok", "failed", "not run"]
    assert "02_bad.ipynb failed in cell 3: ValueError: broken on purpose" in results[1].error
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [n["name"] for n in summary["notebooks"]] == ["01_ok.ipynb", "02_bad.ipynb", "03_after.ipynb"]
    assert summary["notebooks"][0]["seconds"] > 0 and (run_dir / "01_ok.ipynb").exists()


def test_planted_aws_key_in_output_fails_the_run_and_is_redacted(tmp_path):
    fake_id = "AKIA" + "IOSFODNN7EXAMPLE"
    nb = scratch(tmp_path, "01_leak.ipynb", f"print('{fake_id[:4]}' + '{fake_id[4:]}')")
    out = tmp_path / "out.ipynb"
    with pytest.raises(runner.SecretLeak, match="credential-like"):
        runner.run_notebook(nb, out)
    assert fake_id not in out.read_text() and "[REDACTED]" in out.read_text()


def test_secret_from_the_environment_is_caught_even_without_a_known_pattern(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-not-a-real-secret")
    nb = scratch(tmp_path, "01_env.ipynb", "import os\nprint(os.environ['AWS_SECRET_ACCESS_KEY'])")
    with pytest.raises(runner.SecretLeak, match=r"value of \$AWS_SECRET_ACCESS_KEY"):
        runner.run_notebook(nb, tmp_path / "out.ipynb")


def test_new_run_dir_points_latest_at_it(tmp_path):
    first = runner.new_run_dir(tmp_path)
    second = runner.new_run_dir(tmp_path)
    assert first != second and (tmp_path / "latest").resolve() == second.resolve()


TQDM_RESIDUE = ("%|", "it/s]", "application/vnd.jupyter.widget-view+json")


def tqdm_residue(executed) -> list[str]:
    """Progress-bar leftovers in an executed notebook (text bars or saved widgets)."""
    text = executed.read_text()
    return [r for r in TQDM_RESIDUE if r in text]


def test_progress_bars_are_quiet_in_headless_runs(tmp_path):
    nb = scratch(tmp_path, "01_bars.ipynb",
                 "from helpers.progress import tqdm\nfor _ in tqdm(range(240), desc='masks'):\n    pass\nprint('done')")
    out = tmp_path / "out.ipynb"
    runner.run_notebook(nb, out)
    assert "done" in out.read_text() and not tqdm_residue(out)


def test_progress_bars_stay_live_outside_headless_runs(monkeypatch):
    from helpers import progress

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert progress.enabled() and not progress.tqdm(range(2)).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress.tqdm(range(2)).disable
