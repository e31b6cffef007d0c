"""What a learner must *see* in an executed notebook, checked the same way for every notebook:
each cell that draws a figure shows it, and no table cuts a cell short ("…" instead of the reason)."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

#: `figures.*` functions that draw nothing themselves (a mask overlay array, a one-line diagnosis,
#: a table).
NOT_FIGURES = {"overlay", "diagnose", "full_table", "tint_person"}
_CALL = re.compile(r"\bfigures\.(\w+)\(")
_CUT_HTML = re.compile(r"<td[^>]*>[^<]*(\.\.\.|…)\s*</td>")
_CUT_TEXT = re.compile(r"\S(\.\.\.|…)(\s{2,}|$)", re.M)


def figure_cells_without_image(nb: nbformat.NotebookNode) -> list[str]:
    """Code cells that call a figure function but show no image. Cells that only draw under a
    condition the headless run does not meet (`if ccp_dir`) are left out."""
    missing = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "if ccp_dir" in cell.source:
            continue
        if not set(_CALL.findall(cell.source)) - NOT_FIGURES:
            continue
        if not any("image/png" in (o.get("data") or {}) for o in cell.get("outputs", [])):
            missing.append(cell.source[:80])
    return missing


def cut_table_cells(nb: nbformat.NotebookNode) -> list[str]:
    """Table outputs (HTML or pandas' plain text) holding a cell cut short with '...'."""
    cut = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            html = data.get("text/html", "")
            if isinstance(html, list):
                html = "".join(html)
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            if "<table" in html and _CUT_HTML.search(html):
                cut.append(_CUT_HTML.search(html).group(0)[:120])
            elif "<table" in html and _CUT_TEXT.search(str(data.get("text/plain", ""))):
                cut.append(_CUT_TEXT.search(str(data.get("text/plain", ""))).group(0))
            if text and _looks_like_table(text) and _CUT_TEXT.search(text):
                cut.append(_CUT_TEXT.search(text).group(0))
    return cut


def _looks_like_table(text: str) -> bool:
    """A printed DataFrame: at least two lines with runs of aligning spaces."""
    return sum(bool(re.search(r"\S {2,}\S", line)) for line in text.splitlines()) >= 2


def assert_seen(executed: Path | str) -> None:
    """Every figure shown and every table cell whole, in one executed notebook."""
    nb = nbformat.read(executed, as_version=4)
    missing = figure_cells_without_image(nb)
    assert not missing, f"{Path(executed).name}: figure cells that show no image: {missing}"
    cut = cut_table_cells(nb)
    assert not cut, f"{Path(executed).name}: table cells cut short: {cut}"
