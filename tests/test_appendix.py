"""The optional appendix notebooks run headless on the small catalogue (they are outside `make run`,
so this is where they are executed), show every figure and record their numbers."""
import json

import pandas as pd
import pytest
from notebook_checks import assert_seen

from helpers import maskeval
from helpers.settings import PROJECT_ROOT
from helpers.workbook import notebooks as runner


def test_appendix_a1_parser_runs_and_shows_the_real_photo_figures(workbook_env, tmp_path):
    out = tmp_path / "A1_parser.ipynb"
    runner.run_notebook(runner.NOTEBOOK_DIR / "A1_parser.ipynb", out, {"backend": "local"})
    assert_seen(out)
    rec = runner.read_records(out)
    assert 0.8 <= rec["ccp_heldout_clothes_mean_iou"] <= 1.0  # from the committed held-out result file
    cv = rec["ccp_cv_mean_iou"]   # every prompt, from the committed cross-validated files
    assert set(cv) == {"clothes", "dress", "top", "skirt", "trousers"}
    for prompt, value in cv.items():
        doc = json.loads((PROJECT_ROOT / "data" / "results" / f"ccp-cv-{prompt}-parser.json").read_text())
        assert value == doc["heldout_cv"]["iou_mean"]
    assert max(v for p, v in cv.items() if p != "clothes") < cv["clothes"]   # what the notebook's text says


def test_prompt_table_reads_every_prompt_in_order_with_intervals(tmp_path):
    def write(prompt, tagged=None):
        doc = {"prompt": prompt, "heldout_cv": {"photos": 10, "iou_mean": 0.5, "ci95": [0.41, 0.6]}}
        if tagged:
            doc["tagged_cv"] = tagged
        (tmp_path / f"ccp-cv-{prompt}-parser.json").write_text(json.dumps(doc))

    write("skirt", {"false_cutout_rate": 0.5442, "false_cutout_ci95": [0.5091, 0.5801], "not_found_rate": 0.06,
                    "presence_auc_5fold": 0.83})
    write("clothes")
    (tmp_path / "ccp-heldout-dress-parser.json").write_text("{}")   # another kind of result file: not read
    table = maskeval.prompt_table(tmp_path)
    assert table["prompt"].tolist() == ["clothes", "skirt"]
    skirt = table.iloc[1]
    assert skirt["IoU 95 % CI"] == "0.41–0.60" and skirt["its 95 % CI (%)"] == "51–58"
    assert skirt["wrong cut-out when absent (%)"] == pytest.approx(54.4) and skirt["not found when present (%)"] == 6.0
    assert pd.isna(table.iloc[0]["wrong cut-out when absent (%)"])   # clothes: no presence decision
    assert maskeval.prompt_table(tmp_path / "nothing-here").empty


def test_appendices_run_by_name_but_not_by_default():
    names = [p.stem for p in runner.list_notebooks()]
    assert "A1_parser" not in names
    assert [p.stem for p in runner._select(["A1"])] == ["A1_parser"]
