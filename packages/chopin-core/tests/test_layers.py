"""The layer test: chopin_core's import graph, read from the source (AST), keeps its shape.

Every intra-package import counts: top level, under ``TYPE_CHECKING`` and inside
functions, since each one is a dependency a reader has to follow.  The rules:

- the wire layer (``_wire/``) imports only the standard library, ``errors`` (and the
  client's errors), ``request`` and itself, and has no import circle;
- no import circle is larger than a small knot of type aliases (``MAX_CIRCLE`` modules);
- the app layer does not import the engine, except the edges in ``KNOWN_BACK_EDGES``
  (a ratchet: a new back edge fails, and so does a listed one that is gone);
- no module imports another module's private names (ruff's SLF001 covers attributes:
  ``obj._name``), and no class is over ``MAX_CLASS_LINES`` lines (the worker was 1,415).
"""

from __future__ import annotations

import ast
from pathlib import Path

import chopin_core
from chopin_testkit.layers import ImportGraph

SRC = Path(chopin_core.__file__).parent
PKG = "chopin_core"
MAX_CIRCLE = 4
#: Past this a class holds more than one job (issue 16).
MAX_CLASS_LINES = 750
WIRE_MAY_IMPORT = frozenset({"errors", "_client_errors", "request"})
ENGINE = frozenset({"worker", "connection", "timer", "http2", "_body"})
# App-layer modules that still import the engine: the server starts the supervisor (one
# edge where there were three: worker, connection, _engine.fanout), the test client calls
# Worker.answer.
KNOWN_BACK_EDGES = frozenset(
    {
        ("server", "_engine.supervisor"),
        ("static", "connection"),
        ("testclient", "worker"),
    }
)


def _modules() -> dict[str, Path]:
    mods = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module name (relative to the package, ``""`` for the package) -> the package modules it imports."""
    mods = _modules()
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        package = [p for p in package if p]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                elif node.module and (node.module == PKG or node.module.startswith(PKG + ".")):
                    module = node.module[len(PKG) + 1 :]
                else:
                    continue
                for alias in node.names:
                    sub = f"{module}.{alias.name}" if module else alias.name
                    targets.append(sub if sub in mods else module)
            elif isinstance(node, ast.Import):
                targets = [a.name[len(PKG) + 1 :] for a in node.names if a.name.startswith(PKG + ".")]
            graph[name].update(t for t in targets if t in mods and t != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def _layer(name: str) -> str:
    if name == "_wire" or name.startswith("_wire."):
        return "wire"
    return "engine" if name in ENGINE or name == "_engine" or name.startswith("_engine.") else "app"


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert "_wire.h1_request" in graph["worker"]  # top level
    assert "_engine.channel" in graph["http2"]  # under TYPE_CHECKING
    assert "compress" in graph["response"]  # inside a method


def test_wire_layer_imports_only_errors_request_and_itself() -> None:
    graph = import_graph()
    wrong = {
        (name, target)
        for name, targets in graph.items()
        if _layer(name) == "wire"
        for target in targets
        if _layer(target) != "wire" and target not in WIRE_MAY_IMPORT
    }
    assert not wrong, f"the sans-IO wire layer imports upwards: {sorted(wrong)}"


def test_wire_layer_has_no_circle() -> None:
    graph = import_graph()
    wire = {
        name: {t for t in targets if _layer(t) == "wire"} for name, targets in graph.items() if _layer(name) == "wire"
    }
    assert circles(wire) == []


def test_no_import_circle_beyond_a_small_knot() -> None:
    # What is left: response/context/types/compress (type aliases and Response.gzip's
    # deferred import) and connection/_body (the body intake's types).
    large = [sorted(c) for c in circles(import_graph()) if len(c) > MAX_CIRCLE]
    assert not large, f"import circles over {MAX_CIRCLE} modules: {large}"


def test_app_layer_does_not_import_the_engine() -> None:
    graph = import_graph()
    back = {
        (name, target)
        for name, targets in graph.items()
        if _layer(name) == "app" and name
        for target in targets
        if _layer(target) == "engine"
    }
    new, gone = sorted(back - KNOWN_BACK_EDGES), sorted(KNOWN_BACK_EDGES - back)
    assert not new, f"new imports from the app layer into the engine: {new}"
    assert not gone, f"cut now, drop them from KNOWN_BACK_EDGES: {gone}"


def test_no_module_imports_another_modules_private_names() -> None:
    graph = ImportGraph.from_package(SRC.parent, PKG)
    found = [f"{e.source}:{e.line} imports {e.names} from {e.target}" for e in graph.private_imports()]
    assert found == []


def test_no_class_is_over_the_size_limit() -> None:
    graph = ImportGraph.from_package(SRC.parent, PKG)
    sizes = {f"{s.module}.{s.name}": s.lines for s in graph.class_sizes()}
    assert "chopin_core.worker.Worker" in sizes  # the guard read the package
    big = {name: lines for name, lines in sizes.items() if lines > MAX_CLASS_LINES}
    assert big == {}
