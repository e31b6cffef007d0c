"""Say what was left out (#17 point 5): `python -m helpers run` prints a table of reasons and
writes every left-out image (path, step, reason, message) to the run folder; broken links are
skipped files, not silent drops; a catalogue without two photos of any item stops clearly.

Real data: photos of the generated catalogue copied into the "one folder per item" layout.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from helpers import report
from helpers.catalog import load_catalog


def _folder(small_catalog: Path, dest: Path, items: int, per_item: int) -> Path:
    table = load_catalog(small_catalog).table
    for item_id in sorted(table["item_id"].astype(str).unique())[:items]:
        (dest / item_id).mkdir(parents=True)
        for n, src in enumerate(table.loc[table["item_id"].astype(str) == item_id, "image_path"].head(per_item)):
            shutil.copyfile(src, dest / item_id / f"photo_{n}.jpg")
    return dest


def _break_links(folder: Path) -> Path:
    first = sorted(p for p in folder.iterdir() if p.is_dir())[0]
    os.symlink(first / "gone.jpg", first / "dangling.jpg")          # points at nothing
    os.symlink("loop.jpg", first / "loop.jpg")                      # points at itself
    os.symlink("..", first / "parent")                              # a folder loop
    (first / "broken_download.jpg").write_bytes(b"")                # not an image
    return first


def test_broken_links_are_skipped_with_their_reason(small_catalog, tmp_path):
    folder = _folder(small_catalog, tmp_path / "mine", items=2, per_item=2)
    first = _break_links(folder)
    loaded = load_catalog(folder)
    reasons = dict(zip(loaded.skipped["path"], loaded.skipped["reason"]))
    assert reasons[str(first / "dangling.jpg")] == "dangling_link"
    assert reasons[str(first / "loop.jpg")] == "symlink_loop"
    assert reasons[str(first / "parent")] == "linked_folder"
    assert len(loaded.table) == 4


def test_run_prints_the_reasons_and_writes_the_list(small_catalog, tmp_path, workbook_env, capsys):
    folder = _folder(small_catalog, tmp_path / "mine", items=3, per_item=3)
    first = _break_links(folder)
    out = tmp_path / "run"
    assert report.main(["--catalog", str(folder), "--out", str(out), "--quiet", "--no-index"]) == 0
    printed = capsys.readouterr().out
    assert "left out" in printed
    for reason in ("dangling_link", "symlink_loop", "linked_folder"):
        assert reason in printed
    listed = pd.read_csv(out / "left_out.csv")
    assert list(listed.columns) == ["image_id", "path", "step", "reason", "message"]
    rows = listed.set_index("path")
    assert rows.loc[str(first / "dangling.jpg"), "step"] == "load"
    assert rows.loc[str(first / "loop.jpg"), "reason"] == "symlink_loop"
    assert len(listed) >= 4


def test_a_catalogue_without_two_photos_of_any_item_stops_with_a_clear_message(small_catalog, tmp_path,
                                                                               workbook_env, capsys):
    folder = _folder(small_catalog, tmp_path / "singles", items=4, per_item=1)
    assert report.main(["--catalog", str(folder), "--out", str(tmp_path / "run"), "--quiet", "--no-index"]) == 2
    err = capsys.readouterr().err
    assert "no item in the catalogue" in err and "has two images" in err
    assert "two or more photos of the same garment" in err
    assert "bootstrap" not in err
