"""No import circles in src/inferd: each module uses only modules below it.

The graph is read from the source with `ast`, so it sees every import a module names: at the top, inside a
function (a lazy import is still a use of that layer), and under `if TYPE_CHECKING:` (a type from a module above
is a use of that module too). `from pkg import name` is an edge to `pkg.name` when that is a module, else to `pkg`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import inferd

SRC = Path(inferd.__file__).resolve().parent.parent


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__) for every module of inferd."""
    found = {}
    for path in (SRC / "inferd").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]  # what `from .` means in this file
        used: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                used.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    used.add(sub if sub in modules else target)
        graph[name] = {m for m in used if m in modules and m != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_graph_sees_the_imports_it_must():
    # A graph that missed lazy, TYPE_CHECKING or relative imports would find no circle where there is one.
    graph = import_graph()
    assert "inferd.backends.base" in graph["inferd.backends.sklearn"]  # `from .base import ...`
    assert "inferd.server.ray_serve" in graph["inferd.cli"]  # inside a function
    assert "inferd.catalogue" in graph["inferd.backends.base"]  # under TYPE_CHECKING
    assert "inferd.catalogue.text" in graph["inferd.catalogue.defaults"]  # `from . import text`


def test_find_cycles_reports_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_src_has_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert cycles == [], "import circles (each a group of modules that import each other):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )
