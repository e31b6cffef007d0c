"""Tables a learner reads whole: no cell cut to "…", no column hidden.

Why: pandas shortens text cells to 50 characters and hides middle columns of wide frames, and the
columns it cuts (a skipped file's reason, a miss's diagnosis) are the ones the learner needs. A
`Styler` renders every cell in full; numbers keep a readable precision.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # the Styler module loads jinja2: only when a table is shown
    from pandas.io.formats.style import Styler


def full_table(frame: pd.DataFrame, precision: int = 3) -> "Styler":
    """`frame` shown with every cell in full (text wraps instead of being cut) and floats rounded."""
    return (frame.style.format(precision=precision)
            .set_properties(**{"white-space": "pre-wrap", "text-align": "left"}))
