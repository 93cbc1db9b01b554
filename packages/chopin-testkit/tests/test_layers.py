"""chopin_testkit.layers on small packages written to a temporary directory: every kind of import counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from chopin_testkit.layers import ClassSize, ImportEdge, ImportGraph


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_circle_closed_only_by_type_checking_and_deferred_imports_is_found(tmp_path: Path) -> None:
    src = write_package(
        tmp_path,
        {
            "__init__.py": "from .a import A\n",
            "a.py": "from . import b\nclass A: ...\n",
            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n",
            "c.py": "def f():\n    from .a import A\n    return A\n",
            "d.py": "import os\n",
        },
    )
    graph = ImportGraph.from_package(src, "pkg")
    assert graph.cycles() == [["pkg.a", "pkg.b", "pkg.c"]]
    kinds = {(e.source, e.target): e.kind for e in graph.edges}
    assert kinds == {
        ("pkg", "pkg.a"): "top",
        ("pkg.a", "pkg.b"): "top",
        ("pkg.b", "pkg.c"): "type_checking",
        ("pkg.c", "pkg.a"): "deferred",
    }


def test_no_circle_and_the_edges_name_what_they_import(tmp_path: Path) -> None:
    src = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "low.py": "X = 1\n",
            "high.py": "import pkg.low\nfrom pkg.low import X\nfrom . import low as L\n",
        },
    )
    graph = ImportGraph.from_package(src, "pkg")
    assert graph.cycles() == []
    assert graph.edges == [
        ImportEdge("pkg.high", "pkg.low", (), 1, "top"),
        ImportEdge("pkg.high", "pkg.low", ("X",), 2, "top"),
        ImportEdge("pkg.high", "pkg.low", (), 3, "top"),
    ]
    assert graph.edges_between({"pkg.low"}, {"pkg.high"}) == []
    assert len(graph.edges_between({"pkg.high"}, {"pkg.low"})) == 3


def test_relative_imports_resolve_in_subpackages_and_the_package_root(tmp_path: Path) -> None:
    src = write_package(
        tmp_path,
        {
            "__init__.py": "from .sub import thing\n",
            "top.py": "from . import VERSION\n",
            "sub/__init__.py": "from .leaf import thing\n",
            "sub/leaf.py": "from ..top import T\nfrom .. import top\nthing = 1\n",
        },
    )
    graph = ImportGraph.from_package(src, "pkg")
    pairs = {(e.source, e.target) for e in graph.edges}
    assert pairs == {
        ("pkg", "pkg.sub"),
        ("pkg.top", "pkg"),
        ("pkg.sub", "pkg.sub.leaf"),
        ("pkg.sub.leaf", "pkg.top"),
    }
    assert graph.cycles() == [["pkg", "pkg.sub", "pkg.sub.leaf", "pkg.top"]]


def test_private_names_imported_across_modules_are_listed_private_modules_are_not(tmp_path: Path) -> None:
    src = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "_codecs.py": "_TABLE = {}\ndef encode(): ...\n",
            "user.py": "from . import _codecs\nfrom ._codecs import encode\nfrom ._codecs import _TABLE, encode as e\n",
        },
    )
    graph = ImportGraph.from_package(src, "pkg")
    assert graph.private_imports() == [ImportEdge("pkg.user", "pkg._codecs", ("_TABLE", "encode"), 3, "top")]


def test_class_sizes_count_every_line_of_the_body_nested_classes_too(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(10))
    src = write_package(
        tmp_path, {"__init__.py": "", "m.py": f"@dataclass\nclass Big:\n{body}\n    class Inner:\n        y = 1\n"}
    )
    sizes = ImportGraph.from_package(src, "pkg").class_sizes()
    assert sizes == [ClassSize("pkg.m", "Big", 14), ClassSize("pkg.m", "Big.Inner", 2)]


def test_a_missing_package_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="expected a directory at"):
        ImportGraph.from_package(tmp_path, "nothing")


def test_a_compiled_module_is_known_by_its_stub(tmp_path: Path) -> None:
    # `from ._speed import f` names the extension module (its _speed.pyi), not the package.
    src = write_package(
        tmp_path,
        {
            "__init__.py": "from .a import A\n",
            "a.py": "from ._speed import f\nfrom . import _speed\nclass A: ...\n",
            "_speed.pyi": "def f() -> None: ...\n",
            "b.py": "",
            "b.pyi": "x: int\n",
        },
    )
    graph = ImportGraph.from_package(src, "pkg")
    assert graph.modules["pkg._speed"].name == "_speed.pyi"
    assert graph.modules["pkg.b"].name == "b.py"  # a stub beside its module changes nothing
    assert graph.imports_of("pkg.a") == {"pkg._speed"}
    assert graph.cycles() == []
