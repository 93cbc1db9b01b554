"""Binary COPY: the compiled row writers against the generic encoder, and round trips through the server."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from chopin_pg import Connection, DataError, InterfaceError, oids
from chopin_pg import _copy_binary as b
from hypothesis import given
from hypothesis import strategies as st

# Column type, and values of the Python type the compiled loop inlines plus others it hands to the generic encoder.
KINDS: list[tuple[int, st.SearchStrategy[Any]]] = [
    (oids.INT2, st.integers(-(2**15), 2**15 - 1) | st.integers(2**15, 2**40)),
    (oids.INT4, st.integers(-(2**31), 2**31 - 1) | st.integers(2**31, 2**40) | st.booleans()),
    (oids.INT8, st.integers(-(2**63), 2**63 - 1)),
    (oids.FLOAT4, st.floats(width=32) | st.integers(-1000, 1000)),
    (oids.FLOAT8, st.floats() | st.integers(-(2**50), 2**50)),
    (oids.BOOL, st.booleans()),
    (oids.TEXT, st.text(max_size=20)),
    (oids.VARCHAR, st.text(max_size=5)),
    (oids.BYTEA, st.binary(max_size=20)),
    (oids.UUID, st.uuids()),
    (oids.JSONB, st.dictionaries(st.text(max_size=5), st.integers(-100, 100), max_size=3)),
    (oids.DATE, st.dates()),
    (oids.TIMESTAMP, st.datetimes()),
]


def write(writer: b.RowsWriter, rows: list[Any], limit: int = 1 << 30) -> bytes:
    out = bytearray()
    flushed: list[bytes] = []

    def flush() -> None:
        flushed.append(bytes(out))
        out.clear()

    writer(rows, out, flush, limit)
    return b"".join(flushed) + bytes(out)


@st.composite
def tables(draw: st.DrawFn) -> tuple[tuple[b.FieldCodec, ...], list[list[Any]]]:
    picks = draw(st.lists(st.integers(0, len(KINDS) - 1), min_size=1, max_size=6))
    codecs = tuple(b.field_codec(KINDS[i][0]) for i in picks)
    assert all(codec is not None for codec in codecs)
    rows = draw(st.lists(st.tuples(*(st.none() | KINDS[i][1] for i in picks)).map(list), max_size=5))
    return codecs, rows  # type: ignore[return-value]


# Both writers: the compiled Python loop, and rows_writer's (the C accelerator's when it is built).
WRITERS = [b.python_rows_writer, b.rows_writer]


@pytest.mark.parametrize("make_writer", WRITERS)
@given(table=tables(), limit=st.integers(1, 64))
def test_compiled_writer_gives_the_generic_bytes(
    make_writer: Callable[[tuple[b.FieldCodec, ...]], b.RowsWriter],
    table: tuple[tuple[b.FieldCodec, ...], list[Any]],
    limit: int,
) -> None:
    codecs, rows = table
    try:
        expected = b"".join(b.encode_row(codecs, row) for row in rows)
    except DataError as exc:
        with pytest.raises(DataError) as info:
            write(make_writer(codecs), rows, limit)
        assert str(info.value) == str(exc)
        return
    assert write(make_writer(codecs), rows, limit) == expected


@pytest.mark.parametrize("make_writer", WRITERS)
def test_compiled_writer_hands_odd_rows_to_the_generic_encoder(
    make_writer: Callable[[tuple[b.FieldCodec, ...]], b.RowsWriter],
) -> None:
    codecs = tuple(b.field_codec(oid) for oid in (oids.INT4, oids.FLOAT8, oids.TEXT))
    writer = make_writer(codecs)  # type: ignore[arg-type]
    for row in ([1, 2.5, "x"], (1, 2, "x"), (None, None, None), (True, 0.5, "ü"), [2**31 - 1, -0.0, ""]):
        assert write(writer, [row]) == b.encode_row(codecs, row)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"COPY column 1 \(int4\): cannot encode 2147483648"):
        write(writer, [(2**31, 1.0, "x")])
    with pytest.raises(DataError, match=r"COPY column 3 \(text\): expected str, got bytes"):
        write(writer, [(1, 1.0, b"x")])
    with pytest.raises(DataError, match="expected 3 values, got 2"):
        write(writer, [(1, 1.0)])


@pytest.mark.parametrize("make_writer", WRITERS)
@pytest.mark.parametrize("value", [5, [1, 2], "ab"])
def test_a_bytea_column_refuses_what_is_not_bytes(
    make_writer: Callable[[tuple[b.FieldCodec, ...]], b.RowsWriter], value: Any
) -> None:
    # bytes(5) is five zero bytes and bytes([1, 2]) two bytes: both used to be written as the value.
    codecs = tuple(b.field_codec(oid) for oid in (oids.BYTEA, oids.INT4))
    expected = f"COPY column 1 \\(bytea\\): expected bytes or bytearray or memoryview, got {type(value).__name__}"
    with pytest.raises(DataError, match=expected):
        write(make_writer(codecs), [(b"ok", 1), (value, 2)])  # type: ignore[arg-type]
    assert write(make_writer(codecs), [(memoryview(b"ok"), 1), (bytearray(b"x"), 2)]) == b"".join(  # type: ignore[arg-type]
        b.encode_row(codecs, row)  # type: ignore[arg-type]
        for row in [(b"ok", 1), (b"x", 2)]
    )


def test_encode_row_layout() -> None:
    codecs = tuple(b.field_codec(oid) for oid in (oids.INT4, oids.TEXT, oids.BOOL))
    assert b.encode_row(codecs, (1, "ab", None)) == (  # type: ignore[arg-type]
        b"\x00\x03" + b"\x00\x00\x00\x04\x00\x00\x00\x01" + b"\x00\x00\x00\x02ab" + b"\xff\xff\xff\xff"
    )
    assert b.field_codec(oids.NUMERIC) is None  # no binary encoder: copy_records uses the text format


ROUND_TRIP_TABLE = (
    "CREATE TABLE t (i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, b bool, s text, v varchar(10), c char(3),"
    " by bytea, u uuid, j jsonb, js json, d date, ts timestamp, tz timestamptz)"
)


def round_trip_rows() -> list[tuple[Any, ...]]:
    aware = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)
    rows: list[tuple[Any, ...]] = [
        (
            -(2**15),
            2**31 - 1,
            -(2**63),
            1.5,
            float("inf"),
            True,
            "tab\there, ünïcødé ✓",
            "short",
            "abc",
            b"\x00\xff\\",
            uuid.UUID(int=12345),
            {"k": [1, None, "x"], "big": 2**70},
            [1, 2],
            datetime.date(1999, 12, 31),
            datetime.datetime(1, 1, 1),
            aware,
        ),
        (
            7,
            -7,
            2**63 - 1,
            -0.25,
            float("-inf"),
            False,
            "",
            "",
            "x  ",
            b"",
            uuid.UUID(int=0),
            {},
            '"text json"',
            datetime.date.max,
            datetime.datetime.max,
            datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
        ),
        (None,) * 16,
    ]
    return rows


def test_copy_records_round_trips_every_binary_type(conn: Connection, schema: str) -> None:
    conn.execute(ROUND_TRIP_TABLE)
    rows = round_trip_rows()
    assert conn.copy_records("t", rows * 2) == 6
    got = [tuple(r) for r in conn.query("SELECT * FROM t")]
    assert [g[:12] + g[13:] for g in got] == [r[:12] + r[13:] for r in rows] * 2
    assert [g[12] for g in got] == [[1, 2], "text json", None] * 2  # json: the JSON text as sent
    # The same twice on one connection, in the other column order, through a schema-qualified name.
    conn.execute("TRUNCATE t")
    assert conn.copy_records("t", [("x", 5)], columns=["s", "i4"], schema=schema) == 1
    assert tuple(conn.query_one("SELECT s, i4, i2 FROM t")) == ("x", 5, None)


def test_copy_records_falls_back_to_text_for_other_types(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int, n numeric, a int[], iv interval)")
    rows = [(1, Decimal("1.50"), [1, None], datetime.timedelta(days=2)), (2, None, None, None)]
    assert conn.copy_records("t", rows) == 2
    assert [tuple(r) for r in conn.query("SELECT * FROM t ORDER BY id")] == rows


def test_copy_records_bad_value_fails_the_copy_and_leaves_the_connection_usable(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int, s text)")
    with pytest.raises(DataError, match=r"COPY column 1 \(int4\): expected int, got str"):
        conn.copy_records("t", [(1, "a"), ("2", "b")])
    assert conn.query_scalar("SELECT count(*) FROM t") == 0
    with pytest.raises(InterfaceError, match="columns is empty"):
        conn.copy_records("t", [], columns=[])
    assert conn.copy_records("t", []) == 0


def test_copy_records_refuses_an_int_for_bytea_and_writes_nothing(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int, data bytea)")
    with pytest.raises(DataError, match=r"COPY column 2 \(bytea\): expected bytes or bytearray or memoryview, got int"):
        conn.copy_records("t", [(1, b"\x01"), (2, 5)])
    assert conn.query_scalar("SELECT count(*) FROM t") == 0
    assert conn.copy_records("t", [(1, b"\x01")]) == 1


def test_set_types_binary_copy_with_write_row_and_write_rows(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int8, label text)")
    with conn.copy_in("COPY t FROM STDIN (FORMAT binary)") as writer:
        writer.set_types([oids.INT8, oids.TEXT])
        writer.write_row((1, "one"))
        writer.write_rows([(2, None), (3, "three")])
    assert writer.rowcount == 3
    assert [tuple(r) for r in conn.query("SELECT * FROM t ORDER BY id")] == [(1, "one"), (2, None), (3, "three")]
    with conn.copy_in("COPY t FROM STDIN") as text_writer:
        with pytest.raises(InterfaceError, match="text format"):
            text_writer.set_types([oids.INT8, oids.TEXT])
        text_writer.fail()
    with conn.copy_in("COPY t FROM STDIN (FORMAT binary)") as binary_writer:
        with pytest.raises(InterfaceError, match="no binary COPY encoder for type OID 1700"):
            binary_writer.set_types([oids.NUMERIC, oids.TEXT])
        binary_writer.fail()


def test_naive_datetime_into_timestamptz_is_in_the_session_zone_as_in_text(conn: Connection, schema: str) -> None:
    conn.execute("SET TimeZone TO 'Europe/Paris'")
    conn.execute("CREATE TABLE t (k text, tz timestamptz)")
    naive = datetime.datetime(2024, 7, 1, 12, 30)
    conn.copy_records("t", [("binary", naive)])  # binary format: the encoder applies the zone
    with conn.copy_in("COPY t FROM STDIN") as writer:  # text format: the server applies it
        writer.write_row(("text", naive))
    got = dict(conn.query("SELECT k, tz FROM t"))  # type: ignore[arg-type]
    assert got["binary"] == got["text"]
    assert got["binary"].utcoffset() == datetime.timedelta(hours=2)
    # Twice on one connection, after the zone changed: the writer follows the session zone.
    conn.execute("SET TimeZone TO 'UTC'; TRUNCATE t")
    conn.copy_records("t", [("binary", naive)])
    assert conn.query_scalar("SELECT tz FROM t") == naive.replace(tzinfo=datetime.UTC)
