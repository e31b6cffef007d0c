"""Every `bench_*` function of the workbook: what `python -m helpers bench` (helpers.workbook.bench)
times and compares with the goals.

Why here and not beside the code they time: a benchmark is workbook tooling, not a step of the
pipeline; production modules stay free of timing code and its imports. Each function returns a
dict of figures and runs in private temporary caches, never the user's.
"""
from __future__ import annotations

import base64
import collections
import io
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from helpers import cost
from helpers.app import SearchApp
from helpers.cache import Cache
from helpers.catalog import load_catalog
from helpers.embedding import INPUT_SIZE, LocalEmbedder, export_onnx
from helpers.errors import MaskError
from helpers.index import HNSW, CatalogIndex, measure_index, exact_top_k, random_unit_vectors
from helpers.maskers.parser import ParserMasker
from helpers.maskpool import open_and_mask, run_after, encode_mask, mask_catalog
from helpers.pipeline import AfterMask, run_pipeline
from helpers.sample import generate_catalog
from helpers.settings import Settings, load_settings


def bench_generate(items: int = 48, views: int = 5, workers: int = 2) -> dict:
    """Time to draw the default 240-image catalogue with both cores."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        generate_catalog(Path(d) / "bench", items=items, views=views, seed=0, workers=workers, progress=False)
        dt = time.perf_counter() - t0
    n = items * views
    return {"catalog_images_per_s": round(n / dt, 2), "catalog_240_s": round(dt * 240 / n, 2)}


def bench_masking(catalog_path: Path | str | None = None, limit: int | None = None, repeats: int = 3,
                  quick: bool = False) -> dict[str, float]:
    """Local masks per second with a cold cache (process pool, both cores) and the speed-up of
    a fully cached re-run, medians of `repeats` rounds (one with `quick`). Each round uses a
    fresh private temporary cache, so it never touches the user's and "cold" really is cold."""
    settings = load_settings(masker="local", backend="local")
    path = Path(catalog_path) if catalog_path else settings.catalog
    table = load_catalog(path, settings).table
    if limit:
        table = table.head(limit)
    load_s = _model_load_s(settings)
    cold_s, warm_s, failures = [], [], 0
    for _ in range(1 if quick else repeats):
        with tempfile.TemporaryDirectory(prefix="bench-masks-") as tmp:
            cache = Cache(tmp)
            cold = mask_catalog(table, settings, cache=cache, progress=False)
            warm = mask_catalog(table, settings, cache=cache, progress=False)
        cold_s.append(cold.seconds)
        warm_s.append(max(warm.seconds, 1e-9))
        failures = len(cold.failures)
    cold_med, warm_med = float(np.median(cold_s)), float(np.median(warm_s))
    return {"masks_per_s_cold": round(len(table) / cold_med, 2),
            "mask_cached_speedup": round(cold_med / warm_med, 1),
            "mask_images": len(table), "mask_rounds": len(cold_s), "mask_failures_cold": failures,
            "mask_model_load_s": load_s}


def _model_load_s(settings: Settings) -> float:
    """Seconds to open the parser's ONNX session once its export exists (each mask worker pays
    this once; an export still missing is made first and not counted: it is once per machine)."""
    ParserMasker(cache_dir=settings.cache_dir)._session()      # export if missing, not timed
    t0 = time.perf_counter()
    ParserMasker(cache_dir=settings.cache_dir)._session()
    return round(time.perf_counter() - t0, 3)


class _SleepyClient:
    """A stand-in bedrock-runtime client for the benchmark only: each call sleeps like a
    network round trip and returns a valid Titan mask response (Stubber is not thread-safe)."""
    def __init__(self, delay_s: float, mask_png: bytes):
        self.delay_s = delay_s
        self.body = json.dumps({"images": [base64.b64encode(mask_png).decode()],
                                "maskImage": base64.b64encode(mask_png).decode(),
                                "error": None}).encode()

    def invoke_model(self, **_kwargs: Any) -> dict:
        from botocore.response import StreamingBody  # lazy: boto3 only for this benchmark

        time.sleep(self.delay_s)
        return {"body": StreamingBody(io.BytesIO(self.body), len(self.body)),
                "contentType": "application/json"}


def bench_stub_concurrency(n_images: int = 40, delay_s: float = 0.2,
                           concurrency: int = 4) -> dict:
    """Serial vs concurrent Bedrock masking against a client that sleeps `delay_s` per call.

    Shows that the bounded thread pool overlaps network waits: goal c4 <= 1/3 of serial.
    """
    from helpers.maskers.titan import BedrockMasker  # lazy: boto3 only for this benchmark

    mask = Image.new("L", (64, 96), 255)
    mask.paste(0, (16, 24, 48, 80))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    images = {f"img{i:03d}": Image.new("RGB", (64, 96), (i * 5 % 255, 80, 160))
              for i in range(n_images)}

    def run(conc: int) -> float:
        start = time.perf_counter()
        results, failures = cost.run_parallel(lambda im: masker.mask(im, "dress"), images, conc,
                                              f"stub c{conc}", progress=False)
        if len(results) != n_images or len(failures):
            raise RuntimeError(f"benchmark run failed: {failures}")
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory(prefix="bench-bedrock-") as scratch:  # fake calls are no real usage
        settings = Settings(backend="bedrock", concurrency=concurrency, cache_dir=Path(scratch))
        masker = BedrockMasker(settings, client=_SleepyClient(delay_s, buf.getvalue()))
        serial = run(1)
        parallel = run(concurrency)
    return {"bedrock_stub_serial_s": round(serial, 3),
            f"bedrock_stub_c{concurrency}_s": round(parallel, 3),
            "bedrock_stub_speedup": round(serial / parallel, 2)}


def bench_embedding(n_images: int = 64, batch_size: int = 32, repeats: int = 3,
                    cache_dir: Path | str | None = None, quick: bool = False) -> dict[str, float]:
    """Local embedding throughput at 224 px (median of `repeats`), ONNX vs eager torch.

    Uses generated 512x768 photos (no catalogue needed); preprocessing is included in both
    timings, so the figure is what the pipeline sees (CNN and colour histogram in both).
    `quick`: one timed run each.
    """
    import torch

    if quick:
        repeats = 1

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (768, 512, 3), dtype=np.uint8)) for _ in range(n_images)]
    emb = LocalEmbedder(cache_dir, batch_size=batch_size)  # default: the workbook cache (export reused)
    emb.embed(images[:2])  # export + warm-up outside the timing
    # ONNX first: torch's idle worker threads would otherwise compete with ONNX Runtime's
    onnx_s = [_timed(emb.embed, images) for _ in range(repeats)]
    old_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        emb.embed_torch(images[:2])
        torch_s = [_timed(emb.embed_torch, images) for _ in range(max(1, repeats - 1))]
    finally:
        torch.set_num_threads(old_threads)
    onnx_rate = n_images / statistics.median(onnx_s)
    torch_rate = n_images / statistics.median(torch_s)
    return {"embed_local_images_per_s": round(onnx_rate, 1),
            "embed_torch_images_per_s": round(torch_rate, 1),
            "embed_onnx_vs_torch_ratio": round(onnx_rate / torch_rate, 2),
            "embed_batch_size": batch_size, "embed_input_px": INPUT_SIZE}


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def bench_index(n: int = 10_000, dim: int = 1280, n_queries: int = 200, k: int = 10,
                quick: bool = False) -> dict[str, float]:
    """Build time for n x dim random unit vectors with the tuned HNSW, query p50 and recall@k
    against exact search (fresh random queries, one at a time). `quick`: 50 queries."""
    if quick:
        n_queries = 50
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    vectors = random_unit_vectors(n, dim, seed=0)
    queries = random_unit_vectors(n_queries, dim, seed=1)
    truth = exact_top_k(vectors, queries, k)
    tmp = tempfile.mkdtemp(prefix="bench-index-")
    try:
        client = chromadb.PersistentClient(path=tmp, settings=ChromaSettings(anonymized_telemetry=False))
        index = CatalogIndex(client, "bench-random", dim)
        ids = [str(i) for i in range(n)]
        t0 = time.perf_counter()
        index.upsert("full", ids, vectors)
        build_s = time.perf_counter() - t0
        recall, p50 = measure_index(index.collection("full"), queries, truth, k)
        client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"index_build_10k_s": round(build_s, 2), "index_query_p50_ms": p50,
            f"index_recall@{k}": recall, "index_n": n, "index_dim": dim,
            "index_hnsw": f"M={HNSW['max_neighbors']} efc={HNSW['ef_construction']} ef={HNSW['ef_search']} "
                          f"batch={HNSW['batch_size']}"}


def bench_pipeline(catalog: Path | str | None = None, repeats: int = 3, quick: bool = False) -> dict[str, float]:
    """Pipeline images/s with a cold cache, and the speed-up of a fully cached re-run: medians
    of `repeats` rounds (one with `quick`), each with a cold run and a cached re-run.

    Every round runs in a fresh private temporary cache and index, so the user's cache is
    untouched and "cold" really is cold (the ONNX export is made once per round before timing:
    it is set-up, not per image).
    """
    base = load_settings(backend="local", masker="local")
    catalog = Path(catalog) if catalog else base.catalog
    if not (catalog / "manifest.csv").is_file() and not any(catalog.glob("*")):
        raise FileNotFoundError(f"no catalogue at {catalog}: run `python -m helpers sample` first")
    colds, warms, exports = [], [], []
    for _ in range(1 if quick else repeats):
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            settings = base.replace(catalog=catalog, cache_dir=Path(tmp) / "cache",
                                    chroma_path=Path(tmp) / "chroma")
            t0 = time.perf_counter()   # both networks' ONNX files: once per machine, counted apart
            export_onnx(settings.cache_dir)
            ParserMasker(cache_dir=settings.cache_dir)._session()
            exports.append(time.perf_counter() - t0)
            cold = run_pipeline(settings, progress=False, index=False, reference=False)
            warm = run_pipeline(settings, progress=False, index=False, reference=False)
        colds.append(cold)
        warms.append(warm.timings_s["total"])
    n = len(colds[0].table)
    cold_s = float(np.median([c.timings_s["total"] for c in colds]))
    warm_s = float(np.median(warms))
    steps = ("load", "mask", "cut", "embed_full", "embed_garment")
    return {"pipeline_images": n,
            "pipeline_rounds": len(colds),
            "pipeline_cold_s": round(cold_s, 2),
            "pipeline_cold_images_per_s": round(n / cold_s, 1),
            "pipeline_cached_s": round(warm_s, 3),
            "pipeline_cached_images_per_s": round(n / warm_s, 1),
            "pipeline_cached_speedup": round(cold_s / warm_s, 1),
            "pipeline_model_export_s": round(float(np.median(exports)), 2),
            **{f"pipeline_cold_{step}_s": round(float(np.median([c.timings_s[step] for c in colds])), 2)
               for step in steps if step in colds[0].timings_s}}


class _TimedMethod:
    """A stand-in for a model object that adds the time of one method's calls to `clock[label]`
    (everything else passes through): how `bench_pipeline_budget` splits a worker's time."""
    def __init__(self, target: Any, method: str, clock: dict[str, float], label: str):
        self._target, self._method, self._clock, self._label = target, method, clock, label

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name != self._method:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self._clock[self._label] += time.perf_counter() - start

        return timed


def bench_pipeline_budget(catalog: Path | str | None = None, images: int = 240) -> dict[str, float]:
    """Where one cold image's time goes on one core, and the images/s that allows on
    `settings.workers` cores with no start-up and no contention: the ceiling the cold pipeline
    figure is measured against.

    Why: a mask worker does everything for one image in a row (decode, the parser network,
    the masker's own array work: edges, prompt, quality; cut-out, two ONNX embeddings, mask PNG,
    cache writes), so the cold rate can never beat workers / (time per image). This runs the worker's
    sequence (`open_and_mask`, `run_after` with `AfterMask`, `encode_mask`) in this process on
    one thread, on the first `images` catalogue photos (240: the images the cold pipeline figure
    runs), in a private temporary cache, and reports the mean milliseconds per step (means, not
    medians: throughput is set by the average image, and the steps add up to the total).
    """
    import cv2
    from threadpoolctl import threadpool_limits

    settings = load_settings(backend="local", masker="local")
    catalog = Path(catalog) if catalog else settings.catalog
    table = load_catalog(catalog, settings, validate=False).table.head(int(images))
    if table.empty:
        raise FileNotFoundError(f"no catalogue at {catalog}: run `python -m helpers sample` first")
    threads = cv2.getNumThreads()
    steps: dict[str, list[float]] = collections.defaultdict(list)
    try:
        cv2.setNumThreads(1)
        with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp, threadpool_limits(1):
            embedder = LocalEmbedder(tmp, threads=1)
            export_onnx(tmp)
            masker = ParserMasker(cache_dir=tmp)
            after = AfterMask(tmp, embedder)
            clock: dict[str, float] = collections.defaultdict(float)
            masker._net = _TimedMethod(masker._session(), "run", clock, "parser_net")
            embedder._session = _TimedMethod(embedder.session, "run", clock, "embed_onnx")
            warm = Path(table["image_path"].iloc[0]).read_bytes()  # first call: lazy imports
            after("warm-up", warm, *open_and_mask(masker, "warm-up", warm, "dress", settings))
            for image_id, path in table[["image_id", "image_path"]].itertuples(index=False):
                data = Path(path).read_bytes()
                clock.clear()
                t0 = time.perf_counter()
                try:
                    image, mask = open_and_mask(masker, str(image_id), data, "dress", settings)
                except MaskError:  # an image without a garment is not timed
                    continue
                t1 = time.perf_counter()
                run_after(after, str(image_id), data, image, mask)
                encode_mask(mask)
                t2 = time.perf_counter()
                steps["parser_net"].append(clock["parser_net"])
                steps["decode_and_mask_rest"].append(t1 - t0 - clock["parser_net"])
                steps["embed_onnx"].append(clock["embed_onnx"])
                steps["cut_embed_rest"].append(t2 - t1 - clock["embed_onnx"])
                steps["total"].append(t2 - t0)
    finally:
        cv2.setNumThreads(threads)
    ms = {name: round(1000 * float(np.mean(v)), 2) for name, v in steps.items()}
    workers = max(1, int(settings.workers))
    return {"budget_images": len(steps["total"]),
            **{f"budget_{name}_ms": value for name, value in ms.items()},
            "budget_workers": workers,
            "budget_ceiling_images_per_s": round(workers * 1000 / ms["total"], 1)}


def phone_photo(catalog: Path | str | None = None, size: tuple[int, int] = (3000, 4000)) -> bytes:
    """A 12-megapixel JPEG (quality 92) made from the first catalogue photo: what a phone uploads."""
    settings = load_settings(backend="local", masker="local")
    table = load_catalog(Path(catalog) if catalog else settings.catalog, settings, validate=False).table
    if table.empty:
        raise FileNotFoundError("no catalogue: run `python -m helpers sample` first")
    with Image.open(table["image_path"].iloc[0]) as img:
        photo = img.convert("RGB").resize(size, Image.BICUBIC)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def bench_large_photo(catalog: Path | str | None = None, repeats: int = 5, quick: bool = False) -> dict[str, float]:
    """One 3000 x 4000 photo masked on one thread (median of `repeats`): decoding apart, then the
    mask (network on the photo and its mirror, edges, prompt, quality, the mask at full size),
    and the network's share of it (the part that does not grow with the photo)."""
    import cv2
    from threadpoolctl import threadpool_limits

    from helpers.images import open_image

    data = phone_photo(catalog)
    settings = load_settings(backend="local", masker="local")
    masker = ParserMasker(cache_dir=settings.cache_dir)
    clock: dict[str, float] = collections.defaultdict(float)
    masker._net = _TimedMethod(masker._session(), "run", clock, "parser_net")
    threads = cv2.getNumThreads()
    decode, mask, net = [], [], []
    try:
        cv2.setNumThreads(1)
        with threadpool_limits(1):
            for _ in range(2 if quick else repeats):
                clock.clear()
                t0 = time.perf_counter()
                image = open_image(data)
                t1 = time.perf_counter()
                masker.mask(image, "dress")
                t2 = time.perf_counter()
                decode.append(t1 - t0)
                mask.append(t2 - t1)
                net.append(clock["parser_net"])
    finally:
        cv2.setNumThreads(threads)
    return {"mask_12mp_decode_s": round(float(np.median(decode)), 3),
            "mask_12mp_s": round(float(np.median(mask)), 3),
            "mask_12mp_parser_net_s": round(float(np.median(net)), 3)}


def bench_app(catalog: Path | str | None = None, repeats: int = 5, quick: bool = False) -> dict[str, float]:
    """How long one query takes in the app, offline (local backend), widgets included.

    - first: the first catalogue query of a fresh app (loads the ONNX model and opens Chroma);
    - catalogue: a catalogue image as query, both modes (its mask and vectors are cache hits);
    - upload: a photo the cache has never seen, both modes (masked, cut out and embedded anew).
    Builds (or re-opens through the cache) the index of `catalog` (default: the settings' one).
    """
    settings = load_settings(backend="local", masker="local")
    if catalog is not None:
        settings = settings.replace(catalog=Path(catalog))
    run_pipeline(settings, progress=False, reference=False)
    n = 2 if quick else repeats
    app = SearchApp(settings, auto=False)
    app.mode.value = "both"
    ids = list(app.catalog["image_id"].astype(str))
    first = app.select(ids[0]).seconds
    catalogue = [app.select(ids[(i + 1) * len(ids) // (n + 1)]).seconds for i in range(n)]
    uploads = []
    for i in range(n):
        # a catalogue photo with one pixel changed: a new file, so nothing is cached for it
        with Image.open(app.catalog["image_path"].iloc[i]) as img:
            photo = img.convert("RGB")
        photo.putpixel((0, 0), (i, 255 - i, 7))
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=92)
        view = app.upload_bytes(f"bench_{i}.jpg", buf.getvalue())
        if not view.ok:
            raise RuntimeError(f"upload query failed: {view.message}")
        uploads.append(view.seconds)
    big = phone_photo(catalog)
    big_uploads = []
    for i in range(n):   # a new file each time (one byte of JPEG comment differs): nothing cached
        view = app.upload_bytes(f"bench_12mp_{i}.jpg", big[:2] + b"\xff\xfe\x00\x03" + bytes([i]) + big[2:])
        if not view.ok:
            raise RuntimeError(f"12 MP upload query failed: {view.message}")
        big_uploads.append(view.seconds)
    return {"app_images": len(ids),
            "app_upload_12mp_s": round(float(np.median(big_uploads)), 3),
            "app_first_query_s": round(first, 3),
            "app_catalog_query_s": round(float(np.median(catalogue)), 3),
            "app_upload_query_s": round(float(np.median(uploads)), 3)}


def bench_secret_scan(cells: int = 40, figure_kb: int = 300, repeats: int = 5) -> dict[str, float]:
    """Seconds `secrets.check_file` takes over a large executed notebook (a base64 figure, a log
    and a 200-row HTML table per cell), clean and with one key pair printed (median of `repeats`).
    Every executed notebook of a run pays the clean figure; the runner scans all of it."""
    import os

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from helpers import secrets

    def notebook(leak: bool) -> nbformat.NotebookNode:
        def figure() -> str:
            return base64.b64encode(os.urandom(figure_kb * 750)).decode()

        nb = new_notebook(cells=[new_code_cell(f"show({i})", execution_count=i + 1, outputs=[
            new_output("stream", name="stdout", text=f"epoch {i} loss 0.123\n" * 50),
            new_output("display_data", data={"text/plain": "<Figure>", "image/png": figure()}),
            new_output("execute_result", execution_count=i + 1, data={
                "text/html": "<table>" + f"<tr><td>img_{i}.jpg</td><td>0.93</td></tr>" * 200 + "</table>",
                "text/plain": "table"})]) for i in range(cells)])
        if leak:  # AWS's documented example pair
            nb.cells[cells // 2].outputs[0].text += ("AKIAIOSFODNN7EXAMPLE "
                                                     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
        return nb

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, leak in (("clean", False), ("leak", True)):
            source = Path(tmp) / f"{name}.ipynb"
            nbformat.write(notebook(leak), source)
            figures["secret_scan_notebook_mb"] = round(source.stat().st_size / 1e6, 1)
            times = []
            for _ in range(repeats):
                copy = shutil.copy(source, Path(tmp) / "copy.ipynb")
                start = time.perf_counter()
                found, _ = secrets.check_file(copy, {})
                times.append(time.perf_counter() - start)
                if bool(found) != leak:
                    raise RuntimeError(f"secret scan of the {name} notebook found {found or 'nothing'}")
            figures[f"secret_scan_{name}_s"] = round(statistics.median(times), 2)
    return figures
