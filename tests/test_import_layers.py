"""The polyop package has no import cycle: front-ends, model, schedule,
pipeline and code generators form layers.

Every module's imports of other polyop modules are collected with ``ast``
(top-level and function-level ones alike: an import inside a function is a
dependence all the same, only a later one), except those under
``if TYPE_CHECKING:``, which never run. ``from polyop.x import y`` depends on
the submodule ``polyop.x.y`` when there is one, else on ``polyop.x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import polyop

PACKAGE = Path(polyop.__file__).parent

# Cycles not broken yet (none today): each entry would be the whole set of
# modules that import one another in a circle (a strongly connected component of
# the import graph), so a module joining the circle fails the test, with the
# reason beside it. Remove an entry when its cycle is gone (the test says so).
ALLOWED_CYCLES: set[frozenset[str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:``."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
                isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING" or
                isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"):
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def imports_of(name: str, path: Path, modules: set[str]) -> dict[str, int]:
    """The polyop modules ``name`` imports, each with the line of its first import."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_only(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module
                       for a in node.names]
        for target in targets:
            while target not in modules and "." in target:  # polyop.x.attr -> polyop.x
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                found.setdefault(target, node.lineno)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(name, path, set(paths)) for name, path in paths.items()}


def cycles(graph: dict[str, dict[str, int]]) -> list[tuple[frozenset[str], list[str]]]:
    """Each strongly connected component of more than one module (Tarjan's
    algorithm), with one cycle through its smallest module (a shortest one)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(v: str) -> None:  # the package is small: recursion depth is no issue
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    out = []
    for component in components:
        start = min(component)
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:  # breadth first: the shortest cycle from start
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w == start:
                        cycle = paths[v]
                        break
                    if w in component and w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
                if cycle is not None:
                    break
            frontier = nxt
        out.append((frozenset(component), cycle))
    return out


def describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    steps = zip(cycle, cycle[1:] + cycle[:1])
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in steps) + f" -> {cycle[0]}"


def test_the_graph_sees_imports_of_every_form():
    graph = import_graph()
    assert "polyop.ir" in graph["polyop.printer"]  # from . import ir
    assert "polyop.kinds" in graph["polyop.ir"]  # from .kinds import LoopKind
    assert "polyop.codegen.llvm" in graph["polyop.codegen"]  # package __init__, relative
    assert "polyop.program" in graph["polyop.schedule.plan"]  # from ..program import
    # an import inside a function counts; one under TYPE_CHECKING does not
    assert "polyop.schedule.schedule" not in graph["polyop.schedule.handles"]


def test_cycle_finder_finds_and_prints_a_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    ((component, cycle),) = cycles(graph)
    assert component == {"a", "b", "c"} and cycle == ["a", "b", "c"]
    assert describe(cycle, graph) == "a (line 1) -> b (line 2) -> c (line 3) -> a"
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycle_in_polyop():
    graph = import_graph()
    found = cycles(graph)
    new = [(c, cycle) for c, cycle in found if c not in ALLOWED_CYCLES]
    assert not new, "import cycles in polyop:\n" + "\n".join(
        f"{describe(cycle, graph)}\n  (modules in the circle: {', '.join(sorted(c))})"
        for c, cycle in new)
    gone = ALLOWED_CYCLES - {c for c, _ in found}
    assert not gone, f"allowed cycles no longer there (remove them from the list): {gone}"
