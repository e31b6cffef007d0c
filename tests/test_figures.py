"""Figures are readable where the notebooks show them: tiles large enough to judge a mask edge,
legends on every panel at a readable size, the worst-mask colour key inside the figure."""
import numpy as np
import pandas as pd
from PIL import Image

from helpers import figures
from helpers.figures import masks as mask_figures

INLINE_DPI = 72  # JupyterLab's inline backend draws at about this many pixels per inch
MIN_TILE_PX = 240


def tile_px(ax) -> float:
    box = ax.get_position()
    w, h = ax.figure.get_size_inches()
    return min(box.width * w, box.height * h) * INLINE_DPI


def test_cutout_grid_tiles_are_large_enough_to_judge_an_edge():
    cuts = {f"img{i}": Image.new("RGB", (256, 256), "white") for i in range(8)}
    fig = figures.show_grid(cuts, n=8)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 8 and min(tile_px(ax) for ax in shown) >= MIN_TILE_PX * 0.9


def test_failure_gallery_tiles_are_large():
    img = Image.new("RGB", (256, 256), "grey")  # square, like the cut-outs
    row = {"image_id": "a", "item_id": "i1", "diagnosis": "look-alike: a different item with the same colour",
           "garment_top1_item": "i2", "garment_rank": 3, "full_right": False, "query_image": img,
           "query_mask": np.ones((256, 256), bool), "query_cutout": img, "garment_top1_image": img,
           "full_top1_image": img}
    fig = figures.failure_gallery([row, row])
    assert min(tile_px(ax) for ax in fig.axes) >= MIN_TILE_PX * 0.9
    assert "wrong item too" in [t.get_text().split("\n")[-1] for t in (ax.title for ax in fig.axes)]


def test_projection_panels_have_a_readable_legend_on_every_panel():
    rng = np.random.default_rng(0)
    points = {"full": rng.normal(size=(60, 2)), "garment": rng.normal(size=(60, 2))}
    labels = {"item": [f"item{i % 10}" for i in range(60)], "shoot": [f"s{i % 6}" for i in range(60)]}
    fig = figures.projection_panels(points, labels)
    legends = [ax.get_legend() for ax in fig.axes]
    assert all(legends) and len(legends) == 4
    assert min(t.get_fontsize() for lg in legends for t in lg.get_texts()) >= 8


def test_worst_masks_figure_carries_its_colour_key(tmp_path):
    truth = np.zeros((60, 40), bool)
    truth[10:50, 10:30] = True
    pred = np.roll(truth, 4, axis=1)
    Image.new("RGB", (40, 60), "grey").save(tmp_path / "a.png")
    Image.fromarray(truth.astype(np.uint8) * 255).save(tmp_path / "a_mask.png")
    table = pd.DataFrame({"image_id": ["a"], "image_path": [str(tmp_path / "a.png")],
                          "garment_mask_path": [str(tmp_path / "a_mask.png")], "colour": ["camel"],
                          "pattern": ["solid"], "background": ["studio"]})
    fig = mask_figures.show_worst(pd.DataFrame({"image_id": ["a"], "iou": [0.7]}), {"a": pred}, table, n=1)
    texts = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    assert any(t.startswith("green") for t in texts) and any(t.startswith("red") for t in texts) \
        and any(t.startswith("blue") for t in texts)


def test_real_photo_examples_show_iou_and_quality_and_skip_failures():
    from helpers import figures

    image = np.full((60, 40, 3), 200, np.uint8)
    truth = np.zeros((60, 40), bool)
    truth[10:50, 10:30] = True
    ok = {"image_id": "ccp-0005", "image": image, "pred": truth, "truth": truth, "iou": 1.0, "quality": 0.93}
    unscored = {**ok, "image_id": "ccp-0010", "quality": None}
    failed = {"image_id": "ccp-0020", "image": image, "pred": None, "truth": truth, "iou": 0.0, "reason": "no_garment"}
    fig = figures.show_examples([ok, failed, unscored])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["ccp-0005: IoU 1.00, quality 0.93", "ccp-0010: IoU 1.00"]   # the failure has no tile
    assert figures.show_examples([failed]) is None
