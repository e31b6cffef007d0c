"""load_catalog: every layout, every bad file skipped with a reason, and the 01_data notebook."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from PIL import Image

from helpers import catalog
from helpers.cache import Cache
from helpers.catalog import CatalogError, attribute_twins, load_catalog, make_example_folder, summary
from notebook_checks import assert_seen


@pytest.fixture(scope="module")
def generated(small_catalog):
    return load_catalog(small_catalog)


@pytest.fixture(scope="module")
def photos(generated) -> list[Path]:
    """Real photos from the generated catalogue to build other layouts with."""
    return [Path(p) for p in generated.table.image_path.head(6)]


def _bad_files(folder: Path, good: Path) -> dict[str, str]:
    """Write one file of each kind of trouble; return {file name: expected reason}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_bytes(b"this is a text file with a .jpg name")
    data = good.read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 3])
    return {"empty.jpg": "empty", "notes.jpg": "not_an_image", "cut.jpg": "truncated"}


def test_generated_catalogue_loads_with_absolute_paths_and_metadata(small_catalog, generated):
    table, skipped = generated  # unpacks like a tuple
    assert generated.layout == "generated" and skipped.empty
    assert len(table) == 48 and table.image_id.is_unique and table.item_id.nunique() == 12
    assert list(table.columns[:5]) == catalog.BASE_COLUMNS
    for col in ("image_path", "garment_mask_path", "person_mask_path"):
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in table[col])
    for col in ("shoot_id", "figure_id", "category", "colour", "pattern", "silhouette", "background", "bbox_x0"):
        assert col in table.columns
    assert list(skipped.columns) == ["path", "reason", "message"]


def test_generated_catalogue_with_a_damaged_image_skips_only_that_one(small_catalog, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(small_catalog, copy)
    (copy / "images" / "img0003.jpg").write_bytes(b"")
    (copy / "images" / "img0007.jpg").unlink()
    loaded = load_catalog(copy)
    assert len(loaded.table) == 46
    assert dict(zip(loaded.skipped.path.map(lambda p: Path(p).name), loaded.skipped.reason)) == {
        "img0003.jpg": "empty", "img0007.jpg": "unreadable"}


def test_own_photos_in_item_folders_with_bad_files_skipped_with_reasons(tmp_path, photos):
    root = tmp_path / "mine"
    for n, p in enumerate(photos[:4]):
        (root / f"dress-{n % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, root / f"dress-{n % 2}" / f"shot{n}.jpg")
    expected = _bad_files(root / "dress-0", photos[0])
    shutil.copyfile(photos[5], root / "loose.jpg")  # not inside an item folder
    Image.open(photos[4]).convert("RGBA").save(root / "dress-1" / "cutout.png")  # RGBA: converted, kept
    loaded = load_catalog(root)
    assert loaded.layout == "folders"
    assert sorted(loaded.table.item_id.unique()) == ["dress-0", "dress-1"]
    assert len(loaded.table) == 5 and loaded.table.garment_mask_path.isna().all()
    reasons = dict(zip(loaded.skipped.path.map(lambda p: Path(p).name), loaded.skipped.reason))
    assert reasons == {**expected, "loose.jpg": "no_item_id"}
    assert all(len(m) > 20 for m in loaded.skipped.message)


def test_folder_of_images_with_csv_keeps_extra_columns_and_skips_duplicates(tmp_path, photos):
    root = tmp_path / "csvcat"
    root.mkdir()
    for n, p in enumerate(photos[:4]):
        shutil.copyfile(p, root / f"p{n}.jpg")
    Image.open(photos[4]).convert("CMYK").save(root / "print.jpg")  # CMYK: converted, kept
    labels = pd.DataFrame({"image": ["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "print.jpg", "p1.jpg", "gone.jpg", "p3.jpg"],
                           "item_id": ["a", "a", "b", "b", "c", "a", "c", ""],
                           "colour": ["red", "red", "blue", "blue", "green", "red", "green", "blue"]})
    labels.to_csv(root / "labels.csv", index=False)
    loaded = load_catalog(root)
    assert loaded.layout == "csv"
    assert list(loaded.table.image_id) == ["p0", "p1", "p2", "p3", "print"]
    assert list(loaded.table.colour) == ["red", "red", "blue", "blue", "green"]
    assert sorted(loaded.skipped.reason) == ["duplicate_id", "no_item_id", "unreadable"]


def test_csv_without_the_required_columns_is_a_clear_error(tmp_path, photos):
    root = tmp_path / "badcsv"
    root.mkdir()
    shutil.copyfile(photos[0], root / "a.jpg")
    (root / "labels.csv").write_text("file,label\na.jpg,x\n")
    with pytest.raises(CatalogError, match="image.*item_id"):
        load_catalog(root)


def test_deepfashion_inshop_layout(tmp_path, photos):
    root = tmp_path / "inshop"
    names = ["img/WOMEN/Dresses/id_00000002/02_1_front.jpg", "img/WOMEN/Dresses/id_00000002/02_2_side.jpg",
             "img/WOMEN/Dresses/id_00000007/01_1_front.jpg", "img/MEN/Denim/id_00000080/01_4_full.jpg"]
    for name, p in zip(names, photos):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, root / name)
    (root / names[3]).write_bytes(b"")  # a broken download
    lines = [str(len(names)), "image_name item_id evaluation_status"]
    lines += [f"{n}    {n.split('/')[3]}    {s}" for n, s in zip(names, ["train", "query", "gallery", "train"])]
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    loaded = load_catalog(root)
    assert loaded.layout == "deepfashion"
    t = loaded.table
    assert list(t.item_id) == ["id_00000002", "id_00000002", "id_00000007"]
    assert list(t.split) == ["train", "query", "gallery"] and set(t.category) == {"Dresses"}
    assert t.image_id.iloc[0] == "WOMEN/Dresses/id_00000002/02_1_front"
    assert list(loaded.skipped.reason) == ["empty"]


def test_empty_or_missing_or_unlabelled_folders_are_clear_errors(tmp_path, photos):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="empty"):
        load_catalog(tmp_path / "empty")
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copyfile(photos[0], flat / "a.jpg")
    with pytest.raises(CatalogError, match="sub-folder"):
        load_catalog(flat)


def test_settings_limits_are_applied(small_catalog):
    from helpers.settings import load_settings

    settings = load_settings(toml_path=None, env={}, catalog=str(small_catalog), max_image_pixels=1000)
    loaded = load_catalog(None, settings)  # the path comes from settings.catalog
    assert loaded.table.empty and set(loaded.skipped.reason) == {"too_many_pixels"} and len(loaded.skipped) == 48


def test_summary_and_twins(generated):
    counts = summary(generated.table)
    assert counts["overview"]["images"] == 48 and counts["overview"]["items"] == 12
    assert counts["silhouette"].sum() == 12  # item attributes are counted once per item
    assert counts["background"].sum() == 48  # photo attributes once per photo
    twins = attribute_twins(generated.table)
    assert set(twins.differs_in) >= {"pattern", "colour"}
    row = twins.iloc[0]
    a = generated.table[generated.table.item_id == row.item_a].iloc[0]
    b = generated.table[generated.table.item_id == row.item_b].iloc[0]
    assert a[row.differs_in] != b[row.differs_in]


def test_example_folder_shows_a_skipped_file(generated, tmp_path):
    loaded = load_catalog(make_example_folder(generated.table, tmp_path / "ex"))
    assert len(loaded.table) == 4 and loaded.table.item_id.nunique() == 2
    assert list(loaded.skipped.reason) == ["empty"]


def test_data_notebook_runs_on_the_small_catalogue(workbook_env, tmp_path):
    from helpers.workbook import notebooks

    import tempfile

    leftovers = set(Path(tempfile.gettempdir()).glob("my_photos_*"))
    out = tmp_path / "01_data.ipynb"
    notebooks.run_notebook(notebooks.NOTEBOOK_DIR / "01_data.ipynb", out, {})
    assert set(Path(tempfile.gettempdir()).glob("my_photos_*")) == leftovers   # the example folder is removed
    assert_seen(out)  # every figure shown, no table cell cut
    records = notebooks.read_records(out)
    assert records["catalog_images"] == 48 and records["catalog_items"] == 12
    assert records["distance_same_shoot"] < records["distance_same_item"]
    nb = nbformat.read(out, as_version=4)
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 4  # counts chart, item sheet, shoot sheet, mask sheet
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     + str(o.get("data", {}).get("text/html", ""))  # the skipped table is shown whole, as HTML
                     for c in nb.cells for o in c.get("outputs", []))
    assert "48 images of 12 items; 0 skipped" in text and "empty" in text


def test_validation_is_remembered_per_file_state_and_redone_when_a_file_changes(small_catalog, tmp_path):
    import shutil

    from helpers.settings import load_settings

    folder = tmp_path / "photos"
    table = load_catalog(small_catalog).table
    for row in table.head(4).itertuples():
        (folder / row.item_id).mkdir(parents=True, exist_ok=True)
        shutil.copy(row.image_path, folder / row.item_id / f"{row.image_id}.jpg")
    settings = load_settings(toml_path=None, env={}, cache_dir=tmp_path / "cache")
    first = load_catalog(folder, settings)
    assert len(first.table) == 4 and first.skipped.empty
    assert Cache(settings.cache_dir).stats()["validated"]["entries"] == 4
    victim = Path(first.table.image_path[0])
    victim.write_bytes(victim.read_bytes()[:200])  # truncated after it was validated once
    second = load_catalog(folder, settings)
    assert len(second.table) == 3 and list(second.skipped.reason) == ["truncated"]
