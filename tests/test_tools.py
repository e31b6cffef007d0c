"""Developer tools under tools/ that the suite can reach without ../shared: the candidate
networks' table and the command's refusal of missing inputs (tools/parser_candidates.py)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import parser_candidates  # noqa: E402  (tools/ is not a package)


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
