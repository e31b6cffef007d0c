"""Search the catalogue with a photo: `search()` for the app and notebooks, and the CLI
`python -m helpers search QUERY_IMAGE [--mode garment|full|both] [--prompt skirt] [--k 5] [--where key=value]`.

Why the query is masked and cut out in garment mode: the garment collection holds vectors of
cut-outs (the garment alone on white). A whole-photo query vector lives in a different part
of the space - it describes the room and the pose as much as the dress - so comparing it with
cut-out vectors throws away exactly what cutting out gained. The original demo made that
mistake; here the query goes through the same masker, the same cut and the same embedder
as the catalogue did (and their caches: a catalogue image used as a query costs no call).

Contract (the app relies on it): `search(query, mode, k, where, settings)` returns
`{mode: DataFrame}` with one entry per searched mode ("garment" and/or "full"); each frame
has columns rank, image_id, item_id, score (cosine similarity, higher = closer), distance,
image_path, then the record's other metadata. The garment frame carries the query's mask and
cut-out in `frame.attrs["query_mask"]` (bool HxW) and `frame.attrs["query_cutout"]` (PIL).
"""
from __future__ import annotations

import argparse
import difflib
import io
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np
import pandas as pd
from PIL import Image

from helpers import cutting, maskers, maskpool, provenance
from helpers.cache import Cache
from helpers.catalog import load_catalog
from helpers.embedding import embed_images, get_embedder
from helpers.errors import IndexMismatch, MaskError, SearchError
from helpers.images import ImageError, open_image
from helpers.index import CatalogIndex, EmptyIndexError, get_client
from helpers.settings import load_settings

MODES = ("garment", "full", "both")
QueryT = Union[Image.Image, Path, str, bytes]
QUERY_ID = "query"
FULL_MODE_HINT = "mode='full'"  # Python's spelling; the CLI prints `--mode full`


def search(query: QueryT, mode: str = "garment", k: int = 5, where: Mapping[str, Any] | None = None,
           settings=None, *, prompt: str | None = None, exclude: Iterable[str] | None = None, embedder=None,
           masker=None, index=None, cache=None, table: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The k most similar catalogue images to `query`, per mode.

    query: a photo (PIL image, path or bytes); on the Bedrock backend also free text
      (a string that is not an existing file), embedded with Titan's text encoder.
    mode: "garment" (query cut out, garment collection), "full" (whole photo, full-image
      collection) or "both" (both, side by side).
    where: a Chroma metadata filter, e.g. {"category": "dress"} or {"colour": "red"}.
    prompt: the garment to cut out of the query and search by ("dress", "top", "skirt",
      "trousers", "clothes"; default: settings.garment_prompt). The index must have been built
      for it (`python -m helpers run --prompts dress,skirt`), else SearchError "prompt_not_indexed".
      In "both" mode a query without that garment still gets its whole-photo results; the
      garment frame is then empty and says why in `attrs["no_garment"]`.
    exclude: image ids to leave out (e.g. the query itself when it is a catalogue image).
    embedder / masker / index / cache / table: injected for tests and notebooks; by default
      they come from `settings` (and are reused between calls).
    Raises SearchError (reason "empty_index", "no_garment", "not_an_image", ...).
    """
    if mode not in MODES:
        raise SearchError("bad_mode", f"mode={mode!r}: choose one of {', '.join(MODES)}")
    if settings is None:
        settings = load_settings()

    if isinstance(query, (str, Path)) and Path(query).is_dir():
        raise SearchError("is_a_directory", f"{query} is a folder, not a photo: pass one image file, e.g. "
                          f"python -m helpers search {_example_photo(Path(query))}")
    if isinstance(query, (str, Path)) and Path(query).exists() and not Path(query).is_file():
        raise SearchError("not_a_file", f"{query} is not a regular file (a pipe or a device is never read, it "
                          "could block or never end); give the path of a photo file")
    prompt = (prompt or settings.garment_prompt).strip()
    cache = cache or Cache(settings.cache_dir)
    embedder = embedder or _embedder(settings)
    index = index or _index(settings, embedder)
    indexes = {"full": index, "garment": index.for_prompt(prompt) if hasattr(index, "for_prompt") else index}
    modes = ("garment", "full") if mode == "both" else (mode,)
    _check_not_empty(indexes, modes, settings, prompt)
    _check_recipe(indexes, modes, settings, embedder, prompt)
    _check_where(indexes, modes, where)
    exclude = set(exclude or ())
    n = int(k) + len(exclude)

    if isinstance(query, str) and not Path(query).is_file() and _looks_like_text(query):
        vec = _text_vector(query, embedder)
        return {m: _finish(indexes[m].query(m, vec, n, where)[0], exclude, k) for m in modes}

    image, source = _open_query(query, settings)
    out: dict[str, pd.DataFrame] = {}
    for m in modes:
        if m == "full":
            vec = _vector({QUERY_ID: source}, embedder, "full", cache, settings)
            out[m] = _finish(indexes["full"].query("full", vec, n, where)[0], exclude, k)
        else:
            try:
                mask, cutout, quality = query_cutout(image, source, settings, masker=masker, cache=cache,
                                                     table=table, with_quality=True, prompt=prompt)
            except SearchError as err:
                if mode != "both" or err.reason != "no_garment":
                    raise
                # both side by side: the whole photo still answers; the garment side says why it cannot
                frame = pd.DataFrame(columns=["rank", "image_id", "item_id", "score", "distance", "image_path"])
                frame.attrs.update(prompt=prompt, no_garment=str(err))
                out[m] = frame
                continue
            vec = _vector({QUERY_ID: cutout}, embedder, "garment", cache, settings)
            frame = _finish(indexes["garment"].query("garment", vec, n, where)[0], exclude, k)
            frame.attrs["prompt"] = prompt
            frame.attrs["query_mask"] = mask
            frame.attrs["query_cutout"] = cutout
            frame.attrs["mask_quality"] = quality
            # a doubtful query mask (#14): the results are still shown, with this warning
            frame.attrs["warning"] = maskpool.doubtful_message(quality) if maskpool.is_doubtful(quality) else ""
            out[m] = frame
    return out


def query_cutout(image: Image.Image, source: Any, settings, *, masker=None, cache=None,
                 table: pd.DataFrame | None = None, with_quality: bool = False, prompt: str | None = None):
    """Mask and cut out a query exactly as the pipeline cuts the catalogue.

    Same masker (from settings), same cache key as `helpers.maskpool.mask_catalog` (image
    bytes + masker + prompt: `maskpool.mask_one_cached`), same cut (`cutting.garment_view`). With the
    reference masker the query must be a catalogue image (ground-truth masks exist only for
    those). Raises SearchError("no_garment", ...) when no garment is found. Returns (mask,
    cutout), or (mask, cutout, quality score or None) with `with_quality`. `prompt`: the garment
    to cut out (default: settings.garment_prompt).
    """
    prompt = prompt or settings.garment_prompt

    cache = cache or Cache(settings.cache_dir)
    image_id = None
    if masker is None:
        if settings.effective_masker == "reference":
            table = table if table is not None else _catalog_table(settings)
            masker = maskers.get_masker(settings, table)
        else:
            masker = _masker(settings)
    if getattr(masker, "model_id", "") == "reference":
        table = table if table is not None else _catalog_table(settings)
        by_path = {str(Path(p).resolve()): str(i) for i, p in zip(table["image_id"], table["image_path"])}
        image_id = by_path.get(str(Path(source).resolve())) if isinstance(source, (str, Path)) else None
    data = _query_bytes(source, image)
    try:
        mask, quality = maskpool.mask_one_cached(masker, image, data, prompt, cache,
                                                 image_id=image_id, with_quality=True)
        cutout = cutting.garment_view(image, mask)
    except MaskError as err:
        hint = (f" Try {FULL_MODE_HINT}, another photo, or another garment prompt than {prompt!r}."
                if err.reason == "no_garment" else "")
        raise SearchError(err.reason, f"the query could not be cut out: {str(err).rstrip('.')}.{hint}") from None
    return (mask, cutout, quality) if with_quality else (mask, cutout)


# --------------------------------------------------------------------------- internals

def _looks_like_text(query: str) -> bool:
    suffix = Path(query).suffix.lower()
    return suffix not in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def _text_vector(text: str, embedder) -> np.ndarray:
    if not hasattr(embedder, "embed_text"):
        raise SearchError("text_unsupported",
                          f"{text!r} is not an image file, and the {embedder.model_id} embedder "
                          "cannot embed text: give the path of a photo, or use backend='bedrock' "
                          "(Titan Multimodal) for text search")
    return np.asarray(embedder.embed_text([text]), dtype=np.float32)


def _open_query(query: QueryT, settings) -> tuple[Image.Image, Any]:
    """(RGB image, source for cache keys): paths stay paths so their keys match the pipeline's."""
    if isinstance(query, Image.Image):
        return (query if query.mode == "RGB" else query.convert("RGB")), query
    source = bytes(query) if isinstance(query, (bytes, bytearray)) else Path(query)
    try:
        image = open_image(source, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
    except ImageError as err:
        raise SearchError(err.reason, str(err)) from None
    return image, source


def _query_bytes(source: Any, image: Image.Image) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, (str, Path)):
        return Path(source).read_bytes()
    buf = io.BytesIO()  # an in-memory image: its pixels, deterministically PNG-encoded
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _vector(images: dict, embedder, view: str, cache, settings) -> np.ndarray:
    run = embed_images(images, embedder, view=view, cache=cache, settings=settings, progress=False)
    if not len(run.ids):
        row = run.failures.iloc[0]
        raise SearchError(row["reason"], f"the query could not be embedded: {row['message']}")
    return run.vectors


def _finish(frame: pd.DataFrame, exclude: set[str], k: int) -> pd.DataFrame:
    if exclude and len(frame):
        frame = frame[~frame["image_id"].isin(exclude)]
    frame = frame.head(int(k)).reset_index(drop=True)
    return frame.assign(rank=np.arange(1, len(frame) + 1)) if len(frame) else frame


def _check_not_empty(indexes: Mapping[str, Any], modes: Sequence[str], settings, prompt: str) -> None:
    """An index nobody built names the command that builds it; so does a catalogue indexed for
    other garments than `prompt` (its whole-photo collection is there, this garment's is not)."""
    for m in modes:
        index = indexes[m]
        if m == "garment" and index.count(m) == 0 and indexes["full"].count("full") > 0:
            built = index.built_prompts() if hasattr(index, "built_prompts") else []
            wanted = list(dict.fromkeys([*settings.prompts, *built, prompt]))  # metrics judge the first
            raise SearchError("prompt_not_indexed", (
                f"the index of {settings.catalog} was not built for the garment {prompt!r} "
                f"(built for: {', '.join(built) or 'no garment'}); build it with "
                f"`{provenance.run_command(settings, prompts=wanted)}`"))
        if index.count(m) == 0:
            raise SearchError("empty_index", str(EmptyIndexError(
                f"the {m} collection {index.name(m)!r} at {_where_index(index)} holds no index of the "
                f"catalogue {settings.catalog}: build the index first with `{provenance.run_command(settings)}` "
                "(or run notebooks 04 and 05)")))


def _check_recipe(indexes: Mapping[str, Any], modes: Sequence[str], settings, embedder, prompt: str) -> None:
    """Refuse to answer from collections that another catalogue content, masker, prompt or cut built."""
    want = provenance.recipe(settings, _listed_table(settings), embedder.model_id, prompt=prompt)
    for m in modes:
        try:
            provenance.check(indexes[m].collection(m), want, view=m,
                             fix=provenance.run_command(settings, prompts=list(dict.fromkeys([*settings.prompts, prompt]))))
        except IndexMismatch as err:
            raise SearchError("index_mismatch", str(err)) from None


def filter_keys(index, modes: Sequence[str] = ("garment",)) -> list[str]:
    """The metadata keys a `where` filter can use (read from a stored record of the index)."""
    keys: set[str] = set()
    for m in modes:
        got = index.collection(m).get(limit=1, include=["metadatas"])
        for meta in got.get("metadatas") or []:
            keys.update(k for k in (meta or {}) if k not in ("image_path",))
    return sorted(keys)


def _where_keys(where: Any) -> list[str]:
    if isinstance(where, Mapping):
        out = []
        for key, value in where.items():
            out.extend(_where_keys(value) if key in ("$and", "$or") else [] if key.startswith("$") else [key])
            if key.startswith("$") and key not in ("$and", "$or"):
                raise SearchError("bad_filter", f"filter operator {key!r} is not supported here: use "
                                  "key=value pairs (several --where are combined with AND)")
        return out
    if isinstance(where, (list, tuple)):
        return [k for term in where for k in _where_keys(term)]
    return []


def _check_where(indexes: Mapping[str, Any], modes: Sequence[str], where: Mapping[str, Any] | None) -> None:
    """A filter on a key no record has would silently find nothing: name the keys that exist."""
    if not where:
        return
    known = sorted({key for m in modes for key in filter_keys(indexes[m], (m,))})
    for key in _where_keys(where):
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise SearchError("bad_filter", f"no record has the key {key!r}"
                              + (f" (did you mean {close[0]!r}?)" if close else "")
                              + f"; filterable keys: {', '.join(known)}. E.g. --where {(close or known or ['colour'])[0]}=...")


def _example_photo(folder: Path) -> str:
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") and p.is_file():
            return str(p)
    return str(folder / "PHOTO.jpg")


def _where_index(index) -> str:
    try:
        return str(index.client.get_settings().persist_directory or "the Chroma server")
    except Exception:
        return "the Chroma index"


@lru_cache(maxsize=4)
def _embedder(settings):
    return get_embedder(settings)


@lru_cache(maxsize=4)
def _masker(settings):
    return maskers.get_masker(settings)


@lru_cache(maxsize=4)
def _listed_table(settings) -> pd.DataFrame:
    """The catalogue as listed (not validated), every view (worn photos and product shots): what
    its content hash is taken over."""
    return load_catalog(settings.catalog, settings=settings, validate=False, views=None).table


@lru_cache(maxsize=4)
def _catalog_table(settings) -> pd.DataFrame:
    return load_catalog(settings.catalog, settings=settings).table


def _index(settings, embedder):
    return _cached_index(settings, embedder.model_id, int(embedder.dim))


@lru_cache(maxsize=4)
def _cached_index(settings, model_id: str, dim: int):
    return CatalogIndex(get_client(settings), model_id, dim, scope=provenance.catalog_scope(settings.catalog))


# --------------------------------------------------------------------------- CLI

def parse_where(pairs: Sequence[str] | None) -> dict[str, Any] | None:
    """["category=dress", "colour=red"] -> a Chroma filter ($and of equalities); numbers and
    true/false become numbers and booleans."""
    if not pairs:
        return None
    terms = []
    for pair in pairs:
        if "=" not in pair:
            raise SearchError("bad_filter", f"--where {pair!r}: write key=value, e.g. --where category=dress")
        key, value = pair.split("=", 1)
        if not key.strip() or key.strip().startswith("$"):
            raise SearchError("bad_filter", f"--where {pair!r}: the key must be a metadata field such as "
                              "colour or category, e.g. --where colour=red (operators like $or are not supported)")
        terms.append({key.strip(): _coerce(value.strip())})
    return terms[0] if len(terms) == 1 else {"$and": terms}


def _coerce(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def format_results(results: Mapping[str, pd.DataFrame], columns: Sequence[str] = (
        "rank", "image_id", "item_id", "score", "image_path")) -> str:
    """The ranked results as plain-text tables, one per mode."""
    parts = []
    for mode, frame in results.items():
        cols = [c for c in columns if c in frame.columns]
        if len(frame):
            body = frame[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}")
        elif frame.attrs.get("no_garment"):
            body = f"(nothing to search: {frame.attrs['no_garment']})".replace(FULL_MODE_HINT, "--mode full")
        else:
            body = "(no results: loosen the --where filter)"
        title = f"{mode} ({frame.attrs['prompt']})" if mode == "garment" and frame.attrs.get("prompt") else mode
        parts.append(f"== {title} ==\n{body}")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """`python -m helpers search QUERY_IMAGE [--mode ...] [--prompt skirt] [--k 5] [--where key=value ...]`."""
    parser = argparse.ArgumentParser(prog="python -m helpers search",
                                     description="Find the catalogue images most similar to a photo.")
    parser.add_argument("query", help="path of the query photo")
    parser.add_argument("--mode", choices=MODES, default="garment",
                        help="garment: cut the garment out of the query and search cut-outs; "
                             "full: whole photo; both: side by side (default: garment)")
    parser.add_argument("--prompt", default=None, metavar="GARMENT",
                        help="the garment to cut out and search by: dress, top, skirt, trousers or clothes "
                             "(default: the settings' garment_prompt, dress); the index must be built for it "
                             "(python -m helpers run --prompts dress,skirt)")
    parser.add_argument("--k", type=int, default=5, help="how many results (default 5)")
    parser.add_argument("--where", action="append", metavar="KEY=VALUE",
                        help="metadata filter, e.g. --where category=dress (repeatable)")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error("--k must be at least 1")
    try:
        results = search(args.query, mode=args.mode, k=args.k, where=parse_where(args.where), prompt=args.prompt)
    except SearchError as err:
        message = str(err).replace(FULL_MODE_HINT, "--mode full")  # the CLI's spelling of the same advice
        print(f"search failed ({err.reason}): {message}", file=sys.stderr)
        return 2
    warning = results.get("garment", pd.DataFrame()).attrs.get("warning")
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(format_results(results))
    return 0


__all__ = ["search", "query_cutout", "SearchError", "parse_where", "format_results", "main", "MODES"]
