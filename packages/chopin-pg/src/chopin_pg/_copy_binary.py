"""COPY binary-format encoders (sans-IO): the file header and trailer, and row encoders for given column types.

The binary format (PostgreSQL docs, COPY, "Binary Format"): an 11-byte
signature, an int32 flags field (0) and an int32 header-extension length (0);
then per row an int16 field count and, per field, an int32 length (-1 for
NULL) and the value in the type's ``*_send`` layout (the same bytes a binary
result column holds, see :mod:`chopin_pg._codecs`); the file ends with an
int16 -1.

Unlike the text format, binary values must match the column types exactly, so
the encoders are chosen by the columns' type OIDs (:func:`field_codec`), not by
the Python values.  :func:`python_rows_writer` compiles a loop for a tuple of column
types: the row is unpacked into locals, each ``int``, ``float``, ``bool`` and
``str`` column is checked with ``type(v) is ...`` and the fixed-size fields and
lengths are packed with one precompiled :class:`struct.Struct` per run of
columns.  A row that does not fit (a ``None``, another Python type, a value out
of range, another length) is encoded by the generic :func:`encode_row`, which
gives the same bytes or raises :class:`~chopin_pg.errors.DataError` naming the
column.  Measured on the benchmark's ``(int4, float8, text)`` rows: about half
the client time of the text format's specialised f-string, and the server
parses binary faster too.

Only column positions and struct format characters reach the generated source;
the encoders and structs travel as globals.  The source is registered in
:mod:`linecache` so tracebacks show it.

With the optional C accelerator (``chopin_pg._rows``, compiled when the package is
installed, see ``_rows_copy.c``) :func:`rows_writer` returns its ``encode_rows``
instead: the same loop in C, which encodes the common values itself, calls a
column's encoder for other Python types, and hands any row it cannot encode to
the compiled loop (:func:`python_rows_writer`), so the bytes, the flushes and the
errors are that loop's.  Measured with benchmarks/pg_profile.py on the
benchmark's 1M ``(int4, float8, text)`` rows: ``copy_records`` takes about 50 ns of
client CPU a row, against about 210 with the compiled loop.  Without it (no compiler, or
``CHOPIN_PURE_PYTHON=1``) :func:`rows_writer` is :func:`python_rows_writer`.
"""

from __future__ import annotations

import functools
import linecache
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

from . import _codecs as c
from . import oids
from .errors import DataError

__all__ = [
    "ACCELERATED",
    "HEADER",
    "TRAILER",
    "FieldCodec",
    "RowsWriter",
    "encode_row",
    "field_codec",
    "python_rows_writer",
    "rows_writer",
]

#: Signature, flags (no OIDs), header extension length (none).
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
#: The int16 -1 that ends the data.
TRAILER = b"\xff\xff"
#: Row types with more columns than this are encoded by the generic loop only.
MAX_COMPILED_COLUMNS = 64

#: Appends many rows to a buffer, flushing it at a limit: ``(rows, buffer, flush, limit)``.
RowsWriter = Callable[[Iterable[Sequence[Any]], bytearray, Callable[[], None], int], None]

_pack_i16 = struct.Struct("!h").pack
_pack_i32 = struct.Struct("!i").pack
_NULL = b"\xff\xff\xff\xff"
_US = timedelta(microseconds=1)
_INF64 = (1 << 63) - 1
_INF32 = (1 << 31) - 1


class FieldCodec:
    """How one column type is written in binary COPY.

    Attributes:
        name: The type's name, for error messages.
        accepts: Python types :attr:`encode` takes (checked with ``isinstance``).
        encode: Returns the field's bytes (without the length).
        exact: The Python type the compiled loop encodes inline, or ``None`` (it calls :attr:`encode`).
        strict: Whether a value must be an instance of :attr:`accepts` before :attr:`encode` sees it
            (``bool``, whose encoder would take anything); integers, floats and text are judged by
            their encoder (what ``struct`` packs, what has ``encode()``), so the compiled loop
            need not check their types.
        fixed: The struct format character of that inline value (``"i"``, ``"d"``...), or ``""`` for
            a variable-length value (``str``, encoded as UTF-8).
        size: The byte size of a fixed inline value.
        zone: For timestamptz, the session time zone naive values are taken in (else ``None``).
    """

    __slots__ = ("accepts", "encode", "exact", "fixed", "name", "size", "strict", "zone")

    def __init__(
        self,
        name: str,
        accepts: tuple[type, ...],
        encode: Callable[[Any], bytes],
        exact: type | None = None,
        fixed: str = "",
        zone: tzinfo | None = None,
    ) -> None:
        self.name = name
        self.accepts = accepts
        self.encode = encode
        self.exact = exact
        self.fixed = fixed
        self.size = struct.calcsize("!" + fixed) if fixed else 0
        self.strict = exact is None or exact is bool
        self.zone = zone


def _encode_str(value: Any) -> bytes:
    return value.encode()  # type: ignore[no-any-return]


def _encode_date(value: Any) -> bytes:
    if value == date.max:
        return _pack_i32(_INF32)
    if value == date.min:
        return _pack_i32(-_INF32 - 1)
    if isinstance(value, datetime):
        value = value.date()
    return _pack_i32(value.toordinal() - c.PG_EPOCH_DATE_ORDINAL)


def _encode_timestamp(value: Any) -> bytes:
    # As the text format: a timestamp column ignores an offset.
    value = value.replace(tzinfo=None)
    if value == datetime.max:
        return c.encode_int8(_INF64)
    if value == datetime.min:
        return c.encode_int8(-_INF64 - 1)
    return c.encode_int8((value - c.PG_EPOCH) // _US)


def _timestamptz_encoder(zone: tzinfo) -> Callable[[Any], bytes]:
    def encode_timestamptz(value: Any) -> bytes:
        if value.replace(tzinfo=None) == datetime.max:
            return c.encode_int8(_INF64)
        if value.replace(tzinfo=None) == datetime.min:
            return c.encode_int8(-_INF64 - 1)
        if value.tzinfo is None:  # as the text format: a naive value is in the session zone
            value = value.replace(tzinfo=zone)
        return c.encode_int8((value.astimezone(UTC) - c.PG_EPOCH_UTC) // _US)

    return encode_timestamptz


_INTS = (int,)
_FLOATS = (float, int)
_TEXT = FieldCodec("text", (str,), _encode_str, str, "")
_CODECS: dict[int, FieldCodec] = {
    oids.BOOL: FieldCodec("bool", (bool,), c.encode_bool, bool, "?"),
    oids.INT2: FieldCodec("int2", _INTS, c.encode_int2, int, "h"),
    oids.INT4: FieldCodec("int4", _INTS, c.encode_int4, int, "i"),
    oids.INT8: FieldCodec("int8", _INTS, c.encode_int8, int, "q"),
    oids.FLOAT4: FieldCodec("float4", _FLOATS, c.encode_float4, float, "f"),
    oids.FLOAT8: FieldCodec("float8", _FLOATS, c.encode_float8, float, "d"),
    oids.TEXT: _TEXT,
    oids.VARCHAR: _TEXT,
    oids.BPCHAR: _TEXT,
    oids.NAME: _TEXT,
    oids.BYTEA: FieldCodec("bytea", (bytes, bytearray, memoryview), c.encode_bytes),
    oids.UUID: FieldCodec("uuid", (UUID,), c.encode_uuid),
    oids.JSONB: FieldCodec("jsonb", (object,), c.encode_jsonb),
    oids.JSON: FieldCodec("json", (object,), c.encode_json_text),
    oids.DATE: FieldCodec("date", (date,), _encode_date),
    oids.TIMESTAMP: FieldCodec("timestamp", (datetime,), _encode_timestamp),
}


def field_codec(oid: int, zone: tzinfo = UTC) -> FieldCodec | None:
    """Return the binary COPY encoder of a column type, or ``None`` when there is none (use the text format).

    Args:
        oid: The column's type OID.
        zone: The session time zone (naive datetimes written to a timestamptz column are in it).
    """
    if oid == oids.TIMESTAMPTZ:
        return _timestamptz_codec(zone)
    return _CODECS.get(oid)


@functools.lru_cache(maxsize=32)
def _timestamptz_codec(zone: tzinfo) -> FieldCodec:
    # One codec per zone, so that rows_writer's cache finds the writers compiled for it.
    return FieldCodec("timestamptz", (datetime,), _timestamptz_encoder(zone), zone=zone)


def encode_row(codecs: Sequence[FieldCodec], values: Sequence[Any]) -> bytes:
    """Encode one row as a binary COPY tuple.

    Args:
        codecs: One :class:`FieldCodec` per column.
        values: The row's values, ``None`` for NULL.

    Raises:
        DataError: Another number of values, a value of a type the column does not take, or out of range.
    """
    if len(values) != len(codecs):
        raise DataError({"M": f"COPY row: expected {len(codecs)} values, got {len(values)}", "C": "22P04"})
    parts = [_pack_i16(len(codecs))]
    append = parts.append
    for i, (codec, value) in enumerate(zip(codecs, values, strict=True)):
        if value is None:
            append(_NULL)
            continue
        if codec.strict and not isinstance(value, codec.accepts):
            raise _wrong_type(i, codec, value)
        try:
            data = codec.encode(value)
        except (struct.error, OverflowError, ValueError, TypeError, AttributeError) as exc:
            if not isinstance(value, codec.accepts):
                raise _wrong_type(i, codec, value) from None
            raise DataError(
                {"M": f"COPY column {i + 1} ({codec.name}): cannot encode {value!r}: {exc}", "C": "22003"}
            ) from None
        append(_pack_i32(len(data)))
        append(data)
    return b"".join(parts)


def _wrong_type(i: int, codec: FieldCodec, value: Any) -> DataError:
    expected = " or ".join(kind.__name__ for kind in codec.accepts)
    message = f"COPY column {i + 1} ({codec.name}): expected {expected}, got {type(value).__name__}"
    return DataError({"M": message, "C": "22P03"})


def _source(codecs: Sequence[FieldCodec]) -> tuple[str, list[str]]:
    """The generated ``write_rows`` source and the struct formats it uses as ``pack0, pack1...`` (pure).

    The row's bytes are built before they are appended, so a value that cannot be
    encoded leaves the buffer as it was and the generic encoder encodes or reports it.
    """
    count = len(codecs)
    names = [f"v{i}" for i in range(count)]
    guards: list[str] = []
    compute: list[str] = []
    pieces: list[str] = []
    formats: list[str] = []
    fmt = "!h"
    args = [str(count)]

    def end_pack() -> None:
        nonlocal fmt, args
        k = len(formats)
        compute.append(f"p{k} = pack{k}({', '.join(args)})")
        pieces.append(f"p{k}")
        formats.append(fmt)
        fmt, args = "!", []

    for i, codec in enumerate(codecs):
        name = names[i]
        if codec.exact is None:
            guards.append(f"{name} is None")
        elif codec.strict:
            guards.append(f"type({name}) is not {codec.exact.__name__}")
        # else: struct (or str.encode) refuses a value it cannot encode, None included.
        if codec.exact is not None and codec.fixed:
            fmt += "i" + codec.fixed
            args += [str(codec.size), name]
            continue
        # Variable length: the length ends a pack, the bytes follow it.
        compute.append(f"b{i} = {name}.encode()" if codec.exact is str else f"b{i} = encode{i}({name})")
        fmt += "i"
        args.append(f"len(b{i})")
        end_pack()
        pieces.append(f"b{i}")
    if args:
        end_pack()
    lines = [
        "def write_rows(rows, buffer, flush, limit):",
        "    for values in rows:",
        "        try:",
        f"            {', '.join(names)}, = values",
        "        except (TypeError, ValueError):",
        "            buffer += generic(values)",
        "        else:",
        f"            if {' or '.join(guards) or 'False'}:",
        "                buffer += generic(values)",
        "            else:",
        "                try:",
        *(f"                    {line}" for line in compute),
        "                except (struct_error, OverflowError, TypeError, ValueError, AttributeError):",
        "                    buffer += generic(values)  # a NULL, another type, out of range: it knows",
        "                else:",
        # One += per piece, not their concatenation then one +=: a bytes object less per row
        # (measured: 8% of the client time of the benchmark's 1M rows).
        *(f"                    buffer += {piece}" for piece in pieces),
        "        if len(buffer) >= limit:",
        "            flush()",
    ]
    return "\n".join(lines) + "\n", formats


def _generic_writer(codecs: tuple[FieldCodec, ...]) -> RowsWriter:
    def write_rows(rows: Iterable[Sequence[Any]], buffer: bytearray, flush: Callable[[], None], limit: int) -> None:
        for values in rows:
            buffer += encode_row(codecs, values)
            if len(buffer) >= limit:
                flush()

    return write_rows


@functools.lru_cache(maxsize=128)
def python_rows_writer(codecs: tuple[FieldCodec, ...]) -> RowsWriter:
    """Return the compiled Python ``write_rows(rows, buffer, flush, limit)`` for rows of these column types.

    It appends each row's :func:`encode_row` bytes to ``buffer`` and calls
    ``flush()`` whenever ``buffer`` holds ``limit`` bytes or more.
    """
    if not codecs or len(codecs) > MAX_COMPILED_COLUMNS:
        return _generic_writer(codecs)
    source, formats = _source(codecs)
    filename = f"<chopin_pg binary copy row {', '.join(codec.name for codec in codecs)}>"
    namespace: dict[str, Any] = {
        "generic": functools.partial(encode_row, codecs),
        "struct_error": struct.error,
        **{f"pack{k}": struct.Struct(fmt).pack for k, fmt in enumerate(formats)},
        **{f"encode{i}": codec.encode for i, codec in enumerate(codecs)},
    }
    exec(compile(source, filename, "exec"), namespace)  # the source holds indices and format characters only
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    writer: RowsWriter = namespace["write_rows"]
    return writer


# -- the C accelerator ------------------------------------------------------------

try:
    if os.environ.get("CHOPIN_PURE_PYTHON"):
        raise ImportError("CHOPIN_PURE_PYTHON is set")
    from ._rows import configure_copy as _configure_copy
    from ._rows import encode_rows as _encode_rows
except ImportError:
    _configure_copy = _encode_rows = None  # type: ignore[assignment]
#: Whether :func:`rows_writer` encodes with the C accelerator (chopin_pg._rows).
ACCELERATED = _encode_rows is not None

#: The codecs (by name) whose values _rows_copy.c encodes itself, by its codes; any other calls its encoder (0).
C_KINDS: dict[str, int] = {
    "bool": 1,
    "int2": 2,
    "int4": 3,
    "int8": 4,
    "float4": 5,
    "float8": 6,
    "text": 7,
    "bytea": 8,
    "uuid": 9,
    "json": 10,
    "jsonb": 11,
    "date": 12,
    "timestamp": 13,
    "timestamptz": 14,
}

if _configure_copy is not None:
    _configure_copy(UUID, vars(UUID)["int"])


@functools.lru_cache(maxsize=128)
def rows_writer(codecs: tuple[FieldCodec, ...]) -> RowsWriter:
    """Return ``write_rows(rows, buffer, flush, limit)`` for rows of these column types.

    It appends each row's :func:`encode_row` bytes to ``buffer`` and calls
    ``flush()`` whenever ``buffer`` holds ``limit`` bytes or more: the C
    accelerator's loop when it is built, else :func:`python_rows_writer`'s (same
    bytes, flushes and errors).
    """
    python = python_rows_writer(codecs)
    if _encode_rows is None or not 0 < len(codecs) <= MAX_COMPILED_COLUMNS:
        return python
    kinds = bytes(C_KINDS.get(codec.name, 0) for codec in codecs)
    encoders = tuple(codec.encode for codec in codecs)
    accepts = tuple(codec.accepts if codec.strict else None for codec in codecs)
    zones = tuple(codec.zone for codec in codecs)
    writer: RowsWriter = functools.partial(_encode_rows, kinds, encoders, accepts, zones, python)
    return writer
