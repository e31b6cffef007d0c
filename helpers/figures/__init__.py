"""Every figure the notebooks show, in one sub-package: `from helpers import figures`, then
`figures.image_grid(...)`, `figures.show_steps(...)`, `figures.bars_with_ci(...)`.

Why one package: figures of the same kind look the same across notebooks, and one `overlay`
(predicted vs true mask) serves all of them. Functions return a matplotlib `Figure` (or an
array) and never change global matplotlib settings. By notebook: `data` (01), `masks` (02, 03),
`retrieval` (04, 05, 07), `metrics` (06).
"""
from helpers.figures.data import tint_person, image_grid, item_sheet, shoot_sheet, mask_sheet, counts_chart
from helpers.figures.masks import overlay, show_parser_steps, show_steps, iou_histogram, diagnose, show_worst, show_forms, show_edges, show_grid, show_examples
from helpers.figures.metrics import bars_with_ci, recall_curves, breakdown_bars, same_shoot_bars, seed_vs_recall, seed_by_outcome, failure_gallery
from helpers.figures.retrieval import neighbour_rows, search_grid, search_view_figure, projection_panels, tradeoff_chart
from helpers.figures.tables import full_table

__all__ = ["bars_with_ci", "breakdown_bars", "counts_chart", "diagnose", "failure_gallery", "full_table", "image_grid", "iou_histogram", "item_sheet", "mask_sheet", "neighbour_rows", "overlay", "projection_panels", "recall_curves", "same_shoot_bars", "search_grid", "search_view_figure", "seed_by_outcome", "seed_vs_recall", "shoot_sheet", "show_edges", "show_examples", "show_forms", "show_grid", "show_parser_steps", "show_steps", "show_worst", "tint_person", "tradeoff_chart"]
