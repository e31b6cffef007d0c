"""The ChromaDB index: two collections per embedder (garment cut-outs and full photos).

Why two collections: the workbook compares searching garment vectors with searching
full-photo vectors, so each view gets its own approximate-nearest-neighbour index. Why the
names carry the model id and dimension: vectors from different models or dimensions are not
comparable, so they must never meet in one collection.

Facts this module relies on (ChromaDB 1.5.9):
- We always pass our own vectors; collections are created with helpers.chromaef's `precomputed`
  and we never use `documents=` / `query_texts=` (the default embedding function would
  download a model, which fails offline).
- Cosine space: Chroma returns distance = 1 - cosine similarity; we report `score = 1 - d`.
- HNSW parameters are set per collection at creation. Chroma's defaults (M=16,
  ef_construction=100, ef_search=100) gave recall@10 of only ~0.4-0.85 against exact
  search; `HNSW` below is tuned so recall@10 >= 0.99 even on 10,000 random 1280-d vectors
  (the hardest case: no cluster structure). `hnsw_tradeoff` measures the trade-off.
- New records first go to an exact brute-force buffer of `batch_size` records, then into the
  graph; a collection smaller than that buffer is searched exactly.
- `ef_search` can be changed with `collection.modify(configuration=...)`, but a running
  client keeps the loaded index: the new value applies after the client is reopened.
- Local (persistent, on disk under `settings.chroma_path`) and client/server mode
  (`chromadb.HttpClient`, when `settings.chroma_host` is set) run the same code.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from helpers.chromaef import precomputed
from helpers.chromaserver import chroma_server
from helpers.embedding import get_embedder
from helpers.errors import DimensionMismatch, EmptyIndexError
from helpers.hnsw import HNSW, exact_top_k, hnsw_tradeoff, measure_index, random_unit_vectors, recall_at_k
from helpers.provenance import DEFAULT_PROMPT, catalog_scope, write_lock
from helpers.provenance import record as record_provenance
from helpers.settings import load_settings

VIEWS = ("garment", "full")

# Record metadata never includes these columns: they are local paths of derived files.
_SKIP_COLUMNS = {"garment_mask_path", "person_mask_path"}


# --------------------------------------------------------------------------- clients, names

def get_client(settings=None):
    """A Chroma client: HTTP to `settings.chroma_host:chroma_port` if a host is set (a shared
    team server), else a persistent client on disk under `settings.chroma_path`."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    if settings is None:
        settings = load_settings()
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port,
                                   settings=chroma_settings)
    Path(settings.chroma_path).mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


def describe_client(client) -> str:
    """Where a client's data lives, for people: "on disk at PATH" or "server at HOST:PORT"."""
    cs = client.get_settings()
    if "fastapi" in str(cs.chroma_api_impl).lower():
        return f"ChromaDB server at {cs.chroma_server_host}:{cs.chroma_server_http_port}"
    return f"ChromaDB on disk at {cs.persist_directory}" if cs.is_persistent else "in-memory ChromaDB"


def collection_name(model_id: str, dim: int, view: str, scope: str | None = None,
                    prompt: str | None = None) -> str:
    """E.g. "garment_local-effnet-lite0-onnx_1280" (+ "_<scope>", the catalogue's short name from
    `helpers.provenance.catalog_scope`); valid under Chroma's strictest name rule
    (3-63 chars of [A-Za-z0-9._-], alphanumeric at both ends, no "..").

    Each garment prompt has its own garment collection ("garment-skirt_..."): a skirt cut-out
    and a dress cut-out of the same photo are different vectors. The default prompt (dress)
    keeps the plain "garment_..." name, so indexes built before prompts had names stay valid;
    the full-photo collection is one for every prompt."""
    if view not in VIEWS:
        raise ValueError(f"view={view!r}: use one of {VIEWS}")
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", model_id).strip("._-")
    model = re.sub(r"\.{2,}", ".", model) or "model"
    head = view
    if view == "garment" and prompt and prompt.strip().lower() != DEFAULT_PROMPT:
        slug = re.sub(r"[^a-z0-9]+", "-", prompt.strip().lower()).strip("-")[:16].strip("-") or "prompt"
        if slug != prompt.strip().lower():  # free-text prompts: a short hash keeps them apart
            slug = f"{slug}-{hashlib.sha256(prompt.strip().lower().encode()).hexdigest()[:6]}"
        head = f"garment-{slug}"
    tail = f"_{scope}" if scope else ""
    name = f"{head}_{model}_{int(dim)}{tail}"
    if len(name) > 63:  # keep it unique: a short hash of the full model id
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
        keep = 63 - len(f"{head}__{digest}_{int(dim)}{tail}")
        name = f"{head}_{model[:keep].strip('._-')}_{digest}_{int(dim)}{tail}"
    return name


def record_metadata(row: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    """One catalogue row -> Chroma metadata: only str/int/float/bool, None and NaN dropped."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in row.items():
        if key in _SKIP_COLUMNS or value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            continue
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, (str, bool, int, float)):
            out[str(key)] = value
    return out


def normalise_where(where: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A friendlier `where`: {"colour": "red", "category": "dress"} becomes the
    {"$and": [...]} Chroma requires for several fields; None or {} means no filter."""
    if not where:
        return None
    where = dict(where)
    plain = [k for k in where if not k.startswith("$")]
    if len(where) > 1 and plain:
        return {"$and": [{k: v} for k, v in where.items()]}
    return where


# --------------------------------------------------------------------------- the index

class CatalogIndex:
    """Both collections of one embedder (model id + dimension) in one Chroma database."""

    def __init__(self, client, model_id: str, dim: int, *, hnsw: Mapping[str, Any] | None = None,
                 scope: str | None = None, prompt: str | None = None):
        self.client = client
        self.model_id = model_id
        self.dim = int(dim)
        self.scope = scope  # the catalogue's short name in the collection names (None: unscoped)
        self.prompt = prompt  # the garment whose cut-outs the garment collection holds (None: dress)
        self.hnsw = dict(HNSW if hnsw is None else hnsw)
        self._collections: dict[str, Any] = {}

    def for_prompt(self, prompt: str | None) -> "CatalogIndex":
        """The same index with the garment collection of another prompt (the full-photo
        collection is shared); itself when the prompt names the same collection."""
        if collection_name(self.model_id, self.dim, "garment", self.scope, prompt) == self.name("garment"):
            return self
        other = CatalogIndex(self.client, self.model_id, self.dim, hnsw=self.hnsw, scope=self.scope, prompt=prompt)
        if "full" in self._collections:
            other._collections["full"] = self._collections["full"]
        return other

    @classmethod
    def open(cls, settings=None, embedder=None, **kwargs) -> "CatalogIndex":
        """The index for `embedder` (default: the one settings choose) on the settings' client,
        in the collections of the settings' catalogue (`scope`, unless given) and garment prompt."""
        if settings is None:
            settings = load_settings()
        if embedder is None:
            embedder = get_embedder(settings)
        kwargs.setdefault("scope", catalog_scope(settings.catalog))
        kwargs.setdefault("prompt", settings.garment_prompt)
        return cls(get_client(settings), embedder.model_id, embedder.dim, **kwargs)

    def name(self, view: str) -> str:
        return collection_name(self.model_id, self.dim, view, self.scope, self.prompt)

    def exists(self, view: str) -> bool:
        """Whether the view's collection was ever created (without creating it)."""
        try:
            self.client.get_collection(self.name(view), embedding_function=precomputed(self.model_id, self.dim))
        except Exception:
            return False
        return True

    def collection(self, view: str):
        """The view's collection, created with the tuned HNSW settings on first use.

        Raises DimensionMismatch when an existing collection of that name holds vectors of
        another dimension or was made by another model.
        """
        if view in self._collections:
            return self._collections[view]
        if view not in VIEWS:
            raise ValueError(f"view={view!r}: use one of {VIEWS}")
        meta = {"model_id": self.model_id, "dim": self.dim, "view": view}
        col = self.client.get_or_create_collection(
            self.name(view), configuration={"hnsw": dict(self.hnsw)}, metadata=meta,
            embedding_function=precomputed(self.model_id, self.dim))
        self._check(col, view)
        self._tune(col)
        self._collections[view] = col
        return col

    def _tune(self, col) -> None:
        """An older collection searched with a smaller ef_search than `HNSW` gets the larger
        one (Chroma applies it when the collection is next loaded); M and ef_construction
        cannot change after creation."""
        want = self.hnsw.get("ef_search")
        try:
            with warnings.catch_warnings():  # chromadb notes "legacy embedding function config"
                warnings.simplefilter("ignore", DeprecationWarning)
                have = (col.configuration.get("hnsw") or {}).get("ef_search")
        except Exception:  # an older server that does not report its configuration
            return
        if want and have and have < want:
            col.modify(configuration={"hnsw": {"ef_search": int(want)}})

    def _check(self, col, view: str) -> None:
        found = col.metadata or {}
        if found.get("dim") not in (None, self.dim) or found.get("model_id") not in (None, self.model_id):
            raise DimensionMismatch(
                f"collection {col.name!r} holds {found.get('dim') or 'other'}-d vectors from "
                f"{found.get('model_id') or 'another model'}, not {self.dim}-d from {self.model_id}: use the "
                "embedder that built it, or delete the collection and re-run the pipeline")
        sample = col.get(limit=1, include=["embeddings"])
        embs = sample.get("embeddings")
        if embs is not None and len(embs) and len(embs[0]) != self.dim:
            raise DimensionMismatch(
                f"collection {col.name!r} holds {len(embs[0])}-d vectors, this index expects "
                f"{self.dim}-d ({self.model_id}): delete the collection and re-run the pipeline")

    def _built(self, view: str):
        """The view's collection if it was ever created, else None; reading never creates one
        (a search of a catalogue nobody indexed must not leave empty collections behind)."""
        if view in self._collections or self.exists(view):
            return self.collection(view)
        return None

    def count(self, view: str) -> int:
        """Records in the view; 0 for a view that was never built (nothing is created)."""
        col = self._built(view)
        return col.count() if col is not None else 0

    def counts(self) -> dict[str, int]:
        return {view: self.count(view) for view in VIEWS}

    def _batch_size(self) -> int:
        return max(1, min(int(self.client.get_max_batch_size()), 4096))

    def upsert(self, view: str, ids: Sequence[str], vectors: np.ndarray,
               metadatas: Sequence[Mapping[str, Any]] | None = None) -> dict[str, int]:
        """Insert new records, replace changed ones, leave identical ones alone.

        This makes indexing idempotent: the same catalogue twice leaves the same count (and
        writes nothing), and a changed image (new vector or metadata) replaces its record.
        Why not Chroma's `upsert` for everything: in 1.5.9 it is ~4x slower than `add` for
        new records (10,000 x 1280-d: ~50 s against ~12 s), so new ids go through `add`.
        Works in batches below Chroma's maximum batch size. Returns counts of
        added / updated / unchanged records.
        """
        vectors = self._vectors(vectors)
        ids = [str(i) for i in ids]
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be unique within one upsert")
        metas = None if metadatas is None else [record_metadata(m) or {"image_id": i}
                                                for i, m in zip(ids, metadatas)]
        col = self.collection(view)
        counts = {"added": 0, "updated": 0, "unchanged": 0}
        step = self._batch_size()
        for s in range(0, len(ids), step):
            b_ids, b_vecs = ids[s:s + step], vectors[s:s + step]
            b_metas = None if metas is None else metas[s:s + step]
            old = col.get(ids=b_ids, include=["embeddings", "metadatas"])
            old_at = {i: n for n, i in enumerate(old["ids"])}
            new_rows = [n for n, i in enumerate(b_ids) if i not in old_at]
            changed = [n for n, i in enumerate(b_ids) if i in old_at and not self._same(
                old["embeddings"][old_at[i]], old["metadatas"][old_at[i]], b_vecs[n],
                None if b_metas is None else b_metas[n])]
            for rows, write, key in ((new_rows, col.add, "added"), (changed, col.update, "updated")):
                if rows:
                    kwargs: dict[str, Any] = {"ids": [b_ids[n] for n in rows], "embeddings": b_vecs[rows]}
                    if b_metas is not None:
                        kwargs["metadatas"] = [b_metas[n] for n in rows]
                    write(**kwargs)
                    counts[key] += len(rows)
            counts["unchanged"] += len(b_ids) - len(new_rows) - len(changed)
        return counts

    @staticmethod
    def _same(old_vec, old_meta, new_vec, new_meta) -> bool:
        if not np.allclose(np.asarray(old_vec, dtype=np.float32), new_vec, atol=1e-6):
            return False
        return new_meta is None or dict(old_meta or {}) == dict(new_meta)

    def add_run(self, run, table: pd.DataFrame) -> dict[str, int]:
        """Index an `EmbedRun` (helpers.embedding) with each image's catalogue row as metadata."""
        if run.model_id != self.model_id or run.dim != self.dim:
            raise DimensionMismatch(f"vectors from {run.model_id} ({run.dim}-d) cannot go into the "
                                    f"index of {self.model_id} ({self.dim}-d)")
        rows = {str(r["image_id"]): r for r in table.to_dict("records")}
        metas = [rows.get(i, {"image_id": i}) for i in run.ids]
        return self.upsert(run.view, run.ids, run.vectors, metas)

    def prune(self, view: str, keep_ids: Iterable[str]) -> int:
        """Delete the records whose ids are not in `keep_ids` (images removed from the
        catalogue, or that failed this time); returns how many were removed."""
        keep = set(keep_ids)
        col = self.collection(view)
        stale = [i for i in col.get(include=[])["ids"] if i not in keep]
        step = self._batch_size()
        for s in range(0, len(stale), step):
            col.delete(ids=stale[s:s + step])
        return len(stale)

    def query(self, view: str, vectors: np.ndarray, k: int = 5,
              where: Mapping[str, Any] | None = None) -> list[pd.DataFrame]:
        """Nearest records for each query vector: one DataFrame per query with columns
        rank, image_id, item_id, score (cosine similarity), distance, image_path, then the
        rest of the metadata. `where` is a Chroma filter, e.g. {"category": "dress"} or
        {"$and": [{"colour": "red"}, {"category": "dress"}]}."""
        vectors = self._vectors(vectors)
        col = self._built(view)
        n = col.count() if col is not None else 0
        if n == 0:
            raise EmptyIndexError(
                f"the {view} collection {self.name(view)!r} is empty: build the index first with "
                "`python -m helpers run` (or notebooks 04 and 05)")
        res = col.query(query_embeddings=vectors, n_results=min(int(k), n),
                        where=normalise_where(where), include=["metadatas", "distances"])
        return [_result_frame(ids, dists, metas)
                for ids, dists, metas in zip(res["ids"], res["distances"], res["metadatas"])]

    def get_vectors(self, view: str, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Stored (ids, vectors) of a view, for exact-search comparisons and plots."""
        col = self._built(view)
        if col is None:
            return [], np.empty((0, self.dim), np.float32)
        got = col.get(ids=list(ids) if ids is not None else None, include=["embeddings"])
        vecs = np.asarray(got["embeddings"], dtype=np.float32).reshape(-1, self.dim)
        return list(got["ids"]), vecs

    def _vectors(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise DimensionMismatch(f"got vectors of shape {vectors.shape}; the index of "
                                    f"{self.model_id} expects (n, {self.dim})")
        return vectors

    def built_prompts(self) -> list[str]:
        """The garment prompts this catalogue's index holds a non-empty garment collection for
        (read from each collection's recorded prompt), in name order."""
        suffix = self.name("garment").split("_", 1)[1]
        found = []
        for col in self.client.list_collections():
            name = getattr(col, "name", col)
            if not (str(name).startswith("garment") and str(name).endswith("_" + suffix)):
                continue
            col = col if hasattr(col, "metadata") else self.client.get_collection(name, embedding_function=None)
            prompt = (col.metadata or {}).get("prompt") or (DEFAULT_PROMPT if name.startswith("garment_") else None)
            if prompt and col.count() > 0:
                found.append(str(prompt))
        return sorted(set(found))

    def __repr__(self) -> str:
        return f"CatalogIndex({self.model_id!r}, dim={self.dim}, collections={[self.name(v) for v in VIEWS]})"


def _result_frame(ids, dists, metas) -> pd.DataFrame:
    rows = []
    for rank, (image_id, dist, meta) in enumerate(zip(ids, dists, metas), start=1):
        meta = dict(meta or {})
        rows.append({"rank": rank, "image_id": image_id, "item_id": meta.pop("item_id", None),
                     "score": round(1.0 - float(dist), 6), "distance": float(dist),
                     "image_path": meta.pop("image_path", None),
                     **{k: meta[k] for k in sorted(meta) if k != "image_id"}})
    cols = ["rank", "image_id", "item_id", "score", "distance", "image_path"]
    return pd.DataFrame(rows, columns=None if rows else cols)


def index_catalog(table: pd.DataFrame, runs: Mapping[str, Any], *, settings=None,
                  index: CatalogIndex | None = None, prune: bool = True) -> dict[str, dict[str, int]]:
    """Put the vectors of `runs` ({"full": EmbedRun, "garment": EmbedRun}) into the index.

    With `prune`, records not in this run (removed or now-failing images) are deleted, so
    the index always mirrors the catalogue.
    Returns {view: {"added", "updated", "unchanged", "pruned", "count"}}.
    """
    if index is None:
        any_run = next(iter(runs.values()))
        settings = settings or load_settings()
        index = CatalogIndex(get_client(settings), any_run.model_id, any_run.dim,
                             scope=catalog_scope(settings.catalog))
    out = {}
    with write_lock(settings) if settings is not None else contextlib.nullcontext():
        for view, run in runs.items():
            written = index.add_run(run, table)
            pruned = index.prune(view, run.ids) if prune else 0
            out[view] = {**written, "pruned": pruned, "count": index.count(view)}
    return out


def index_view(settings, view: str, run, table: pd.DataFrame, *, prune: bool = True, scope: str | None = None,
               facts: Mapping[str, Any] | None = None, prompt: str | None = None):
    """Index one view's `EmbedRun` (with catalogue rows as metadata) into the collections of
    `scope` (default: the settings' catalogue) and return its Chroma collection; with `prune`,
    records of images not in `run` are removed; `facts` (what built it) go into the collection's
    metadata; a garment run goes into the collection of `prompt` (default: the settings' garment
    prompt). Used by the pipeline, which holds the write lock."""
    index = CatalogIndex(get_client(settings), run.model_id, run.dim,
                         scope=catalog_scope(settings.catalog) if scope is None else scope,
                         prompt=settings.garment_prompt if prompt is None else prompt)
    index.add_run(run, table)
    if prune:
        index.prune(view if view in VIEWS else run.view, run.ids)
    col = index.collection(run.view)
    if facts:
        record_provenance(col, facts)
    return col


def query_vectors(collection, vectors: np.ndarray, k: int = 10,
                  where: Mapping[str, Any] | None = None) -> list[list[str]]:
    """Ids of the k nearest records for each query vector (a thin batch wrapper for checks)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = collection.count()
    if n == 0:
        return [[] for _ in range(len(vectors))]
    out: list[list[str]] = []
    step = 256
    for s in range(0, len(vectors), step):
        res = collection.query(query_embeddings=vectors[s:s + step], n_results=min(int(k), n),
                               where=normalise_where(where), include=[])
        out.extend(list(ids) for ids in res["ids"])
    return out


# --------------------------------------------------------------------------- server mode



__all__ = ["CatalogIndex", "describe_client", "DimensionMismatch", "EmptyIndexError", "HNSW", "VIEWS", "get_client",
           "collection_name", "record_metadata", "normalise_where", "index_catalog", "index_view", "query_vectors", "chroma_server", "hnsw_tradeoff", "exact_top_k",
           "random_unit_vectors", "recall_at_k"]
