"""Progress bars: live in JupyterLab and terminals, quiet in headless notebook runs.

Every helper makes its bars through `tqdm` here instead of `tqdm.auto` directly. The notebook
runner sets `TQDM_DISABLE=1` (tqdm's own switch, so third-party bars go quiet too; a `WORKBOOK_*`
name would be read as a setting) for the kernels it starts (papermill, `make run`, the tests):
a bar there has no one to watch it and would only leave "0%| 0/240" text in the executed copy.
"""
from __future__ import annotations

import os
from typing import Any

PROGRESS_ENV = "TQDM_DISABLE"


def enabled() -> bool:
    """False when `TQDM_DISABLE` is set to anything but 0 / false / no / off / empty."""
    return os.environ.get(PROGRESS_ENV, "").strip().lower() in ("", "0", "false", "no", "off")


def tqdm(*args: Any, disable: bool = False, **kwargs: Any):
    """`tqdm.auto.tqdm`, disabled when the caller asks or the environment says so."""
    from tqdm.auto import tqdm as _tqdm

    return _tqdm(*args, disable=disable or not enabled(), **kwargs)
