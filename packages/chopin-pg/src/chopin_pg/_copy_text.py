"""COPY text-format encoders: the generic :func:`format_copy_row`, and row encoders specialised to a row shape.

The text format (PostgreSQL docs, COPY, "Text Format"): columns separated by
tab, rows ended by newline, NULL as ``\\N``, and backslash, tab, newline and
carriage return escaped.

Specialised encoders: :class:`~chopin_pg.copy.CopyWriter` looks at the Python types of
the first row it is given (its *shape*, e.g. ``(int, float, str)``) and asks
:func:`row_formatter` for a function made for that shape.  The function
unpacks the row into locals, checks with ``type(v) is ...`` that each ``int``,
``float`` and ``str`` column still holds exactly that type (and a finite float),
and formats the whole line with one f-string.  A row that does not fit (a
``None``, a ``bool`` where the first row had an ``int``, another length)
goes to the generic :func:`format_copy_row`, so the output is
always byte for byte what the generic encoder produces.  Columns of any other
type are encoded by the generic per-value encoder inside the f-string.

Why: the generic encoder's per-value loop, list and join are most of the cost
of ``write_row`` (1M rows of ``(int, float, str)``: about 1.0 us a row against
0.68 us for the specialised line, in-process, on the benchmark machine).

Only column positions reach the generated source (``v0``, ``v1``...); the
helpers travel as globals.  The source is registered in :mod:`linecache` so
tracebacks show it.
"""

from __future__ import annotations

import functools
import linecache
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import _codecs as c

__all__ = [
    "MAX_SHAPES",
    "MAX_SPECIALISED_COLUMNS",
    "RowFormatter",
    "RowsWriter",
    "format_copy_row",
    "row_formatter",
    "rows_writer",
]

#: Rows with more columns than this use the generic encoder (the generated code grows with the width).
MAX_SPECIALISED_COLUMNS = 64
#: How many compiled shapes are kept (least recently used dropped first).
MAX_SHAPES = 128

#: Encodes one row as a COPY text line, newline included.
RowFormatter = Callable[[Sequence[Any]], bytes]
#: Appends many rows to a buffer, flushing it at a limit: ``(rows, buffer, flush, limit)``.
RowsWriter = Callable[[Iterable[Sequence[Any]], bytearray, Callable[[], None], int], None]

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def format_copy_row(values: Sequence[Any]) -> bytes:
    """Encode one row in COPY text format.

    Each value is written in the text input form of its natural type: ``None``
    is ``\\N``; bool ``t``/``f``; int, float (``NaN``, ``Infinity``), Decimal as
    numbers; bytes as bytea hex (``\\x...``); date, time, datetime in ISO 8601
    (with the offset when aware); UUID as text; timedelta as an interval; dict
    as JSON; list or tuple as an array literal; anything else as ``str()``.

    Args:
        values: The row's values, in column order.

    Returns:
        The encoded line, newline included.
    """
    parts: list[str] = []
    append = parts.append
    for value in values:
        kind = type(value)
        if kind is str:
            # Most text has nothing to escape, and two scans cost far less than translate().
            if "\\" in value or not value.isprintable():  # tab, newline and CR are not printable
                value = value.translate(_ESCAPES)
            append(value)
        elif kind is int:
            append(str(value))
        elif kind is float and value - value == 0.0:  # finite (NaN and infinities take text_literal)
            append(repr(value))
        elif value is None:
            append("\\N")
        else:
            append(c.text_literal(value).translate(_ESCAPES))
    return ("\t".join(parts) + "\n").encode()


def format_copy_value(value: Any) -> str:
    """Encode one value as a COPY text field (escaped; ``\\N`` for ``None``), as :func:`format_copy_row` does."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float and value - value == 0.0:
        return repr(value)
    return c.text_literal(value).translate(_ESCAPES)


def _source(shape: tuple[type, ...]) -> str:
    """The generated functions' source for ``shape`` (pure; only indices are interpolated).

    ``format_row(values)`` encodes one row; ``write_rows(rows, buffer, flush, limit)``
    appends many to ``buffer`` with the same code inlined in its loop, calling
    ``flush()`` whenever ``buffer`` reaches ``limit`` bytes.
    """
    names = [f"v{i}" for i in range(len(shape))]
    guards: list[str] = []
    escapes: list[str] = []
    fields: list[str] = []
    for name, kind in zip(names, shape, strict=True):
        if kind is int:
            guards.append(f"type({name}) is not int")
            fields.append(f"{{{name}}}")
        elif kind is float:
            # Finite only: NaN and the infinities have their own spelling (text_literal).
            guards.append(f"type({name}) is not float or {name} - {name} != 0.0")
            fields.append(f"{{{name}!r}}")
        elif kind is str:
            guards.append(f"type({name}) is not str")
            # Tab, newline and CR are not printable: two scans instead of four.
            escapes.append(f"if '\\\\' in {name} or not {name}.isprintable():\n")
            escapes.append(f"    {name} = {name}.translate(_ESCAPES)\n")
            fields.append(f"{{{name}}}")
        else:
            fields.append(f"{{_value({name})}}")
    unpack = ", ".join(names) + ("," if len(names) == 1 else "")
    line = "\\t".join(fields)
    encode = f'f"{line}\\n".encode()'
    guard = " or ".join(guards) or "False"

    def indent(lines: list[str], depth: int) -> list[str]:
        return [" " * depth + text for text in lines]

    one = [
        "def format_row(values):\n",
        "    try:\n",
        f"        {unpack} = values\n",
        "    except (TypeError, ValueError):\n",
        "        return _generic(values)\n",
        f"    if {guard}:\n",
        "        return _generic(values)\n",
        *indent(escapes, 4),
        f"    return {encode}\n",
    ]
    many = [
        "def write_rows(rows, buffer, flush, limit):\n",
        "    for values in rows:\n",
        "        try:\n",
        f"            {unpack} = values\n",
        "        except (TypeError, ValueError):\n",
        "            buffer += _generic(values)\n",
        "        else:\n",
        f"            if {guard}:\n",
        "                buffer += _generic(values)\n",
        "            else:\n",
        *indent(escapes, 16),
        f"                buffer += {encode}\n",
        "        if len(buffer) >= limit:\n",
        "            flush()\n",
    ]
    return "".join([*one, "\n\n", *many])


def _write_rows_generic(
    rows: Iterable[Sequence[Any]], buffer: bytearray, flush: Callable[[], None], limit: int
) -> None:
    for values in rows:
        buffer += format_copy_row(values)
        if len(buffer) >= limit:
            flush()


@functools.lru_cache(maxsize=MAX_SHAPES)
def _compiled(shape: tuple[type, ...]) -> tuple[RowFormatter, RowsWriter]:
    if not shape or len(shape) > MAX_SPECIALISED_COLUMNS:
        return format_copy_row, _write_rows_generic
    source = _source(shape)
    filename = f"<chopin_pg copy row {', '.join(k.__qualname__ for k in shape)}>"
    namespace: dict[str, Any] = {"_generic": format_copy_row, "_value": format_copy_value, "_ESCAPES": _ESCAPES}
    exec(compile(source, filename, "exec"), namespace)  # the source holds column indices only
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    return namespace["format_row"], namespace["write_rows"]


def row_formatter(shape: tuple[type, ...]) -> RowFormatter:
    """Return a COPY text encoder specialised to rows whose values have the types in ``shape``.

    Args:
        shape: The type of each value of a sample row.

    Returns:
        A function equivalent to :func:`format_copy_row`, faster on rows of that shape.
    """
    return _compiled(shape)[0]


def rows_writer(shape: tuple[type, ...]) -> RowsWriter:
    """Return ``write_rows(rows, buffer, flush, limit)`` specialised to rows of ``shape``.

    It appends each row's :func:`format_copy_row` bytes to ``buffer`` and calls
    ``flush()`` whenever ``buffer`` holds ``limit`` bytes or more; the per-row
    encoding is inlined in the loop (no call per row of that shape).
    """
    return _compiled(shape)[1]
