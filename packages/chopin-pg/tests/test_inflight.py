"""The sans-IO half of the non-blocking shell (_inflight.py), without sockets: requests and their readers."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from chopin_pg import PgConfig, oids
from chopin_pg import protocol as p
from chopin_pg._inflight import ParseTable, query_request
from chopin_pg._result import Gen, Result
from chopin_pg._session import Session
from chopin_pg.errors import DataError, UndefinedTable
from chopin_pg.types import DEFAULT_TYPES

SQL = "SELECT $1::int AS v"


def msg(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("!i", len(body) + 4) + body


def error(code: str, text: str) -> bytes:
    return msg(b"E", f"SERROR\x00C{code}\x00M{text}\x00\x00".encode())


READY = msg(b"Z", b"I")
PARSED = msg(b"1", b"") + msg(b"t", struct.pack("!hI", 1, oids.INT4))
DESCRIBED = msg(b"T", struct.pack("!h", 1) + b"v\x00" + struct.pack("!ihihih", 0, 0, oids.INT4, 4, -1, 0))


def text_row(value: bytes) -> bytes:
    return msg(b"D", struct.pack("!hi", 1, len(value)) + value)


def answer(*messages: bytes) -> bytes:
    return b"".join(messages)


def session(capacity: int = 100) -> Session:
    return Session(PgConfig(user="u", database="d", statement_cache_capacity=capacity), DEFAULT_TYPES.copy())


def start(gen: Gen) -> bytes:
    request = next(gen)
    assert isinstance(request, bytes)
    assert gen.send(None) is None  # acknowledged: now it reads (and needs input)
    return request


def finish(gen: Gen, data: bytes) -> Any:
    try:
        gen.send(data)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the reader wanted more input")


def test_the_first_request_parses_and_the_next_ones_bind_the_name_in_flight() -> None:
    s, table = session(), ParseTable()
    first = query_request(s, table, SQL, (5,))
    request = start(first)
    assert request.startswith(p.parse("_cpg1", SQL) + p.describe(b"S", "_cpg1"))
    assert request.endswith(p.execute() + p.sync())
    assert table[SQL].name == "_cpg1"  # prepared from the moment its Parse is written
    second = query_request(s, table, SQL, (6,))
    request2 = start(second)
    assert b"P" not in request2[:1] and request2.startswith(p.bind("", "_cpg1", b"\x00\x00", [b"6"], b"\x00\x00"))
    one: Result = finish(
        first, answer(PARSED, DESCRIBED, msg(b"2", b""), text_row(b"5"), msg(b"C", b"SELECT 1\x00"), READY)
    )
    assert one.rows == [(5,)] and one.rows[0]["v"] == 5 and one.tag == "SELECT 1"
    assert SQL not in table and s.cache.lookup(SQL) is not None  # described: cached with binary codecs
    two: Result = finish(second, answer(msg(b"2", b""), text_row(b"6"), msg(b"C", b"SELECT 1\x00"), READY))
    assert two.rows == [(6,)] and [c.name for c in two.columns] == ["v"]
    # Cached now: binary parameters and results, no Parse.
    third = query_request(s, table, SQL, (7,))
    request3 = start(third)
    assert not request3.startswith(b"P") and struct.pack("!ii", 4, 7) in request3
    row = msg(b"D", struct.pack("!hii", 1, 4, 7))
    assert finish(third, answer(msg(b"2", b""), row, msg(b"C", b"SELECT 1\x00"), READY)).rows == [(7,)]


def test_a_failed_parse_is_dropped_and_the_callers_sharing_it_get_its_error() -> None:
    s, table = session(), ParseTable()
    first, second = query_request(s, table, SQL, (1,)), query_request(s, table, SQL, (2,))
    start(first)
    start(second)
    with pytest.raises(UndefinedTable) as one:
        finish(first, answer(error("42P01", 'relation "nope" does not exist'), READY))
    assert SQL not in table and s.cache.lookup(SQL) is None
    with pytest.raises(UndefinedTable) as two:
        finish(second, answer(error("26000", 'prepared statement "_cpg1" does not exist'), READY))
    assert two.value is not one.value and two.value.message == one.value.message
    # The next request parses again, under a new name.
    assert start(query_request(s, table, SQL, (3,))).startswith(p.parse("_cpg2", SQL))


def test_a_failing_bind_after_a_good_parse_keeps_the_statement() -> None:
    s, table = session(), ParseTable()
    gen = query_request(s, table, SQL, ("x",))
    start(gen)
    with pytest.raises(DataError):
        finish(gen, answer(PARSED, DESCRIBED, error("22P02", "invalid input syntax for type integer"), READY))
    assert s.cache.lookup(SQL) is not None and SQL not in table


def test_without_a_statement_cache_every_request_parses_the_unnamed_statement() -> None:
    s, table = session(capacity=0), ParseTable()
    for value in (1, 2):
        gen = query_request(s, table, SQL, (value,))
        assert start(gen).startswith(p.parse("", SQL))
        assert table == {}
        done = answer(PARSED, DESCRIBED, msg(b"2", b""), text_row(str(value).encode()), msg(b"C", b"SELECT 1\x00"))
        assert finish(gen, done + READY).rows == [(value,)]


def test_a_wrong_parameter_count_for_a_cached_statement_raises_before_anything_is_queued() -> None:
    s, table = session(), ParseTable()
    for sql in (SQL, SQL + " "):
        gen = query_request(s, table, sql, (1,))
        start(gen)
        finish(gen, answer(PARSED, DESCRIBED, msg(b"2", b""), text_row(b"1"), msg(b"C", b"SELECT 1\x00"), READY))
    s.cache.evict(SQL + " ")  # its Close travels with the next request...
    with pytest.raises(DataError):
        next(query_request(s, table, SQL, (1, 2)))
    assert s.cache.take_pending_close() == p.close(b"S", "_cpg2")  # ...which was not sent: still owed
