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

With the optional C accelerator (``chopin_pg._rows``, compiled when the package is
installed), :func:`rows_decoder` returns a function that decodes every whole
DataRow of a read in one call, with no Python call per row or per common value;
it stops at any row it cannot decode exactly as the generated code does, and the
caller decodes that row with :func:`row_decoder`'s function (see ``_rows.c``).
Without it (no compiler, or ``CHOPIN_PURE_PYTHON=1``) :func:`rows_decoder`
returns ``None`` and every row goes through the generated code.  The tests run
against both.
"""

from __future__ import annotations

import functools
import linecache
import os
import struct
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, SafeUUID

from . import _codecs as c
from .row import Row
from .types import Decoder

__all__ = [
    "ACCELERATED",
    "MAX_ROW_SHAPES",
    "MAX_UNROLLED_COLUMNS",
    "RowDecoder",
    "RowsDecoder",
    "decode_row",
    "row_decoder",
    "rows_decoder",
]

#: Statements with more columns than this decode rows with the generic loop.
MAX_UNROLLED_COLUMNS = 64
#: How many compiled row shapes (column count and inlined decoders) are kept, least recently used dropped first.
MAX_ROW_SHAPES = 256

#: Decodes a DataRow: ``(buffer, offset of the first value's length) -> Row``.
RowDecoder = Callable[[bytes, int], Row]
#: Decodes the whole DataRows of a read: ``(buffer, offset of a message, end of the
#: bytes read, rows, max message size) -> offset of the first message not decoded``.
RowsDecoder = Callable[[bytes, int, int, list[Row], int], int]

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
# Timestamps whose offset from 2000-01-01 fits datetime's range (infinities do not):
# the inlined ``epoch + timedelta(0, 0, us)`` cannot overflow.
_MIN_US = (datetime.min - c.PG_EPOCH) // timedelta(microseconds=1)
_MAX_US = (datetime.max - c.PG_EPOCH) // timedelta(microseconds=1)
_CALL = "v{i} = d{i}(body[pos : pos + size])"
# Decoders inlined as a few statements (``{i}`` is the column index); each keeps the
# decoder call for what its fast case does not cover, so values and errors are the
# decoder's.  Measured per value on the benchmark's mixed rows: a quarter to a half of
# the decoder call's cost.
_STATEMENTS: dict[str, tuple[str, ...]] = {
    "text": ("v{i} = body[pos : pos + size].decode()",),
    "call": (_CALL,),
    # numeric comes in text (types.TypeRegistry.column_codec): Decimal parses it in C.
    "numeric_text": ("v{i} = Decimal(body[pos : pos + size].decode())",),
    # c.uuid_binary's steps, without its call.
    "uuid": (
        "if size == 16:",
        "    v{i} = new_uuid(UUID)",
        "    set_attribute(v{i}, 'int', int_from_bytes(body[pos : pos + 16]))",
        "    set_attribute(v{i}, 'is_safe', SAFE_UNKNOWN)",
        "else:",
        "    " + _CALL,
    ),
    # c.jsonb_binary / c.json_loads's orjson path; the decoder takes every other case.
    "jsonb": (
        "raw = body[pos + 1 : pos + size]",
        # c.may_lose_precision, inlined: the call cost as much as the test.
        "shape = raw.translate(NUMBER_SHAPE).decode('latin-1')",
        "if size and body[pos] == 1 and not (NINETEEN_DIGITS in shape or 'e000' in shape or 'e+000' in shape):",
        "    try:",
        "        v{i} = orjson_loads(raw)",
        "    except JSONDecodeError:",
        "        " + _CALL,
        "else:",
        "    " + _CALL,
    ),
    "timestamp": (
        "if size == 8 and MIN_US <= (us := unpack_i64(body, pos)[0]) <= MAX_US:",
        "    v{i} = PG_EPOCH + timedelta(0, 0, us)",
        "else:",
        "    " + _CALL,
    ),
    # The session zone never changes offset (UTC): the decoder's fixed-epoch case.
    "timestamptz": (
        "if size == 8 and (epoch := e{i}()) is not None and MIN_US <= (us := unpack_i64(body, pos)[0]) <= MAX_US:",
        "    v{i} = epoch + timedelta(0, 0, us)",
        "else:",
        "    " + _CALL,
    ),
}
_GLOBALS: dict[str, Any] = {
    "Row": Row,
    "unpack_i32": _unpack_i32,
    "unpack_i16": struct.Struct("!h").unpack_from,
    "unpack_i64": struct.Struct("!q").unpack_from,
    "unpack_u32": struct.Struct("!I").unpack_from,
    "unpack_f32": struct.Struct("!f").unpack_from,
    "unpack_f64": struct.Struct("!d").unpack_from,
    "Decimal": Decimal,
    "UUID": UUID,
    "new_uuid": UUID.__new__,
    "set_attribute": object.__setattr__,
    "int_from_bytes": int.from_bytes,
    "SAFE_UNKNOWN": SafeUUID.unknown,
    "NUMBER_SHAPE": c.NUMBER_SHAPE,
    "NINETEEN_DIGITS": c.NINETEEN_DIGITS,
    "orjson_loads": c.orjson.loads if c.orjson is not None else None,
    "JSONDecodeError": c.orjson.JSONDecodeError if c.orjson is not None else ValueError,
    "PG_EPOCH": c.PG_EPOCH,
    "timedelta": timedelta,
    "MIN_US": _MIN_US,
    "MAX_US": _MAX_US,
    "struct_error": struct.error,
}


def _kind(decoder: Decoder) -> str:
    """How the generated code decodes a column: a key of :data:`_INLINE`'s values or of :data:`_STATEMENTS`."""
    if decoder is c.text_any:
        return "text"
    inline = _INLINE.get(decoder)
    if inline is not None:
        return inline[0]
    if decoder is c.numeric_text:
        return "numeric_text"
    if decoder is c.uuid_binary:
        return "uuid"
    if decoder is c.jsonb_binary and c.orjson is not None:
        return "jsonb"
    if decoder is c.timestamp_binary:
        return "timestamp"
    if getattr(decoder, "fixed_epoch", None) is not None:  # c.make_timestamptz_binary's decoders
        return "timestamptz"
    return "call"


def _column_lines(i: int, kind: str, sizes: dict[str, int]) -> list[str]:
    """Decode column ``i`` whose length is in ``size`` and value at ``pos``; ``pos`` ends past it."""
    lines = ["if size < 0:", f"    v{i} = None", "else:"]
    if kind in _STATEMENTS:
        lines += [f"    {line.format(i=i)}" for line in _STATEMENTS[kind]]
    else:
        lines += [
            f"    if size == {sizes[kind]}:",
            f"        v{i} = {kind}",
            "    else:  # the decoder raises its error",
            f"        v{i} = d{i}(body[pos : pos + size])",
        ]
    lines.append("    pos += size")
    return lines


def _slow_lines(kinds: tuple[str, ...]) -> list[str]:
    """``decode_row`` column by column: each length read and checked (any row, NULLs and odd sizes included)."""
    sizes = dict(_INLINE.values())
    lines = ["def decode_row(body, pos):"]
    for i, kind in enumerate(kinds):
        lines += ["    size = unpack_i32(body, pos)[0]", "    pos += 4"]
        lines += [f"    {line}" for line in _column_lines(i, kind, sizes)]
    values = ", ".join(f"v{i}" for i in range(len(kinds))) + ","
    lines.append(f"    return Row(({values}), names)")
    return lines


# Fixed-size kinds a run of columns is unpacked as at once: struct format, size, and the
# value from the unpacked ``x{i}`` (plus a condition the fast row needs, else the slow one runs).
_GROUPED: dict[str, tuple[str, tuple[str, ...], str]] = {
    "unpack_i16(body, pos)[0]": ("h", ("v{i} = x{i}",), ""),
    "unpack_i32(body, pos)[0]": ("i", ("v{i} = x{i}",), ""),
    "unpack_i64(body, pos)[0]": ("q", ("v{i} = x{i}",), ""),
    "unpack_u32(body, pos)[0]": ("I", ("v{i} = x{i}",), ""),
    "unpack_f32(body, pos)[0]": ("f", ("v{i} = x{i}",), ""),
    "unpack_f64(body, pos)[0]": ("d", ("v{i} = x{i}",), ""),
    "body[pos] == 1": ("B", ("v{i} = x{i} == 1",), ""),
    "uuid": (
        "16s",
        (
            "v{i} = new_uuid(UUID)",
            "set_attribute(v{i}, 'int', int_from_bytes(x{i}))",
            "set_attribute(v{i}, 'is_safe', SAFE_UNKNOWN)",
        ),
        "",
    ),
    "timestamp": ("q", ("v{i} = PG_EPOCH + timedelta(0, 0, x{i})",), "MIN_US <= x{i} <= MAX_US"),
    "timestamptz": (
        "q",
        ("v{i} = epoch{i} + timedelta(0, 0, x{i})",),
        "MIN_US <= x{i} <= MAX_US and (epoch{i} := e{i}()) is not None",
    ),
}


def _fast_lines(kinds: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """``decode_row`` for rows whose fixed-size columns all hold a value of their size, and its struct formats.

    Each run of fixed-size columns, with the length of the column after it, is read by
    one ``group<k>`` unpack (``!iqii...``) instead of two unpacks per column; a row
    that does not fit (a NULL or another size in the run, a short buffer, a timestamp
    out of range) is decoded by ``slow`` from its start.
    """
    sizes = dict(_INLINE.values())
    lines = ["def decode_row(body, pos):", "    start = pos"]
    formats: list[str] = []
    count = len(kinds)
    i = 0
    while i < count:
        if kinds[i] not in _GROUPED:
            lines += ["    size = unpack_i32(body, pos)[0]", "    pos += 4"]
            lines += [f"    {line}" for line in _column_lines(i, kinds[i], sizes)]
            i += 1
            continue
        fmt, targets, checks, values, width = "!", [], [], [], 0
        while i < count and kinds[i] in _GROUPED:
            code, assign, check = _GROUPED[kinds[i]]
            size = struct.calcsize("!" + code)
            fmt += "i" + code
            targets += [f"s{i}", f"x{i}"]
            checks.append(f"s{i} == {size}" + (f" and {check.format(i=i)}" if check else ""))
            values += [line.format(i=i) for line in assign]
            width += 4 + size
            i += 1
        if i < count:  # the next column's length comes with the run
            fmt += "i"
            targets.append("size")
            width += 4
        lines += [
            "    try:",
            f"        {', '.join(targets)}, = group{len(formats)}(body, pos)",
            "    except struct_error:",
            "        return slow(body, start)",
            f"    if not ({' and '.join(checks)}):",
            "        return slow(body, start)",
            *(f"    {line}" for line in values),
            f"    pos += {width}",
        ]
        formats.append(fmt)
        if i < count:
            lines += [f"    {line}" for line in _column_lines(i, kinds[i], sizes)]
            i += 1
    values_tuple = ", ".join(f"v{i}" for i in range(count)) + ","
    lines.append(f"    return Row(({values_tuple}), names)")
    return lines, formats


def _source(kinds: tuple[str, ...]) -> tuple[str, list[str]]:
    """The factory's source for columns decoded as ``kinds``, and its group formats (pure; fixed snippets and indices).

    The factory returns the fast decoder when some columns are fixed-size (see
    :func:`_fast_lines`), the column-by-column one otherwise.
    """
    count = len(kinds)
    cells = ", ".join(f"d{i}" for i in range(count)) + ","
    lines = ["def make(decoders, names):", f"    {cells} = decoders"]
    lines += [f"    e{i} = d{i}.fixed_epoch" for i, kind in enumerate(kinds) if kind == "timestamptz"]
    slow = _slow_lines(kinds)
    slow[0] = slow[0].replace("def decode_row(", "def slow(")
    lines += [f"    {line}" for line in slow]
    formats: list[str] = []
    if any(kind in _GROUPED for kind in kinds):
        fast, formats = _fast_lines(kinds)
        lines += [f"    {line}" for line in fast]
        lines.append("    return decode_row")
    else:
        lines.append("    return slow")
    return "\n".join(lines) + "\n", formats


@functools.lru_cache(maxsize=MAX_ROW_SHAPES)
def _factory(kinds: tuple[str, ...]) -> Callable[[list[Decoder], dict[str, int]], RowDecoder]:
    source, formats = _source(kinds)
    filename = f"<chopin_pg DataRow decoder, {len(kinds)} columns, shape {abs(hash(kinds)):x}>"
    namespace: dict[str, Any] = dict(_GLOBALS)
    namespace.update({f"group{k}": struct.Struct(fmt).unpack_from for k, fmt in enumerate(formats)})
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


# -- the C accelerator ------------------------------------------------------------

try:
    if os.environ.get("CHOPIN_PURE_PYTHON"):
        raise ImportError("CHOPIN_PURE_PYTHON is set")
    from ._rows import configure as _configure
    from ._rows import decode_rows as _decode_rows
except ImportError:
    _configure = _decode_rows = None  # type: ignore[assignment]
#: Whether :func:`rows_decoder` decodes with the C accelerator (chopin_pg._rows).
ACCELERATED = _decode_rows is not None

# The kinds of _kind() that _rows.c decodes itself, by its codes; any other is called (0).
_C_KINDS: dict[str, int] = {
    "unpack_i16(body, pos)[0]": 1,
    "unpack_i32(body, pos)[0]": 2,
    "unpack_i64(body, pos)[0]": 3,
    "unpack_u32(body, pos)[0]": 4,
    "unpack_f32(body, pos)[0]": 5,
    "unpack_f64(body, pos)[0]": 6,
    "body[pos] == 1": 7,
    "text": 8,
    "numeric_text": 9,
    "uuid": 10,
    "jsonb": 11,
    "timestamp": 12,
    "timestamptz": 13,
}

if _configure is not None:
    _configure(
        Row,
        vars(Row)["_values"],
        vars(Row)["_names"],
        Decimal,
        UUID,
        SafeUUID.unknown,
        _GLOBALS["orjson_loads"],
        c.PG_EPOCH,
        _MIN_US,
        _MAX_US,
    )


def rows_decoder(decoders: list[Decoder], names: dict[str, int]) -> RowsDecoder | None:
    """Return the C decoder of whole reads for these columns, or ``None`` (no accelerator, or too many columns).

    Args:
        decoders: One decoder per column.
        names: Column name to index, shared by every row.

    Returns:
        ``decode(buffer, pos, limit, rows, max_size) -> pos``: appends the Row of each
        whole DataRow from ``buffer[pos:limit]`` to ``rows`` and returns the offset of
        the first message it did not decode (not a DataRow, not whole, or a row it
        leaves to :func:`row_decoder`'s function).
    """
    if _decode_rows is None or not 0 < len(decoders) <= MAX_UNROLLED_COLUMNS:
        return None
    kinds = bytes(_C_KINDS.get(_kind(decoder), 0) for decoder in decoders)
    epochs = tuple(
        getattr(decoder, "fixed_epoch", None) if kind == 13 else None
        for decoder, kind in zip(decoders, kinds, strict=True)
    )
    decode: RowsDecoder = functools.partial(_decode_rows, kinds, tuple(decoders), epochs, names)
    return decode
