"""Generated row mappers: one compiled function per model (and per column offset).

Following attrs' ``_make.py`` and kowito-json: a pure function builds ``(source,
globals)`` from the model description, :func:`compile_unit` compiles it once and registers
the source in ``linecache`` so tracebacks show it. Only validated attribute names are
written into the source; converters and the class travel as globals. The read path is a
dict display per row (``o.__dict__ = {...}``) or slot setters: no per-field dispatch.
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Callable, Sequence
from typing import Any

import kowito_json

__all__ = ["FieldCode", "compile_unit", "decoder_source", "rows_decoder_source", "to_row_source"]

_unit_numbers = itertools.count()


class FieldCode:
    """What the generators need to know about one field."""

    __slots__ = ("attr", "from_db", "json", "setter", "to_db")

    def __init__(
        self,
        attr: str,
        from_db: Callable[[Any], Any] | None,
        to_db: Callable[[Any], Any] | None,
        setter: Callable[[Any, Any], None] | None,
        json: bool,
    ) -> None:
        if not attr.isidentifier():
            raise ValueError(f"not an identifier: {attr!r}")
        self.attr = attr
        self.from_db = from_db
        self.to_db = to_db
        self.setter = setter  # slot member's __set__ on slots=True classes
        self.json = json  # jsonb column: COPY needs JSON text


def _value(index: str, fld: FieldCode, globals_: dict[str, Any], n: int) -> str:
    if fld.from_db is None:
        return f"v[{index}]"
    name = f"_from{n}"
    globals_[name] = fld.from_db
    return f"(None if (x := v[{index}]) is None else {name}(x))"


def _build_lines(fields: Sequence[FieldCode], offset: int, globals_: dict[str, Any], indent: str) -> list[str]:
    """Lines that make ``o`` from the values tuple ``v``."""
    lines = [f"{indent}o = _new(_cls)"]
    if fields and fields[0].setter is not None:
        for i, fld in enumerate(fields):
            setter = f"_set{i}"
            globals_[setter] = fld.setter
            lines.append(f"{indent}{setter}(o, {_value(str(offset + i), fld, globals_, i)})")
    else:
        items = ", ".join(f"{fld.attr!r}: {_value(str(offset + i), fld, globals_, i)}" for i, fld in enumerate(fields))
        lines.append(f"{indent}o.__dict__ = {{{items}}}")
    return lines


def decoder_source(
    cls: type, fields: Sequence[FieldCode], offset: int, null_check: int | None
) -> tuple[str, dict[str, Any]]:
    """Source of ``decode(v)``: the model from ``v[offset:offset+len(fields)]``.

    With ``null_check`` (an index into ``fields``), a NULL there means "no row" (a LEFT JOIN
    that matched nothing) and ``decode`` returns ``None``.
    """
    globals_: dict[str, Any] = {"_cls": cls, "_new": object.__new__}
    lines = ["def decode(v):"]
    if null_check is not None:
        lines.append(f"    if v[{offset + null_check}] is None:")
        lines.append("        return None")
    lines += _build_lines(fields, offset, globals_, "    ")
    lines.append("    return o")
    return "\n".join(lines) + "\n", globals_


def rows_decoder_source(cls: type, fields: Sequence[FieldCode]) -> tuple[str, dict[str, Any]]:
    """Source of ``decode_rows(rows)``: a list of models from a list of chopin-pg rows.

    The loop is inlined (no call per row); ``Row._values`` is read directly, as a tuple,
    because ``tuple(row)`` or ``row[i]`` would cost a call per row or per field.
    """
    globals_: dict[str, Any] = {"_cls": cls, "_new": object.__new__}
    lines = ["def decode_rows(rows):", "    out = []", "    append = out.append", "    for r in rows:"]
    lines.append("        v = r._values")
    lines += _build_lines(fields, 0, globals_, "        ")
    lines.append("        append(o)")
    lines.append("    return out")
    return "\n".join(lines) + "\n", globals_


def _json_text(value: Any) -> str:
    return kowito_json.encode(value).decode()


def to_row_source(fields: Sequence[FieldCode], for_copy: bool) -> tuple[str, dict[str, Any]]:
    """Source of ``to_row(o)``: the tuple of driver values of every field, in order.

    ``for_copy`` also turns jsonb values into JSON text (COPY's text format would write a
    list as an array literal).
    """
    globals_: dict[str, Any] = {}
    items: list[str] = []
    for i, fld in enumerate(fields):
        expr = f"o.{fld.attr}"
        convert: list[str] = []
        if fld.to_db is not None:
            globals_[f"_to{i}"] = fld.to_db
            convert.append(f"_to{i}")
        if for_copy and fld.json:
            globals_["_json_text"] = _json_text
            convert.append("_json_text")
        if convert:
            inner = "x"
            for name in convert:
                inner = f"{name}({inner})"
            expr = f"(None if (x := o.{fld.attr}) is None else {inner})"
        items.append(expr)
    body = ", ".join(items) + ("," if len(items) == 1 else "")
    return f"def to_row(o):\n    return ({body})\n", globals_


def compile_unit(source: str, globals_: dict[str, Any], label: str, name: str) -> Any:
    """Compile generated ``source`` and return its function ``name``; register it for tracebacks."""
    filename = f"<chopin_orm {label} #{next(_unit_numbers)}>"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(code, globals_)
    return globals_[name]
