"""Composite types as named tuples, anonymous records as tuples, enum parameters and results, on the server."""

from __future__ import annotations

import enum

import pytest
from chopin_pg import Connection, InterfaceError, ProgrammingError
from chopin_pg._records import encode_composite, make_record_text
from chopin_pg.usertypes import register_composite, register_enum


class Mood(enum.Enum):
    happy = 1
    sad = 2


class Color(enum.StrEnum):
    red = "red"


class Level(enum.IntEnum):
    low = 1
    high = 2


def test_record_text_form_is_split_without_a_server() -> None:
    split = make_record_text()
    assert split(b'(1,"a b",,"say ""hi""","x\\\\y",)') == ("1", "a b", None, 'say "hi"', "x\\y", None)
    assert split(b"()") == (None,)
    assert encode_composite((1, None, 'a"b', [1, 2])) == b'("1",,"a""b","{""1"",""2""}")'


def test_enum_members_are_sent_by_name_or_by_value_for_str_and_int_enums(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TYPE mood AS ENUM ('happy', 'sad'); CREATE TABLE t (m mood, c text, n int)")
    conn.execute("INSERT INTO t VALUES ($1, $2, $3)", (Mood.sad, Color.red, Level.high))
    conn.executemany("INSERT INTO t VALUES ($1, $2, $3)", [(Mood.happy, Color.red, Level.low)])
    assert [tuple(r) for r in conn.query("SELECT m::text, c, n FROM t ORDER BY n")] == [
        ("happy", "red", 1),
        ("sad", "red", 2),
    ]
    assert conn.query_scalar("SELECT $1::text", (Mood.happy,)) == "happy"
    assert conn.query_scalar("SELECT $1::text[]", ([Mood.happy, Level.low],)) == ["happy", "1"]
    register_enum(conn, "mood", Mood)
    assert conn.query_scalar("SELECT m FROM t WHERE n = $1", (Level.high,)) is Mood.sad
    assert conn.query_scalar("SELECT array_agg(m ORDER BY n) FROM t") == [Mood.happy, Mood.sad]
    with pytest.raises(ProgrammingError):
        register_enum(conn, "no_such_enum", Mood)


def test_anonymous_records_are_tuples(conn: Connection) -> None:
    sql = "SELECT ROW(1, 'a,b', NULL, 2.5::numeric, ROW(true))"
    conn.query(sql)
    row = conn.query_one(sql)  # cached: binary, typed fields
    assert row[0] == (1, "a,b", None, pytest.approx(2.5), (True,))
    with conn.pipeline() as pl:  # a first pipelined run decodes text: the fields stay str
        handle = pl.query("SELECT ROW(1, 'a,b', NULL) AS r")
    assert handle.rows()[0][0] == ("1", "a,b", None)


@pytest.mark.parametrize("pipelined", [False, True], ids=["binary", "text"])
def test_a_registered_composite_is_a_named_tuple_both_ways(conn: Connection, schema: str, pipelined: bool) -> None:
    conn.execute(
        "CREATE TYPE mood AS ENUM ('happy', 'sad');"
        ' CREATE TYPE address AS (street text, no int, tags text[], mood mood, "class" text)'
    )
    register_enum(conn, "mood", Mood)
    Address = register_composite(conn, f"{schema}.address")  # noqa: N806 - a class
    assert Address._fields == ("street", "no", "tags", "mood", "f4")  # type: ignore[attr-defined]
    value = Address('Main "St", 1', None, ["x,y", None], Mood.sad, "A")
    sql = "SELECT $1::address, ARRAY[$1::address, NULL], ROW('b', 2, NULL, NULL, NULL)::address"
    if pipelined:
        conn.clear_statement_cache()
        with conn.pipeline() as pl:
            handle = pl.query(sql, (value,))
        row = handle.rows()[0]
    else:
        conn.query(sql, (value,))
        row = conn.query_one(sql, (value,))
    assert row[0] == value and type(row[0]) is Address and row[0].mood is Mood.sad
    assert row[1] == [value, None] and row[2] == Address("b", 2, None, None, None)
    conn.execute("CREATE TABLE homes (id int, addr address)")
    conn.execute("INSERT INTO homes VALUES (1, $1)", (value,))
    assert conn.query_scalar("SELECT (addr).street FROM homes") == 'Main "St", 1'
    custom = register_composite(conn, "address", lambda *fields: dict(zip(Address._fields, fields, strict=True)))  # type: ignore[attr-defined]
    assert conn.query_scalar("SELECT addr FROM homes")["no"] is None and callable(custom)
    with pytest.raises(InterfaceError, match="not a composite type"):
        register_composite(conn, "int4")
