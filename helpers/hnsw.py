"""HNSW settings of the index and how to check them: recall@k against exact search, latency.

Why apart from helpers.index: the index stores and queries catalogue vectors; this module holds
the graph's tuned settings and the measurements behind them (notebook 05, `make bench`), which
work on any vectors, random ones included.
"""
from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from helpers.chromaef import precomputed

# Tuned on 10,000 random unit vectors in 1280-d (see the module docstring and notebook 05):
# M = 48 links per node and ef_search = 640 give recall@10 >= 0.99 with margin; batch_size
# (records held in Chroma's exact brute-force buffer before they are added to the graph,
# default 100) = 1000 adds to the graph in bigger, better-parallelised batches: about half the
# build time for 10,000 vectors.
HNSW: dict[str, Any] = {"space": "cosine", "max_neighbors": 48, "ef_construction": 100, "ef_search": 640,
                        "batch_size": 1000, "sync_threshold": 2000}

def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact cosine top-k (row indices) by brute force: the ground truth for recall."""
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    sims = q @ v.T
    k = min(k, v.shape[0])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def hnsw_tradeoff(vectors: np.ndarray, ef_values: Sequence[int] = (16, 64, 128, 256, 512),
                  *, queries: np.ndarray | None = None, n_queries: int = 100, k: int = 10,
                  hnsw: Mapping[str, Any] | None = None, seed: int = 0) -> pd.DataFrame:
    """recall@k against exact search and median query latency, for each `ef_search`.

    Builds one throw-away persistent collection (M and ef_construction from `hnsw`, default
    the tuned `HNSW`), then for each ef changes `ef_search` and reopens the client (Chroma
    applies a new ef_search on reload). Queries default to `n_queries` of the vectors
    themselves (a catalogue searched with its own images); pass `queries` for others.
    Returns DataFrame(ef, recall@k, p50_ms).
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    vectors = np.asarray(vectors, dtype=np.float32)
    if queries is None:
        rng = np.random.default_rng(seed)
        queries = vectors[rng.choice(len(vectors), size=min(n_queries, len(vectors)), replace=False)]
    queries = np.asarray(queries, dtype=np.float32)
    truth = exact_top_k(vectors, queries, k)
    ids = [str(i) for i in range(len(vectors))]
    config = {**HNSW, **(hnsw or {})}
    tmp = tempfile.mkdtemp(prefix="hnsw-tradeoff-")
    rows = []
    try:
        client = chromadb.PersistentClient(path=tmp, settings=ChromaSettings(anonymized_telemetry=False))
        col = client.create_collection("tradeoff", configuration={"hnsw": config}, embedding_function=precomputed())
        step = max(1, min(int(client.get_max_batch_size()), 4096))
        for s in range(0, len(ids), step):
            col.add(ids=ids[s:s + step], embeddings=vectors[s:s + step])
        for ef in ef_values:
            col.modify(configuration={"hnsw": {"ef_search": int(ef)}})
            client.close()
            client = chromadb.PersistentClient(path=tmp, settings=ChromaSettings(anonymized_telemetry=False))
            col = client.get_collection("tradeoff")
            recall, p50 = measure_index(col, queries, truth, k)
            rows.append({"ef": int(ef), f"recall@{k}": recall, "p50_ms": p50})
        client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return pd.DataFrame(rows)


def measure_index(col, queries: np.ndarray, truth: np.ndarray, k: int) -> tuple[float, float]:
    """One query at a time (what a search box does): mean recall@k and p50 latency in ms."""
    times, hits = [], []
    n = col.count()
    for q, want in zip(queries, truth):
        t0 = time.perf_counter()
        res = col.query(query_embeddings=q[None, :], n_results=min(k, n), include=[])
        times.append(time.perf_counter() - t0)
        got = {int(i) for i in res["ids"][0]}
        hits.append(len(got & {int(i) for i in want}) / len(want))
    return round(float(np.mean(hits)), 4), round(1000 * statistics.median(times), 3)


def random_unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Gaussian vectors scaled to unit length: the hardest case for an ANN index."""
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall_at_k(index_ids: Sequence[Sequence[str]], exact_ids: Sequence[Sequence[str]]) -> float:
    """Mean fraction of the exact top-k that the index returned."""
    return float(np.mean([len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(index_ids, exact_ids)]))
