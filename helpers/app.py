"""The interactive search app: ipywidgets inside JupyterLab, all behaviour in one testable class.

Why a class that owns the widgets *and* a plain result model: a person drives the app with the
mouse, a test drives it by setting the same widget values and calling the same handlers, and both
read what happened from `app.view` (a `SearchView`: the query, per-mode result rows with their
same-item marks, the query's mask/cut-out, the status message). Nothing here needs a browser, so
almost every behaviour is a plain pytest; the real-browser test only proves that the widgets render
and react in JupyterLab.

Layout (ipywidgets boxes only, no hand-written JS; stable CSS classes for the browser test):

    ┌ wb-app ───────────────────────────────────────────────────────────────┐
    │ wb-controls: query picker · upload · mode · garment · top-k · filters │
    │ wb-info: backend / masker / embedder (read-only) · text-search note   │
    │ wb-status: "ready" / "searching …" (wb-busy) / messages (wb-error)    │
    │ wb-query: query photo [· mask · cut-out in garment mode]              │
    │ wb-results: [wb-results-garment grid] [wb-results-full grid]          │
    │             each card wb-result (+ wb-same-item), rank · score · item │
    │             the grid wraps to the panel's width (wb-grid), never a    │
    │             sideways scroll; "both" with no garment: wb-no-garment    │
    └───────────────────────────────────────────────────────────────────────┘
"""
from __future__ import annotations

import html
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pandas as pd
from PIL import Image

from helpers.appview import (K_DEFAULT, K_MAX, K_MIN, PROMPTS, THUMB_SIZE, Query, ResultCard, SearchView,
                             garment_words, thumbnail_bytes)
from helpers.appwidgets import (MODE_LABELS, QUERY_SIZE, SAME_ITEM_COLOUR, TILE_MIN_PX, app_message,  # noqa: F401
                                grid_columns, query_cards, result_card, results_panels)
from helpers.catalog import load_catalog
from helpers.embedding import get_embedder
from helpers.images import ImageError, open_image
from helpers.search import search
from helpers.settings import Settings, load_settings

MODES = ("garment", "full", "both")
ANY = "any"
FILTER_COLUMNS = ("category", "colour")

# A search function with the contract of helpers.search.search.
SearchFn = Callable[..., Mapping[str, pd.DataFrame]]


# ----------------------------------------------------------------------------- result model



# ----------------------------------------------------------------------------- the app

def _default_search() -> SearchFn:
    return search


def _catalog_table(settings: Settings) -> pd.DataFrame:
    return load_catalog(settings.catalog, settings=settings).table


class SearchApp:
    """The search app. Build it with settings (and optionally a catalogue table or a search
    function), display it in a notebook, or drive it from Python:

        app = SearchApp(settings)
        app.picker.value = "item003_v1"     # picking a query searches (when `auto`)
        app.mode.value = "both"
        app.view.results["garment"]          # -> list[ResultCard]

    `auto=True` re-runs the search whenever a control changes (what a person expects);
    `with app.hold():` changes several controls and searches once at the end.
    """

    def __init__(self, settings: Settings | None = None, *, catalog: pd.DataFrame | None = None,
                 search_fn: SearchFn | None = None, embedder: Any = None, auto: bool = True,
                 thumbs: dict[str, bytes] | None = None):
        import ipywidgets as w

        self.settings = settings or load_settings()
        # one embedder for the app's lifetime: its model loads once, on the first query
        self.embedder = embedder if embedder is not None else get_embedder(self.settings)
        self.catalog = (catalog if catalog is not None else _catalog_table(self.settings)).reset_index(drop=True)
        self._search = search_fn or _default_search()
        self.auto = auto
        self._held = 0
        self._pending = False
        self._clearing = False
        self._thumbs: dict[str, bytes] = {} if thumbs is None else thumbs  # shared by twins
        self._item_of = dict(zip(self.catalog["image_id"].astype(str), self.catalog["item_id"].astype(str)))
        self._path_of = dict(zip(self.catalog["image_id"].astype(str), self.catalog["image_path"].astype(str)))
        self.query: Query | None = None
        self.view = SearchView(message="Pick a catalogue image or upload a photo.",
                               prompt=self.settings.garment_prompt)

        # -- query
        self.picker = w.Dropdown(options=self._picker_options(), value=None, description="Catalogue",
                                 layout=w.Layout(width="330px"))
        self.picker.add_class("wb-picker")
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Upload photo")
        self.upload.add_class("wb-upload")
        # -- controls
        self.mode = w.ToggleButtons(options=[(MODE_LABELS[m], m) for m in MODES], value="garment",
                                    description="Mode", style={"button_width": "135px"})
        self.mode.add_class("wb-mode")
        # the garment to cut out of the query (the index must be built for it: `run --prompts`)
        prompts = list(PROMPTS)
        if self.settings.garment_prompt not in [v for v, _ in prompts]:
            prompts.insert(0, (self.settings.garment_prompt, self.settings.garment_prompt))
        self.prompt = w.Dropdown(options=[(label, value) for value, label in prompts],
                                 value=self.settings.garment_prompt, description="Garment",
                                 layout=w.Layout(width="210px"))
        self.prompt.add_class("wb-prompt")
        self.k = w.IntSlider(value=K_DEFAULT, min=K_MIN, max=K_MAX, step=1, description="Top-k",
                             continuous_update=False)
        self.k.add_class("wb-k")
        self.filters: dict[str, Any] = {}
        for col in FILTER_COLUMNS:
            if col in self.catalog.columns:
                values = sorted(str(v) for v in self.catalog[col].dropna().unique())
                dd = w.Dropdown(options=[ANY, *values], value=ANY, description=col.capitalize(),
                                layout=w.Layout(width="220px"))
                dd.add_class(f"wb-filter-{col}")
                if len(values) < 2:  # one value filters nothing: not offered (every image is a dress)
                    dd.layout.display = "none"
                self.filters[col] = dd
        self.search_button = w.Button(description="Search", icon="search", button_style="primary")
        self.search_button.add_class("wb-search")
        # -- read-only facts and the text search (Bedrock only)
        self.info = w.HTML(self._info_html())
        self.info.add_class("wb-info")
        self.text = w.Text(placeholder="describe a garment, e.g. red floral dress", description="Words",
                           continuous_update=False)
        self.text.add_class("wb-text")
        self.text_button = w.Button(description="Search words", icon="font")
        self.text_button.add_class("wb-text-search")
        self.text_note = w.HTML()
        self.text_note.add_class("wb-text-note")
        self.text_box = w.HBox([self.text, self.text_button])
        if self.text_available:
            self.text_note.value = "<i>Text search embeds your words with Titan Multimodal (one paid call).</i>"
        else:
            self.text_box.layout.display = "none"
            self.text_note.value = ("<i>Searching by words needs the Bedrock backend (Titan Multimodal "
                                    "embeds text and images in one space); the offline embedder only "
                                    "understands images, so the text box is hidden.</i>")
        # -- output
        self.status = w.HTML()
        self.status.add_class("wb-status")
        self.query_box = w.HBox(layout=w.Layout(align_items="flex-end"))
        self.query_box.add_class("wb-query")
        self.results_box = w.HBox(layout=w.Layout(align_items="flex-start", width="100%", flex_flow="row wrap"))
        self.results_box.add_class("wb-results")
        controls = w.VBox([
            w.HBox([self.picker, self.upload], layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.mode, self.prompt], layout=w.Layout(flex_flow="row wrap", align_items="center")),
            w.HBox([self.k, *self.filters.values(), self.search_button],
                   layout=w.Layout(flex_flow="row wrap", align_items="center")),
            self.text_box,
        ])
        controls.add_class("wb-controls")
        self.widget = w.VBox([controls, self.info, self.text_note, self.status, self.query_box,
                              self.results_box], layout=w.Layout(width="100%"))
        self.widget.add_class("wb-app")
        self._set_status(self.view.message)

        # -- handlers
        self.picker.observe(self.on_pick, names="value")
        self.upload.observe(self.on_upload, names="value")
        self.mode.observe(self.on_control, names="value")
        self.mode.observe(self._prompt_enabled, names="value")
        self.prompt.observe(self.on_control, names="value")
        self.k.observe(self.on_control, names="value")
        for dd in self.filters.values():
            dd.observe(self.on_control, names="value")
        self.search_button.on_click(lambda _b: self.run())
        self.text_button.on_click(lambda _b: self.on_text())
        self.text.observe(lambda _c: self.on_text(), names="value")  # Enter or leaving the box

    # -- display -------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- facts ---------------------------------------------------------------------------
    @property
    def text_available(self) -> bool:
        """Text search needs Titan Multimodal's text embedding (Bedrock backend)."""
        return self.settings.backend == "bedrock" and hasattr(self.embedder, "embed_text")

    def _picker_options(self) -> list[tuple[str, str]]:
        opts = []
        for row in self.catalog.itertuples(index=False):
            extra = " · ".join(str(getattr(row, c)) for c in FILTER_COLUMNS if hasattr(row, c))
            opts.append((f"{row.image_id}" + (f"  ({extra})" if extra else ""), str(row.image_id)))
        return opts

    def _info_html(self) -> str:
        s = self.settings
        embedder = f"{self.embedder.model_id} ({self.embedder.dim}-d)"
        catalogue = f"{len(self.catalog)} images, {self.catalog['item_id'].nunique()} items"
        return (f"<small><b>Backend</b> {html.escape(s.backend)} · <b>masker</b> "
                f"{html.escape(s.effective_masker)} (prompt “{html.escape(s.garment_prompt)}”) · "
                f"<b>embedder</b> {html.escape(embedder)} · <b>catalogue</b> {catalogue}</small>")

    def where(self) -> dict | None:
        """The metadata filter as a Chroma `where` clause (None when every filter is "any")."""
        terms = [{col: dd.value} for col, dd in self.filters.items() if dd.value not in (None, ANY)]
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else {"$and": terms}

    # -- handlers (what the widgets call; tests call them too) ----------------------------
    def on_pick(self, change: Mapping[str, Any] | None = None) -> None:
        image_id = self.picker.value
        if image_id is None or self._clearing:
            return
        self.query = Query("catalog", image_id, image_id=image_id, item_id=self._item_of.get(image_id))
        self._clear_upload()
        self._changed()

    def _clear_upload(self) -> None:
        """A catalogue photo is the query now: the upload button forgets its file, so it no longer
        says "Upload photo (1)" (and the same file can be uploaded again)."""
        if self.upload.value:
            self.upload.value = ()  # on_upload ignores an empty value

    def on_upload(self, change: Mapping[str, Any] | None = None) -> None:
        files = self.upload.value
        if not files:
            return
        f = files[-1] if isinstance(files, (tuple, list)) else next(iter(files.values()))
        name = str(f.get("name") or "upload")
        # a sign at once: reading a large photo, then cutting it out and embedding it, takes a second or more
        self._busy(True, Query("upload", name), f"⏳ Reading {html.escape(name)} …")
        try:
            data = bytes(f["content"])
            image = open_image(data, max_pixels=self.settings.max_image_pixels,
                               max_bytes=self.settings.max_image_bytes)
        except ImageError as err:
            message = str(err).replace("the uploaded image", name, 1)
            self.view = SearchView(mode=self.mode.value, k=self.k.value, message=message, error=err.reason,
                                   prompt=self.prompt.value)
            self._busy(False, None)
            self._render()
            return
        self.query = Query("upload", name, image=image, data=data)
        self._busy(False, None)
        self._set_status(f"{html.escape(name)} is ready to search.")  # (the search below replaces it)
        self._clear_picker()
        self._changed()

    def _clear_picker(self) -> None:
        """Show no catalogue photo once an upload is the query. Why a flag, not silenced observers:
        the Dropdown's own value -> index sync is an observer too; silencing it left the old index
        (and label) selected, so picking that photo again changed nothing."""
        self._clearing = True
        try:
            self.picker.value = None
        finally:
            self._clearing = False

    def on_control(self, change: Mapping[str, Any] | None = None) -> None:
        if self.query is not None:
            self._changed()

    def _prompt_enabled(self, change: Mapping[str, Any] | None = None) -> None:
        """The garment only matters when something is cut out: greyed out in "full image" mode."""
        self.prompt.disabled = self.mode.value == "full"

    def on_text(self) -> None:
        words = self.text.value.strip()
        if not self.text_available or not words:
            return
        self.query = Query("text", words, text=words)
        self._changed()

    def select(self, image_id: str) -> SearchView:
        """Pick a catalogue image as the query (same as choosing it in the dropdown)."""
        if image_id not in self._item_of:
            raise KeyError(f"{image_id!r} is not in the catalogue")
        if self.picker.value == image_id:
            self.on_pick()
        else:
            self.picker.value = image_id
        if not self.auto:
            self.run()
        return self.view

    def upload_bytes(self, name: str, data: bytes) -> SearchView:
        """Search with a photo's bytes, exactly as if it had been uploaded in the app."""
        from datetime import datetime, timezone

        self.upload.value = ({"name": name, "type": "", "size": len(data), "content": memoryview(data),
                              "last_modified": datetime.now(timezone.utc)},)
        if not self.auto and self.view.ok:
            self.run()
        return self.view

    def example_query(self) -> str:
        """A catalogue image whose item has other views (so the same-item marks can show)."""
        counts = self.catalog["item_id"].astype(str).value_counts()
        several = self.catalog[self.catalog["item_id"].astype(str).map(counts) > 1]
        return str((several if len(several) else self.catalog)["image_id"].iloc[0])

    def twin(self, **controls: Any) -> "SearchApp":
        """A second app on the same catalogue, embedder, search and thumbnails (nothing loads
        again), starting from this one's query and controls, changed by `controls` (mode, k,
        prompt, or a filter column): for demo cells that must not change the app a person uses.

            demo = app.twin(mode="both")     # app keeps its query, mode and results
        """
        other = SearchApp(self.settings, catalog=self.catalog, search_fn=self._search, embedder=self.embedder,
                          auto=self.auto, thumbs=self._thumbs)
        values = {"mode": self.mode.value, "k": self.k.value, "prompt": self.prompt.value,
                  **{col: dd.value for col, dd in self.filters.items()}, **controls}
        with other.hold():
            for name, value in values.items():
                widget = other.filters.get(name) if name in other.filters else getattr(other, name, None)
                if widget is None or not hasattr(widget, "value"):
                    raise KeyError(f"{name!r} is not a control of the app: use mode, k, prompt or "
                                   f"{', '.join(other.filters) or 'no filter'}")
                widget.value = value
            if self.query is not None and self.query.kind == "catalog":
                other.picker.value = self.query.image_id
            elif self.query is not None:
                other.query = self.query
                other._pending = True  # searched once, when the hold ends
        return other

    @contextmanager
    def hold(self) -> Iterator["SearchApp"]:
        """Change several controls, search once when the block ends."""
        self._held += 1
        try:
            yield self
        finally:
            self._held -= 1
            if self._held == 0 and self._pending:
                self._pending = False
                self.run()

    # -- running a search ----------------------------------------------------------------
    def _changed(self) -> None:
        if self._held:
            self._pending = True
        elif self.auto:
            self.run()

    def run(self) -> SearchView:
        """Search with the current query and controls; update the widgets; return the view."""
        query, mode, k, where = self.query, self.mode.value, int(self.k.value), self.where()
        prompt = self.prompt.value
        if query is None:
            self.view = SearchView(mode=mode, k=k, where=where, prompt=prompt,
                                   message="Pick a catalogue image or upload a photo first.")
            self._render()
            return self.view
        self._busy(True, query, self._busy_message(query, mode, prompt))
        start = time.perf_counter()
        view = SearchView(query=query, mode=mode, k=k, where=where, prompt=prompt)
        try:
            frames = self._call_search(query, mode, k, where, prompt)
            self._fill(view, frames)
        except Exception as err:  # shown in the app, never as a traceback
            view.error = getattr(err, "reason", type(err).__name__)
            view.message = app_message(view.error, str(err), prompt)
        view.seconds = time.perf_counter() - start
        if view.ok:
            view.message = (self._summary(view) + (f" ⚠ {view.warning}" if view.warning else "")
                            + (f" ⚠ {view.notice}" if view.notice else ""))
        self.view = view
        self._busy(False, query)
        self._render()
        return view

    @staticmethod
    def _busy_message(query: Query, mode: str, prompt: str) -> str:
        label = html.escape(query.label)
        if query.kind == "upload" and mode != "full":  # the slow case: a new photo is masked and embedded
            return f"⏳ Searching for {label}: cutting out the {html.escape(garment_words(prompt))} and embedding it …"
        if query.kind == "upload":
            return f"⏳ Searching for {label}: embedding the photo …"
        return f"⏳ Searching for {label} …"

    def _call_search(self, query: Query, mode: str, k: int, where: dict | None,
                     prompt: str | None = None) -> Mapping[str, pd.DataFrame]:
        """Catalogue queries go in by path (so the pipeline's cache keys match: no model call)
        and leave themselves out of the results; uploads go in as their bytes; text as text."""
        extra = {} if prompt is None else {"prompt": prompt}
        if query.kind == "catalog":
            return self._search(Path(self._path_of[query.image_id]), mode=mode, k=k, where=where,
                                settings=self.settings, embedder=self.embedder, exclude=[query.image_id], **extra)
        source = query.data if query.kind == "upload" else query.text
        return self._search(source, mode=mode, k=k, where=where, settings=self.settings,
                            embedder=self.embedder, **extra)

    def _fill(self, view: SearchView, frames: Mapping[str, Any]) -> None:
        query = view.query
        for mode, frame in frames.items():
            if not isinstance(frame, pd.DataFrame):
                continue
            cards = []
            for row in frame.head(view.k).itertuples(index=False):
                image_id, item_id = str(row.image_id), str(row.item_id)
                cards.append(ResultCard(
                    mode=mode, rank=int(row.rank), image_id=image_id, item_id=item_id,
                    score=float(row.score), image_path=str(getattr(row, "image_path", "") or self._path_of.get(image_id, "")),
                    same_item=bool(query.item_id is not None and item_id == query.item_id),
                    is_query=bool(query.image_id is not None and image_id == query.image_id)))
            view.results[mode] = cards
            if frame.attrs.get("no_garment"):
                view.notice = app_message("no_garment", frame.attrs["no_garment"], view.prompt, both=True)
            view.query_mask = _first(view.query_mask, frame.attrs.get("query_mask"))
            view.query_cutout = _first(view.query_cutout, frame.attrs.get("query_cutout"))
            view.warning = view.warning or frame.attrs.get("warning", "")
        for key, target in (("query_mask", "query_mask"), ("query_cutout", "query_cutout")):
            if key in frames and getattr(view, target) is None:
                setattr(view, target, frames[key])

    def _summary(self, view: SearchView) -> str:
        parts = []
        for mode, cards in view.results.items():
            text = f"{mode} ({garment_words(view.prompt)}): {len(cards)} results" if mode == "garment" \
                else f"{mode}: {len(cards)} results"
            if view.query and view.query.item_id:
                text += f", {view.same_item_count(mode)} the same item"
            parts.append(text)
        found = "; ".join(parts) if parts else "no results (try another filter)"
        return f"{view.query.label}: {found} ({view.seconds:.2f} s)"

    # -- rendering -----------------------------------------------------------------------
    def _busy(self, on: bool, query: Query | None, message: str | None = None) -> None:
        """While a search runs: the button is disabled and spins, the status says what is happening."""
        self.search_button.disabled = on
        self.search_button.icon = "spinner spin" if on else "search"  # fa-spinner fa-spin
        if on:
            self.widget.add_class("wb-busy")
            self._set_status(message or f"⏳ Searching for {html.escape(query.label)} …", busy=True)
        else:
            self.widget.remove_class("wb-busy")

    def _set_status(self, message: str, *, busy: bool = False, error: bool = False, note: bool = False) -> None:
        colour = "#b42318" if error else ("#555" if busy else ("#8a4b00" if note else "#222"))
        icon = "⚠ " if error else ""
        self.status.value = f'<div style="color:{colour};padding:4px 0">{icon}{message}</div>'
        (self.status.add_class if error else self.status.remove_class)("wb-error")

    def _render(self) -> None:
        view = self.view
        self._set_status(html.escape(view.message), error=not view.ok, note=bool(view.ok and view.notice))
        self.query_box.children = query_cards(view, self._path_of)
        self.results_box.children = results_panels(view, self._card)

    def _thumb(self, path: str) -> bytes:
        if path not in self._thumbs:
            with Image.open(path) as img:
                self._thumbs[path] = thumbnail_bytes(img)
        return self._thumbs[path]

    def _card(self, card: ResultCard):
        return result_card(card, self._thumb(card.image_path))

    def figure(self):
        """The current results as a static matplotlib figure (`figures.search_view_figure`),
        to keep beside the live widget in an executed or exported notebook."""
        from helpers.figures.retrieval import search_view_figure

        query = self.view.query
        photo = None
        if query is not None and query.kind != "text":
            photo = query.image if query.image is not None else self._path_of[query.image_id]
        return search_view_figure(self.view, photo)


def _first(current: Any, candidate: Any) -> Any:
    return current if current is not None else candidate
