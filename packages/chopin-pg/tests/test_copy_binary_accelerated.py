"""Binary COPY rows encoded by the C accelerator (``_rows_copy.c``) against the compiled Python loop.

Both writers run over the same generated rows -- every binary type, NULLs, edge
values, other Python types, odd row objects -- with small flush limits, and must
give the same bytes, the same flushes, and the same errors with the same buffer
left behind.  Without the accelerator (``CHOPIN_PURE_PYTHON=1``) ``rows_writer``
is the Python loop and the comparisons are trivially equal.
"""

from __future__ import annotations

import enum
import gc
import math
import os
import random
import sys
import uuid
from collections import namedtuple
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from chopin_pg import DataError, oids
from chopin_pg import _copy_binary as b

PARIS = ZoneInfo("Europe/Paris")
ZONES: list[tzinfo] = [UTC, timezone(timedelta(hours=5, minutes=30)), PARIS, timezone(timedelta(0), "Z")]


class Level(enum.IntEnum):
    LOW = 1


class Text(str):
    pass


class Float(float):
    pass


class Blob(bytes):
    pass


class Day(date):
    pass


class Moment(datetime):
    pass


class Id(uuid.UUID):
    pass


class NoOffset(tzinfo):
    """A tzinfo without an offset: astimezone() takes such a value as local time."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


class Pair(tuple[Any, ...]):
    """A tuple that iterates its items backwards: the Python loop's unpacking sees that order."""

    def __iter__(self) -> Iterator[Any]:
        items: tuple[Any, ...] = tuple(tuple.__iter__(self))
        return iter(items[::-1])


Point = namedtuple("Point", "a b")


def codec(oid: int, zone: tzinfo = UTC) -> b.FieldCodec:
    found = b.field_codec(oid, zone)
    assert found is not None
    return found


def writers(codecs: tuple[b.FieldCodec, ...]) -> tuple[b.RowsWriter, b.RowsWriter]:
    return b.rows_writer(codecs), b.python_rows_writer(codecs)


def run(writer: b.RowsWriter, rows: Any, limit: int) -> tuple[list[bytes], bytes, Any]:
    """The flushed chunks, what is left in the buffer, and the error (type and message) if one was raised."""
    out = bytearray(b"head")
    flushed: list[bytes] = []

    def flush() -> None:
        flushed.append(bytes(out))
        out.clear()

    try:
        writer(rows, out, flush, limit)
    except Exception as exc:
        return flushed, bytes(out), (type(exc), str(exc))
    return flushed, bytes(out), None


def assert_same(codecs: tuple[b.FieldCodec, ...], rows: list[Any], limit: int = 1 << 30) -> Any:
    fast, slow = writers(codecs)
    got = run(fast, rows, limit)
    assert got == run(slow, rows, limit)
    return got


# -- generated values ---------------------------------------------------------------

INT_LIMITS = {oids.INT2: 15, oids.INT4: 31, oids.INT8: 63}


def int_value(rng: random.Random, bits: int) -> Any:
    pick = rng.randrange(8)
    if pick == 0:
        return rng.choice([-(2**bits), 2**bits - 1, 0, -1, 1])
    if pick == 1:
        return rng.choice([True, False, Level.LOW])  # int subclasses: struct takes them
    return rng.randint(-(2**bits), 2**bits - 1)


def float_value(rng: random.Random) -> Any:
    pick = rng.randrange(10)
    if pick == 0:
        return rng.choice([math.nan, -math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1.7976931348623157e308])
    if pick == 1:
        return rng.choice([3, -(2**60), True, Float(1.25)])  # ints, a bool, a subclass
    if pick == 2:
        return rng.choice([3.4028235e38, 1.1754943508222875e-38, 1.401298464324817e-45, 1e-50])
    return rng.uniform(-1e6, 1e6)


def text_value(rng: random.Random) -> Any:
    pick = rng.randrange(8)
    if pick == 0:
        return rng.choice(["", "\x00", "tab\there\n", "ünïcødé ✓", "😀" * 3, "\u00e9" * 50, Text("sub")])
    alphabet = "abcXYZ019 \t\\" + ("éß中😀" if pick < 3 else "")
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(30)))


def bytea_value(rng: random.Random) -> Any:
    data = rng.randbytes(rng.randrange(20))
    return rng.choice([data, data, bytearray(data), memoryview(data), Blob(data), b""])


def uuid_value(rng: random.Random) -> Any:
    value = uuid.UUID(int=rng.getrandbits(128))
    return rng.choice([value, value, uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), Id(int=rng.getrandbits(128))])


def json_value(rng: random.Random) -> Any:
    return rng.choice(
        [{"k": rng.randrange(100), "ü": [1, None, "x"]}, [1, 2.5], "raw text ü", '{"a": 1}', "", 2**70, None, True]
    )


def date_value(rng: random.Random) -> Any:
    pick = rng.randrange(8)
    if pick == 0:
        return rng.choice([date.min, date.max, date(2000, 1, 1), date(1999, 12, 31), date(1970, 1, 1)])
    if pick == 1:
        return rng.choice([Day(1900, 3, 1), datetime(2024, 2, 29, 23, 59), datetime(9999, 12, 31, 12)])
    return date.fromordinal(rng.randint(1, date.max.toordinal()))


def datetime_value(rng: random.Random) -> Any:
    pick = rng.randrange(10)
    if pick == 0:
        value = rng.choice([datetime.min, datetime.max, datetime(2000, 1, 1), datetime(1999, 12, 31, 23, 59, 59)])
    elif pick == 1:
        value = rng.choice([datetime(1, 1, 1, 0, 30), datetime(9999, 12, 31, 23, 0), datetime(1, 1, 2)])
    else:
        value = datetime(2000, 1, 1) + timedelta(microseconds=rng.randint(-(2**62), 2**62) // 1000)
    if rng.random() < 0.1:
        value = value.replace(fold=1)
    zone = rng.choice([None, None, UTC, *ZONES, NoOffset(), timezone(timedelta(hours=-23, minutes=-59))])
    try:
        value = value.replace(tzinfo=zone)
    except OverflowError:  # pragma: no cover
        pass
    if rng.random() < 0.03:
        value = Moment.fromisoformat(value.isoformat())
    return value


VALUES: dict[int, Callable[[random.Random], Any]] = {
    oids.INT2: lambda rng: int_value(rng, 15),
    oids.INT4: lambda rng: int_value(rng, 31),
    oids.INT8: lambda rng: int_value(rng, 63),
    oids.FLOAT4: float_value,
    oids.FLOAT8: float_value,
    oids.BOOL: lambda rng: rng.choice([True, False]),
    oids.TEXT: text_value,
    oids.VARCHAR: text_value,
    oids.BPCHAR: text_value,
    oids.NAME: text_value,
    oids.BYTEA: bytea_value,
    oids.UUID: uuid_value,
    oids.JSON: json_value,
    oids.JSONB: json_value,
    oids.DATE: date_value,
    oids.TIMESTAMP: datetime_value,
    oids.TIMESTAMPTZ: datetime_value,
}


def row_of(rng: random.Random, types: list[int]) -> Any:
    values = [None if rng.random() < 0.1 else VALUES[oid](rng) for oid in types]
    return tuple(values) if rng.random() < 0.7 else values


def encodable(codecs: tuple[b.FieldCodec, ...], row: Any) -> bool:
    try:
        b.python_rows_writer(codecs)([row], bytearray(), lambda: None, 1 << 30)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_every_type_gives_the_python_bytes_over_many_generated_rows(zone: tzinfo) -> None:
    rng = random.Random(f"copy {zone}")
    types = list(VALUES)
    encoded = 0
    for _ in range(60):
        picks = [rng.choice(types) for _ in range(rng.randint(1, 8))]
        codecs = tuple(codec(oid, zone) for oid in picks)
        rows = [row_of(rng, picks) for _ in range(400)]
        good = [row for row in rows if encodable(codecs, row)]
        good_ids = {id(row) for row in good}
        encoded += len(good)
        for limit in (1, 100, 4096, 1 << 30):
            assert assert_same(codecs, good, limit)[2] is None
        # The bad rows, one call each: the same error, and the same rows before it in the buffer.
        for row in rows:
            if id(row) not in good_ids:
                got = assert_same(codecs, [good[0] if good else row, row], 64)
                assert got[2] is not None
    assert encoded > 10_000


@pytest.mark.parametrize(
    ("oid", "value", "message"),
    [
        (oids.INT2, 2**15, r"COPY column 2 \(int2\): cannot encode 32768"),
        (oids.INT4, -(2**31) - 1, r"COPY column 2 \(int4\): cannot encode -2147483649"),
        (oids.INT8, 2**63, r"COPY column 2 \(int8\): cannot encode 9223372036854775808"),
        (oids.INT4, 1.5, r"COPY column 2 \(int4\): expected int, got float"),
        (oids.INT4, "1", r"COPY column 2 \(int4\): expected int, got str"),
        (oids.FLOAT4, 1e300, r"COPY column 2 \(float4\): cannot encode 1e\+300"),
        (oids.FLOAT8, 2**1024, r"COPY column 2 \(float8\): cannot encode"),
        (oids.FLOAT8, "1.0", r"COPY column 2 \(float8\): expected float or int, got str"),
        (oids.BOOL, 1, r"COPY column 2 \(bool\): expected bool, got int"),
        (oids.TEXT, b"x", r"COPY column 2 \(text\): expected str, got bytes"),
        (oids.TEXT, "\ud800", r"COPY column 2 \(text\): cannot encode"),
        (oids.BYTEA, "x", r"COPY column 2 \(bytea\): expected bytes or bytearray or memoryview, got str"),
        (oids.UUID, "0" * 32, r"COPY column 2 \(uuid\): expected UUID, got str"),
        (oids.DATE, "2000-01-01", r"COPY column 2 \(date\): expected date, got str"),
        (oids.TIMESTAMP, date(2000, 1, 1), r"COPY column 2 \(timestamp\): expected datetime, got date"),
        (oids.TIMESTAMPTZ, datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "timestamptz"),
        (oids.TIMESTAMPTZ, datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-2))), "timestamptz"),
        (oids.JSONB, {"x": math.nan}, "JSON has no inf or nan"),
        (oids.JSON, object(), r"COPY column 2 \(json\): cannot encode"),
    ],
)
def test_a_bad_value_raises_the_python_error(oid: int, value: Any, message: str) -> None:
    codecs = (codec(oids.INT4), codec(oid))
    _, left, error = assert_same(codecs, [(1, None), (2, value), (3, None)], 1 << 30)
    assert error is not None
    assert left == b"head" + b.encode_row(codecs, (1, None))
    with pytest.raises(error[0], match=message):
        b.rows_writer(codecs)([(2, value)], bytearray(), lambda: None, 1 << 30)


def odd_rows() -> list[Any]:
    return [
        Point(1, "a"),
        Pair((2, "b")),  # unpacked by iteration: ("b", 2), which fails, then encode_row's order
        [3, "c"],
        iter([4, "d"]),  # unpacked by the Python loop
        (i for i in (5, "e")),
        "xy",
        (6,),
        (7, "g", None),
        [],
        None,
        42,
    ]


def test_odd_rows_are_the_python_loops() -> None:
    codecs = (codec(oids.INT4), codec(oids.TEXT))
    fast, slow = writers(codecs)
    for i in range(len(odd_rows())):
        for limit in (1, 1 << 30):
            rows = [(0, "ok"), odd_rows()[i], (8, "h")]
            assert run(fast, rows, limit) == run(slow, [(0, "ok"), odd_rows()[i], (8, "h")], limit)
    assert run(fast, [Point(1, "a"), (1, "a")], 1 << 30)[1] == b"head" + 2 * b.encode_row(
        codecs,
        (1, "a"),
    )


def test_rows_from_a_generator_and_an_error_in_it() -> None:
    codecs = (codec(oids.INT8),)

    def rows() -> Iterator[Any]:
        yield (1,)
        yield (2,)
        raise KeyError("rows")

    fast, slow = writers(codecs)
    assert run(fast, rows(), 1 << 30) == run(slow, rows(), 1 << 30)
    assert run(fast, rows(), 1 << 30)[2] == (KeyError, "'rows'")


def test_a_flush_that_raises_stops_the_writer_with_the_rows_written() -> None:
    codecs = (codec(oids.INT4),)
    out = bytearray()
    calls = []

    def flush() -> None:
        calls.append(bytes(out))
        raise OSError("gone")

    with pytest.raises(OSError, match="gone"):
        b.rows_writer(codecs)([(1,), (2,), (3,)], out, flush, 20)
    assert calls == [bytes(out)] == [b.encode_row(codecs, (1,)) + b.encode_row(codecs, (2,))]


def test_a_zone_whose_offset_raises_is_the_python_error() -> None:
    class Broken(NoOffset):
        def utcoffset(self, dt: datetime | None) -> timedelta:
            raise ValueError("no offset here")

    codecs = (codec(oids.TIMESTAMPTZ, UTC),)
    got = assert_same(codecs, [(datetime(2020, 1, 1, tzinfo=Broken()),)])
    assert got[2] is not None
    assert "no offset here" in got[2][1]


@pytest.mark.skipif(bool(os.environ.get("CHOPIN_PURE_PYTHON")), reason="CHOPIN_PURE_PYTHON is set")
def test_the_c_encoder_is_built() -> None:
    # A missing encoder would make every binary COPY several times slower, silently.
    assert b.ACCELERATED
    codecs = (codec(oids.INT4),)
    assert b.rows_writer(codecs) is not b.python_rows_writer(codecs)


def test_past_the_column_limit_the_writer_is_the_python_loop() -> None:
    codecs = (codec(oids.INT4),) * (b.MAX_COMPILED_COLUMNS + 1)
    assert b.rows_writer(codecs) is b.python_rows_writer(codecs)
    assert_same(codecs, [tuple(range(b.MAX_COMPILED_COLUMNS + 1)), (None,) * 65], 100)
    if not b.ACCELERATED:
        assert b.rows_writer(codecs[:1]) is b.python_rows_writer(codecs[:1])


def test_the_values_keep_their_reference_counts() -> None:
    # The C loop borrows the rows' values and lets go of what it makes: nothing gained or lost,
    # through every path (inline, a Python encoder, a row handed to the Python loop, an error).
    zone = timezone(timedelta(hours=2))
    codecs = tuple(codec(oid, zone) for oid in (oids.TEXT, oids.UUID, oids.TIMESTAMPTZ, oids.JSONB))
    text, ident, moment, doc = "ü" * 40, uuid.uuid4(), datetime(2020, 1, 1, tzinfo=PARIS), {"a": 1}
    rows = [(text, ident, moment, doc), [text, ident, moment.replace(tzinfo=zone), "x"], (text, ident, None, None)]
    bad = [(text, ident, moment, doc), (text, "not a uuid", moment, doc)]
    writer = b.rows_writer(codecs)
    gc.collect()
    before = [sys.getrefcount(obj) for obj in (text, ident, moment, doc, zone, PARIS)]
    for _ in range(200):
        writer(rows, bytearray(), lambda: None, 50)
        with pytest.raises(DataError):
            writer(bad, bytearray(), lambda: None, 50)
    gc.collect()
    assert [sys.getrefcount(obj) for obj in (text, ident, moment, doc, zone, PARIS)] == before
