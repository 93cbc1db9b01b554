"""Ranges and multiranges: the Range value, its text codecs without a server, and both ways on the server
(binary results of cached statements, text results of a statement's first pipelined run)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from chopin_pg import Connection, DataError
from chopin_pg.ranges import Range, encode_multirange, make_multirange_text, make_range_text


def test_range_value_and_its_literal() -> None:
    r = Range(1, 5)
    assert 1 in r and 4 in r and 5 not in r and 0 not in r
    assert (r.lower_inc, r.upper_inc, r.lower_inf, r.upper_inf) == (True, False, False, False)
    assert str(r) == '["1","5")' and str(Range(empty=True)) == "empty" and str(Range(None, 3, "(]")) == '(,"3"]'
    assert str(Range('a"b\\', None)) == '["a\\"b\\\\",)'
    assert 10**9 in Range(0, None) and Range(empty=True).isempty and 1 not in Range(empty=True)
    assert encode_multirange([Range(1, 2), Range(3, 4)]) == b'{["1","2"),["3","4")}'
    with pytest.raises(Exception, match="bounds"):
        Range(1, 2, "[[")


def test_text_forms_are_parsed() -> None:
    parse = make_range_text(lambda oid: lambda b: b.decode(), 25)
    assert parse(b"empty") == Range(empty=True)
    assert parse(b"[1,5)") == Range("1", "5")
    assert parse(b'("a,b","c\\"d"]') == Range("a,b", 'c"d', "(]")
    assert parse(b"(,)") == Range(None, None, "()")
    multi = make_multirange_text(parse)
    assert multi(b"{}") == [] and multi(b'{[1,3), ["a)",5)}') == [Range("1", "3"), Range("a)", "5")]
    with pytest.raises(DataError):
        parse(b"1,5")


@pytest.mark.parametrize("pipelined", [False, True], ids=["binary", "text"])
def test_ranges_both_ways_on_the_server(conn: Connection, pipelined: bool) -> None:
    sql = (
        "SELECT $1::int4range, $2::numrange, $3::daterange, $4::tstzrange, $5::int8range, $6::tsrange,"
        " 'empty'::int4range, '[1,3]'::int4range, $7::int4multirange, '{}'::datemultirange, ARRAY[$1::int4range]"
    )
    when = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    params = (
        Range(1, 10),
        Range(Decimal("1.5"), None, "(]"),
        Range(dt.date(2024, 1, 1), dt.date(2024, 2, 1)),
        Range(when, when + dt.timedelta(hours=1), "[]"),
        Range(None, 2**40),
        Range(dt.datetime(2024, 1, 1), None),
        [Range(1, 3), Range(5, 7)],
    )
    if pipelined:
        conn.clear_statement_cache()
        with conn.pipeline() as pl:
            handle = pl.query(sql, params)
        row = handle.rows()[0]
    else:
        conn.query(sql, params)  # prepared and cached: the second run decodes binary
        row = conn.query_one(sql, params)
    assert row[0] == Range(1, 10)
    assert row[1] == Range(Decimal("1.5"), None, "()")  # an infinite bound is never inclusive
    assert row[2] == Range(dt.date(2024, 1, 1), dt.date(2024, 2, 1))
    assert row[3].lower == when and row[3].bounds == "[]" and row[3].upper.tzinfo is not None
    assert row[4] == Range(None, 2**40, "()") and row[5] == Range(dt.datetime(2024, 1, 1), None, "[)")
    assert row[6] == Range(empty=True) and row[7] == Range(1, 4)  # discrete ranges come back canonical
    assert row[8] == [Range(1, 3), Range(5, 7)] and row[9] == [] and row[10] == [Range(1, 10)]


def test_a_range_array_parameter_of_a_prepared_statement(conn: Connection) -> None:
    # A statement's first pipelined run sends parameters untyped, where a list of ranges reads as a
    # multirange; once prepared, the parameter's type (int4range[]) picks the array form.
    sql = "SELECT $1::int4range[]"
    assert conn.query_scalar(sql, ([Range(1, 2), None, Range(empty=True)],)) == [Range(1, 2), None, Range(empty=True)]


def test_a_range_parameter_filters_rows(conn: Connection) -> None:
    rows = conn.query(
        "SELECT g FROM generate_series(1, 10) AS g WHERE g <@ $1::int4range ORDER BY g", (Range(3, 6, "(]"),)
    )
    assert [r[0] for r in rows] == [4, 5, 6]
