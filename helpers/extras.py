"""The optional extras (train, pose, test) and the one line that says how to install a missing one.

Why a module: `make run` installs only the run time (requirements.lock); torch (training, the ONNX
build) and mediapipe (the pose masker) come with extras. Code that needs one asks `require` first,
so a user without it reads the command to run instead of a bare ImportError.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys

from helpers.errors import MissingExtra

#: extra -> (what it brings, the command that installs it on top of the run time)
EXTRAS = {"train": ("torch, the EfficientNet-Lite0 weights, onnx and scikit-learn", "make install-train"),
          "pose": ("mediapipe", "make install-pose"),
          "test": ("pytest, moto and playwright (plus train and pose)", "make install-test")}


def install_hint(extra: str) -> str:
    """`make install-<extra>`: the one command that adds the extra to the project's .venv."""
    return EXTRAS[extra][1]


def require(module: str, extra: str, needed_by: str) -> None:
    """Raise MissingExtra, one line saying what needs `module` and how to install it, unless it is
    installed (found without importing it: the pose masker's main process must not pay mediapipe's
    import)."""
    if not available(module):
        raise MissingExtra(f"{needed_by} needs {module}, which is in the optional '{extra}' extra "
                           f"({EXTRAS[extra][0]}); install it with `{install_hint(extra)}`")


def available(module: str) -> bool:
    """True when `module` is installed (found without importing it; a module blocked with
    sys.modules[name] = None counts as missing)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None
