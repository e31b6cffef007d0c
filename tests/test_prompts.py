"""The garment prompt is the user's choice (#22 §2) and the app as a person uses it (#23 §7).

Real data throughout: the small generated catalogue indexed once for this module by the real CLI,
`python -m helpers run --prompts dress,clothes`, into a private cache and ChromaDB on disk (one
garment collection per prompt, the whole-photo collection shared); search and the app then run
against it with the local masker and embedder. A blank white photo is a real query without a
garment in it.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import warm_cache
from helpers import index as idx
from helpers import provenance, report
from helpers import search as search_mod
from helpers.app import SearchApp, grid_columns
from helpers.catalog import load_catalog
from helpers.embedding import get_embedder
from helpers.errors import SearchError
from helpers.settings import load_settings

PROMPTS = ("dress", "clothes")


@pytest.fixture(scope="module")
def built(small_catalog, seed_cache, tmp_path_factory):
    """Settings of the small catalogue, indexed for dress and clothes by `run --prompts`."""
    root = tmp_path_factory.mktemp("prompts")
    warm_cache(seed_cache, root / "cache")  # the dress masks are cached; clothes are masked here
    mp = pytest.MonkeyPatch()
    env = {"WORKBOOK_CATALOG": str(small_catalog), "WORKBOOK_CACHE_DIR": str(root / "cache"),
           "WORKBOOK_CHROMA_PATH": str(root / "chroma")}
    for key, value in env.items():
        mp.setenv(key, value)
    try:
        assert report.main(["--prompts", ",".join(PROMPTS), "--quiet", "--out", str(root / "run")]) == 0
        yield load_settings()
    finally:
        mp.undo()


@pytest.fixture()
def env(built, monkeypatch):
    for key in ("catalog", "cache_dir", "chroma_path"):
        monkeypatch.setenv(f"WORKBOOK_{key.upper()}", str(getattr(built, key)))
    return built


@pytest.fixture(scope="module")
def embedder(built):
    return get_embedder(built)


@pytest.fixture(scope="module")
def table(built):
    return load_catalog(built.catalog).table


@pytest.fixture()
def app(built, embedder):
    return SearchApp(built, embedder=embedder)


@pytest.fixture(scope="module")
def blank(tmp_path_factory) -> Path:
    """A real photo with no garment (and no person) in it."""
    path = tmp_path_factory.mktemp("blank") / "blank.jpg"
    Image.new("RGB", (300, 400), "white").save(path)
    return path


def _photo(settings) -> str:
    return str(sorted((settings.catalog / "images").glob("*.jpg"))[0])


# ----------------------------------------------------------------------------- the index per prompt

def test_run_prompts_builds_one_garment_collection_per_prompt_and_one_full(built, embedder):
    client = idx.get_client(built)
    scope = provenance.catalog_scope(built.catalog)
    names = {c.name for c in client.list_collections()}
    dress = idx.collection_name(embedder.model_id, embedder.dim, "garment", scope, "dress")
    clothes = idx.collection_name(embedder.model_id, embedder.dim, "garment", scope, "clothes")
    full = idx.collection_name(embedder.model_id, embedder.dim, "full", scope)
    assert dress.startswith("garment_") and clothes.startswith("garment-clothes_")
    assert {dress, clothes, full} <= names
    assert sum(n.startswith("full_") and n.endswith(scope) for n in names) == 1  # shared by the prompts
    # provenance per prompt: each garment collection records the prompt that cut it out
    for name, prompt in ((dress, "dress"), (clothes, "clothes")):
        col = client.get_collection(name, embedding_function=None)
        assert col.metadata["prompt"] == prompt and col.count() > 0
    assert idx.CatalogIndex.open(built, embedder).built_prompts() == ["clothes", "dress"]
    # each prompt's collection holds every worn photo's cut-out (on this dresses-only catalogue the
    # clothes are the dress, so the vectors agree; the outfits catalogue is where they differ)
    index = idx.CatalogIndex.open(built, embedder)
    ids, dress_vecs = index.get_vectors("garment")
    clothes_ids, clothes_vecs = index.for_prompt("clothes").get_vectors("garment", ids)
    assert sorted(clothes_ids) == sorted(ids) and len(ids) == 48 and clothes_vecs.shape == dress_vecs.shape


def test_search_by_another_indexed_prompt(built, embedder, table):
    query = table["image_path"].iloc[0]
    dress = search_mod.search(Path(query), "garment", 3, settings=built, embedder=embedder)["garment"]
    clothes = search_mod.search(Path(query), "garment", 3, settings=built, embedder=embedder,
                                prompt="clothes")["garment"]
    assert dress.attrs["prompt"] == "dress" and clothes.attrs["prompt"] == "clothes"
    assert len(clothes) == 3 and clothes.attrs["query_mask"].any()
    # a garment the photo does not show is "no skirt found", never another garment cut out
    with pytest.raises(SearchError) as err:
        search_mod.query_cutout(Image.open(query).convert("RGB"), Path(query), built, prompt="skirt")
    assert err.value.reason == "no_garment" and "skirt" in str(err.value)


def test_search_refuses_a_prompt_the_index_was_not_built_for(built, embedder, table):
    with pytest.raises(SearchError) as err:
        search_mod.search(Path(table["image_path"].iloc[0]), "both", 3, settings=built, embedder=embedder,
                          prompt="skirt")
    assert err.value.reason == "prompt_not_indexed"
    message = str(err.value)
    assert "\n" not in message and "'skirt'" in message and "built for: clothes, dress" in message
    assert f"python -m helpers run --catalog {built.catalog} --prompts dress,clothes,skirt" in message
    # nothing was created for the refused prompt
    assert not idx.CatalogIndex.open(built, embedder).for_prompt("skirt").exists("garment")


def test_cli_prompt_option(env, capsys):
    assert search_mod.main([_photo(env), "--prompt", "clothes", "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert "== garment (clothes) ==" in out and out.count(".jpg") >= 2
    assert search_mod.main([_photo(env), "--prompt", "trousers"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "prompt_not_indexed" in err and "--prompts dress,clothes,trousers" in err


def test_cli_run_prompts_needs_names(capsys):
    with pytest.raises(SystemExit):
        report.main(["--prompts", " , "])
    assert "--prompts needs garment names" in capsys.readouterr().err


# ----------------------------------------------------------------------------- no garment in the query

def test_both_mode_without_a_garment_still_shows_the_full_photo_results(built, embedder, blank):
    out = search_mod.search(blank, "both", 4, settings=built, embedder=embedder)
    assert len(out["full"]) == 4
    assert len(out["garment"]) == 0 and "no_garment" not in out["garment"].columns
    assert "could not be cut out" in out["garment"].attrs["no_garment"]
    with pytest.raises(SearchError) as err:  # garment mode alone has nothing to show: it says why
        search_mod.search(blank, "garment", 4, settings=built, embedder=embedder)
    assert err.value.reason == "no_garment"


def test_cli_both_mode_without_a_garment(env, blank, capsys):
    assert search_mod.main([str(blank), "--mode", "both", "--k", "2"]) == 0
    out = capsys.readouterr().out
    garment, full = out.split("== full ==")
    assert "nothing to search" in garment and "--mode full" in garment and "mode='full'" not in garment
    assert full.count(".jpg") == 2


def test_app_without_a_garment_speaks_the_apps_words(app, blank):
    data = blank.read_bytes()
    app.mode.value = "both"
    view = app.upload_bytes("blank.jpg", data)
    assert view.ok and len(view.results["full"]) == view.k and view.results["garment"] == []
    assert view.notice.startswith("No dress found in this photo")
    for text in (view.notice, app.status.value):
        assert "mode=" not in text and "()" not in text and "Error" not in text and "`" not in text
    garment_panel = [p for p in app.results_box.children if "wb-results-garment" in p._dom_classes][0]
    assert "wb-no-garment" in garment_panel.children[1]._dom_classes
    assert "No dress found" in garment_panel.children[1].value
    full_panel = [p for p in app.results_box.children if "wb-results-full" in p._dom_classes][0]
    assert len(full_panel.children[1].children) == view.k
    app.mode.value = "garment"
    view = app.view
    assert view.error == "no_garment" and view.message.startswith("No dress found in this photo")
    assert "“full image”" in view.message and "mode=" not in view.message


# ----------------------------------------------------------------------------- the app's garment choice

def test_garment_dropdown_searches_by_the_chosen_garment(app, table):
    labels = [label for label, _ in app.prompt.options]
    assert labels == ["dress", "top", "skirt", "trousers", "all clothes"] and app.prompt.value == "dress"
    app.select(app.example_query())
    assert app.view.prompt == "dress" and "garment (dress)" in app.status.value
    app.prompt.value = "clothes"  # picking a garment searches again
    view = app.view
    assert view.ok and view.prompt == "clothes" and len(view.results["garment"]) == view.k
    assert "garment (clothing)" in app.status.value
    captions = [box.children[1].value for box in app.query_box.children]
    assert any("the clothing cut out and searched" in c for c in captions)
    title = [p for p in app.results_box.children if "wb-results-garment" in p._dom_classes][0].children[0].value
    assert "clothing" in title
    app.prompt.value = "skirt"  # not indexed: refused, with the command that builds it
    assert app.view.error == "prompt_not_indexed"
    assert app.view.message.startswith("This catalogue is not indexed for skirt yet")
    assert "python -m helpers run" in app.view.message and "--prompts dress,clothes,skirt" in app.view.message
    app.mode.value = "full"
    assert app.prompt.disabled and app.view.ok  # the garment plays no part in full-image mode


def test_picking_a_catalogue_photo_after_an_upload_clears_the_upload(app, table):
    other = table["image_path"].iloc[5]
    view = app.upload_bytes("my_photo.jpg", Path(other).read_bytes())
    assert view.ok and len(app.upload.value) == 1  # the button says "Upload photo (1)"
    app.select(app.example_query())
    assert app.view.query.kind == "catalog" and app.upload.value == ()  # ... and "(0)" again
    # the same file can be uploaded again and is searched again
    assert app.upload_bytes("my_photo.jpg", Path(other).read_bytes()).query.kind == "upload"


def test_a_filter_with_one_value_is_not_offered(built, embedder, table):
    app = SearchApp(built, embedder=embedder)
    for col, dd in app.filters.items():
        n_values = table[col].nunique()
        assert (dd.layout.display == "none") == (n_values < 2), (col, n_values)
    assert table["category"].nunique() == 1 and app.filters["category"].layout.display == "none"
    assert app.filters["colour"].layout.display != "none"
    assert app.where() is None


def test_an_upload_shows_progress_while_it_is_read_masked_and_embedded(built, embedder, table):
    seen: list[str] = []
    during: list[tuple] = []

    def watched(*args, **kwargs):  # the real search, observed from inside
        during.append((app.status.value, app.search_button.icon, "wb-busy" in app.widget._dom_classes))
        return search_mod.search(*args, **kwargs)

    app = SearchApp(built, embedder=embedder, search_fn=watched)
    app.status.observe(lambda change: seen.append(change["new"]), names="value")
    app.upload_bytes("street.jpg", Path(table["image_path"].iloc[3]).read_bytes())
    assert "Reading street.jpg" in seen[0] and "⏳" in seen[0]  # a sign before the photo is decoded
    status, icon, busy = during[0]
    assert "cutting out the dress and embedding it" in status and "⏳" in status
    assert icon == "spinner spin" and busy
    assert app.search_button.icon == "search" and "wb-busy" not in app.widget._dom_classes
    assert app.view.ok and "⏳" not in app.status.value


def test_result_grid_wraps_to_the_panel_instead_of_scrolling(app):
    with app.hold():
        app.mode.value = "both"
        app.k.value = 5
    app.select(app.example_query())
    assert "auto-fill" in grid_columns(5)
    for mode in ("garment", "full"):
        panel = [p for p in app.results_box.children if f"wb-results-{mode}" in p._dom_classes][0]
        grid = panel.children[1]
        assert len(grid.children) == 5
        assert grid.layout.grid_template_columns == grid_columns(5)
        assert grid.layout.overflow is None and panel.layout.overflow is None  # no sideways scroll
        for card in grid.children:  # tiles may shrink: no min-content width, the thumbnail scales
            assert card.layout.min_width == "0" and card.children[0].layout.max_width == "100%"
    assert app.results_box.layout.flex_flow == "row wrap"  # a narrow notebook stacks the panels


def test_twin_leaves_the_first_app_as_it_was(app, table):
    example = app.example_query()
    app.select(example)
    before = app.view.to_text()
    demo = app.twin(mode="both")
    assert demo.embedder is app.embedder and demo._thumbs is app._thumbs
    assert demo.view.query.image_id == example and demo.view.mode == "both"
    assert demo.view.results["garment"] == app.view.results["garment"]
    photo = table.set_index("image_id").loc[example, "image_path"]
    assert demo.upload_bytes("my_photo.jpg", Path(photo).read_bytes()).query.kind == "upload"
    # the first app still shows the example query, its picker and its results
    assert app.picker.value == example and app.upload.value == () and app.mode.value == "garment"
    assert app.view.to_text() == before
    with pytest.raises(KeyError, match="not a control"):
        app.twin(colour_of_sky="blue")


def test_index_prompts_setting(tmp_path):
    from helpers.errors import SettingsError

    toml = tmp_path / "workbook.toml"
    toml.write_text('index_prompts = "dress, top,skirt,trousers"\n')
    settings = load_settings(toml_path=toml, env={})
    assert settings.prompts == ("dress", "top", "skirt", "trousers")  # garment_prompt first, each once
    assert load_settings(toml_path=None, env={}).prompts == ("dress",)  # the default stays one prompt
    assert load_settings(toml_path=None, env={"WORKBOOK_INDEX_PROMPTS": "skirt"}).prompts == ("dress", "skirt")
    assert "--prompts dress,top,skirt,trousers" in provenance.run_command(settings)
    assert "--prompts" not in provenance.run_command(load_settings(toml_path=None, env={}))
    with pytest.raises(SettingsError, match="separated by commas"):
        load_settings(toml_path=None, env={}, index_prompts="dress,,skirt")
