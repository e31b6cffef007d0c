"""The Makefile's cheap targets behave as the README says (the install and run targets are
exercised by CI itself: .ci/run calls `make test`)."""
import shutil
import subprocess
from pathlib import Path

from helpers.settings import PROJECT_ROOT


def copy_project_files(tmp_path: Path) -> Path:
    for name in ("Makefile", "requirements.lock"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    return tmp_path


def test_reset_removes_index_caches_and_exercises_but_keeps_the_catalogue(tmp_path):
    root = copy_project_files(tmp_path)
    for path in (".cache/chroma/db.sqlite3", ".cache/workbook/masks/ab/x.png", "workshop/01_data.ipynb",
                 "data/sample/manifest.csv", "runs/latest/summary.json"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")
    proc = subprocess.run(["make", "reset"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not (root / ".cache").exists() and not (root / "workshop").exists()
    assert (root / "data/sample/manifest.csv").exists() and (root / "runs/latest/summary.json").exists()
    assert "make run" in proc.stdout


def test_install_stamp_is_keyed_on_the_lock_hash():
    out = subprocess.run(["make", "-n", "-p", "install"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    import hashlib

    digest = hashlib.sha256((PROJECT_ROOT / "requirements.lock").read_bytes()).hexdigest()[:16]
    assert f"STAMP := .venv/.installed-{digest}" in out or f".venv/.installed-{digest}:" in out


def test_ci_runs_make_test():
    script = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "make test" in script
