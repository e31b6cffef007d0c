"""The helpers package's shape (#16): imports run one way, modules stay small, heavy libraries
load only when asked for.

Why tests: a loop between modules or a 1,000-line module creeps back one convenient import at a
time; these checks name the offending modules the moment it happens.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "helpers"
MAX_LINES = 500
HEAVY = ("mediapipe", "onnxruntime", "torch", "chromadb", "boto3", "ipywidgets")
# The Bedrock adapters are boto3's own modules: they are imported only when Bedrock is used.
BOTO3_ADAPTERS = ("helpers.bedrock", "helpers.maskers.titan", "helpers.maskers.boxes")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def top_level_imports(name: str, path: Path) -> set[str]:
    """helpers.* modules that `name` imports when it is imported (module-level statements only;
    imports inside functions and `if TYPE_CHECKING:` blocks do not run at import time)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("helpers"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("helpers"):
                continue
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return {m for m in out if m in MODULES and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_helpers_import_graph_has_no_cycles():
    graph = {name: top_level_imports(name, path) for name, path in MODULES.items()}
    assert sum(len(v) for v in graph.values()) > 50  # the walk really saw the package's imports
    assert "helpers.errors" in graph["helpers.maskpool"] and "helpers.maskers" in graph["helpers.maskpool"]
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_errors_module_imports_no_step_module():
    assert top_level_imports("helpers.errors", MODULES["helpers.errors"]) == set()


def test_no_module_is_over_500_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert len(sizes) > 30
    too_big = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_big, too_big


def test_heavy_libraries_load_only_when_used():
    """Importing every helpers module except the Bedrock adapters loads none of the heavy
    optional libraries: they come in only when a masker, embedder, index or widget is used."""
    names = [n for n in MODULES if not n.startswith(BOTO3_ADAPTERS)]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
