"""The driver's layers, read from its source: protocol and session code below the I/O shell, no wide import circle.

Every intra-package import counts (top level, ``TYPE_CHECKING``, inside functions); see
:mod:`chopin_testkit.layers`.  The layers, bottom up:

- the sans-IO core: the wire protocol (``protocol``), codecs and types, and the session's
  operation generators (``_session``, ``_statements``, ``_bind``, ``_copy_ops``, ``_pipeline``);
- the I/O shells: ``_waiting`` (drives a generator over a socket) and ``connection``
  (``Connection.wait``, the one public entry to it); ``_nonblocking`` and ``async_connection``,
  the non-blocking shell over the same generators (``_inflight`` is its sans-IO half);
- what runs on that entry: ``copy``, ``pipeline``, ``pool`` and the package root.
"""

from __future__ import annotations

from pathlib import Path

import chopin_pg
from chopin_testkit.layers import ImportGraph

SRC = Path(chopin_pg.__file__).parent.parent
GRAPH = ImportGraph.from_package(SRC, "chopin_pg")

#: Circles allowed: at most a small knot (the connection constructs its COPY and pipeline
#: objects, which name the connection's type under TYPE_CHECKING).
MAX_CIRCLE = 4
#: Past this a class holds more than one job (issue 16: Session had seven in 800 lines).
MAX_CLASS_LINES = 750

#: The I/O shell and what is built on a connection (the DB-API, host lists, types read from the catalog).
SHELL_AND_ABOVE = {
    f"chopin_pg.{m}"
    for m in (
        "_waiting",
        "_nonblocking",
        "connection",
        "async_connection",
        "async_transaction",
        "async_pool",
        "copy",
        "pipeline",
        "pool",
        "dbapi",
        "_dbapi_types",
        "_multihost",
        "usertypes",
        "sqlalchemy",
    )
} | {"chopin_pg"}


def test_no_import_circle_is_wider_than_a_small_knot() -> None:
    wide = [circle for circle in GRAPH.cycles() if len(circle) > MAX_CIRCLE]
    assert wide == [], f"import circles over {MAX_CIRCLE} modules: {wide}"


def test_no_module_imports_another_modules_private_names() -> None:
    found = [f"{e.source}:{e.line} imports {e.names} from {e.target}" for e in GRAPH.private_imports()]
    assert found == []


def test_the_sans_io_core_never_imports_the_io_shell_or_what_is_built_on_it() -> None:
    core = set(GRAPH.modules) - SHELL_AND_ABOVE
    assert {"chopin_pg.protocol", "chopin_pg._session", "chopin_pg._bind", "chopin_pg._pipeline"} <= core
    assert "chopin_pg._inflight" in core
    upward = [f"{e.source}:{e.line} -> {e.target} ({e.kind})" for e in GRAPH.edges_between(core, SHELL_AND_ABOVE)]
    assert upward == []


def test_copy_pipeline_and_pool_reach_the_connection_only_through_its_public_names() -> None:
    # SLF001 in the root pyproject.toml refuses conn._anything; this pins the imports side.
    users = {"chopin_pg.copy", "chopin_pg.pipeline", "chopin_pg.pool"}
    for edge in GRAPH.edges_between(users, {"chopin_pg._waiting", "chopin_pg._session"}):
        raise AssertionError(f"{edge.source}:{edge.line} imports {edge.target}: use Connection.wait / .session")


def test_no_class_is_over_the_size_limit() -> None:
    big = [f"{s.module}.{s.name}: {s.lines} lines" for s in GRAPH.class_sizes() if s.lines > MAX_CLASS_LINES]
    assert big == []


def test_the_graph_sees_the_whole_package() -> None:
    # A guard that parses nothing passes everything: check it read the modules it guards.
    assert {"chopin_pg.connection", "chopin_pg.copy", "chopin_pg.pool", "chopin_pg._session"} <= set(GRAPH.modules)
    assert ("chopin_pg.copy", "chopin_pg.connection", "type_checking") in {
        (e.source, e.target, e.kind) for e in GRAPH.edges
    }
