"""The ORM's import graph, read from its source: no wide import circle, no private name imported across modules.

Every intra-package import counts (top level, ``TYPE_CHECKING``, inside functions); see
:mod:`chopin_testkit.layers`.
"""

from __future__ import annotations

from pathlib import Path

import chopin_orm
from chopin_testkit.layers import ImportGraph

GRAPH = ImportGraph.from_package(Path(chopin_orm.__file__).parent.parent, "chopin_orm")

#: At most a small knot: the model, its expressions, queries and persistence name each other's types.
MAX_CIRCLE = 4
MAX_CLASS_LINES = 750


def test_no_import_circle_is_wider_than_a_small_knot() -> None:
    assert {"chopin_orm.model", "chopin_orm.query", "chopin_orm.executor"} <= set(GRAPH.modules)
    wide = [circle for circle in GRAPH.cycles() if len(circle) > MAX_CIRCLE]
    assert wide == [], f"import circles over {MAX_CIRCLE} modules: {wide}"


def test_no_module_imports_another_modules_private_names() -> None:
    found = [f"{e.source}:{e.line} imports {e.names} from {e.target}" for e in GRAPH.private_imports()]
    assert found == []


def test_no_class_is_over_the_size_limit() -> None:
    big = [f"{s.module}.{s.name}: {s.lines} lines" for s in GRAPH.class_sizes() if s.lines > MAX_CLASS_LINES]
    assert big == []
