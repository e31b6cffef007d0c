"""How many worker processes this machine can take, and workers that die with their parent.

Why: `workers` is a wish, not an order. Each mask worker holds OpenCV, the ONNX models (and
mediapipe with the pose masker) (~600 MB); eight of them on a small machine swap or get killed by the OOM killer, and
more workers than cores only queue. And a worker pool must not outlive the process that
started it: when a notebook kernel or `python -m helpers run` is killed (SIGKILL, SIGTERM,
a closed terminal), its forkserver and workers used to stay behind, holding memory.
"""
from __future__ import annotations

import os
import sys
import threading
import time

MASK_WORKER_BYTES = 600 * 1024 * 1024  # resident size of one mask worker (cv2 + ONNX; + mediapipe for pose)
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def available_memory() -> int | None:
    """Bytes the kernel says can be given to new processes without swapping (MemAvailable),
    or None where /proc/meminfo does not exist."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # other POSIX systems: free pages (an underestimate, which is the safe side)
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def worker_count(requested: int, tasks: int, *, per_worker: int = MASK_WORKER_BYTES,
                 cores: int | None = None, memory: int | None = None) -> int:
    """Processes to start: at most `requested`, the number of tasks, the usable cores, and
    what the available memory holds at `per_worker` bytes each (always at least one)."""
    cores = usable_cores() if cores is None else cores
    memory = available_memory() if memory is None else memory
    limit = min(requested, tasks, cores)
    if memory is not None:
        limit = min(limit, memory // per_worker)
    return max(1, int(limit))


def die_with_parent(parent_pid: int | None = None, poll_s: float = 1.0) -> None:
    """Make this (worker) process end when its parent does.

    Linux: prctl(PR_SET_PDEATHSIG, SIGTERM) asks the kernel to signal us when the parent
    thread exits. Everywhere (and as a second line, because the "parent" of a forkserver
    worker is the forkserver, not the notebook): a daemon thread that polls whether
    `parent_pid` is still our ancestor and exits the process when it is gone."""
    import signal

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl: the poll still works
            pass
    if parent_pid is None:
        return

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if not _alive(parent_pid):
                os._exit(1)  # the parent is gone: nobody will read our results

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists, owned by someone else (pid reused)
        return True
    try:  # a zombie (killed, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
