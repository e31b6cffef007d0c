"""Mask workers are bounded by the machine and die with the process that started them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from helpers import resources

GIB = 1024 ** 3


def test_worker_count_is_bounded_by_tasks_cores_and_memory():
    assert resources.worker_count(100000, tasks=16, cores=2, memory=64 * GIB) == 2
    assert resources.worker_count(8, tasks=16, cores=16, memory=int(1.3 * GIB)) == 2  # 600 MB each
    assert resources.worker_count(8, tasks=3, cores=16, memory=64 * GIB) == 3
    assert resources.worker_count(4, tasks=16, cores=4, memory=100 * 1024 ** 2) == 1  # never zero
    assert resources.available_memory() is None or resources.available_memory() > 0


SCRIPT = """
import sys
from helpers.catalog import load_catalog
from helpers.maskpool import mask_catalog
from helpers.settings import load_settings

if __name__ == "__main__":
    settings = load_settings(toml_path=None, env={{}}, masker="local", workers=2,
                             catalog={catalog!r}, cache_dir={cache!r})
    mask_catalog(load_catalog(settings.catalog).table, settings, progress=False)
"""


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_the_parent_takes_the_mask_workers_with_it(tmp_path, small_catalog, sig):
    script = tmp_path / "mask_all.py"
    script.write_text(textwrap.dedent(SCRIPT.format(catalog=str(small_catalog), cache=str(tmp_path / "cache"))))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    parent = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        # wait until the forkserver and both workers run (3+ descendants besides the tracker)
        while time.monotonic() < deadline and parent.poll() is None:
            children = _descendants(parent.pid)
            if len(children) >= 4:
                break
            time.sleep(0.2)
        assert parent.poll() is None and len(children) >= 4, "the worker pool never started"
        time.sleep(1.0)
        children = _descendants(parent.pid)
        parent.send_signal(sig)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 8
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _alive(children)
        assert not left, f"still running after the parent died: {[p.cmdline()[:3] for p in left]}"
    finally:
        if parent.poll() is None:
            children += _descendants(parent.pid)
            parent.kill()
            parent.wait()
        for p in _alive(children):  # the test's own leftovers, by pid
            p.kill()
