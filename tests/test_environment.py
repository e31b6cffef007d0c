"""The environment is reproducible: every direct dependency is pinned exactly, the lock agrees,
and environment.yml describes the same pins for conda users."""
import re

import yaml

from helpers.workbook.environment import package_report, pinned_versions
from helpers.settings import PROJECT_ROOT


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version.strip()
    return pins


def test_every_direct_dependency_is_pinned_exactly():
    lines = [l.split("#")[0].strip() for l in (PROJECT_ROOT / "requirements.in").read_text().splitlines()]
    deps = [l for l in lines if l]
    assert deps and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][^ ,;<>]*", d) for d in deps), deps
    for name in ("jupyterlab", "boto3", "chromadb", "pillow", "matplotlib", "pandas", "ipywidgets",
                 "papermill", "mediapipe", "torch", "onnxruntime"):
        assert name in pinned_versions()


def test_lock_contains_every_direct_pin_at_the_same_version():
    lock = lock_pins()
    for name, version in pinned_versions().items():
        assert lock.get(re.sub(r"[-_.]+", "-", name)) == version, name


def test_environment_yml_matches_the_pip_pins():
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    from_yml = dict(p.split("==") for p in pip_section)
    assert {k.lower(): v for k, v in from_yml.items()} == pinned_versions()


def test_the_running_environment_matches_the_pins():
    report = package_report()
    assert report.ok.all(), report[~report.ok].to_dict("records")
