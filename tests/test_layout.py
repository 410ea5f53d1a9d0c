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


def _import_statements(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) per `import`/`from ... import` in the file, relative imports resolved; lazy imports
    inside functions included: a lazy import hides a cycle from the interpreter, not from a reader."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("edgecnn")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: resolve against this package
                pkg = here.split(".")[: -node.level + (1 if path.name == "__init__.py" else 0) or None]
                base = ".".join([*pkg, node.module])
            if base.startswith("edgecnn"):
                found.append((base, [a.name for a in node.names]))
    return found


KNOWN = {_module_name(p) for p in MODULES}


def _imports(path: Path) -> set[str]:
    """edgecnn modules this file makes Python load. `from edgecnn.pkg import x` loads the package's
    `__init__` (the facade) and, where x is a module, that module too."""
    here = _module_name(path)
    found: set[str] = set()
    for base, names in _import_statements(path):
        found.add(base)
        found |= {f"{base}.{n}" for n in names}
    return {m for m in found if m in KNOWN and m != here}


def test_no_import_cycles() -> None:
    """Edges through package `__init__` files count: `runtime.sessions -> runtime (facade) ->
    runtime.optimize -> runtime.sessions` is a cycle, even if Python happens to resolve it today."""
    graph = {_module_name(p): _imports(p) for p in MODULES}
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


def test_modules_import_siblings_by_path_not_through_their_package_facade() -> None:
    """Inside a package, `from edgecnn.runtime import thread_pool` goes through the facade that imports
    every sibling; siblings are imported by their own module path instead."""
    offenders = []
    for path in MODULES:
        if path.name == "__init__.py":
            continue
        package = _module_name(path).rsplit(".", 1)[0]
        for base, _names in _import_statements(path):
            if base == package or (package.startswith(base + ".") and base != "edgecnn"):
                offenders.append(f"{path.relative_to(ROOT)}: from {base} import ...")
            if base == "edgecnn" and any(n != "__version__" for n in _names):
                offenders.append(f"{path.relative_to(ROOT)}: from edgecnn import ... (the package root)")
            if base == "edgecnn" and "__version__" in _names:
                offenders.append(f"{path.relative_to(ROOT)}: __version__ comes from edgecnn.core.version")
    assert not offenders, "\n".join(offenders)


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


def test_module_names_repeat_only_between_a_command_and_its_engine() -> None:
    """A file name says what it holds: `config.py` in three packages makes a reader open all three. The
    one repetition allowed is a command module (`commands/tune.py`) and the engine it calls
    (`benchmarking/tune.py`), so a reader finds the engine by the command's name."""
    by_name: dict[str, list[Path]] = {}
    for path in MODULES:
        if path.name != "__init__.py":
            by_name.setdefault(path.name, []).append(path.relative_to(PACKAGE))
    repeated = {}
    for name, paths in by_name.items():
        if len(paths) < 2:
            continue
        commands = [p for p in paths if p.parts[0] == "commands"]
        if len(paths) != 2 or len(commands) != 1:
            repeated[name] = [str(p) for p in paths]
    assert not repeated, f"file names repeated outside a command/engine pair: {repeated}"


PACKAGES = ("core", "data", "models", "training", "exporting", "runtime", "benchmarking", "evaluation",
            "prediction", "commands")  # fmt: skip
# Third-party source files a comment may name.
FOREIGN_FILES = {"onnxruntime_inference_collection.py"}


def _prose(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the file's comments and docstrings: where a renamed module's old name lingers."""
    import io
    import tokenize

    text = path.read_text(encoding="utf-8")
    found = [
        (tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(text).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.body[0].lineno, doc))
    return found


def _facade(package: str) -> set[str]:
    """Names a package's __init__ offers (`benchmarking.bench` is the function, not a module)."""
    tree = ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8"))
    return {
        a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for a in node.names
    }


def test_comments_and_docstrings_name_modules_that_exist() -> None:
    """`data.registry`, `exporting.int8_recipes`, trt_int8.py...: after a rename, prose that still names
    the old module sends a reader to a file that is not there."""
    import re

    files = {p.name for p in ROOT.rglob("*.py") if ".venv" not in p.parts} | FOREIGN_FILES
    dotted = re.compile(rf"\b(?:edgecnn\.)?({'|'.join(PACKAGES)})\.([a-z_][a-z0-9_]*)\b")
    stale = []
    for path in MODULES:
        for line, text in _prose(path):
            for pkg, name in dotted.findall(text):
                here = PACKAGE / pkg
                if not ((here / f"{name}.py").exists() or (here / name).is_dir() or name in _facade(pkg)):
                    stale.append(f"{path.relative_to(ROOT)}:{line}: {pkg}.{name}")
            stale += [
                f"{path.relative_to(ROOT)}:{line}: {f}"
                for f in re.findall(r"\b[a-z_][a-z0-9_]*\.py\b", text)
                if f not in files
            ]
    assert not stale, "comments/docstrings name modules that do not exist:\n" + "\n".join(stale)
