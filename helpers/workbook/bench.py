"""`python -m helpers bench` / `make bench`: every performance figure of the workbook in one table.

Why a separate command: speed depends on the machine and on what else runs, so timings never
live in tests (a slow CI box would fail them at random). The `bench_*` functions in
helpers.workbook.benchmarks each return a dict of figures (medians of several runs where cheap);
this module calls them, compares each figure with the goal its issue names, prints
one table and writes `runs/bench.json`. A module without its bench function is reported as
"not available" rather than stopping the others.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import platform
import os
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from helpers.settings import PROJECT_ROOT

# (module, function): the order is the order of the table.
BENCHMARKS = "helpers.workbook.benchmarks"
SOURCES: list[tuple[str, str]] = [(BENCHMARKS, name) for name in (
    "bench_generate", "bench_masking", "bench_stub_concurrency", "bench_embedding", "bench_index")]
SOURCES += [("helpers.workbook.bench_scale", "bench_chroma_scale")]  # ChromaDB at N vectors (--scale N)
SOURCES += [(BENCHMARKS, name) for name in ("bench_pipeline", "bench_pipeline_budget", "bench_large_photo",
                                            "bench_app")]
SOURCES += [(BENCHMARKS, "bench_secret_scan")]  # issue 24: the runner's credential check, 12 MB notebook


@dataclass(frozen=True)
class Goal:
    """A figure's target from its issue: `value <op> target`."""

    op: str  # ">=" or "<="
    target: float
    text: str

    def ok(self, value: Any) -> bool | None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            return None
        return value >= self.target if self.op == ">=" else value <= self.target


# Figure names (as the bench functions return them) -> the goal named in the open issues.
# Names not listed are printed without a goal (context such as batch size or image counts).
GOALS: dict[str, Goal] = {
    # issue 4: 240 images generated in <= 60 s on 2 cores
    "catalog_240_s": Goal("<=", 60, "<= 60 s for 240 images"),
    # issue 5 (raised by issue 21): local masks >= 30 images/s cold, cached >= 20x faster;
    # stubbed Bedrock <= 1/3 serial
    "masks_per_s_cold": Goal(">=", 30, ">= 30 images/s (cold)"),
    "mask_cached_speedup": Goal(">=", 20, ">= 20x faster cached"),
    "bedrock_stub_speedup": Goal(">=", 3, ">= 3x serial (40 calls, 200 ms, conc. 4)"),
    # issue 6: embedding >= 60 images/s; index 10k build <= 15 s, query p50 < 10 ms, recall@10 >= 0.99
    "embed_local_images_per_s": Goal(">=", 60, ">= 60 images/s at 224 px"),
    "index_build_10k_s": Goal("<=", 15, "<= 15 s for 10,000 x 1280-d"),
    "index_query_p50_ms": Goal("<=", 10, "< 10 ms at 10,000 items"),
    "index_recall@10": Goal(">=", 0.99, ">= 0.99 vs exact search"),
    # issue 6/7: pipeline >= 20 images/s cold, cached re-run >= 20x faster
    "pipeline_cold_images_per_s": Goal(">=", 20, ">= 20 images/s cold"),
    "pipeline_cached_speedup": Goal(">=", 20, ">= 20x faster cached"),
    # issue 21: one image on one core <= 80 ms; a 12 MP phone photo masked <= 0.25 s, searched <= 0.6 s
    "budget_total_ms": Goal("<=", 80, "<= 80 ms per image, one core"),
    "mask_12mp_s": Goal("<=", 0.25, "<= 0.25 s for 3000 x 4000, one thread"),
    "app_upload_12mp_s": Goal("<=", 0.6, "<= 0.6 s for a 3000 x 4000 upload"),
}


def collect(sources: list[tuple[str, str]] = SOURCES, *, quick: bool = False,
            progress: Callable[[str], None] | None = print,
            options: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Call every bench function that exists; one row per figure (or per missing/failed source).
    `options`: extra keyword arguments per function name, e.g. {"bench_chroma_scale": {"n": 2000}}."""
    rows: list[dict[str, Any]] = []
    for module_name, func_name in sources:
        source = f"{module_name.split('.')[-1]}.{func_name}"
        try:
            func = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as exc:
            rows.append(_row(source, func_name, "not available", None, note=f"{type(exc).__name__}: {exc}"))
            continue
        if progress:
            progress(f"▶ {source} …")
        start = time.perf_counter()
        try:
            kwargs = {**({"quick": True} if quick and _accepts(func, "quick") else {}),
                      **(options or {}).get(func_name, {})}
            figures = func(**kwargs)
        except Exception as exc:  # a broken bench must not hide the others
            rows.append(_row(source, func_name, "error", None,
                             note=f"{type(exc).__name__}: {exc}".splitlines()[0][:200]))
            if os.environ.get("WORKBOOK_BENCH_TRACEBACK"):
                traceback.print_exc()
            continue
        seconds = time.perf_counter() - start
        if not isinstance(figures, dict) or not figures:
            rows.append(_row(source, func_name, "error", None, note="returned no figures"))
            continue
        for name, value in figures.items():
            rows.append(_row(source, name, value, GOALS.get(name)))
        if progress:
            progress(f"  done in {seconds:.1f} s")
    return rows


def _accepts(func: Callable, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def _row(source: str, figure: str, value: Any, goal: Goal | None, note: str = "") -> dict[str, Any]:
    return {"source": source, "figure": figure, "value": value,
            "goal": goal.text if goal else "", "ok": goal.ok(value) if goal else None, "note": note}


def format_table(rows: list[dict[str, Any]]) -> str:
    """One plain-text table: figure, value, goal, ok."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.0f}"
        return str(v)

    header = ("source", "figure", "value", "goal", "ok")
    body = [(r["source"], r["figure"], fmt(r["value"]), r["goal"],
             {True: "yes", False: "NO", None: ""}[r["ok"]]) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(header), line(["-" * w for w in widths])] + [line(b) for b in body]
    notes = [f"  {r['source']}: {r['note']}" for r in rows if r["note"]]
    return "\n".join(out + (["", "notes:"] + notes if notes else []))


def write(rows: list[dict[str, Any]], path: Path) -> Path:
    """runs/bench.json: the rows plus when and where they were measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "platform": platform.platform()},
           "figures": rows,
           "goals_missed": [r["figure"] for r in rows if r["ok"] is False]}
    path.write_text(json.dumps(doc, indent=2, default=_json_default))
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _names(source: tuple[str, str]) -> set[str]:
    """What --only matches: the module's last part, the function, the function without bench_."""
    module, func = source
    return {module.split(".")[-1], func, func.removeprefix("bench_")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers bench",
                                     description="Measure every performance figure and write runs/bench.json.")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "runs" / "bench.json")
    parser.add_argument("--only", nargs="*", default=None,
                        help="benches to run, by module or function name without bench_ (e.g. embedding "
                             "index chroma_scale); default: all")
    parser.add_argument("--quick", action="store_true", help="fewer repeats where a bench supports it")
    parser.add_argument("--scale", type=int, default=100_000, metavar="N",
                        help="vectors (1,024-d) in the loopback ChromaDB server of bench_scale; 0 skips it "
                             "(default 100000: about 12 min on 2 busy cores)")
    args = parser.parse_args(argv)
    sources = SOURCES if not args.only else [s for s in SOURCES if _names(s) & set(args.only)]
    if args.scale <= 0:
        sources = [s for s in sources if s[1] != "bench_chroma_scale"]
    if not sources:
        print("error: nothing to run (--only matched nothing, or --scale 0 skipped the only bench); names: "
              f"{', '.join(s[1].removeprefix('bench_') for s in SOURCES)}", file=sys.stderr)
        return 2
    rows = collect(sources, quick=args.quick, options={"bench_chroma_scale": {"n": args.scale}})
    print()
    print(format_table(rows))
    path = write(rows, args.out)
    missed = [r["figure"] for r in rows if r["ok"] is False]
    print(f"\nwrote {path}" + (f"; goals missed: {', '.join(missed)}" if missed else ""))
    return 0
