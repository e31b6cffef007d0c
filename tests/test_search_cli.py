"""The search CLI's own errors (#17 point 7): a folder as the query, bad or unknown `--where`
keys, the no-person hint in the CLI's spelling; and `runs/latest` staying on the last good run.

Real data: the small generated catalogue indexed once by the pipeline into a private ChromaDB.
"""
from __future__ import annotations

import pytest
from PIL import Image

from conftest import warm_cache
from helpers import search as search_mod
from helpers.errors import SearchError
from helpers.settings import load_settings


@pytest.fixture(scope="module")
def built(small_catalog, seed_cache, tmp_path_factory):
    from helpers.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("cli")
    warm_cache(seed_cache, root / "cache")  # what `make run` left: the build is all cache hits
    settings = load_settings(catalog=small_catalog, cache_dir=root / "cache", chroma_path=root / "chroma")
    run_pipeline(settings, reference=False, progress=False)
    return settings


@pytest.fixture()
def env(built, monkeypatch):
    for key in ("catalog", "cache_dir", "chroma_path"):
        monkeypatch.setenv(f"WORKBOOK_{key.upper()}", str(getattr(built, key)))
    return built


def _photo(settings) -> str:
    return str(sorted((settings.catalog / "images").glob("*.jpg"))[0])


def test_a_folder_as_the_query_says_it_is_a_folder(env, capsys):
    assert search_mod.main([str(env.catalog)]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a photo" in err and "python -m helpers search" in err and ".jpg" in err
    assert "cannot embed text" not in err


def test_where_with_an_operator_key_is_a_clear_error(env, capsys):
    assert search_mod.main([_photo(env), "--where", "$or=1"]) == 2
    err = capsys.readouterr().err
    assert "bad_filter" in err and "colour" in err and "Traceback" not in err


def test_where_with_an_unknown_key_names_the_filterable_keys(env, capsys):
    assert search_mod.main([_photo(env), "--where", "color=red"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'colour'" in err and "filterable keys:" in err and "category" in err
    assert search_mod.main([_photo(env), "--where", "colour=red", "--k", "3"]) == 0


def test_no_person_hint_uses_each_interface_spelling(env, tmp_path, capsys):
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (300, 400), "white").save(blank)
    assert search_mod.main([str(blank)]) == 2
    err = capsys.readouterr().err
    assert "--mode full" in err and "mode='full'" not in err
    with pytest.raises(SearchError) as caught:
        search_mod.search(blank, settings=env)
    assert "mode='full'" in str(caught.value)


def test_runs_latest_keeps_pointing_at_the_last_successful_run(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from helpers.workbook import notebooks as runner

    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}}

    def nb(name: str, source: str):
        path = tmp_path / name
        cells = [new_code_cell("x = 1", metadata={"tags": ["parameters"]}), new_code_cell(source)]
        nbformat.write(new_notebook(cells=cells, metadata=meta), path)
        return path

    runs = tmp_path / "runs"
    good = runner.run_all([nb("01_ok.ipynb", "print('fine')")], {}, runs_root=runs)
    assert good[0].status == "ok"
    first = (runs / "latest").resolve()
    bad = runner.run_all([nb("02_bad.ipynb", "raise ValueError('broken')")], {}, runs_root=runs)
    assert bad[0].status == "failed"
    assert (runs / "latest").resolve() == first, "runs/latest moved to a failed run"
    assert len([p for p in runs.iterdir() if p.name != "latest"]) == 2
