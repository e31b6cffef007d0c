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


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _import_nodes(tree: ast.Module, everywhere: bool) -> list[ast.Import | ast.ImportFrom]:
    """Module-level import statements, or with `everywhere` every import statement in the file
    (inside functions, methods, try blocks too), never those under `if TYPE_CHECKING:`."""
    if not everywhere:
        return [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if _is_type_checking(node):
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def imports(name: str, path: Path, everywhere: bool = True) -> set[str]:
    """helpers.* modules that `name` imports: by default every import statement in the file,
    including those inside functions (an import deferred into a function still ties the two
    modules together, it only hides the loop from Python); with everywhere=False only the
    module-level statements, i.e. what runs when the module is imported."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _import_nodes(ast.parse(path.read_text()), everywhere):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("helpers"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("helpers"):
                continue
            submodules = {f"{base}.{a.name}" for a in node.names} & MODULES.keys()
            out.update(submodules)
            if len(submodules) < len(node.names):  # `from package import submodule` needs no name of package
                out.add(base)
    return {m for m in out if m in MODULES and m != name}


def top_level_imports(name: str, path: Path) -> set[str]:
    """helpers.* modules imported when `name` is imported (module-level statements only)."""
    return imports(name, path, everywhere=False)


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


def test_the_import_walk_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text("from typing import TYPE_CHECKING\nimport helpers.errors\n"
                      "if TYPE_CHECKING:\n    from helpers import catalog\n"
                      "def f():\n    try:\n        from helpers.cache import Cache\n    except ImportError:\n"
                      "        pass\n    class K:\n        def g(self):\n            import helpers.images\n")
    assert imports("helpers.mod", module) == {"helpers.errors", "helpers.cache", "helpers.images"}
    assert top_level_imports("helpers.mod", module) == {"helpers.errors"}


def test_helpers_import_graph_has_no_cycles():
    """No loop, counting imports inside functions too: a deferred import hides a loop from
    Python, not from whoever has to understand or split the two modules."""
    graph = {name: imports(name, path) for name, path in MODULES.items()}
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
