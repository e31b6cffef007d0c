"""Run the workbook's notebooks headless, the same way for `make run`, the CLI and the tests.

Why not plain papermill: papermill only *warns* about a notebook without a `parameters` cell
and about a `-p` key the notebook does not define, so a typo silently runs the defaults. This
runner refuses both, writes every executed copy into `runs/<UTC timestamp>/` (with `runs/latest`
pointing at it), records per-notebook status and time in `summary.json`, names the failing
cell, and fails when an executed notebook contains anything that looks like an AWS credential.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:
    import nbformat

from helpers import secrets
from helpers.errors import NotebookError, NotebookFailed, SecretLeak
from helpers.settings import PROJECT_ROOT, load_settings

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
RUNS_DIR = PROJECT_ROOT / "runs"
RECORD_MIME = "application/vnd.workbook.record+json"


@dataclass
class NotebookResult:
    name: str
    status: str  # "ok" | "failed" | "not run"
    seconds: float
    output: str
    error: str | None = None


def list_notebooks(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The workbook's notebooks in teaching order (their names start with a number)."""
    return sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))


def list_appendices(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The optional appendix notebooks (`A1_parser.ipynb`, ...): deep dives off the two-hour path.
    `make run` leaves them out; `python -m helpers notebooks run A1` runs one by name."""
    return sorted(p for p in directory.glob("A[0-9]_*.ipynb"))


def _nbformat():
    """nbformat, imported when a notebook file is read. Why not at the top: every notebook kernel
    imports `record` from here, and nbformat's schema validator costs about 2 s to import."""
    import nbformat

    return nbformat


def parameters_cell(nb: "nbformat.NotebookNode") -> tuple[int, "nbformat.NotebookNode"]:
    """The one code cell tagged `parameters`; anything else is an error that says what to fix."""
    tagged = [(i, c) for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise NotebookError(f"expected exactly one cell tagged 'parameters', found {len(tagged)}; "
                            "tag one code cell holding the notebook's settings (View > Cell Toolbar > Tags)")
    index, cell = tagged[0]
    if cell.cell_type != "code":
        raise NotebookError("the cell tagged 'parameters' must be a code cell")
    return index, cell


def parameter_names(nb: "nbformat.NotebookNode") -> set[str]:
    """Names assigned in the parameters cell: the only keys `-p` may set."""
    _, cell = parameters_cell(nb)
    names: set[str] = set()
    for node in ast.parse(cell.source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def check_parameters(path: Path, parameters: dict[str, Any]) -> None:
    nb = _nbformat().read(path, as_version=4)
    try:
        known = parameter_names(nb)
    except NotebookError as exc:
        raise NotebookError(f"{path.name}: {exc}") from None
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise NotebookError(f"{path.name}: unknown parameter(s) {', '.join(unknown)}; "
                            f"its parameters cell defines: {', '.join(sorted(known)) or 'nothing'}")


def split_parameters(notebooks: Sequence[Path], parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """Give each notebook the parameters its cell defines; refuse keys that no notebook defines
    (and, for a single notebook, any key it does not define), and credentials anywhere."""
    if not notebooks:
        raise NotebookError(f"no notebooks found in {NOTEBOOK_DIR}")
    refuse_credentials(notebooks, parameters)
    if len(notebooks) == 1:
        check_parameters(notebooks[0], parameters)
    names = []
    for nb in notebooks:
        try:
            names.append(parameter_names(_nbformat().read(nb, as_version=4)))
        except NotebookError as exc:
            raise NotebookError(f"{nb.name}: {exc}") from None
    unknown = sorted(set(parameters) - set().union(*names))
    if unknown:
        raise NotebookError(f"unknown parameter(s) {', '.join(unknown)}: no selected notebook defines them")
    return [{k: v for k, v in parameters.items() if k in own} for own in names]


def find_secrets(text: str, env: dict[str, str] | None = None) -> list[str]:
    """Descriptions (never values) of credential-like strings in `text` (helpers.secrets)."""
    return secrets.find_in_text(text, secrets.known_secrets(env))


def refuse_credentials(notebooks: Sequence[Path], parameters: dict[str, Any]) -> None:
    """Refuse, before anything runs or is written, a parameter that looks like a credential
    (papermill would copy it into the injected cell, metadata.papermill and summary.json) and
    a notebook that already holds one (its executed copy would too)."""
    known = secrets.known_secrets(profile=_aws_profile())
    found = secrets.scan_parameters(parameters, known)
    if found:
        raise NotebookError(f"{found[0].where} looks like an AWS credential ({found[0].what}); never pass "
                            "credentials as parameters: keep them in an AWS profile (aws_profile setting)")
    for path in notebooks:
        found = secrets.scan_notebook(_nbformat().read(path, as_version=4), known)
        if found:
            raise NotebookError(f"{path.name} holds credential-like text ({found[0]}); remove it from the "
                                "notebook and keep credentials in an AWS profile (aws_profile setting)")


def scan_for_secrets(path: Path) -> None:
    """Fail if an executed notebook holds a credential anywhere (sources, outputs, metadata,
    widget state); redact the file so none stays on disk, or delete it when the file read back
    still holds one (helpers.secrets)."""
    found, outcome = secrets.check_file(path, secrets.known_secrets(profile=_aws_profile()))
    if found:
        what = "; ".join(dict.fromkeys(map(str, found)))
        done = ("the copy was redacted" if outcome == "redacted" else
                "redaction could not remove it, so the copy was deleted")
        raise SecretLeak(f"{path.name} contained credential-like text ({what}); {done}. Remove the "
                         "print/log of credentials from the notebook.")


def _aws_profile() -> str | None:
    """The aws_profile setting, whose credentials the notebooks use (None if unreadable)."""
    try:
        return load_settings().aws_profile
    except Exception:  # noqa: BLE001 - a settings error is reported by the notebook itself
        return None


def kernel_environment(run_dir: Path) -> dict[str, str]:
    """Environment for notebook kernels: project-local Jupyter dirs, inline figures, run folder."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # Agg would drop every figure from the executed copies
    local = PROJECT_ROOT / ".jupyter"
    env.setdefault("JUPYTER_CONFIG_DIR", str(local / "config"))
    env.setdefault("JUPYTER_DATA_DIR", str(local / "data"))
    env.setdefault("JUPYTER_RUNTIME_DIR", str(local / "runtime"))
    env.setdefault("IPYTHONDIR", str(local / "ipython"))
    env.setdefault("MPLCONFIGDIR", str(local / "matplotlib"))
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR"):
        Path(env[name]).mkdir(parents=True, exist_ok=True)
    # ipykernel warns on every start that a local TCP kernel is unencrypted; for headless runs on
    # loopback that is noise, so project-local kernels log errors only.
    profile = Path(env["IPYTHONDIR"]) / "profile_default" / "ipython_kernel_config.py"
    if not profile.exists():
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text("c.IPKernelApp.log_level = 'ERROR'\n")
    env["WORKBOOK_RUN_DIR"] = str(run_dir)
    # no one watches a headless kernel's progress bars; they would only leave "0%| 0/240" text
    env.setdefault("TQDM_DISABLE", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def run_notebook(path: Path, out_path: Path, parameters: dict[str, Any] | None = None,
                 run_dir: Path | None = None) -> float:
    """Execute one notebook with papermill into `out_path`; return seconds taken."""
    import papermill

    parameters = parameters or {}
    check_parameters(path, parameters)
    refuse_credentials([path], parameters)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    env = kernel_environment(run_dir or out_path.parent)
    saved = dict(os.environ)
    start = time.perf_counter()
    try:
        os.environ.clear()
        os.environ.update(env)  # papermill's kernel inherits this process's environment
        papermill.execute_notebook(str(path), str(out_path), parameters=parameters,
                                   kernel_name="python3", cwd=str(path.parent),
                                   progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as exc:
        raise NotebookFailed(path.name, exc.exec_count, f"{exc.ename}: {exc.evalue}", out_path) from None
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if out_path.exists():
            scan_for_secrets(out_path)
    return time.perf_counter() - start


def new_run_dir(root: Path = RUNS_DIR, *, latest: bool = True) -> Path:
    """`runs/<UTC timestamp>/`, with `runs/latest` re-pointed at it (unless `latest=False`:
    `run_all` moves the link only once every notebook succeeded, see `point_latest`)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = root / stamp
    suffix = 1
    while run_dir.exists():
        run_dir, suffix = root / f"{stamp}-{suffix}", suffix + 1
    run_dir.mkdir(parents=True)
    if latest:
        point_latest(run_dir)
    return run_dir


def point_latest(run_dir: Path) -> Path:
    """Re-point `latest` beside `run_dir` at it, atomically (a new link renamed over the old one).
    Why only after success: `runs/latest` is where people and notebook 06 read the last good numbers."""
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, latest)
    return latest


def run_all(notebooks: Sequence[Path], parameters: dict[str, Any] | None = None,
            run_dir: Path | None = None, *, runs_root: Path | None = None) -> list[NotebookResult]:
    """Run notebooks in order; stop at the first failure. Writes `summary.json` either way.
    Without `run_dir`, a new `runs_root/<timestamp>/` (default runs/) that `latest` points at
    only when every notebook succeeded: `latest` always names the last good run."""
    parameters = parameters or {}
    per_notebook = split_parameters(notebooks, parameters)  # refuse before spending minutes
    known = secrets.known_secrets(profile=_aws_profile())
    own_dir = run_dir is None
    run_dir = run_dir or new_run_dir(runs_root or RUNS_DIR, latest=False)
    results: list[NotebookResult] = []
    failed = False
    for nb, own in zip(notebooks, per_notebook):
        out = run_dir / nb.name
        if failed:
            results.append(NotebookResult(nb.name, "not run", 0.0, str(out)))
            continue
        print(f"▶ {nb.name} …", flush=True)
        start = time.perf_counter()
        try:
            seconds = run_notebook(nb, out, own, run_dir)
            results.append(NotebookResult(nb.name, "ok", round(seconds, 2), str(out)))
            print(f"  ok in {seconds:.1f} s → {out.relative_to(PROJECT_ROOT) if out.is_relative_to(PROJECT_ROOT) else out}", flush=True)
        except (NotebookFailed, SecretLeak) as exc:
            failed, error = True, secrets.redact_text(str(exc), known)  # an evalue can quote a secret
            results.append(NotebookResult(nb.name, "failed", round(time.perf_counter() - start, 2),
                                          str(out), error))
            print(f"  FAILED: {error}", file=sys.stderr, flush=True)
    summary = {"run_dir": str(run_dir), "parameters": parameters,
               "notebooks": [r.__dict__ for r in results]}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    secrets.check_file(run_dir / "summary.json", known)  # a cell's error message can quote a secret
    if own_dir and not failed:
        point_latest(run_dir)
    return results


def shown(value: Any) -> Any:
    """A recorded value as a learner reads it: floats to 4 significant digits (0.1083, not
    0.10833333333333334), inside lists and dicts too. The recorded data keeps the exact value."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, (list, tuple)):
        return type(value)(shown(v) for v in value)
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    return value


def record(key: str, value: Any) -> None:
    """Record a number from inside a notebook so tests and the runner can read it back; the
    printed line is rounded (`shown`), the recorded value is exact."""
    from IPython.display import display

    display({"text/plain": f"{key} = {shown(value)!r}", RECORD_MIME: {key: value}}, raw=True)


def read_records(executed: Path) -> dict[str, Any]:
    """Every value a notebook recorded with `record`, from its executed copy."""
    nb = _nbformat().read(executed, as_version=4)
    out: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            out.update(output.get("data", {}).get(RECORD_MIME, {}))
    return out


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _select(names: Iterable[str]) -> list[Path]:
    available = list_notebooks() + list_appendices()
    chosen = []
    for name in names:
        matches = [p for p in available if p.name == name or p.stem == name or p.stem.split("_", 1)[0] == name]
        if not matches:
            raise NotebookError(f"no notebook named {name!r}; available: {', '.join(p.stem for p in available)}")
        chosen += matches
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers notebooks",
                                     description="List or run the workbook's notebooks headless.")
    sub = parser.add_subparsers(dest="cmd")
    run = sub.add_parser("run", help="execute notebooks into runs/<timestamp>/")
    run.add_argument("names", nargs="*", help="notebook names or numbers (default: all, in order)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    args = parser.parse_args(argv)
    if args.cmd != "run":
        for p in list_notebooks():
            print(p.name)
        return 0
    try:
        notebooks = _select(args.names) if args.names else list_notebooks()
        parameters = {k: _parse_value(v) for k, v in args.parameter}
        results = run_all(notebooks, parameters)
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in results if r.status == "failed"]
    total = sum(r.seconds for r in results)
    where = Path(results[0].output).parent if results else RUNS_DIR / "latest"
    print(f"{len(results) - len(failed)}/{len(results)} notebooks ok in {total:.0f} s; "
          f"summary: {where / 'summary.json'}" + ("" if failed else f" (runs/latest -> {where.name})"))
    if failed:
        print(f"error: {failed[0].error}", file=sys.stderr)
        return 1
    return 0
