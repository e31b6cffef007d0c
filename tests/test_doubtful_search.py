"""A doubtful query mask (#14 item 5) is said out loud: `search()` attaches a warning, the CLI
prints it, the app shows it in its status line; a confident mask gives none. The masker is the
real parser; the index is the reference-masked small catalogue."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from helpers import search as srch
from helpers.embedding import LocalEmbedder
from helpers.settings import load_settings

from conftest import build_reference_index
from test_masking_parser import doubtful_image


@pytest.fixture(scope="module")
def built(small_catalog, tmp_path_factory):
    root = tmp_path_factory.mktemp("doubt")
    return build_reference_index(load_settings(toml_path=None, env={}, catalog=small_catalog,
                                               cache_dir=root / "cache", chroma_path=root / "chroma",
                                               masker="reference"))


@pytest.fixture(scope="module")
def parser_settings(built):
    return built["settings"].replace(masker="parser")


@pytest.fixture(scope="module")
def embedder(parser_settings):
    return LocalEmbedder(parser_settings.cache_dir)


def test_search_warns_for_a_doubtful_mask_only(built, parser_settings, embedder):
    photo = built["table"].iloc[3]["image_path"]
    good = srch.search(photo, k=2, settings=parser_settings, embedder=embedder)["garment"]
    assert good.attrs["mask_quality"] >= 0.5 and good.attrs["warning"] == ""
    bad = srch.search(doubtful_image(), k=2, settings=parser_settings, embedder=embedder)["garment"]
    assert bad.attrs["mask_quality"] < 0.5 and bad.attrs["warning"].startswith("doubtful mask")
    assert len(bad) == 2   # the results are still there


def test_cli_search_prints_the_warning(built, parser_settings, monkeypatch, tmp_path, capsys):
    s = parser_settings
    for key, value in {"CATALOG": s.catalog, "CACHE_DIR": s.cache_dir, "CHROMA_PATH": s.chroma_path,
                       "MASKER": "parser", "BACKEND": "local"}.items():
        monkeypatch.setenv(f"WORKBOOK_{key}", str(value))
    noise = tmp_path / "noise.png"
    doubtful_image().save(noise)
    assert srch.main([str(noise), "--k", "2"]) == 0
    assert "warning: doubtful mask" in capsys.readouterr().err
    assert srch.main([str(built["table"].iloc[3]["image_path"]), "--k", "2"]) == 0
    assert "doubtful" not in capsys.readouterr().err


def test_app_shows_the_warning(parser_settings, embedder, built):
    from helpers.app import SearchApp

    app = SearchApp(parser_settings, embedder=embedder)
    buf = io.BytesIO()
    doubtful_image().save(buf, "PNG")
    view = app.upload_bytes("noise.png", buf.getvalue())
    assert view.ok and view.warning.startswith("doubtful mask")
    assert "doubtful mask" in app.status.value and "warning: doubtful" in view.to_text()
    view = app.select(str(built["table"].iloc[3]["image_id"]))
    assert view.ok and view.warning == "" and "doubtful" not in app.status.value
