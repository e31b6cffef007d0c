"""The search app's widgets: how a `SearchView` is drawn (panels, grids, cards) and worded.

Why apart from helpers.app: the app class owns state and behaviour (tested without a browser); this
module only turns a view into ipywidgets boxes with stable CSS classes (wb-grid, wb-result,
wb-same-item, wb-no-garment ...) that the real-browser test looks for.
"""
from __future__ import annotations

import html
from typing import Any, Callable, Mapping

from PIL import Image

from helpers.appview import ResultCard, SearchView, garment_words, mask_image, thumbnail_bytes

MODE_LABELS = {"garment": "garment only", "full": "full image", "both": "both side by side"}
QUERY_SIZE = (150, 200)
SAME_ITEM_COLOUR = "#1a7f37"


#: narrowest a result tile may get before the grid wraps it to the next row (its thumbnail scales down)
TILE_MIN_PX = 96


def grid_columns(k: int) -> str:
    """CSS columns for result tiles: as many TILE_MIN_PX columns as fit the panel, stretched to fill
    it, so the top-5 of a half-width panel stay one row (thumbnails a little smaller), a narrower
    panel wraps them, and nothing ever scrolls sideways. (A maximum column width would make the
    grid count columns by that maximum and wrap 4 + 1 where 5 fit.) `k` is kept for callers."""
    return f"repeat(auto-fill, minmax({TILE_MIN_PX}px, 1fr))"


def app_message(reason: str | None, text: str, prompt: str, *, both: bool = False) -> str:
    """A search problem in the app's words: what happened and what to do, no Python syntax."""
    garment = garment_words(prompt)
    if reason == "no_garment":
        if both:
            return (f"No {garment} found in this photo, so only the full-image results are shown. "
                    "Choose another garment or another photo to compare the two.")
        return (f"No {garment} found in this photo, so there is nothing to cut out. Choose another garment, "
                "“full image” mode, or another photo.")
    if reason == "prompt_not_indexed":
        command = text.split("`")[1] if text.count("`") >= 2 else "python -m helpers run --prompts dress," + prompt
        return (f"This catalogue is not indexed for {garment} yet, so it cannot be searched by {garment}. "
                f"Build that index once, in a terminal: {command}")
    return "The search could not run: " + text.replace("mode='full'", "“full image” mode")


def results_panels(view: SearchView, card: Callable[[ResultCard], Any]) -> list:
    """One panel per mode shown: a title (garment, same-item count) over a wrapping grid of `card`s,
    or the plain-words notice when no garment was found."""
    import ipywidgets as w

    panels = []
    for mode in (("garment", "full") if view.mode == "both" else (view.mode,)):
        cards = view.results.get(mode)
        if cards is None:
            continue
        # the tiles shrink a little, then wrap to the panel's width: every result stays in view
        # (a fixed k-column row hid #4 and #5 behind a sideways scroll when the panel was narrow)
        grid = w.GridBox([card(c) for c in cards], layout=w.Layout(
            grid_template_columns=grid_columns(len(cards)), grid_gap="8px", width="100%"))
        grid.add_class("wb-grid")
        title = f"<b>{MODE_LABELS[mode]}</b>"
        if mode == "garment":
            title += f" · {html.escape(garment_words(view.prompt))}"
        if view.query and view.query.item_id and cards:
            title += (f" · <span style='color:{SAME_ITEM_COLOUR}'>{view.same_item_count(mode)} of "
                      f"{len(cards)} same item</span>")
        body = grid
        if mode == "garment" and view.notice and not cards:
            body = w.HTML(f"<div style='color:#8a4b00;padding:8px 0;max-width:420px'>{html.escape(view.notice)}</div>")
            body.add_class("wb-no-garment")
        panel = w.VBox([w.HTML(title), body], layout=w.Layout(flex="1 1 340px", min_width="0",
                                                              margin="0 8px 8px 0"))
        panel.add_class(f"wb-results-{mode}")
        panels.append(panel)
    return panels


def query_cards(view: SearchView, path_of: Mapping[str, str]) -> list:
    """The query photo, and in garment modes its mask and the cut-out that was searched."""
    import ipywidgets as w

    query = view.query if view.ok or view.query else None
    if query is None or query.kind == "text":
        return []
    image = query.image if query.image is not None else Image.open(path_of[query.image_id])
    items = [("query" if query.kind == "catalog" else f"your photo: {query.label}", image, "wb-query-image")]
    if view.mode in ("garment", "both"):
        garment = garment_words(view.prompt)
        if view.query_mask is not None:
            items.append((f"{garment} mask", mask_image(view.query_mask), "wb-query-mask"))
        if view.query_cutout is not None:
            items.append((f"the {garment} cut out and searched", view.query_cutout, "wb-query-cutout"))
    out = []
    for caption, img, cls in items:
        box = w.VBox([w.Image(value=thumbnail_bytes(img, QUERY_SIZE), format="jpeg"),
                      w.HTML(f"<small>{html.escape(caption)}</small>")], layout=w.Layout(margin="0 12px 0 0"))
        box.add_class(cls)
        out.append(box)
    return out


def result_card(card: ResultCard, thumb: bytes):
    """One result tile: thumbnail, rank, score, item, a green frame when it is the same item."""
    import ipywidgets as w

    mark = ""
    if card.same_item:
        mark = f"<br><b style='color:{SAME_ITEM_COLOUR}'>✓ same item</b>"
    if card.is_query:
        mark += " <i>(query)</i>"
    caption = w.HTML(f"<div style='line-height:1.35;font-size:12px'>#{card.rank} · score {card.score:.3f}"
                     f"<br>item {html.escape(card.item_id)}{mark}</div>")
    image = w.Image(value=thumb, format="jpeg",
                    layout=w.Layout(max_width="100%", height="auto", object_fit="contain"))
    image.add_class("wb-thumb")
    border = f"3px solid {SAME_ITEM_COLOUR}" if card.same_item else "3px solid transparent"
    box = w.VBox([image, caption], layout=w.Layout(border=border, padding="2px", align_items="center",
                                                   min_width="0", overflow="hidden"))
    box.add_class("wb-result")
    if card.same_item:
        box.add_class("wb-same-item")
    return box
