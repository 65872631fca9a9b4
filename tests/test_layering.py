"""The import graph of the shipped packages: no circles, and imports go one way only.

The graph is read from the source with :mod:`ast` (every ``import`` statement, at module
level, inside functions and under ``TYPE_CHECKING`` alike: a circle hidden in a function
is still a circle). A module ``a.b`` importing ``a.b.c`` or ``from a.b import c`` depends
on ``a.b.c`` when that is a module, else on ``a.b``; a package's ``__init__`` is the
module of the package's name.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("planner", "solvers", "reports", "qkdplan")


def _module_names() -> dict[str, Path]:
    """Dotted name -> file of every module of the shipped packages."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a project module (None outside the project)."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in modules:
            return cand
        parts.pop()
    return None


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (itself excluded)."""
    modules = _module_names()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg_parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg_parts = pkg_parts[: len(pkg_parts) - (node.level - 1)]
                    base = ".".join([*pkg_parts, *([base] if base else [])])
                targets = [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                dep = _resolve(t, modules)
                if dep is not None and dep != mod:
                    graph[mod].add(dep)
    return graph


def cycles(graph: dict[str, set[str]], prefix: tuple[str, ...]) -> list[list[str]]:
    """Strongly connected components of more than one module among modules starting with ``prefix``
    (Tarjan's algorithm, iteratively), each sorted; a package and the modules its
    ``__init__`` re-exports count as separate nodes."""
    nodes = sorted(m for m in graph if m.startswith(prefix))
    keep = set(nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root] & keep))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, todo = work[-1]
            if todo:
                w = todo.pop()
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, sorted(graph[w] & keep)))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_on_a_known_graph() -> None:
    """The finder itself: one circle of three, a self-contained pair, and an acyclic tail."""
    g = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}, "x": {"a"}}
    assert sorted(cycles(g, ("",))) == [["a", "b", "c"], ["e", "f"]]
    assert cycles({"a": {"b"}, "b": set()}, ("",)) == []


def test_graph_sees_function_level_and_relative_imports() -> None:
    """The graph is not empty and knows an edge that exists (the pipeline runs the memory stage)."""
    g = import_graph()
    assert "planner.stages.memory" in g["planner.pipeline"]


@pytest.mark.parametrize("package", ["planner", "solvers"])
def test_no_import_cycles(package: str) -> None:
    found = cycles(import_graph(), (package + ".", package))
    found = [c for c in found if all(m == package or m.startswith(package + ".") for m in c)]
    assert found == [], f"import circles in {package}/: {found}"


def function_level_imports(path: Path) -> list[str]:
    """Project modules imported inside a function of ``path`` (``"function: module"``)."""
    modules = _module_names()
    out = []
    for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            out += [f"{fn.name}: {n}" for n in names if _resolve(n, modules) is not None]
    return sorted(set(out))


def test_function_level_import_finder(tmp_path: Path) -> None:
    """The finder sees a project import in a function and ignores a third-party one."""
    path = tmp_path / "probe.py"
    path.write_text(
        "import numpy\n\ndef f():\n    import pandas\n    from planner.errors import Problem\n", encoding="utf-8"
    )
    assert function_level_imports(path) == ["f: planner.errors"]


@pytest.mark.parametrize("path", sorted((ROOT / "planner" / "stages").glob("*.py")), ids=lambda p: p.stem)
def test_stage_modules_import_the_project_at_module_level(path: Path) -> None:
    """The stages' project imports are visible at the top of each module (lazy only for heavy libraries)."""
    assert function_level_imports(path) == []


def test_solvers_import_nothing_of_planner() -> None:
    g = import_graph()
    bad = {
        m: sorted(d for d in deps if d.split(".")[0] != "solvers")
        for m, deps in g.items()
        if m.split(".")[0] == "solvers"
    }
    assert {m: d for m, d in bad.items() if d} == {}


def test_planner_imports_nothing_of_reports_or_qkdplan() -> None:
    g = import_graph()
    bad = {
        m: sorted(d for d in deps if d.split(".")[0] in ("reports", "qkdplan"))
        for m, deps in g.items()
        if m.split(".")[0] == "planner"
    }
    assert {m: d for m, d in bad.items() if d} == {}
