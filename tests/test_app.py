"""The search app driven headless: set widget values, let the handlers run, read `app.view`.

Real data throughout: the small generated catalogue, the local masker and embedder, a ChromaDB
index on disk built once for this module by the pipeline. Same-item marks are checked against the
catalogue's own item ids; uploads are real image bytes (and real broken files).
"""
from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import warm_cache
from helpers.app import K_MAX, SearchApp
from helpers.catalog import load_catalog
from helpers.settings import PROJECT_ROOT, load_settings
from notebook_checks import assert_seen

NOTEBOOK = PROJECT_ROOT / "notebooks" / "07_search.ipynb"


@pytest.fixture(scope="module")
def built(small_catalog, seed_cache, tmp_path_factory):
    """Settings for the small catalogue with its index built (cache and Chroma private to this module)."""
    from helpers.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("app")
    warm_cache(seed_cache, root / "cache")  # what `make run` left: the build is all cache hits
    settings = load_settings(catalog=small_catalog, cache_dir=root / "cache", chroma_path=root / "chroma")
    run_pipeline(settings, reference=False, progress=False)
    return settings


@pytest.fixture(scope="module")
def table(small_catalog):
    return load_catalog(small_catalog).table


@pytest.fixture(scope="module")
def embedder(built):
    from helpers.embedding import get_embedder

    return get_embedder(built)  # shared: the ONNX session loads once per module


@pytest.fixture()
def app(built, embedder):
    return SearchApp(built, embedder=embedder)


def _item(table, image_id: str) -> str:
    return str(table.set_index("image_id").loc[image_id, "item_id"])


def _shown_cards(app, mode: str):
    """The result cards actually in the widget tree for one mode."""
    panels = [p for p in app.results_box.children if f"wb-results-{mode}" in p._dom_classes]
    assert len(panels) == 1, f"expected one {mode} panel, got {len(panels)}"
    grid = panels[0].children[1]
    return list(grid.children)


def _upload(app, name: str, data: bytes):
    app.upload.value = ({"name": name, "type": "", "size": len(data), "content": memoryview(data),
                         "last_modified": datetime.now(timezone.utc)},)
    return app.view


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A real, complete 1-bit PNG of width x height black pixels: ~50 KB on disk, 400 Mpx decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------- catalogue queries

def test_catalogue_query_marks_the_same_item(app, table):
    query = app.example_query()
    view = app.select(query)
    assert view.ok, view.message
    cards = view.results["garment"]
    assert len(cards) == app.k.value == 5
    assert query not in [c.image_id for c in cards], "a catalogue query leaves itself out"
    truth = _item(table, query)
    for c in cards:
        assert c.item_id == _item(table, c.image_id)
        assert c.same_item == (c.item_id == truth)
    assert view.same_item_count("garment") >= 1, "other views of the item should rank in the top 5"
    scores = [c.score for c in cards]
    assert scores == sorted(scores, reverse=True) and [c.rank for c in cards] == [1, 2, 3, 4, 5]
    # the widgets show exactly that: k cards, green marks on the same-item ones
    shown = _shown_cards(app, "garment")
    assert len(shown) == 5
    assert ["wb-same-item" in b._dom_classes for b in shown] == [c.same_item for c in cards]
    assert all("wb-result" in b._dom_classes for b in shown)
    assert f"item {cards[0].item_id}" in shown[0].children[1].value
    # garment mode shows what was searched: the query, its mask and its cut-out
    classes = [b._dom_classes[0] for b in app.query_box.children]
    assert classes == ["wb-query-image", "wb-query-mask", "wb-query-cutout"]
    assert view.query_mask.dtype == bool and view.query_mask.any()
    assert view.query_cutout.size[0] == view.query_cutout.size[1]
    assert query in app.status.value and "wb-error" not in app.status._dom_classes


def test_modes_full_and_both(app, table):
    query = str(table["image_id"].iloc[9])
    app.select(query)
    app.mode.value = "full"
    full = app.view
    assert list(full.results) == ["full"] and len(full.results["full"]) == 5
    assert [p._dom_classes[0] for p in app.results_box.children] == ["wb-results-full"]
    assert [b._dom_classes[0] for b in app.query_box.children] == ["wb-query-image"]  # no mask
    app.mode.value = "both"
    both = app.view
    assert set(both.results) == {"garment", "full"}
    assert [p._dom_classes[0] for p in app.results_box.children] == ["wb-results-garment", "wb-results-full"]
    assert [c.image_id for c in both.results["full"]] == [c.image_id for c in full.results["full"]]
    truth = _item(table, query)
    for mode in ("garment", "full"):
        assert [c.same_item for c in both.results[mode]] == \
               [_item(table, c.image_id) == truth for c in both.results[mode]]
    assert "garment (dress):" in app.status.value and "full:" in app.status.value
    text = both.to_text()
    assert "-- garment" in text and "-- full" in text and query in text


@pytest.mark.parametrize("k", [1, 12, K_MAX])
def test_top_k(app, k):
    with app.hold():
        app.mode.value = "both"
        app.k.value = k
        app.picker.value = app.example_query()
    for mode in ("garment", "full"):
        assert len(app.view.results[mode]) == k
        assert len(_shown_cards(app, mode)) == k


def test_filters_narrow_the_results(app, table):
    query = app.example_query()
    row = table.set_index("image_id").loc[query]
    app.select(query)
    app.filters["category"].value = row["category"]
    app.filters["colour"].value = row["colour"]
    view = app.view
    assert view.where == {"$and": [{"category": row["category"]}, {"colour": row["colour"]}]}
    by_id = table.set_index("image_id")
    cards = view.results["garment"]
    assert cards, "the query's own item matches its own category and colour"
    for c in cards:
        assert by_id.loc[c.image_id, "category"] == row["category"]
        assert by_id.loc[c.image_id, "colour"] == row["colour"]
    # "any" lifts the filter again
    app.filters["colour"].value = "any"
    app.filters["category"].value = "any"
    assert app.view.where is None and len(app.view.results["garment"]) == 5


def test_busy_indicator_while_a_query_runs(built, embedder, table):
    from helpers.search import search

    seen = []

    def watched(*args, **kwargs):  # the real search, observed from inside
        seen.append(("wb-busy" in app.widget._dom_classes, app.search_button.disabled,
                     "Searching" in app.status.value))
        return search(*args, **kwargs)

    app = SearchApp(built, embedder=embedder, search_fn=watched)
    app.select(str(table["image_id"].iloc[0]))
    assert seen == [(True, True, True)]
    assert "wb-busy" not in app.widget._dom_classes and not app.search_button.disabled
    assert app.view.ok and app.view.seconds > 0


def test_search_problem_is_a_message_not_a_traceback(built, embedder, table, tmp_path):
    app = SearchApp(built.replace(chroma_path=tmp_path / "no-index"), embedder=embedder)
    view = app.select(str(table["image_id"].iloc[0]))
    assert view.error == "empty_index"
    assert "build the index first" in view.message
    assert "wb-error" in app.status._dom_classes and "Traceback" not in app.status.value
    assert app.results_box.children == ()


# ----------------------------------------------------------------------------- uploads

def _variant(table, kind: str) -> bytes:
    """A real catalogue photo re-encoded the way a person's upload might arrive."""
    image = Image.open(table["image_path"].iloc[5]).convert("RGB")
    buf = io.BytesIO()
    if kind == "jpeg":
        image.save(buf, "JPEG", quality=90)
    elif kind == "cmyk-jpeg":
        image.convert("CMYK").save(buf, "JPEG", quality=90)
    elif kind == "rgba-png":
        rgba = image.convert("RGBA")
        rgba.putalpha(Image.new("L", image.size, 255))
        rgba.paste((0, 0, 0, 0), (0, 0, 40, 40))  # a transparent corner
        rgba.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["jpeg", "cmyk-jpeg", "rgba-png"])
def test_valid_upload_is_searched(app, table, kind):
    with app.hold():
        app.mode.value = "both"
    view = _upload(app, f"my_photo.{kind.split('-')[-1]}", _variant(table, kind))
    assert view.ok, view.message
    assert view.query.kind == "upload" and view.query.image.mode == "RGB"
    assert view.query.image.size == Image.open(table["image_path"].iloc[5]).size
    for mode in ("garment", "full"):
        assert len(view.results[mode]) == 5
        assert not any(c.same_item for c in view.results[mode]), "an upload has no known item"
    # a re-encoded copy of a catalogue photo still finds that photo first with the whole image
    assert view.results["full"][0].image_id == str(table["image_id"].iloc[5])
    assert view.query_mask is not None and view.query_mask.shape == view.query.image.size[::-1]
    assert app.picker.value is None
    assert [b._dom_classes[0] for b in app.query_box.children] == \
           ["wb-query-image", "wb-query-mask", "wb-query-cutout"]


def _noise_png(side: int) -> bytes:
    rng = np.random.default_rng(0)
    return _png(Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)))


BAD_UPLOADS = {
    "wrong type": ("notes.png", lambda t: b"these are my shopping notes, not a picture\n" * 20,
                   {}, "not_an_image", "is not an image"),
    "too large": ("big.png", lambda t: _noise_png(300), {"max_image_bytes": 100_000},
                  "too_many_bytes", "MB limit"),
    "too many pixels": ("wide.png", lambda t: _png(Image.new("RGB", (1200, 1000), "white")),
                        {"max_image_pixels": 1_000_000}, "too_many_pixels", "megapixels"),
    "decompression bomb": ("bomb.png", lambda t: _bomb_png(), {}, "decompression_bomb", "decompression bomb"),
    "truncated": ("cut.jpg", lambda t: _variant(t, "jpeg")[:20_000], {}, "truncated", "cut short"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_shows_a_clear_message(built, embedder, table, case):
    name, make, limits, reason, words = BAD_UPLOADS[case]
    app = SearchApp(built.replace(**limits) if limits else built, embedder=embedder)
    app.select(str(table["image_id"].iloc[0]))  # results on screen before the bad upload
    data = make(table)
    if case == "too large":
        assert len(data) > 100_000
    view = _upload(app, name, data)
    assert view.error == reason
    assert words in view.message and name in view.message
    assert "wb-error" in app.status._dom_classes
    assert words in app.status.value and "Traceback" not in app.status.value
    assert app.results_box.children == () and view.results == {}
    # a good query afterwards works and clears the message
    app.select(str(table["image_id"].iloc[1]))
    assert app.view.ok and "wb-error" not in app.status._dom_classes


def test_text_search_is_hidden_offline(app):
    assert app.settings.backend == "local"
    assert not app.text_available
    assert app.text_box.layout.display == "none"
    assert "Bedrock" in app.text_note.value
    app.text.value = "red dress"
    before = app.view
    app.on_text()
    assert app.view is before  # nothing searched


def test_info_shows_backend_and_embedder(app, table):
    info = app.info.value
    assert "local" in info and app.embedder.model_id in info and str(app.embedder.dim) in info
    assert f"{len(table)} images" in info


# ----------------------------------------------------------------------------- the notebook

def test_notebook_runs_headless(built, workbook_env, monkeypatch, tmp_path, table):
    from helpers.workbook.notebooks import read_records, run_notebook

    # the module's index and cache: the notebook's pipeline call is then all cache hits
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(built.cache_dir))
    monkeypatch.setenv("WORKBOOK_CHROMA_PATH", str(built.chroma_path))
    out = tmp_path / "07_search.ipynb"
    run_notebook(NOTEBOOK, out, {"k": 4})
    assert_seen(out)  # every figure shown, no table cell cut
    records = read_records(out)
    import nbformat

    text = "\n".join(o.get("text", "") for c in nbformat.read(out, 4).cells for o in c.get("outputs", []))
    # the notebook's numbers are the app's numbers for the same query, recomputed here
    app = SearchApp(built, auto=False)
    app.k.value = 4
    app.mode.value = "both"
    view = app.select(app.example_query())
    assert records["search_same_item_garment"] == view.same_item_count("garment")
    assert records["search_same_item_full"] == view.same_item_count("full")
    assert records["search_catalog_query_s"] > 0 and records["search_upload_query_s"] > 0
    assert f"query: {app.example_query()} (catalog" in text
    assert "-- garment" in text and "-- full" in text


# ----------------------------------------------------------------------------- #17 point 12

def test_upload_clears_the_picker_and_picking_the_old_photo_searches_it_again(app, table):
    query = app.example_query()
    app.select(query)
    other = table[table["image_id"] != query]["image_path"].iloc[0]
    view = _upload(app, "my_photo.jpg", Path(other).read_bytes())
    assert view.ok and view.query.kind == "upload"
    # the dropdown no longer names the old photo (value, index and label all cleared)
    assert app.picker.value is None and app.picker.index is None and app.picker.label is None
    assert "my_photo.jpg" in app.status.value
    assert app.query_box.children[0].children[1].value.count("my_photo.jpg") == 1
    # picking the old photo in the browser (the frontend sets the index) searches it again
    app.picker.index = [v for _, v in app.picker.options].index(query)
    assert app.view.query.kind == "catalog" and app.view.query.image_id == query
    assert app.picker.label.startswith(query)


# (the result grid's layout: tests/test_prompts.py::test_result_grid_wraps_to_the_panel_instead_of_scrolling;
# a fixed k-column row hid #4 and #5 behind a sideways scroll beside JupyterLab's file browser, #23 §7)


def test_static_figure_shows_the_same_results_as_the_app(app):
    app.mode.value = "both"
    view = app.select(app.example_query())
    fig = app.figure()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    for mode in ("garment", "full"):
        for card in view.results[mode]:
            assert any(f"#{card.rank} · {card.score:.3f}" in t and card.item_id in t for t in titles)
    assert sum(view.query.label in t for t in titles) == 2   # one query tile per mode
    assert len(fig.axes) == 2 * (1 + view.k)
