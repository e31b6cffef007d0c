"""Progress bars: live in JupyterLab and terminals, quiet in headless notebook runs.

Every helper makes its bars through `tqdm` here instead of `tqdm.auto` directly. The notebook
runner sets `WORKBOOK_PROGRESS=0` for the kernels it starts (papermill, `make run`, the tests):
a bar there has no one to watch it and would only leave "0%| 0/240" text in the executed copy.
"""
from __future__ import annotations

import os
from typing import Any

PROGRESS_ENV = "WORKBOOK_PROGRESS"


def enabled() -> bool:
    """False when `WORKBOOK_PROGRESS` is 0 / false / no / off."""
    return os.environ.get(PROGRESS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def tqdm(*args: Any, disable: bool = False, **kwargs: Any):
    """`tqdm.auto.tqdm`, disabled when the caller asks or the environment says so."""
    from tqdm.auto import tqdm as _tqdm

    return _tqdm(*args, disable=disable or not enabled(), **kwargs)
