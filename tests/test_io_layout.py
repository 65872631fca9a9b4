"""Layout rules of the I/O, sweep and topology packages: module-level project imports and no import circles.

The import graph is read from the source with :mod:`ast` (nothing is
imported), so the checks see every ``import`` statement, also those inside
functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from planner.io import readers

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("planner/io", "planner/sweep", "planner/topology")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _planner_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in (ROOT / "planner").rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported planner module, imported inside a function) for every import statement of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested |= {id(n) for n in ast.walk(node) if n is not node}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
            ]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found += [(n, id(node) in nested) for n in names if n.split(".")[0] == "planner"]
    return found


def _own_modules(modules: dict[str, Path]) -> list[str]:
    return sorted(m for m, p in modules.items() if str(p.relative_to(ROOT)).startswith(PACKAGES))


def test_project_imports_sit_at_module_level() -> None:
    modules = _planner_modules()
    lazy = {
        (m, imported) for m in _own_modules(modules) for imported, inside in _imports(modules[m], modules) if inside
    }
    # the one allowed exception: the simulation stack (scipy.stats) only for sweeps that simulate
    assert lazy <= {("planner.sweep.points", "planner.simulate.design_check")}, sorted(lazy)


def test_no_import_circle_through_io_sweep_or_topology() -> None:
    modules = _planner_modules()
    graph = {m: {i for i, _ in _imports(p, modules) if i in modules} for m, p in modules.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(graph.get(m, ()))
        return False

    circles = {(m, dep) for m in _own_modules(modules) for dep in sorted(graph[m]) if dep != m and reaches(dep, m)}
    assert not circles, sorted(circles)


def test_the_reader_helper_sees_an_inner_import(tmp_path: Path) -> None:
    """The checks above can fail: a function-level project import and a top-level one are told apart."""
    src = tmp_path / "m.py"
    src.write_text("import planner.geo\n\ndef f():\n    from planner.errors import Problem\n")
    modules = {"planner.geo": src, "planner.errors": src}
    assert sorted(_imports(src, modules)) == [("planner.errors", True), ("planner.geo", False)]


@pytest.mark.parametrize("fmt", readers.FORMATS)
def test_every_format_has_a_reader(fmt: str) -> None:
    assert callable(readers._READERS[fmt])
