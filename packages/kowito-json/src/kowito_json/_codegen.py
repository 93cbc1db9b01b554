"""Shared machinery of the code generators: source assembly and compilation.

Generated code follows attrs' ``_make.py``: a generator is a pure function of a
description returning ``(source, globals)``; :func:`compile_unit` compiles it once
and registers the source in :mod:`linecache` under a readable file name, so
tracebacks and debuggers show the generated lines.  Only validated identifiers
and literals of a safe alphabet are written into source; every other value
travels in the globals.
"""

from __future__ import annotations

import itertools
import linecache
import re
from typing import Any

__all__ = ["SourceBuilder", "compile_unit"]

# String literals made only of these characters cannot escape their quotes.
_SAFE_LITERAL = re.compile(r"[A-Za-z0-9_\-.$\[\] ]*")

_unit_numbers = itertools.count()


class SourceBuilder:
    """Lines of generated Python plus the globals they refer to.

    Attributes:
        lines: the source lines so far, already indented.
        globals: names the source refers to, bound to their values.
    """

    def __init__(self, globals_: dict[str, Any] | None = None) -> None:
        self.lines: list[str] = []
        self.globals: dict[str, Any] = dict(globals_ or {})
        self._names = itertools.count()
        self._bound: dict[int, str] = {}

    def line(self, indent: int, text: str) -> None:
        """Append ``text`` indented by ``indent`` levels."""
        self.lines.append("    " * indent + text)

    def var(self, prefix: str = "_v") -> str:
        """A fresh local variable name."""
        return f"{prefix}{next(self._names)}"

    def bind(self, value: Any, prefix: str = "_g") -> str:
        """A global name bound to ``value`` (one name per distinct object)."""
        name = self._bound.get(id(value))
        if name is None or self.globals.get(name) is not value:
            name = self._bound[id(value)] = self.var(prefix)
            self.globals[name] = value
        return name

    def literal(self, text: str) -> str:
        """An expression for the string ``text``: a literal if its alphabet is safe, else a global."""
        if _SAFE_LITERAL.fullmatch(text):
            return repr(text)
        return self.bind(text, "_s")

    @property
    def source(self) -> str:
        """The generated source."""
        return "\n".join(self.lines) + "\n"


def compile_unit(source: str, globals_: dict[str, Any], label: str) -> dict[str, Any]:
    """Compile and run generated ``source`` in ``globals_``; register it for tracebacks.

    Args:
        source: the generated module source.
        globals_: the names it refers to; its functions are added to it.
        label: a readable description such as ``decode app.models.Item``.

    Returns:
        ``globals_``, now holding the generated functions.
    """
    filename = f"<kowito_json {label} #{next(_unit_numbers)}>"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(code, globals_)
    return globals_
