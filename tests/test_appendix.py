"""The optional appendix notebooks run headless on the small catalogue (they are outside `make run`,
so this is where they are executed), show every figure and record their numbers."""
from notebook_checks import assert_seen

from helpers.workbook import notebooks as runner


def test_appendix_a1_parser_runs_and_shows_the_real_photo_figures(workbook_env, tmp_path):
    out = tmp_path / "A1_parser.ipynb"
    runner.run_notebook(runner.NOTEBOOK_DIR / "A1_parser.ipynb", out, {"backend": "local"})
    assert_seen(out)
    rec = runner.read_records(out)
    assert 0.8 <= rec["ccp_heldout_clothes_mean_iou"] <= 1.0  # from the committed held-out result file


def test_appendices_run_by_name_but_not_by_default():
    names = [p.stem for p in runner.list_notebooks()]
    assert "A1_parser" not in names
    assert [p.stem for p in runner._select(["A1"])] == ["A1_parser"]
