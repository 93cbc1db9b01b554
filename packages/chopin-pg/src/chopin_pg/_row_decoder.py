"""DataRow decoders unrolled for a statement's columns, generated and compiled once per row shape.

How it works: a DataRow body (§55.7) is an int16 column count, then per column
an int32 length (-1 for NULL) and that many bytes.  The generic loop
(:func:`decode_row`) walks it with a list, an append per column, a slice and
a call per value and a ``tuple()`` at the end.  :func:`row_decoder` instead
returns a closure made by a factory generated for the row's *shape* (how each
column is decoded): the column decoders are closure cells ``d0, d1...``, each
value lands in a local ``v0, v1...`` and the row is built from one tuple
display.  Integers, floats and bools of the expected size are unpacked in
place and text is decoded from its slice, without calling their decoders (any
other size still calls the decoder, which raises its usual error).  Same
input, same output, same exceptions as the loop.

Only fixed snippets and column indices reach the generated source; the source
is registered in :mod:`linecache` so tracebacks show it.
"""

from __future__ import annotations

import functools
import linecache
import struct
from collections.abc import Callable
from typing import Any

from . import _codecs as c
from .row import Row
from .types import Decoder

__all__ = ["MAX_ROW_SHAPES", "MAX_UNROLLED_COLUMNS", "RowDecoder", "decode_row", "row_decoder"]

#: Statements with more columns than this decode rows with the generic loop.
MAX_UNROLLED_COLUMNS = 64
#: How many compiled row shapes (column count and inlined decoders) are kept, least recently used dropped first.
MAX_ROW_SHAPES = 256

#: Decodes a DataRow: ``(buffer, offset of the first value's length) -> Row``.
RowDecoder = Callable[[bytes, int], Row]

_unpack_i32 = struct.Struct("!i").unpack_from


def decode_row(body: bytes, decoders: list[Decoder], names: dict[str, int], pos: int = 2) -> Row:
    """Decode one DataRow with the generic loop.

    Args:
        body: The bytes holding the row (a DataRow body, or a whole answer).
        decoders: One decoder per column.
        names: Column name to index, shared by the rows of a result.
        pos: Where the first value's length is (2: just after the column count of a body).

    Returns:
        The row.
    """
    values: list[Any] = []
    append = values.append
    for decode in decoders:
        size = _unpack_i32(body, pos)[0]
        pos += 4
        if size < 0:
            append(None)
        else:
            end = pos + size
            append(decode(body[pos:end]))
            pos = end
    return Row(tuple(values), names)


# Decoders whose work the generated code does inline (no call, no slice): what
# they return for a value of the expected size, with the decoder itself still
# called (and raising) for any other size.
_INLINE: dict[Decoder, tuple[str, int]] = {
    c.int2_binary: ("unpack_i16(body, pos)[0]", 2),
    c.int4_binary: ("unpack_i32(body, pos)[0]", 4),
    c.int8_binary: ("unpack_i64(body, pos)[0]", 8),
    c.oid_binary: ("unpack_u32(body, pos)[0]", 4),
    c.float4_binary: ("unpack_f32(body, pos)[0]", 4),
    c.float8_binary: ("unpack_f64(body, pos)[0]", 8),
    c.bool_binary: ("body[pos] == 1", 1),
}
_GLOBALS: dict[str, Any] = {
    "Row": Row,
    "unpack_i32": _unpack_i32,
    "unpack_i16": struct.Struct("!h").unpack_from,
    "unpack_i64": struct.Struct("!q").unpack_from,
    "unpack_u32": struct.Struct("!I").unpack_from,
    "unpack_f32": struct.Struct("!f").unpack_from,
    "unpack_f64": struct.Struct("!d").unpack_from,
}


def _kind(decoder: Decoder) -> str:
    """How the generated code decodes a column: a key of :data:`_INLINE`'s values, ``text``, or ``call``."""
    if decoder is c.text_any:
        return "text"
    inline = _INLINE.get(decoder)
    return inline[0] if inline is not None else "call"


def _source(kinds: tuple[str, ...]) -> str:
    """The factory's source for columns decoded as ``kinds`` (pure; only fixed snippets and indices)."""
    count = len(kinds)
    sizes = dict(_INLINE.values())
    cells = ", ".join(f"d{i}" for i in range(count)) + ","
    lines = [
        "def make(decoders, names):\n",
        f"    {cells} = decoders\n",
        "    def decode_row(body, pos):\n",
    ]
    for i, kind in enumerate(kinds):
        lines.append("        size = unpack_i32(body, pos)[0]\n")
        lines.append("        pos += 4\n")
        lines.append("        if size < 0:\n")
        lines.append(f"            v{i} = None\n")
        lines.append("        else:\n")
        if kind == "text":
            lines.append(f"            v{i} = body[pos : pos + size].decode()\n")
        elif kind == "call":
            lines.append(f"            v{i} = d{i}(body[pos : pos + size])\n")
        else:
            lines.append(f"            if size == {sizes[kind]}:\n")
            lines.append(f"                v{i} = {kind}\n")
            lines.append("            else:  # the decoder raises its error\n")
            lines.append(f"                v{i} = d{i}(body[pos : pos + size])\n")
        if i < count - 1:
            lines.append("            pos += size\n")
    values = ", ".join(f"v{i}" for i in range(count)) + ","
    lines.append(f"        return Row(({values}), names)\n")
    lines.append("    return decode_row\n")
    return "".join(lines)


@functools.lru_cache(maxsize=MAX_ROW_SHAPES)
def _factory(kinds: tuple[str, ...]) -> Callable[[list[Decoder], dict[str, int]], RowDecoder]:
    source = _source(kinds)
    filename = f"<chopin_pg DataRow decoder, {len(kinds)} columns, shape {abs(hash(kinds)):x}>"
    namespace: dict[str, Any] = dict(_GLOBALS)
    exec(compile(source, filename, "exec"), namespace)  # the source holds fixed snippets and indices only
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    factory: Callable[[list[Decoder], dict[str, int]], RowDecoder] = namespace["make"]
    return factory


def row_decoder(decoders: list[Decoder], names: dict[str, int]) -> RowDecoder:
    """Return a DataRow decoder for these column decoders (unrolled up to :data:`MAX_UNROLLED_COLUMNS` columns).

    Args:
        decoders: One decoder per column.
        names: Column name to index, shared by every row.

    Returns:
        ``decode(buffer, pos) -> Row``, ``pos`` being where the first value's length is.
    """
    count = len(decoders)
    if 0 < count <= MAX_UNROLLED_COLUMNS:
        return _factory(tuple(map(_kind, decoders)))(list(decoders), names)

    def generic(body: bytes, pos: int) -> Row:
        return decode_row(body, decoders, names, pos)

    return generic
