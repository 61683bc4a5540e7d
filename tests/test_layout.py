"""The package layout: no import circle among arnn_tf's modules, few modules at the top."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "arnn_tf"
MAX_TOP_LEVEL_MODULES = 12


def module_files() -> dict[str, Path]:
    """Every module of arnn_tf by dotted name (a package by its own name)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported(node: ast.AST, package: str, modules: dict[str, Path]) -> list[str]:
    """The arnn_tf modules an import statement loads (a `from P import m` loads P.m)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
    return submodules if len(submodules) == len(node.names) else [base, *submodules]


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports anywhere in its file, function bodies included, with
    the packages Python initialises on the way (importing a.b.c runs a.b's __init__)."""
    modules = module_files()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            for target in imported(node, package, modules):
                pieces = target.split(".")
                for end in range(2, len(pieces) + 1):
                    prefix = ".".join(pieces[:end])
                    if prefix in modules and not (name + ".").startswith(prefix + "."):
                        targets.add(prefix)
        graph[name] = targets
    return graph


def cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path of imports from ``start`` back to itself, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for target in graph[node]:
            if target == start:
                return path + [start]
            if target not in seen:
                seen.add(target)
                stack.append((target, path + [target]))
    return None


def test_no_import_circle():
    graph = import_graph()
    circles = [c for c in (cycle_through(graph, m) for m in sorted(graph)) if c]
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    # arnn_tf/__init__ imports arnn_tf.runs only inside __getattr__ (importlib), and
    # tasks/specs imports the text task inside get_task
    assert "arnn_tf.modalities.text.task" in graph["arnn_tf.tasks.specs"]
    assert "arnn_tf.tasks" in graph["arnn_tf.modalities.text.task"]


def test_few_modules_directly_in_the_package():
    top_level = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, top_level
