"""Developer tools under tools/ that the suite can reach without ../shared: the candidate
networks' table and the command's refusal of missing inputs (tools/parser_candidates.py), and the
paired comparison that leaves out photos whose truth a regrouping changed (tools/garments_compare.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import garments_compare  # noqa: E402  (tools/ is not a package)
import parser_candidates  # noqa: E402


def row(base: float) -> dict[str, float]:
    return {p: base for p in parser_candidates.PROMPTS} | {"catalogue": base + 0.2}


def test_the_table_has_a_row_per_network_and_the_candidates_spread():
    text = parser_candidates.table({"committed": row(0.7), "s0": row(0.6), "s1": row(0.8)})
    lines = text.splitlines()
    assert lines[0] == "| network | clothes | dress | top | skirt | trousers | catalogue |"
    assert lines[2].startswith("| committed | 0.700 |") and lines[3].startswith("| s0 | 0.600 |")
    assert lines[-1].startswith("| candidates' mean [range] (2) | 0.700 [0.600, 0.800] |")
    assert lines[-1].endswith("| 0.900 [0.800, 1.000] |")   # the catalogue column
    one = parser_candidates.table({"committed": row(0.7), "s0": row(0.6)})
    assert "mean" not in one   # one candidate: no spread to report


def test_missing_inputs_are_named_before_any_work(tmp_path, capsys):
    assert parser_candidates.main([str(tmp_path / "ccp"), str(tmp_path / "s0.npz"),
                                   "--catalog", str(tmp_path), "--work", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "ccp" in err and "s0.npz" in err and not (tmp_path / "w").exists()


def test_the_paired_comparison_leaves_out_photos_whose_truth_changed(tmp_path, capsys):
    for run, ious in (("old", (0.5, 0.6, 0.1)), ("new", (0.7, 0.8, 0.9))):
        (tmp_path / run).mkdir()
        for prompt in garments_compare.PROMPTS:
            per = [{"image": f"ccp-000{n}", "iou": v} for n, v in zip((1, 3, 5), ious)]
            doc = {"heldout_cv": {"photos": 3, "iou_mean": sum(ious) / 3, "ci95": [0, 1], "not_found": 0}, "per_image": per}
            (tmp_path / run / f"ccp-cv-{prompt}-parser.json").write_text(json.dumps(doc))
    garments_compare.heldout(tmp_path / "old", tmp_path / "new", lambda image: image == "ccp-0005")
    out = capsys.readouterr().out
    assert "paired on 2 photos, same truth: diff +0.2000" in out   # 0.0005's +0.8 is not in the pair
    assert "'ccp-0005': (0.1, 0.9)" in out
