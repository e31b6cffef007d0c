"""Running a masker over a catalogue: the mask cache, one image through it, and the worker pool.

Why apart from the maskers: every masker (offline or Bedrock) is run the same way - cache first
(a re-run makes zero calls, an interrupted run resumes), a cost line and budget check, a process
pool (CPU-bound maskers, `settings.workers`) or a thread pool (network-bound, `settings.concurrency`),
and failures as rows of a table instead of exceptions. The pool's public `after` hook lets the
pipeline cut and embed each fresh mask in the worker that made it.
"""
from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from helpers import cost
from helpers.cache import Cache, content_key
from helpers.errors import FAILURE_COLUMNS, ImageError, MaskError, WorkersFailed
from helpers.images import open_image
from helpers.maskers import DOUBTFUL_QUALITY, Masker, get_masker
from helpers.resources import die_with_parent, worker_count
from helpers.settings import Settings

CACHE_KIND = "masks"
#: after(image_id, image_bytes, image, mask): run in the worker on every freshly made mask
AfterHook = Callable[[str, bytes, Image.Image, np.ndarray], None]


# ---------------------------------------------------------------- mask <-> bytes

def encode_mask(mask: np.ndarray, quality: float | None = None) -> bytes:
    """A bool mask as a 1-bit PNG (compact: ~5-15 kB at 512x768, and viewable as a file); the
    masker's quality score, if it gives one, rides along as a PNG text chunk."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if quality is not None:
        info.add_text("quality", f"{float(quality):.4f}")
    buf = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=bool)).save(buf, "PNG", optimize=False, pnginfo=info)
    return buf.getvalue()


def mask_quality(data: bytes | None) -> float | None:
    """The quality score stored with an encoded mask (None: the masker gives none)."""
    if not data:
        return None
    with Image.open(io.BytesIO(data)) as im:
        value = getattr(im, "text", {}).get("quality")
    return None if value is None else float(value)


def is_doubtful(quality: float | None) -> bool:
    """A mask with a quality score below DOUBTFUL_QUALITY (see helpers.maskers.base)."""
    return quality is not None and quality < DOUBTFUL_QUALITY


def doubtful_message(quality: float) -> str:
    return (f"doubtful mask: quality {quality:.2f} < {DOUBTFUL_QUALITY} (the masker was unsure of many "
            "pixels; check the cut-out). The image is still used.")


def decode_mask(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("1"), dtype=bool)


def decode_mask_and_quality(data: bytes) -> tuple[np.ndarray, float | None]:
    """(mask, stored quality score or None) from one cache entry; raises if the entry is damaged,
    which Cache.get_decoded turns into a miss."""
    return decode_mask(data), mask_quality(data)


def mask_key(image_bytes: bytes, masker: Masker, prompt: str) -> str:
    """Cache key: image bytes + masker id + prompt + the masker's own result-changing params."""
    params = dict(getattr(masker, "cache_params", None) or {})
    return content_key(image_bytes, masker.model_id, prompt=prompt, **params)


def mask_one_cached(masker: Masker, image: Image.Image, data: bytes, prompt: str, cache: Cache, *,
                    image_id: str | None = None, with_quality: bool = False):
    """Mask one decoded image through the cache, under the key `mask_catalog` uses; with
    `with_quality` the answer is (mask, quality score or None).

    Why public and single: the search query and the catalogue must share keys (a catalogue
    photo searched as a query costs no call) and the same checks. Raises MaskError."""
    use_cache = getattr(masker, "use_cache", True)
    key = mask_key(data, masker, prompt)
    hit = cache.get_decoded(CACHE_KIND, key, decode_mask_and_quality, ".png") if use_cache else None
    if hit is not None:
        return hit if with_quality else hit[0]
    mask = _checked_mask(masker.mask(image, prompt, image_id=image_id), image)
    quality = getattr(masker, "last_quality", None)
    if use_cache:
        cache.put_bytes(CACHE_KIND, key, encode_mask(mask, quality), ".png")
    return (mask, quality) if with_quality else mask


def _checked_mask(mask: Any, image: Image.Image) -> np.ndarray:
    """The masker's answer as a bool array at the image's size, or MaskError("bad_response")."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        mask = mask.astype(bool)
    if mask.shape != (image.height, image.width):
        raise MaskError("bad_response", f"the masker returned a {mask.shape[1]}x{mask.shape[0]} mask for a "
                        f"{image.width}x{image.height} image")
    return mask


# ---------------------------------------------------------------- batch step

@dataclass
class MaskRun:
    """The result of masking a catalogue.

    masks: image_id -> bool array (True = garment); failures: one row per image without a mask
    (image_id, reason, message); calls: masker calls made now; cached: masks read from the cache;
    seconds: wall time; estimate: the cost estimate printed before the run."""

    masks: dict[str, np.ndarray]
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILURE_COLUMNS))
    calls: int = 0
    cached: int = 0
    seconds: float = 0.0
    estimate: Any = None
    model_id: str = ""
    prompt: str = ""
    quality: dict[str, float] = field(default_factory=dict)   # image_id -> score (maskers that give one)

    def warnings(self) -> pd.DataFrame:
        """Masks made but doubtful (quality < DOUBTFUL_QUALITY): image_id, reason "doubtful",
        message. Not failures: these images are still cut out, embedded and indexed."""
        rows = [{"image_id": i, "reason": "doubtful", "message": doubtful_message(q)}
                for i, q in self.quality.items() if is_doubtful(q)]
        return pd.DataFrame(rows, columns=FAILURE_COLUMNS)

    def __repr__(self) -> str:
        return (f"MaskRun(model_id={self.model_id!r}, prompt={self.prompt!r}, masks={len(self.masks)}, "
                f"failures={len(self.failures)}, calls={self.calls}, cached={self.cached}, "
                f"seconds={self.seconds:.2f})")


def _fail(image_id: str, reason: str, message: str) -> dict[str, str]:
    return {"image_id": image_id, "reason": reason, "message": message}


def _open(path_or_bytes, settings: Settings | None):
    if settings is None:
        return open_image(path_or_bytes)
    return open_image(path_or_bytes, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)


def _mask_one(masker: Masker, image_id: str, data: bytes, prompt: str, settings) -> np.ndarray:
    """Open one image and mask it; raises MaskError (also for unreadable images)."""
    return open_and_mask(masker, image_id, data, prompt, settings)[1]


def open_and_mask(masker: Masker, image_id: str, data: bytes, prompt: str, settings):
    """(image, mask) for one image; raises MaskError (also for unreadable images)."""
    try:
        image = _open(data, settings)
    except ImageError as err:
        raise MaskError(err.reason, str(err)) from None
    try:
        mask = masker.mask(image, prompt, image_id=image_id)
    except (MemoryError, cv2.error) as err:   # one image out of memory never ends the run
        raise MaskError("too_large", f"{image_id}: {image.width}x{image.height} could not be masked "
                        f"({type(err).__name__}: {str(err).strip().splitlines()[-1][:120]}); "
                        "shrink the photo or leave it out") from None
    return image, _checked_mask(mask, image)


def run_after(after, image_id: str, data: bytes, image, mask: np.ndarray) -> None:
    """Run the caller's follow-up step on a fresh mask while the image is still decoded (the
    pipeline caches the cut-out here). Best effort: a failure is left to the later stage,
    which redoes that image and reports why."""
    if after is None:
        return
    try:
        after(image_id, data, image, mask)
    except Exception:  # noqa: BLE001 - the cut stage redoes and reports this image
        pass


# Worker-process state: one masker per process, its models created lazily on first use.
_WORKER: dict[str, Any] = {}


def _worker_init(masker_bytes: bytes, settings, after=None, parent_pid: int | None = None) -> None:
    import pickle

    die_with_parent(parent_pid)  # a killed notebook or CLI takes its workers with it
    _WORKER["masker"] = pickle.loads(masker_bytes)  # a fresh copy: no models shared across fork
    _WORKER["settings"] = settings
    _WORKER["after"] = after
    # one thread per worker: the pool already keeps every core busy, and OpenCV's / OpenBLAS's
    # own thread pools on top only add switching (results are the same either way)
    cv2.setNumThreads(1)
    try:
        from threadpoolctl import threadpool_limits

        _WORKER["threads"] = threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl is pinned in requirements.in
        pass


def _worker_task(task: tuple[str, str, bytes, str]) -> tuple[str, bytes | None, tuple[str, str] | None]:
    image_id, key, data, prompt = task
    try:
        image, mask = open_and_mask(_WORKER["masker"], image_id, data, prompt, _WORKER["settings"])
        run_after(_WORKER.get("after"), image_id, data, image, mask)
        return image_id, encode_mask(mask, getattr(_WORKER["masker"], "last_quality", None)), None
    except MaskError as err:
        return image_id, None, (err.reason, str(err))


def _cost_line(masker: Masker, todo: int, cached: int, settings) -> Any:
    """Print the cost line and stop if over budget (helpers.cost); returns the estimate."""
    est = cost.estimate(todo + cached, cached, masker.price_per_call, f"Garment masks ({masker.model_id})")
    print(est)
    cost.check_budget(est, settings.max_spend_usd)
    return est


def mask_catalog(table: pd.DataFrame, settings: Settings, masker: Masker | None = None,
                 cache: Cache | None = None, progress: bool = True, prompt: str | None = None,
                 after: AfterHook | None = None) -> MaskRun:
    """Mask every image of the catalogue `table` (columns image_id, image_path).

    Cached masks are read, not recomputed; the rest run in a process pool (`settings.workers`,
    offline maskers) or a thread pool (`settings.concurrency`, Bedrock). Every finished mask is
    written to the cache at once, so an interrupted run resumes where it stopped. Images that
    cannot be masked become rows of `failures`; the batch goes on.

    `after(image_id, image_bytes, image, mask)`: a picklable follow-up run on every freshly made
    mask in the same worker, while the image is still decoded (the pipeline cuts the garment out
    and embeds it there instead of decoding every image again in one process). Best effort: an
    exception in it is ignored, the later stage redoes and reports that image."""
    from helpers.progress import tqdm

    start = time.perf_counter()
    masker = masker if masker is not None else get_masker(settings, table)
    prompt = prompt if prompt is not None else settings.garment_prompt
    cache = cache if cache is not None else Cache(settings.cache_dir)
    use_cache = getattr(masker, "use_cache", True)
    masks: dict[str, np.ndarray] = {}
    quality: dict[str, float] = {}
    failures: list[dict[str, str]] = []
    todo: list[tuple[str, str, bytes, str]] = []
    cached = 0
    for image_id, image_path in table[["image_id", "image_path"]].itertuples(index=False):
        image_id = str(image_id)
        try:
            data = Path(image_path).read_bytes()
        except OSError as err:
            failures.append(_fail(image_id, "unreadable", f"{image_path}: cannot be read ({err}); "
                                  "check the catalogue folder"))
            continue
        key = mask_key(data, masker, prompt)
        hit = cache.get_decoded(CACHE_KIND, key, decode_mask_and_quality, ".png") if use_cache else None
        if hit is not None:
            masks[image_id], q = hit
            if q is not None:
                quality[image_id] = q
            cached += 1
        else:
            if not todo and masker.parallel == "processes" and settings.workers > 1:
                prestart_pool()  # it loads the maskers while this loop reads and hashes the rest
            todo.append((image_id, key, data, prompt))
    estimate = _cost_line(masker, len(todo), cached, settings)

    def store(image_id: str, key: str, png: bytes | None, mask: np.ndarray | None) -> None:
        if png is None:
            png = encode_mask(mask, getattr(masker, "last_quality", None))
        if use_cache:
            cache.put_bytes(CACHE_KIND, key, png, ".png")
        masks[image_id] = mask if mask is not None else decode_mask(png)
        if (q := mask_quality(png)) is not None:
            quality[image_id] = q

    calls = 0
    bar = tqdm(total=len(todo), desc=f"masks ({masker.model_id})", disable=not progress or not todo)
    try:
        if masker.parallel == "processes" and settings.workers > 1 and len(todo) > 1:
            calls = _run_processes(masker, todo, settings, store, failures, bar, after)
        elif masker.parallel == "threads" and settings.concurrency > 1 and len(todo) > 1:
            calls = _run_threads(masker, todo, settings, store, failures, bar, after)
        else:
            for image_id, key, data, p in todo:
                calls += 1
                try:
                    image, mask = open_and_mask(masker, image_id, data, p, settings)
                except MaskError as err:
                    failures.append(_fail(image_id, err.reason, str(err)))
                else:
                    store(image_id, key, None, mask)
                    run_after(after, image_id, data, image, mask)
                bar.update(1)
    finally:
        bar.close()
    order = {str(i): n for n, i in enumerate(table["image_id"])}
    masks = dict(sorted(masks.items(), key=lambda kv: order.get(kv[0], 0)))
    return MaskRun(masks=masks, failures=pd.DataFrame(failures, columns=FAILURE_COLUMNS), calls=calls,
                   cached=cached, seconds=time.perf_counter() - start, estimate=estimate,
                   model_id=masker.model_id, prompt=prompt,
                   quality={i: quality[i] for i in masks if i in quality})


def _pool_context():
    """A forkserver context: workers are forked from a clean server process that has imported
    the maskers (and mediapipe, where the pose extra is installed) but never run them. Plain fork
    is unsafe once the parent has used mediapipe or ONNX Runtime (their threads and allocator
    state do not survive a fork: "malloc(): unaligned tcache chunk"), and spawn would re-import
    everything for every pool. The run-time environment has no mediapipe: it is preloaded only
    where installed."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():  # pragma: no cover - Windows
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    # everything a worker runs is imported once, in the server, before any worker is forked
    # (the pipeline's workers also cut and embed: onnxruntime alone takes ~0.2 s to import)
    from helpers.extras import available

    ctx.set_forkserver_preload(["helpers.maskpool", "helpers.maskers.parser", "helpers.maskers.pose",
                                *(["mediapipe"] if available("mediapipe") else []), "cv2", "onnxruntime",
                                "helpers.cutting", "helpers.embedding", "helpers.pipeline"])
    return ctx


def prestart_pool() -> None:
    """Start the forkserver (it imports OpenCV, ONNX Runtime and the maskers) without waiting
    for it; the pool's workers are forked from it once it is ready. A no-op when it runs."""
    ctx = _pool_context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


WORKER_CHUNK = 2  # images per worker task: fewer round trips, and the last tasks still share out evenly


def _worker_chunk(tasks: list[tuple[str, str, bytes, str]]) -> list[tuple[str, bytes | None, tuple[str, str] | None]]:
    return [_worker_task(task) for task in tasks]


def _run_processes(masker, todo, settings, store, failures, bar, after=None) -> int:
    """Mask `todo` in worker processes, WORKER_CHUNK images per task, results as they finish.

    A `concurrent.futures` pool, not `multiprocessing.Pool`: when a worker dies (most often
    because it re-ran a script that starts the workbook without an `if __name__ ==
    "__main__":` guard) it reports a broken pool instead of starting new workers for ever."""
    import pickle
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    keys = {t[0]: t[1] for t in todo}
    workers = worker_count(settings.workers, len(todo))  # also bounded by cores and memory
    calls = 0
    pool = ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_worker_init,
                               initargs=(pickle.dumps(masker), settings, after, os.getpid()))
    try:
        futures = [pool.submit(_worker_chunk, todo[i:i + WORKER_CHUNK]) for i in range(0, len(todo), WORKER_CHUNK)]
        for future in as_completed(futures):
            for image_id, png, err in future.result():
                calls += 1
                if err is not None:
                    failures.append(_fail(image_id, *err))
                else:
                    store(image_id, keys[image_id], png, None)
                bar.update(1)
    except BrokenProcessPool:
        raise WorkersFailed(
            f"the mask worker processes stopped after {calls} of {len(todo)} images (those are cached; a "
            "re-run resumes). If you started this from a Python script, put the call under "
            "`if __name__ == \"__main__\":` - each worker imports your script, and an unguarded call starts "
            "the workbook again inside it. A script read from stdin cannot be imported: save it to a file. "
            "Or set WORKBOOK_WORKERS=1 to mask in this process.") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return calls


def _run_threads(masker, todo, settings, store, failures, bar, after=None) -> int:
    def one(task):
        image_id, key, data, p = task
        try:
            image, mask = open_and_mask(masker, image_id, data, p, settings)
        finally:
            bar.update(1)
        store(image_id, key, None, mask)  # cache at once: an interrupted run keeps it
        run_after(after, image_id, data, image, mask)
        return image_id

    _, failed = cost.run_parallel(one, [(t[0], t) for t in todo], settings.concurrency,
                                  f"masks ({masker.model_id})", progress=False)
    for rec in failed.to_dict("records"):
        failures.append(_fail(str(rec["image_id"]), str(rec["reason"]), str(rec["message"])))
    return len(todo)
