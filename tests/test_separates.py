"""Separates (issue 22 §3): the outfits catalogue's ground truth and exact per-garment masks, the
reference masker per garment, the measurement of whole photo vs all clothes vs the named garment,
and notebook 08. All on a tiny outfits catalogue drawn once for this module, with the real local
embedder and a private cache."""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import separates
from helpers.errors import NoGarment
from helpers.maskers.reference import ReferenceMasker
from helpers.sample import generate_catalog, main as sample_main
from helpers.sample.outfits import generate_outfits, is_outfits, load_outfits

ITEMS, VIEWS, SIZE = 6, 3, (128, 192)
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "08_separates.ipynb"


@pytest.fixture(scope="module")
def outfits_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outfits") / "outfits"
    generate_outfits(out, items=ITEMS, views=VIEWS, seed=2, size=SIZE, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def table(outfits_dir):
    return load_outfits(outfits_dir)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("separates-cache")


@pytest.fixture()
def env(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("WORKBOOK_CHROMA_PATH", str(tmp_path / "chroma"))


def _mask(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- the catalogue

def test_every_garment_is_worn_several_times_with_other_partners_shoots_and_models(table):
    worn = table[table.view == "worn"]
    assert len(worn) == ITEMS * VIEWS
    assert ((worn.skirt_id != "") ^ (worn.trousers_id != "")).all()  # one bottom per photo
    assert (worn.top_id != "").all() and set(worn.bottom) == {"skirt", "trousers"}
    worn = worn.assign(bottom_id=worn.skirt_id + worn.trousers_id)
    for col, partner in (("top_id", "bottom_id"), ("bottom_id", "top_id")):
        per = worn.groupby(col).agg(photos=("image_id", "size"), partners=(partner, "nunique"),
                                    shoots=("shoot_id", "nunique"), models=("figure_id", "nunique"))
        assert len(per) == ITEMS and (per.photos == VIEWS).all()
        assert (per.partners == VIEWS).all()  # the same skirt is never worn with the same top twice
        assert (per.shoots == VIEWS).all()    # and never twice in one shoot
        assert per.models.mean() > 1.5
    assert worn.item_id.is_unique  # each outfit (top + bottom) is photographed once
    summary = separates.partner_summary(table)
    assert summary.loc["top", "partners per item (min)"] == VIEWS
    assert summary.loc["skirt", "items"] + summary.loc["trousers", "items"] == ITEMS


def test_masks_are_exact_per_garment_disjoint_and_inside_the_person(table):
    for r in table[table.view == "worn"].itertuples():
        top, clothes, person = _mask(r.top_mask_path), _mask(r.garment_mask_path), _mask(r.person_mask_path)
        bottom = _mask(r.skirt_mask_path or r.trousers_mask_path)
        assert "" in (r.skirt_mask_path, r.trousers_mask_path)
        assert not (top & bottom).any()
        assert np.array_equal(top | bottom, clothes)
        assert not (clothes & ~person).any()
        assert top.sum() == int(r.top_pixels) and bottom.sum() == int(r.skirt_pixels or r.trousers_pixels)
        assert top.mean() > 0.01 and bottom.mean() > 0.01
        img = np.asarray(Image.open(r.image_path).convert("RGB"), np.float32)
        inner = lambda m: cv2.erode(m.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        # the masks follow the drawing: well inside each garment the photo shows that garment's
        # colours, which differ from the other garment's (unless the two happen to share a colour)
        assert inner(top).any() and inner(bottom).any()
        assert img[inner(top)].std(0).mean() < 60 and img[inner(bottom)].std(0).mean() < 60


def test_one_product_shot_per_garment_alone_with_its_exact_mask(table):
    worn, prod = table[table.view == "worn"], table[table.view == "product"]
    garments = (set(worn.top_id) | set(worn.skirt_id) | set(worn.trousers_id)) - {""}
    assert sorted(prod.item_id) == sorted(garments)
    for r in prod.itertuples():
        mask = _mask(r.garment_mask_path)
        assert np.array_equal(mask, _mask(getattr(r, f"{r.category}_mask_path"))) and mask.mean() > 0.05
        assert not _mask(r.person_mask_path).any()
        img = np.asarray(Image.open(r.image_path).convert("RGB"), np.float32)
        around = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert img[~around].std(0).max() < 6  # a plain background: nothing outside the mask


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = generate_outfits(tmp_path / "a", items=3, views=2, seed=5, size=(64, 96), workers=1, progress=False)
    b = generate_outfits(tmp_path / "b", items=3, views=2, seed=5, size=(64, 96), workers=2, progress=False)
    c = generate_outfits(tmp_path / "c", items=3, views=2, seed=6, size=(64, 96), workers=1, progress=False)
    assert _digest(a) == _digest(b) != _digest(c)


# The dress catalogue drawn by the code before the outfits kind existed (commit 7089f9e): drawing
# separates reuses its figures, shoots and camera, and must not change a single byte of it.
DRESS_DIGEST = "56aae7aee09dbefd19a0318dab861d2af72a481a9235a24f34a4f7ff99246a16"


def test_the_dress_catalogue_is_byte_identical_to_before_separates(tmp_path):
    out = generate_catalog(tmp_path / "sample", items=3, views=2, seed=3, size=(96, 144), workers=1, progress=False)
    assert _digest(out) == DRESS_DIGEST


def test_cli_kind_outfits_draws_then_skips_and_the_default_stays_dresses(tmp_path, capsys):
    args = ["--kind", "outfits", "--out", str(tmp_path / "o"), "--items", "3", "--views", "2", "--size", "64x96",
            "--workers", "1"]
    assert sample_main(args) == 0 and is_outfits(tmp_path / "o")
    assert "wrote 6 outfit photos and 6 product shots" in capsys.readouterr().out
    assert sample_main(args) == 0 and "already a complete outfits catalogue" in capsys.readouterr().out
    assert sample_main(["--kind", "outfits", "--out", str(tmp_path / "o"), "--items", "2", "--views", "3"]) == 2
    assert "views <= items" in capsys.readouterr().err
    assert sample_main(["--out", str(tmp_path / "d"), "--items", "2", "--views", "1", "--size", "64x96",
                        "--workers", "1", "--no-product-shots"]) == 0
    assert not is_outfits(tmp_path / "d") and (tmp_path / "d" / "images" / "img0000.jpg").is_file()


# ---------------------------------------------------------------------------- the reference masker

def test_reference_masker_cuts_the_named_garment_or_says_it_is_not_there(table):
    masker = ReferenceMasker(table)
    r = table[(table.view == "worn") & (table.skirt_id != "")].iloc[0]
    with Image.open(r.image_path) as im:
        image = im.convert("RGB")
    assert np.array_equal(masker.mask(image, "skirt", image_id=r.image_id), _mask(r.skirt_mask_path))
    assert np.array_equal(masker.mask(image, "a striped blouse", image_id=r.image_id), _mask(r.top_mask_path))
    assert np.array_equal(masker.mask(image, "clothes", image_id=r.image_id), _mask(r.garment_mask_path))
    with pytest.raises(NoGarment, match="shows no trousers"):
        masker.mask(image, "pants", image_id=r.image_id)
    p = table[(table.view == "product") & (table.category == "trousers")].iloc[0]
    with Image.open(p.image_path) as im:
        shot = im.convert("RGB")
    assert np.array_equal(masker.mask(shot, "trousers", image_id=p.image_id), _mask(p.garment_mask_path))
    with pytest.raises(NoGarment):
        masker.mask(shot, "top", image_id=p.image_id)


def test_reference_masker_on_the_dress_catalogue_still_answers_any_prompt(small_catalog):
    from helpers.catalog import load_catalog

    dresses = load_catalog(small_catalog).table
    masker = ReferenceMasker(dresses)
    r = dresses.iloc[0]
    with Image.open(r.image_path) as im:
        image = im.convert("RGB")
    truth = _mask(r.garment_mask_path)
    for prompt in ("dress", "skirt", "clothes"):
        assert np.array_equal(masker.mask(image, prompt, image_id=r.image_id), truth)


# ---------------------------------------------------------------------------- the measurement

def test_measure_separates_compares_three_cut_outs_on_the_same_queries(outfits_dir, table, env):
    doc = separates.measure_separates(outfits_dir)
    worn = table[table.view == "worn"]
    assert set(doc["prompts"]) == {"skirt", "top", "trousers"} and doc["mask_failures"] == {}
    for p, d in doc["prompts"].items():
        n = int((worn[f"{p}_id"] != "").sum())
        assert d["photos"] == n
        assert {c: s["queries"] for c, s in d["conditions"].items()} == dict.fromkeys(separates.CONDITIONS, n)
        for c in separates.CONDITIONS:
            lo, hi = d["intervals"]["recall@1"][c]["ci95"]
            assert lo <= d["conditions"][c]["recall@1"] <= hi
        delta = d["delta_recall@1_garment_vs_clothes"]
        assert delta["value"] == pytest.approx(d["conditions"]["garment"]["recall@1"]
                                               - d["conditions"]["clothes"]["recall@1"])
    # Recall@1 and the partner count of the skirt search, from scratch with numpy
    from helpers.settings import load_settings

    vectors, _ = separates.separates_vectors(table, ReferenceMasker(table), load_settings(), ("skirt",))
    skirts = worn[worn.skirt_id != ""]
    for cond, view in (("garment", "skirt"), ("clothes", "clothes"), ("full", "full")):
        v = np.stack([vectors[view][i] for i in skirts.image_id])
        sim = v @ v.T
        np.fill_diagonal(sim, -np.inf)
        top1 = sim.argmax(1)
        right = skirts.skirt_id.to_numpy()[top1] == skirts.skirt_id.to_numpy()
        assert doc["prompts"]["skirt"]["conditions"][cond]["recall@1"] == pytest.approx(right.mean())
        wrong = ~right
        same_top = skirts.top_id.to_numpy()[top1] == skirts.top_id.to_numpy()
        errors = doc["prompts"]["skirt"]["partner_errors"][cond]  # metrics.same_shoot_errors on the partner column
        assert errors["errors"] == wrong.sum() and errors["same_shoot"] == (wrong & same_top).sum()
    # worn photo -> the skirts' product shots (cut out by their exact masks), from scratch
    shots = table[(table.view == "product") & (table.category == "skirt")]
    shop = doc["prompts"]["skirt"]["shop"]
    assert shop["gallery"] == len(shots) == skirts.skirt_id.nunique()
    g = np.stack([vectors["product_cut"][i] for i in shots.image_id])
    q = np.stack([vectors["skirt"][i] for i in skirts.image_id])
    found = shots.item_id.to_numpy()[(q @ g.T).argmax(1)] == skirts.skirt_id.to_numpy()
    assert shop["conditions"]["garment"]["recall@1"] == pytest.approx(found.mean())
    assert set(separates.shop_table(doc).index.get_level_values(0)) == {"skirt", "top", "trousers"}
    table_ = separates.separates_table(doc)
    assert table_.shape[0] == 9 and set(separates.deltas_table(doc, "map").columns) == {"map", "lo", "hi"}


def test_photos_whose_garment_is_not_found_are_left_out_of_every_condition_and_counted(table, env):
    """A masker that finds no skirt in a photo (here: the reference masker with that photo's skirt mask
    removed) leaves it out of all three conditions, counts it, and a prompt with nothing left is
    reported as not measured instead of failing."""
    from helpers.settings import load_settings

    t = table.copy()
    skirts = t.index[(t.view == "worn") & (t.skirt_id != "")]
    t.loc[skirts[:1], "skirt_mask_path"] = ""
    vectors, failures = separates.separates_vectors(t, ReferenceMasker(t), load_settings(), ("skirt",))
    assert list(failures.image_id) == [t.loc[skirts[0], "image_id"]] and list(failures.reason) == ["no_garment"]
    d = separates.measure_prompt(t, vectors, "skirt")
    assert d["missing"] == {"full": 0, "clothes": 0, "garment": 1} and d["photos"] == len(skirts) - 1
    assert d["conditions"]["garment"]["queries"] == d["conditions"]["full"]["queries"]
    t.loc[skirts, "skirt_mask_path"] = ""
    vectors, _ = separates.separates_vectors(t, ReferenceMasker(t), load_settings(), ("skirt",))
    doc = {"prompts": {"skirt": separates.measure_prompt(t, vectors, "skirt")}}
    assert doc["prompts"]["skirt"]["conditions"] is None and separates.separates_table(doc).empty
    assert separates.key_figures(doc) == {"skirt_missing": {"full": 0, "clothes": 0, "garment": len(skirts)}}


def test_measure_separates_refuses_an_unknown_prompt_and_a_missing_catalogue(tmp_path, outfits_dir):
    with pytest.raises(ValueError, match="prompts must be among top, skirt, trousers"):
        separates.measure_separates(outfits_dir, ("dress",))
    with pytest.raises(FileNotFoundError, match="python -m helpers sample --kind outfits"):
        load_outfits(tmp_path / "nothing")


# ---------------------------------------------------------------------------- notebook 08

def test_notebook_08_runs_and_records_the_measured_figures(outfits_dir, env, tmp_path):
    from helpers.workbook.notebooks import read_records, run_notebook

    out = tmp_path / "08_separates.ipynb"
    run_notebook(NOTEBOOK, out, {"catalogue": str(outfits_dir)})
    records = read_records(out)
    doc = separates.measure_separates(outfits_dir)  # the cache answers: the same vectors
    for p, d in doc["prompts"].items():
        assert records[f"{p}_recall@1"] == pytest.approx({c: d["conditions"][c]["recall@1"]
                                                          for c in separates.CONDITIONS})
        assert records[f"{p}_missing"] == dict.fromkeys(separates.CONDITIONS, 0)
        assert records[f"{p}_shop_recall@1"] == pytest.approx({c: d["shop"]["conditions"][c]["recall@1"]
                                                               for c in separates.CONDITIONS})
        assert records[f"{p}_delta_garment_vs_clothes"]["ci95"] == pytest.approx(
            d["delta_recall@1_garment_vs_clothes"]["ci95"])


# notebook 08's questionnaire: each answer's keywords are in the notebook's own text (as
# tests/test_questionnaires.py checks for notebooks 00-07)
ANSWERS_08 = {1: ["one garment", "the same skirt"], 2: ["different partner", "whatever the top"],
              3: ["all clothes", "covers more of it than the skirt"], 4: ["query's top", "chance"],
              5: ["exact masks", "not about mask errors"]}


def test_notebook_08_questionnaire_answers_are_in_its_text():
    import re

    import nbformat

    norm = lambda t: re.sub(r"\s+", " ", t).lower()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    quiz = next(c for c in nb.cells if c.source.lstrip().startswith("## Questionnaire")
                or "\n## Questionnaire" in c.source)
    asked = re.findall(r"^(\d+)\. \S", quiz.source.split("## Questionnaire", 1)[1].split("##", 1)[0], re.M)
    assert [int(q) for q in asked] == sorted(ANSWERS_08)
    own = norm("\n".join(c.source.split("## Questionnaire", 1)[0] for c in nb.cells
                         if "solution" not in c.metadata.get("tags", [])))
    missing = {q: [k for k in keys if norm(k) not in own] for q, keys in ANSWERS_08.items()}
    assert not any(missing.values()), missing
    assert not any(p in own for p in ("the original demo", "the issue", "issue #"))
