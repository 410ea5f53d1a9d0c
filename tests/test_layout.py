"""The package layout keeps its promises: no import cycles, no module over ~500 lines, no function over
~80 lines, and the runtime side never imports TensorFlow at module level."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edgecnn"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
MODULES = sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """edgecnn modules this file imports, at module level or lazily inside functions: a lazy import
    hides a cycle from the interpreter, not from a reader."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    here = _module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("edgecnn")}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: resolve against this package
                pkg = here.split(".")[: -node.level + (1 if path.name == "__init__.py" else 0) or None]
                base = ".".join([*pkg, node.module])
            if base.startswith("edgecnn"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    known = {_module_name(p) for p in MODULES}
    return {m for m in found if m in known and m != here}


def test_no_import_cycles() -> None:
    graph = {_module_name(p): _imports(p) for p in MODULES}
    # A package's __init__ re-exporting its own modules is its face, not a cycle.
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not (name.startswith(d + ".") or d == name)}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_functions_are_small(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines (max {MAX_MODULE_LINES})"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"
