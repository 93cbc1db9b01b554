"""A package's intra-package import graph, read with :mod:`ast`, for layer tests.

::

    graph = ImportGraph.from_package(Path("packages/chopin-pg/src"), "chopin_pg")
    assert max(map(len, graph.cycles()), default=0) <= 4
    assert graph.private_imports() == []

Every import between two modules of the package counts, wherever it is written:
at the top level, under ``if TYPE_CHECKING:`` and inside functions (each
:class:`ImportEdge` says which).  A circle that only closes through a
``TYPE_CHECKING`` or deferred import is still a circle a reader has to hold in
mind, so :meth:`ImportGraph.cycles` does not leave those out.  Nothing is
imported or executed: the files are only parsed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["ClassSize", "ImportEdge", "ImportGraph", "ImportKind"]

#: Where an import is written: at module level, under ``if TYPE_CHECKING:``, or inside a function.
ImportKind = Literal["top", "type_checking", "deferred"]


@dataclass(frozen=True, slots=True)
class ImportEdge:
    """One import of a module of the package by another (or by itself).

    Attributes:
        source: The importing module (dotted name).
        target: The imported module (dotted name; the package's ``__init__`` is the package name).
        names: The names imported (``from m import a, b``), empty for ``import m`` / ``from . import m``.
        line: Line of the import statement in the source module.
        kind: Where the import is written.
    """

    source: str
    target: str
    names: tuple[str, ...]
    line: int
    kind: ImportKind


@dataclass(frozen=True, slots=True)
class ClassSize:
    """A class and how many source lines its body spans.

    Attributes:
        module: The module that defines it (dotted name).
        name: The class name (``Outer.Inner`` for a nested class).
        lines: Lines from ``class`` to the end of its body.
    """

    module: str
    name: str
    lines: int


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class ImportGraph:
    """The modules of one package and the imports between them.

    Attributes:
        package: The package's import name.
        modules: Dotted module name to source file.
        edges: Every intra-package import, in file and line order.
    """

    def __init__(self, package: str, modules: dict[str, Path], edges: list[ImportEdge]) -> None:
        self.package = package
        self.modules = modules
        self.edges = edges

    @classmethod
    def from_package(cls, src: Path, package: str) -> ImportGraph:
        """Parse every ``.py`` file of ``package`` under ``src`` (``src/<package>/...``).

        Args:
            src: The directory that holds the package directory.
            package: The package's import name.

        Returns:
            The graph.

        Raises:
            FileNotFoundError: ``src/<package>`` is not a directory.
        """
        root = src / package
        if not root.is_dir():
            raise FileNotFoundError(f"package {package!r}: expected a directory at {root}")
        modules = {_module_name(package, root, path): path for path in sorted(root.rglob("*.py"))}
        # A compiled extension module is known by its stub (``_x.pyi`` with no ``_x.py``).
        for stub in sorted(root.rglob("*.pyi")):
            modules.setdefault(_module_name(package, root, stub), stub)
        edges: list[ImportEdge] = []
        for name, path in modules.items():
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            is_package = path.name == "__init__.py"
            edges.extend(_Collector(name, is_package, modules).collect(tree))
        return cls(package, modules, edges)

    def imports_of(self, module: str) -> set[str]:
        """The modules ``module`` imports (any kind)."""
        return {e.target for e in self.edges if e.source == module and e.target != module}

    def cycles(self) -> list[list[str]]:
        """Every import circle: the strongly connected components of more than one module.

        Returns:
            Each circle's modules, sorted; the largest circle first.
        """
        graph = {m: sorted(self.imports_of(m)) for m in self.modules}
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []

        def visit(node: str) -> None:  # Tarjan's algorithm; package graphs are small enough to recurse
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)
            for nxt in graph[node]:
                if nxt not in index:
                    visit(nxt)
                    low[node] = min(low[node], low[nxt])
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

        for module in graph:
            if module not in index:
                visit(module)
        return sorted(found, key=lambda c: (-len(c), c))

    def private_imports(self) -> list[ImportEdge]:
        """Imports of another module's private names (``from .m import _name``).

        A private *module* (``from . import _codecs``) is the package's own and is not
        listed; a private name inside a module belongs to that module alone.
        """
        out = []
        for edge in self.edges:
            if edge.target == edge.source:
                continue
            private = [n for n in edge.names if n.startswith("_") and not n.startswith("__")]
            if private and not all(f"{edge.target}.{n}" in self.modules for n in private):
                out.append(edge)
        return out

    def edges_between(self, sources: set[str], targets: set[str]) -> list[ImportEdge]:
        """The imports from any module of ``sources`` to any module of ``targets`` (a layer check)."""
        return [e for e in self.edges if e.source in sources and e.target in targets and e.source != e.target]

    def class_sizes(self) -> list[ClassSize]:
        """Every class of the package with the number of lines it spans, largest first."""
        sizes: list[ClassSize] = []
        for module, path in self.modules.items():
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            todo: list[tuple[str, ast.AST]] = [("", tree)]
            while todo:
                prefix, node = todo.pop()
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.ClassDef):
                        name = f"{prefix}{child.name}"
                        end = child.end_lineno or child.lineno
                        first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                        sizes.append(ClassSize(module, name, end - first + 1))
                        todo.append((f"{name}.", child))
                    elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                        todo.append((f"{prefix}{child.name}.<locals>.", child))
        return sorted(sizes, key=lambda s: (-s.lines, s.module, s.name))


class _Collector(ast.NodeVisitor):
    """Walks one module and records its imports of the package's modules, with their kind."""

    def __init__(self, module: str, is_package: bool, modules: dict[str, Path]) -> None:
        self.module = module
        self.is_package = is_package
        self.modules = modules
        self.kind: ImportKind = "top"
        self.edges: list[ImportEdge] = []

    def collect(self, tree: ast.Module) -> list[ImportEdge]:
        self.visit(tree)
        return self.edges

    def _base(self, level: int) -> str:
        # A relative import is resolved against the importing module's package.
        parts = self.module.split(".")
        if not self.is_package:
            parts.pop()
        if level > 1:
            parts = parts[: len(parts) - (level - 1)]
        return ".".join(parts)

    def _add(self, target: str, names: tuple[str, ...], line: int) -> None:
        # `import pkg.a.b` names pkg.a.b; the nearest enclosing module of the package is the target.
        while target and target not in self.modules:
            target = target.rpartition(".")[0]
        if target:
            self.edges.append(ImportEdge(self.module, target, names, line, self.kind))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, (), node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._base(node.level) if node.level else ""
        source = ".".join(p for p in (base, node.module or "") if p)
        module_names: list[str] = []
        other_names: list[str] = []
        for alias in node.names:
            (module_names if f"{source}.{alias.name}" in self.modules else other_names).append(alias.name)
        for name in module_names:
            self._add(f"{source}.{name}", (), node.lineno)
        if other_names or not module_names:
            self._add(source, tuple(other_names), node.lineno)

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        outer, self.kind = self.kind, "type_checking" if self.kind == "top" else self.kind
        for child in node.body:
            self.visit(child)
        self.kind = outer
        for child in node.orelse:
            self.visit(child)

    def _deferred(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        outer, self.kind = self.kind, "deferred"
        self.generic_visit(node)
        self.kind = outer

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._deferred(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._deferred(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._deferred(node)
