"""Scale, measured: a real ChromaDB server on loopback holding 100,000 vectors of 1,024 dimensions.

`bench_chroma_scale` starts `chroma run` on 127.0.0.1 in a temporary folder (helpers.index's
`chroma_server`), builds one cosine collection through `chromadb.HttpClient` with our own vectors
(`embedding_function=None`), and reports what a team that shares one server needs to know:
build time and rate, the server process's memory (resident now and at its peak), the size on disk,
single-query latency (p50, p95) over HTTP, and recall@k against exact numpy search.

The vectors are a clustered mixture, not uniform noise: unit vectors around `centres` random
cluster centres with Gaussian noise (`spread` = noise length / centre length), like image
embeddings, where similar garments form groups. Uniform random unit vectors in 1,024-d are the
worst case for HNSW (every point is almost equally far from every other); `kind="random"` measures
that instead. Queries are fresh draws from the same mixture (photos that are not in the index).

`projection` is the same arithmetic on paper for any catalogue size: raw float32 vectors, the HNSW
graph's links, and the embedding cost at a price per image.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from helpers.index import HNSW, chroma_server, exact_top_k, random_unit_vectors, recall_at_k

# Bytes per HNSW link: Chroma's hnswlib stores each neighbour as a 4-byte id, and layer 0 holds
# up to 2 x M of them per node (the upper layers add ~1/M of that again: ignored on paper).
LINK_BYTES = 4


def clustered_unit_vectors(n: int, dim: int, *, centres: int = 2000, spread: float = 0.75,
                           seed: int = 0, centre_seed: int = 12345) -> np.ndarray:
    """`n` unit vectors around `centres` random unit centres: centre + noise of length ~`spread`,
    renormalised (cosine to its centre ~ 1/sqrt(1 + spread^2): 0.8 at 0.75). The centres depend
    only on `centre_seed`, so an index and its queries (other `seed`) share them."""
    c = random_unit_vectors(centres, dim, seed=centre_seed)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    step = 20_000  # bounded temporary memory at 100 k x 1024
    for s in range(0, n, step):
        m = min(step, n - s)
        x = c[rng.integers(0, centres, size=m)]
        x = x + rng.standard_normal((m, dim)).astype(np.float32) * np.float32(spread / np.sqrt(dim))
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def process_memory_mb(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM from /proc) of a process and its
    children, in MiB; psutil's RSS where /proc is missing (peak then equals now)."""
    import psutil

    root = psutil.Process(pid)
    procs = [root] + root.children(recursive=True)
    rss = peak = 0.0
    for p in procs:
        status = Path(f"/proc/{p.pid}/status")
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            rss += int(fields["VmRSS"].split()[0]) / 1024
            peak += int(fields["VmHWM"].split()[0]) / 1024
        except (OSError, KeyError):
            now = p.memory_info().rss / 2**20
            rss, peak = rss + now, peak + now
    return {"rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1)}


def server_pid(port: int) -> int:
    """The pid of the `chroma run` child of this process that serves `port`."""
    import psutil

    for p in psutil.Process().children(recursive=True):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if "run" in cmd and "--port" in cmd and cmd[cmd.index("--port") + 1] == str(port):
            return p.pid
    raise RuntimeError(f"no `chroma run` child process serves port {port}")


def folder_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20, 1)


def projection(n: int, dim: int, *, m: int = HNSW["max_neighbors"], price_per_image: float = 0.00006,
               embed_images_per_s: float | None = None) -> dict[str, float]:
    """On paper: raw float32 vectors (GB), the HNSW graph's layer-0 links (n x 2M x 4 bytes),
    their sum (the least RAM one copy of the index needs), and embedding cost at a price per
    image (default: about $0.00006, the Titan Multimodal Embeddings G1 image price, unconfirmed).
    With `embed_images_per_s`, also the hours one such embedder needs."""
    raw = n * dim * 4
    links = n * 2 * m * LINK_BYTES
    out = {"n": n, "dim": dim, "M": m, "raw_vectors_gb": round(raw / 1e9, 2),
           "hnsw_links_gb": round(links / 1e9, 2), "index_ram_gb": round((raw + links) / 1e9, 2),
           "embed_cost_usd": round(n * price_per_image, 2)}
    if embed_images_per_s:
        out["embed_hours"] = round(n / embed_images_per_s / 3600, 1)
    return out


def bench_chroma_scale(n: int = 100_000, dim: int = 1024, n_queries: int = 200, k: int = 10,
                       ef_search: int = HNSW["ef_search"], batch: int = 2000, *,
                       kind: str = "clustered", centres: int = 2000, spread: float = 0.75,
                       ef_construction: int = HNSW["ef_construction"],
                       m: int = HNSW["max_neighbors"], quick: bool = False, seed: int = 0,
                       path: Path | str | None = None) -> dict[str, Any]:
    """Build an `n` x `dim` cosine collection on a real loopback Chroma server and measure it.

    Returns figures named `scale_*`: n, dim, data (what the vectors are), hnsw (settings used),
    build_s and vectors_per_s (all `add` calls, `batch` records each, until the last returns),
    first_query_s (the first query after the build), server_rss_mb and server_peak_rss_mb
    (the server process, after the queries), disk_mb (its folder), query_p50_ms / query_p95_ms
    (one query at a time over HTTP, the way a search box asks), recall@k against exact search
    with numpy, and hnsw_ram_estimate_mb (raw vectors + links on paper, for comparison).
    `quick`: 50 queries. `path`: keep the server's folder there instead of a deleted temp dir.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    if quick:
        n_queries = min(n_queries, 50)
    if kind == "clustered":
        vectors = clustered_unit_vectors(n, dim, centres=centres, spread=spread, seed=seed)
        queries = clustered_unit_vectors(n_queries, dim, centres=centres, spread=spread, seed=seed + 1)
        near = 1 / np.sqrt(1 + spread ** 2)
        data = f"clustered: {centres} centres, noise {spread} (cos to centre ~{near:.2f})"
    elif kind == "random":
        vectors = random_unit_vectors(n, dim, seed=seed)
        queries = random_unit_vectors(n_queries, dim, seed=seed + 1)
        data = "random unit vectors (worst case for HNSW)"
    else:
        raise ValueError(f"kind={kind!r}: use 'clustered' or 'random'")
    truth = [[str(i) for i in row] for row in exact_top_k(vectors, queries, k)]
    hnsw = {**HNSW, "ef_search": int(ef_search), "ef_construction": int(ef_construction),
            "max_neighbors": int(m)}
    ids = [str(i) for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        db = Path(path) if path else Path(tmp) / "db"
        with chroma_server(db, log=Path(tmp) / "chroma.log", timeout=120) as (host, port):
            pid = server_pid(port)
            client = chromadb.HttpClient(host=host, port=port,
                                         settings=ChromaSettings(anonymized_telemetry=False))
            col = client.create_collection("scale", configuration={"hnsw": hnsw}, embedding_function=None)
            step = max(1, min(int(batch), int(client.get_max_batch_size())))
            t0 = time.perf_counter()
            for s in range(0, n, step):
                col.add(ids=ids[s:s + step], embeddings=vectors[s:s + step])
            build_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            col.query(query_embeddings=queries[:1], n_results=k, include=[])
            first_query_s = time.perf_counter() - t0
            times, found = [], []
            for q in queries:
                t0 = time.perf_counter()
                res = col.query(query_embeddings=q[None, :], n_results=k, include=[])
                times.append(time.perf_counter() - t0)
                found.append(res["ids"][0])
            count = col.count()
            memory = process_memory_mb(pid)
        disk = folder_mb(db)
    ms = sorted(1000 * t for t in times)
    return {
        "scale_n": count, "scale_dim": dim, "scale_data": data,
        "scale_hnsw": f"M={m} efc={ef_construction} ef={ef_search} batch_size={hnsw['batch_size']}",
        "scale_build_s": round(build_s, 1), "scale_vectors_per_s": round(n / build_s, 0),
        "scale_add_batch": step, "scale_first_query_s": round(first_query_s, 2),
        "scale_server_rss_mb": memory["rss_mb"], "scale_server_peak_rss_mb": memory["peak_rss_mb"],
        "scale_disk_mb": disk,
        "scale_query_p50_ms": round(statistics.median(ms), 2),
        "scale_query_p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2),
        f"scale_recall@{k}": round(recall_at_k(found, truth), 4), "scale_queries": len(queries),
        "scale_hnsw_ram_estimate_mb": round((n * dim * 4 + n * 2 * m * LINK_BYTES) / 2**20, 1),
    }


__all__ = ["bench_chroma_scale", "clustered_unit_vectors", "projection", "process_memory_mb", "server_pid",
           "folder_mb", "LINK_BYTES"]
