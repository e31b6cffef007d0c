"""Index provenance (#17 point 3): each catalogue (and each `--limit` run) writes its own
collections, records what built them, never prunes another's records, and takes a write lock;
search and the app refuse an index that does not match the catalogue they are asked about.

Real data: generated catalogues, `python -m helpers run` through its `main`, ChromaDB on disk.
"""
from __future__ import annotations

import fcntl
import shutil
import warnings
from pathlib import Path

import pytest

from helpers import report, sample
from helpers.errors import IndexBusy, SearchError
from helpers.index import CatalogIndex, get_client
from helpers.settings import load_settings


def _run(catalog: Path, out: Path, *extra: str) -> int:
    return report.main(["--catalog", str(catalog), "--out", str(out), "--quiet", *extra])


def _garment_ids(settings) -> set[str]:
    return set(CatalogIndex.open(settings).collection("garment").get(include=[])["ids"])


@pytest.fixture(scope="module")
def other_catalog(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("other") / "sample"
    sample.generate_catalog(out, items=3, views=2, seed=7)
    return out


def test_limit_run_and_another_catalogue_never_prune_the_workbook_index(warm_env, small_catalog,
                                                                        other_catalog, tmp_path):
    from helpers.search import search

    assert _run(small_catalog, tmp_path / "r1") == 0
    settings = load_settings()
    full = _garment_ids(settings)
    assert len(full) == 48
    assert _run(small_catalog, tmp_path / "r2", "--limit", "10") == 0
    assert _run(other_catalog, tmp_path / "r3") == 0
    assert _garment_ids(settings) == full, "a --limit run or another catalogue pruned the workbook's records"
    other = load_settings(catalog=other_catalog)
    assert len(_garment_ids(other)) == 6
    photo = sorted((small_catalog / "images").glob("*.jpg"))[0]
    found = search(photo, k=5, settings=settings)["garment"]
    assert all(str(p).startswith(str(small_catalog.resolve())) for p in found["image_path"]), \
        "search answered from another catalogue's records"


def test_search_and_app_refuse_an_index_of_a_changed_catalogue(warm_env, small_catalog, tmp_path):
    from helpers.app import SearchApp
    from helpers.search import search

    copy = tmp_path / "copy"
    shutil.copytree(small_catalog, copy)
    assert _run(copy, tmp_path / "r") == 0
    settings = load_settings(catalog=copy)
    photos = sorted((copy / "images").rglob("*.*"))
    photos[-1].write_bytes(photos[-1].read_bytes() + b"\0")   # one photo changed since the index was built
    with pytest.raises(SearchError) as err:
        search(photos[0], settings=settings)
    assert err.value.reason == "index_mismatch"
    assert "catalogue changed" in str(err.value) and f"python -m helpers run --catalog {copy}" in str(err.value)
    app = SearchApp(settings)
    view = app.select(app.example_query())
    assert view.error == "index_mismatch" and "python -m helpers run" in view.message


def test_search_refuses_an_index_built_with_another_masker(warm_env, small_catalog, tmp_path):
    from helpers.search import search

    assert _run(small_catalog, tmp_path / "r") == 0
    settings = load_settings(masker="reference")
    photo = sorted((small_catalog / "images").rglob("*.*"))[0]
    with pytest.raises(SearchError) as err:
        search(photo, settings=settings)
    assert err.value.reason == "index_mismatch" and "masker" in str(err.value)
    assert "--masker reference" in str(err.value)
    assert len(search(photo, mode="full", settings=settings)["full"]) == 5, "the full view needs no masker"


def test_a_run_that_fails_before_the_end_leaves_the_index_untouched(workbook_env, small_catalog, tmp_path, capsys):
    from helpers.catalog import load_catalog

    single = tmp_path / "single"
    table = load_catalog(small_catalog).table
    for item_id, grp in list(table.groupby("item_id"))[:3]:   # three items, one photo each
        (single / str(item_id)).mkdir(parents=True)
        shutil.copyfile(grp["image_path"].iloc[0], single / str(item_id) / "a.png")
    client = get_client(load_settings())
    before = sorted(c.name for c in client.list_collections())
    assert _run(single, tmp_path / "r") == 2
    assert "no item in the catalogue" in capsys.readouterr().err
    assert sorted(c.name for c in get_client(load_settings()).list_collections()) == before


def test_a_second_writer_waits_then_fails_with_a_clear_message(small_catalog, tmp_path):
    from helpers.pipeline import index_result, run_pipeline

    settings = load_settings(catalog=small_catalog, cache_dir=tmp_path / "cache", chroma_path=tmp_path / "chroma")
    result = run_pipeline(settings, limit=8, index=False, reference=False, progress=False)
    (tmp_path / "chroma").mkdir(exist_ok=True)
    with open(tmp_path / "chroma" / ".write.lock", "a+") as other:   # another run holds the lock
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(IndexBusy) as err:
            index_result(result, lock_timeout=0.3)
        fcntl.flock(other, fcntl.LOCK_UN)
    assert "is being written" in str(err.value) and "WORKBOOK_CHROMA_PATH" in str(err.value)
    assert index_result(result)["garment"]["count"] == 8   # free again: the run goes through


def test_a_server_on_a_public_address_warns_that_it_has_no_authentication(tmp_path):
    from helpers.chromaserver import chroma_server, warn_if_exposed

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            with chroma_server(tmp_path / "srv", host="0.0.0.0", timeout=20) as (_host, port):
                assert port
        except RuntimeError:  # the warning comes before the server starts; starting is not the point
            pass
    texts = [str(w.message) for w in seen if "authentication" in str(w.message)]
    assert texts and "0.0.0.0" in texts[0] and "127.0.0.1" in texts[0]
    with warnings.catch_warnings(record=True) as quiet:
        warnings.simplefilter("always")
        assert [warn_if_exposed(h, 8000) for h in ("127.0.0.1", "::1", "localhost")] == [None] * 3
    assert not quiet
