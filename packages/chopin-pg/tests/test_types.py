"""Type codecs against the real server: every supported type decoded in binary and text, compared with psycopg."""

from __future__ import annotations

import ipaddress
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from chopin_pg import Connection, connect
from conftest import LOCAL
from hypothesis import given, settings
from hypothesis import strategies as st

# SQL expressions whose value both drivers must decode identically.
EXPRESSIONS = [
    "true",
    "false",
    "NULL::int",
    "32767::int2",
    "(-2147483648)::int4",
    "9223372036854775807::int8",
    "1.5::float4",
    "(-1e300)::float8",
    "'Infinity'::float8",
    "12345678901234567890.000123::numeric",
    "(-0.00001)::numeric",
    "0::numeric(10,3)",
    "1e30::numeric",
    "'NaN'::numeric",
    "'héllo wörld ☃'::text",
    "'x'::varchar(5)",
    "'ab'::char(4)",
    "'pg_type'::name",
    "'\\x00ff10'::bytea",
    "''::bytea",
    "'2024-02-29'::date",
    "'0001-01-01'::date",
    "'13:45:10.123456'::time",
    "'23:59:59'::time",
    "'13:45:10.5+05:30'::timetz",
    "'2024-02-29 13:45:10.123456'::timestamp",
    "'1970-01-01 00:00:00'::timestamp",
    "'2024-02-29 13:45:10.123456+02'::timestamptz",
    "'1 year 2 mons 3 days 04:05:06.789'::interval",
    "'-3 days -00:00:01'::interval",
    "'-1 mons'::interval",
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
    '\'{"a": [1, 2.5, null, true], "b": "ü"}\'::json',
    '\'{"a": [1, 2.5, null, true], "b": "ü"}\'::jsonb',
    "'192.168.1.10'::inet",
    "'192.168.1.10/24'::inet",
    "'2001:db8::1/64'::inet",
    "'10.0.0.0/8'::cidr",
    "ARRAY[1, NULL, 3]::int[]",
    "ARRAY[[1, 2], [3, 4]]::int8[]",
    "ARRAY['a', 'b c', 'd\"e', 'f\\g', NULL, 'NULL', '']::text[]",
    "ARRAY[1.5, NULL]::numeric[]",
    "ARRAY['2024-01-01']::date[]",
    "'{}'::int[]",
    "ARRAY[true, false]",
    "ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']::uuid[]",
    "ARRAY['{\"k\": 1}']::jsonb[]",
    "ARRAY['2024-02-29 13:45:10+02']::timestamptz[]",
    "42::oid",
    "'s'::\"char\"",
    "''::\"char\"",  # the zero byte: pg_attribute.attgenerated of an ordinary column
    "E'\\\\351'::\"char\"",  # a byte with the high bit set: text form \351
]


@pytest.fixture(scope="module")
def psy() -> Any:
    with psycopg.connect(
        host=LOCAL.host, port=LOCAL.port, dbname=LOCAL.database, user=LOCAL.user, password=LOCAL.password
    ) as c:
        yield c


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, Decimal) and a.is_nan():
        return isinstance(b, Decimal) and b.is_nan()
    if isinstance(a, datetime | time) and a.tzinfo is not None:
        return a == b and b.tzinfo is not None and a.utcoffset() == b.utcoffset()
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_decode_matches_psycopg(conn: Connection, psy: Any, expr: str) -> None:
    expected = psy.execute(f"SELECT {expr}").fetchone()[0]
    binary = conn.query(f"SELECT {expr}")[0][0]
    text = conn.query_simple(f"SELECT {expr}")[0][0]
    assert same(binary, expected), (binary, expected)
    assert same(text, expected), (text, expected)


def test_numeric_scale_is_kept(conn: Connection) -> None:
    assert str(conn.query_scalar("SELECT 1.100::numeric")) == "1.100"
    assert str(conn.query_scalar("SELECT 12000::numeric")) == "12000"
    assert str(conn.query_scalar("SELECT 0.000000::numeric(10,6)")) == "0.000000"


def test_timestamptz_in_session_time_zone(conn: Connection) -> None:
    conn.execute("SET TIME ZONE 'America/New_York'")
    value = conn.query_scalar("SELECT '2024-07-01 12:00:00+00'::timestamptz")
    assert value == datetime(2024, 7, 1, 12, tzinfo=UTC)
    assert value.utcoffset() == timedelta(hours=-4)
    assert conn.query_simple("SELECT '2024-07-01 12:00:00+00'::timestamptz")[0][0].utcoffset() == timedelta(hours=-4)


def test_infinities(conn: Connection) -> None:
    assert conn.query_scalar("SELECT 'infinity'::date") == date.max
    assert conn.query_scalar("SELECT '-infinity'::timestamp") == datetime.min
    assert conn.query_simple("SELECT 'infinity'::timestamp")[0][0] == datetime.max
    assert conn.query_scalar("SELECT 'Infinity'::numeric") == Decimal("Infinity")


def test_enum_and_unknown_types_are_str(conn: Connection) -> None:
    assert conn.query_scalar("SELECT '(1,2)'::point") == "(1,2)"
    assert conn.query_scalar("SELECT 'a b'::tsvector") == "'a' 'b'"


PARAMS: list[tuple[str, Any]] = [
    ("bool", True),
    ("int2", -5),
    ("int4", 2**31 - 1),
    ("int8", -(2**63)),
    ("float4", 1.5),
    ("float8", float("inf")),
    ("float8", 3),
    ("numeric", Decimal("-123.4500")),
    ("numeric", 10**30),
    ("text", "☃ unicode"),
    ("varchar", ""),
    ("bytea", b"\x00\x01\xff"),
    ("date", date(2024, 2, 29)),
    ("time", time(1, 2, 3, 4)),
    ("timetz", time(1, 2, 3, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
    ("timestamp", datetime(2024, 2, 29, 1, 2, 3, 999999)),
    ("timestamptz", datetime(2024, 2, 29, 1, 2, 3, tzinfo=UTC)),
    ("interval", timedelta(days=-3, seconds=5, microseconds=7)),
    ("uuid", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
    ("json", {"a": [1, None, "x"]}),
    ("jsonb", [1, {"b": True}]),
    ("inet", ipaddress.ip_address("10.1.2.3")),
    ("cidr", ipaddress.ip_network("10.0.0.0/8")),
    ("int4[]", [[1, None], [3, 4]]),
    ("text[]", ["a", 'q"uote', "back\\slash", None, "NULL", ""]),
    ("bool[]", [True, False]),
]


@pytest.mark.parametrize(("sqltype", "value"), PARAMS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(PARAMS)])
def test_parameter_round_trip(conn: Connection, sqltype: str, value: Any) -> None:
    assert conn.query_scalar(f"SELECT $1::{sqltype}", (value,)) == value
    assert conn.query_scalar(f"SELECT $1::{sqltype} IS NULL", (None,)) is True


def test_out_of_range_parameter_is_reported_by_server(conn: Connection) -> None:
    from chopin_pg import DataError

    with pytest.raises(DataError) as info:
        conn.query("SELECT $1::int2", (70000,))
    assert info.value.sqlstate == "22003"


def test_str_to_typed_parameter_goes_as_text(conn: Connection) -> None:
    assert conn.query_scalar("SELECT $1::int + 1", ("41",)) == 42
    assert conn.query_scalar("SELECT $1::date", ("2024-01-02",)) == date(2024, 1, 2)


@settings(max_examples=60, deadline=None)
@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: d.is_finite() and abs(d.adjusted()) < 100
    )
)
def test_numeric_binary_round_trip_property(value: Decimal) -> None:
    with connect(LOCAL) as conn:
        back = conn.query_scalar("SELECT $1::numeric", (value,))
        assert back == value
        assert str(back) == conn.query_simple(f"SELECT '{value}'::numeric")[0][0].__str__()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))),
        max_size=6,
    )
)
def test_text_array_round_trip_property(values: list[str | None]) -> None:
    with connect(LOCAL) as conn:
        assert conn.query_scalar("SELECT $1::text[]", (values,)) == values
        assert (
            conn.query_simple(
                "SELECT "
                + (
                    "ARRAY["
                    + ",".join("NULL" if v is None else "'" + v.replace("'", "''") + "'" for v in values)
                    + "]::text[]"
                    if values
                    else "'{}'::text[]"
                )
            )[0][0]
            == values
        )
