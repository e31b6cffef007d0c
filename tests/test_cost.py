"""Cost estimates, the spending limit and the failure-tolerant thread pool."""
from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from helpers import cost
from helpers.embedding import EmbedError
from helpers.errors import MaskError


def test_estimate_counts_only_uncached_calls():
    est = cost.estimate(240, 200, 0.01, "Titan mask")
    assert (est.items, est.cached, est.calls) == (240, 200, 40)
    assert est.dollars == pytest.approx(0.40)
    assert str(est) == "Titan mask: 240 images, 200 cached, 40 calls, about $0.40"


def test_estimate_small_and_zero_amounts_stay_readable():
    assert str(cost.estimate(240, 0, 0.00006, "Titan embeddings")).endswith("240 calls, about $0.014")
    assert str(cost.estimate(10, 10, 0.01, "Titan mask")).endswith("0 calls, about $0.00")
    assert str(cost.estimate(3, 0, 0.0, "Local masks", unit="photos")) == \
        "Local masks: 3 photos, 0 cached, 3 calls, about $0.00"


@pytest.mark.parametrize("args", [(5, 6, 0.01), (-1, 0, 0.01), (5, 0, -0.01)])
def test_estimate_rejects_impossible_counts(args):
    with pytest.raises(ValueError):
        cost.estimate(*args, "x")


def test_check_budget_passes_within_limit_and_stops_beyond_it():
    ok = cost.estimate(240, 0, 0.01, "Titan mask")
    assert cost.check_budget(ok, 5.0) is ok
    assert cost.check_budget(ok, 2.40) is ok  # exactly at the limit is allowed

    big = cost.estimate(2400, 0, 0.01, "Titan mask")
    with pytest.raises(cost.BudgetExceeded) as info:
        cost.check_budget(big, 5.0)
    text = str(info.value)
    assert "about $24.00" in text and "$5.00" in text and "nothing was called" in text
    assert "max_spend_usd" in text and "WORKBOOK_MAX_SPEND_USD=29" in text
    assert "cache" in text and "backend='local'" in text
    assert info.value.estimate is big and info.value.limit == 5.0


def test_run_parallel_keeps_input_order_and_bounds_concurrency():
    active, peak, lock = [0], [0], threading.Lock()

    def fn(item):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.002 * (7 - item % 7))  # later items often finish first
        with lock:
            active[0] -= 1
        return item * 10

    items = [(f"id{i:02d}", i) for i in range(30)]
    results, failures = cost.run_parallel(fn, items, 3, "test", progress=False)
    assert list(results) == [k for k, _ in items]
    assert list(results.values()) == [i * 10 for i in range(30)]
    assert 1 < peak[0] <= 3
    assert failures.empty and list(failures.columns) == ["image_id", "reason", "message"]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_item_errors_become_a_failure_table_and_the_batch_goes_on(concurrency):
    def fn(item):
        if item == 2:
            raise MaskError("content_filter", "image 2 was blocked by our content filters; skip it")
        if item == 5:
            raise EmbedError("throttled", "throttled: lower concurrency")
        return item

    items = {f"img{i}": i for i in range(8)}
    results, failures = cost.run_parallel(fn, items, concurrency, "mixed", progress=False)
    assert list(results) == [f"img{i}" for i in range(8) if i not in (2, 5)]
    assert failures.to_dict("records") == [
        {"image_id": "img2", "reason": "content_filter",
         "message": "image 2 was blocked by our content filters; skip it"},
        {"image_id": "img5", "reason": "throttled", "message": "throttled: lower concurrency"},
    ]


def test_other_exceptions_propagate_and_stop_the_batch():
    started = []

    def fn(item):
        started.append(item)
        if item == 3:
            raise KeyError("a bug")
        time.sleep(0.01)
        return item

    with pytest.raises(KeyError):
        cost.run_parallel(fn, ((str(i), i) for i in range(200)), 2, "bug", progress=False)
    assert len(started) < 20  # the rest were never started


def test_lazy_items_are_pulled_a_few_at_a_time():
    pulled, done = [], []

    def gen():
        for i in range(40):
            pulled.append(i)
            assert len(pulled) - len(done) <= 2 * 4 + 1, "too many items held in flight"
            yield str(i), i

    def fn(item):
        time.sleep(0.001)
        done.append(item)
        return item

    results, _ = cost.run_parallel(fn, gen(), 4, "lazy", progress=False)
    assert list(results.values()) == list(range(40))


def test_serial_mode_runs_in_the_calling_thread():
    caller = threading.get_ident()
    results, _ = cost.run_parallel(lambda x: threading.get_ident(), {"a": 1, "b": 2}, 1, "serial",
                                   progress=False)
    assert set(results.values()) == {caller}


def test_check_budget_takes_settings_too():
    from helpers.settings import load_settings

    settings = load_settings(toml_path=None, env={}, max_spend_usd=1.0)
    with pytest.raises(cost.BudgetExceeded, match=r"maximum spend of \$1.00"):
        cost.check_budget(cost.estimate(200, 0, 0.01, "Titan mask"), settings)


def test_items_that_are_not_pairs_get_a_clear_error():
    with pytest.raises(TypeError, match="got a 3-tuple"):
        cost.run_parallel(lambda x: x, [("a", 1, 2)], 2, None, progress=False)


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        cost.run_parallel(lambda x: x, [("a", 1), ("a", 2)], 2, "dup", progress=False)


def test_progress_bar_names_the_step(capsys):
    cost.run_parallel(lambda x: x, {"a": 1, "b": 2}, 2, "Titan masks")
    assert "Titan masks" in capsys.readouterr().err


def test_failures_is_a_dataframe_even_when_empty():
    _, failures = cost.run_parallel(lambda x: x, {}, 4, "empty", progress=False)
    assert isinstance(failures, pd.DataFrame) and failures.empty
