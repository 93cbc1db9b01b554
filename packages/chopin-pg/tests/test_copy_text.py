"""COPY text encoders: the shape-specialised row encoders write exactly what format_copy_row writes."""

from __future__ import annotations

import datetime
import linecache
from decimal import Decimal
from typing import Any

import pytest
from chopin_pg import Connection, InterfaceError
from chopin_pg._copy_text import (
    MAX_SPECIALISED_COLUMNS,
    format_copy_row,
    format_copy_value,
    row_formatter,
    rows_writer,
)
from hypothesis import given
from hypothesis import strategies as st

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.text(alphabet="\\\t\n\r\x0bab \u00e9"),
    st.binary(max_size=8),
    st.decimals(allow_nan=False),
    st.dates(),
)
ROWS = st.lists(VALUES, min_size=1, max_size=6)


@given(sample=ROWS, rows=st.lists(ROWS, max_size=5))
def test_specialised_encoder_matches_the_generic_one(sample: list[Any], rows: list[list[Any]]) -> None:
    encode = row_formatter(tuple(map(type, sample)))
    for row in [sample, *rows]:
        assert encode(row) == format_copy_row(row)
        assert encode(tuple(row)) == format_copy_row(row)


@given(sample=ROWS, rows=st.lists(ROWS, max_size=8), limit=st.integers(1, 64))
def test_rows_writer_appends_what_the_generic_encoder_writes(
    sample: list[Any], rows: list[list[Any]], limit: int
) -> None:
    buffer = bytearray()
    sent: list[bytes] = []

    def flush() -> None:
        sent.append(bytes(buffer))
        buffer.clear()

    rows_writer(tuple(map(type, sample)))(iter([sample, *rows]), buffer, flush, limit)
    assert b"".join(sent) + buffer == b"".join(format_copy_row(r) for r in [sample, *rows])
    assert len(buffer) < limit  # flushed whenever the limit was reached
    for chunk in sent:
        assert len(chunk) >= limit


@given(st.lists(VALUES, max_size=6))
def test_format_copy_value_is_one_field_of_format_copy_row(row: list[Any]) -> None:
    assert ("\t".join(format_copy_value(v) for v in row) + "\n").encode() == format_copy_row(row)


def test_rows_that_do_not_fit_the_shape_take_the_generic_encoder() -> None:
    encode = row_formatter((int, float, str))
    assert encode((1, 2.5, "a")) == b"1\t2.5\ta\n"
    assert encode((True, 2.5, "a")) == b"t\t2.5\ta\n"  # bool is not int here
    assert encode((1, float("inf"), "a")) == b"1\tInfinity\ta\n"
    assert encode((1, None, "tab\there\\")) == b"1\t\\N\ttab\\there\\\\\n"
    assert encode((1, 2.5)) == b"1\t2.5\n"  # another length
    assert encode((1, 2.5, "a", 4)) == b"1\t2.5\ta\t4\n"
    assert encode((1, 2.5, "cr\rnl\nvt\x0b")) == b"1\t2.5\tcr\\rnl\\nvt\x0b\n"


def test_shapes_are_compiled_once_and_show_in_tracebacks() -> None:
    encode = row_formatter((int, str))
    assert row_formatter((int, str)) is encode
    filename = encode.__code__.co_filename
    assert "int, str" in filename
    assert "def format_row(values):" in "".join(linecache.getlines(filename))


def test_empty_and_very_wide_rows_use_the_generic_encoder() -> None:
    assert row_formatter(()) is format_copy_row
    assert row_formatter((int,) * (MAX_SPECIALISED_COLUMNS + 1)) is format_copy_row
    assert row_formatter((int,) * MAX_SPECIALISED_COLUMNS) is not format_copy_row


def test_writer_round_trips_rows_whose_types_change(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (i int, f float8, s text, n numeric, d date)")
    rows: list[tuple[Any, ...]] = [
        (1, 1.5, "plain", Decimal("1.10"), datetime.date(2024, 1, 2)),  # the shape the writer learns
        (2, 2.5, "tab\there", None, None),
        (3, None, "new\nline\\", Decimal("-3"), datetime.date(1999, 12, 31)),
        (None, float("nan"), None, Decimal("0"), datetime.date(2000, 2, 29)),
        (5, 5, "int where a float was", Decimal("5"), datetime.date(2000, 1, 1)),
        (6, 6.0, "ünïcødé ✓\r", Decimal("6.5"), datetime.date(2001, 1, 1)),
    ]
    with conn.copy_in("COPY t FROM STDIN") as writer:
        for row in rows:
            writer.write_row(row)
        writer.write_row([7, 7.25, "a list row", Decimal("7"), datetime.date(2002, 1, 1)])
    assert writer.rowcount == len(rows) + 1
    got = [tuple(r) for r in conn.query("SELECT * FROM t ORDER BY i NULLS LAST")]
    expected = [
        *sorted(rows[:3] + rows[4:], key=lambda r: r[0]),
        (7, 7.25, "a list row", Decimal("7"), datetime.date(2002, 1, 1)),
        (None, pytest.approx(float("nan"), nan_ok=True), None, Decimal("0"), datetime.date(2000, 2, 29)),
    ]
    assert got == expected


def test_write_rows_streams_and_round_trips(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (i int, f float8, s text)")
    rows: list[Any] = [(i, i / 4, f"row {i}\t!") for i in range(30_000)]
    rows[10] = (10, None, None)
    rows[20] = [20, 5, "a list, an int where a float was"]
    with conn.copy_in("COPY t FROM STDIN") as writer:
        writer.write_rows([])
        writer.write_rows(iter(rows[:5]))  # learns the shape
        writer.write_row(rows[5])
        writer.write_rows(rows[6:])
    assert writer.rowcount == len(rows)
    got = [tuple(r) for r in conn.query("SELECT * FROM t ORDER BY i")]
    assert got == [tuple(r) for r in rows]


def test_write_rows_refuses_an_ended_or_binary_copy(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (i int)")
    writer = conn.copy_in("COPY t FROM STDIN")
    writer.write_rows([(1,)])
    writer.finish()
    with pytest.raises(InterfaceError, match="already ended"):
        writer.write_rows([(2,)])
    writer = conn.copy_in("COPY t FROM STDIN (FORMAT binary)")
    with pytest.raises(InterfaceError, match="binary"):
        writer.write_rows([(2,)])
    writer.fail()
    assert conn.query_scalar("SELECT count(*) FROM t") == 1
