"""A generated photoshoot catalogue of dresses, with exact ground truth, made in seconds.

Why generate: the machines have no internet and real fashion photos come without labels, yet the
workbook must *measure* whether cutting the garment out before embedding finds the same garment
better. So we draw one: every image is one item (a dress) worn by a figure in a **shoot**. A shoot
fixes the background, lighting, camera framing and pose, and photographs several items; each item
appears in several shoots, worn by different figures. Whole photos from one shoot therefore look
alike even when the dresses differ - the confounder real catalogues have - while an item's dress
keeps its colour, pattern and cut across shoots. Masks are exact because we drew every pixel.

Everything derives from one master seed: the plan (items, figures, shoots) is drawn in the
parent process; each image is rendered from its plan entry with its own seed, in worker
processes, so the output is byte-identical whatever the number of workers.

Modules: `plan` (items, figures, shoots from the seed), `body` (figure and dress geometry),
`render` (one photo and its masks), `product` (one product shot per item: the dress alone), `generate` (the catalogue on disk, `python -m helpers sample`),
`outfits` (the catalogue of separates: tops, skirts and trousers worn together, `--kind outfits`;
its plan in `outfit_plan`, its drawing in `outfit_render`).
"""
from helpers.sample.generate import ensure_sample, generate_catalog, is_complete, main, photo_distances
from helpers.sample.plan import (BACKGROUNDS, COLOURS, GENERATOR_VERSION, MANIFEST, MANIFEST_COLUMNS, META,
                                 PATTERNS, SILHOUETTES, SKIN_TONED, VIEWS, make_plan)

__all__ = ["BACKGROUNDS", "COLOURS", "GENERATOR_VERSION", "MANIFEST", "MANIFEST_COLUMNS", "META", "PATTERNS",
           "SILHOUETTES", "SKIN_TONED", "VIEWS", "ensure_sample", "generate_catalog", "is_complete", "main", "make_plan",
           "photo_distances"]
