"""Cost shown before paid work, a spending limit, and a failure-tolerant thread pool.

Why here and not in the Bedrock module: every batch step (masking, embedding, the pipeline)
follows the same three moves — say what a run will cost, refuse to start past the user's
limit, then run the uncached items concurrently while collecting per-item failures as a
table — and none of them depends on where the model runs. Typical use from a batch function::

    est = cost.estimate(len(images), n_cached, masker.price_per_call, "Titan mask")
    print(est)                                   # "Titan mask: 240 images, 200 cached, 40 calls, about $0.40"
    cost.check_budget(est, settings.max_spend_usd)   # raises BudgetExceeded before any call
    results, failures = cost.run_parallel(fn, todo, settings.concurrency, "Titan masks")
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
from helpers.progress import tqdm

from helpers.errors import FAILURE_COLUMNS, ITEM_ERRORS, BudgetExceeded

T = TypeVar("T")
R = TypeVar("R")


def _money(dollars: float) -> str:
    """Dollars for people: cents from $0.10 up, two significant digits below (so tiny
    embedding bills do not round to $0.00)."""
    if dollars == 0 or dollars >= 0.1:
        return f"${dollars:,.2f}"
    return f"${dollars:.2g}"


@dataclass(frozen=True)
class CostEstimate:
    """What a batch will cost: only uncached items become (paid) calls."""

    what: str
    items: int
    cached: int
    calls: int
    price_per_call: float
    dollars: float
    unit: str = "images"

    def __str__(self) -> str:
        return (f"{self.what}: {self.items} {self.unit}, {self.cached} cached, "
                f"{self.calls} calls, about {_money(self.dollars)}")


def estimate(n_items: int, n_cached: int, price_per_call: float, what: str,
             *, unit: str = "images") -> CostEstimate:
    """The calls and dollars of a batch of `n_items` of which `n_cached` are already cached."""
    if n_items < 0 or n_cached < 0:
        raise ValueError(f"counts must be >= 0, got n_items={n_items}, n_cached={n_cached}")
    if n_cached > n_items:
        raise ValueError(f"n_cached={n_cached} is more than n_items={n_items}")
    if price_per_call < 0:
        raise ValueError(f"price_per_call must be >= 0, got {price_per_call}")
    calls = n_items - n_cached
    return CostEstimate(what=what, items=n_items, cached=n_cached, calls=calls,
                        price_per_call=price_per_call, dollars=calls * price_per_call, unit=unit)


def check_budget(est: CostEstimate, max_spend_usd: float | Any) -> CostEstimate:
    """Stop before spending more than `max_spend_usd`; return the estimate when within it.

    `max_spend_usd` is a number of dollars, or anything with a `max_spend_usd` attribute
    (a `Settings`)."""
    max_spend_usd = float(getattr(max_spend_usd, "max_spend_usd", max_spend_usd))
    if est.dollars <= max_spend_usd + 1e-12:
        return est
    suggested = max(1, int(est.dollars * 1.2 + 0.999))
    raise BudgetExceeded(
        f"{est} — more than the maximum spend of {_money(max_spend_usd)}, so nothing was called. "
        f"To go on, raise the limit (load_settings(max_spend_usd={suggested}), "
        f"max_spend_usd = {suggested} in workbook.toml, or WORKBOOK_MAX_SPEND_USD={suggested}), "
        f"run on fewer {est.unit} (e.g. limit=...), re-use the cache from an earlier run, "
        f"or use backend='local', which costs nothing.",
        est, max_spend_usd)


def _pairs(items: Mapping[str, T] | Iterable[tuple[str, T]]) -> Iterable[tuple[str, T]]:
    if isinstance(items, Mapping):
        yield from items.items()
        return
    for pair in items:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            shape = f"a {len(pair)}-tuple" if isinstance(pair, tuple) else type(pair).__name__
            raise TypeError(f"run_parallel items must be a mapping id -> item or (id, item) pairs, "
                            f"got {shape}; e.g. pass ((t[0], t) for t in tasks)")
        yield pair


def run_parallel(fn: Callable[[T], R],
                 items: Mapping[str, T] | Iterable[tuple[str, T]],
                 concurrency: int,
                 desc: str | None,
                 *,
                 catch: tuple[type[BaseException], ...] = ITEM_ERRORS,
                 progress: bool = True) -> tuple[dict[str, R], pd.DataFrame]:
    """Call `fn(item)` for every `(id, item)` with at most `concurrency` calls at once.

    Returns `(results, failures)`: `results` maps id -> fn's value in input order; `failures`
    is a DataFrame with columns id, reason, message (input order) for the items whose call
    raised one of `catch` (MaskError / EmbedError / ImageError: the batch goes on). Any other
    exception cancels the items not started yet and propagates: it is a bug, not a bad image.
    Threads suit network-bound calls (Bedrock, with botocore's own retries); `items` may be
    a lazy iterable — at most 2 x concurrency items are held in flight.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    outcomes: dict[str, tuple[bool, Any]] = {}
    order: list[str] = []

    def record(item_id: str, call: Callable[[], R]) -> None:
        try:
            outcomes[item_id] = (True, call())
        except catch as exc:
            outcomes[item_id] = (False, exc)

    seen: set[str] = set()

    def start(item_id: str) -> None:
        if item_id in seen:
            raise ValueError(f"duplicate id {item_id!r} in run_parallel items")
        seen.add(item_id)
        order.append(item_id)

    pairs = iter(_pairs(items))
    with tqdm(total=total, desc=desc, disable=not progress, unit="item") as bar:
        if concurrency == 1:
            for item_id, item in pairs:
                start(item_id)
                record(item_id, lambda item=item: fn(item))
                bar.update(1)
        else:
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="run_parallel") as pool:
                pending: dict[Future, str] = {}

                def submit_more() -> None:
                    for item_id, item in itertools.islice(pairs, 2 * concurrency - len(pending)):
                        start(item_id)
                        pending[pool.submit(fn, item)] = item_id

                try:
                    submit_more()
                    while pending:
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            item_id = pending.pop(fut)
                            record(item_id, fut.result)
                            bar.update(1)
                        submit_more()
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    raise

    results = {i: outcomes[i][1] for i in order if outcomes[i][0]}
    rows = [{"image_id": i, "reason": getattr(outcomes[i][1], "reason", type(outcomes[i][1]).__name__),
             "message": str(outcomes[i][1])} for i in order if not outcomes[i][0]]
    return results, pd.DataFrame(rows, columns=FAILURE_COLUMNS)
