"""Pipelining against the real server: one round trip for N queries, errors mapped to their query."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

import pytest
from chopin_pg import Connection, InterfaceError, PgConfig, PipelineAborted, UniqueViolation, connect
from chopin_pg.errors import DataError, ProgrammingError


class CountingSocket:
    """Wraps a socket and counts writes and reads (the round trips a test cares about)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.writes = 0
        self.reads = 0

    def sendall(self, data: bytes) -> None:
        self.writes += 1
        self._sock.sendall(data)

    def send(self, data: bytes) -> int:
        self.writes += 1
        return int(self._sock.send(data))

    def recv(self, size: int) -> bytes:
        self.reads += 1
        return bytes(self._sock.recv(size))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def counting(conn: Connection) -> CountingSocket:
    wrapped = CountingSocket(conn._sock)
    conn._sock = wrapped  # type: ignore[assignment]
    return wrapped


def test_thousand_inserts_are_one_round_trip(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
    sock = counting(conn)
    with conn.pipeline() as pl:
        handles = [pl.execute("INSERT INTO t VALUES ($1, $2)", (i, f"n{i}")) for i in range(1000)]
        total = pl.query("SELECT count(*), sum(id) FROM t")
    assert sock.writes == 1
    assert all(h.rowcount == 1 for h in handles)
    assert tuple(total.rows()[0]) == (1000, sum(range(1000)))
    # The same work one statement at a time is a write per statement.
    before = sock.writes
    for i in range(1000, 1100):
        conn.execute("INSERT INTO t VALUES ($1, $2)", (i, "x"))
    assert sock.writes - before == 100
    conn._sock = sock._sock


def test_error_in_query_3_of_10_maps_to_query_3(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES (99)")
    ids = [1, 2, 99, 4, 5, 6, 7, 8, 9, 10]
    with pytest.raises(UniqueViolation) as info:
        with conn.pipeline() as pl:
            handles = [pl.execute("INSERT INTO t VALUES ($1)", (i,)) for i in ids]
    assert handles[0].rowcount == 1 and handles[1].rowcount == 1
    with pytest.raises(UniqueViolation) as own:
        handles[2].result()
    assert own.value is info.value
    assert "99" in (own.value.detail or "")
    for h in handles[3:]:
        with pytest.raises(PipelineAborted, match="skipped because query 3 failed") as skipped:
            h.rows()
        assert skipped.value.failed_query == 3
    # One implicit transaction: queries 1 and 2 were rolled back with the failure.
    assert conn.query_scalar("SELECT array_agg(id ORDER BY id) FROM t") == [99]
    assert conn.transaction_status == "I"
    assert conn.query_scalar("SELECT $1::int + 1", (1,)) == 2


def test_sync_makes_separate_implicit_transactions(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with pytest.raises(UniqueViolation):
        with conn.pipeline() as pl:
            a = pl.execute("INSERT INTO t VALUES ($1)", (1,))
            pl.sync()
            assert a.rowcount == 1
            b = pl.execute("INSERT INTO t VALUES ($1)", (1,))
            c = pl.query("SELECT 1")
    assert b.index == 2 and c.index == 3
    with pytest.raises(PipelineAborted, match="query 2"):
        c.result()
    assert conn.query_scalar("SELECT count(*) FROM t") == 1


def test_pipeline_inside_transaction_aborts_the_block(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int)")
    conn.begin()
    with pytest.raises(DataError):
        with conn.pipeline() as pl:
            pl.execute("INSERT INTO t VALUES ($1)", (1,))
            pl.query("SELECT 1 / $1::int", (0,))
    assert conn.transaction_status == "E"
    conn.rollback()
    assert conn.query_scalar("SELECT count(*) FROM t") == 0


def test_statement_cache_misses_are_parsed_inside_the_pipeline(conn: Connection) -> None:
    sql = (
        "SELECT $1::int, $2::numeric, $3::timestamp, $4::bytea, $5::jsonb, $6::uuid, $7::int[], $8::text, "
        "$9::bool, $10::float8"
    )
    u = uuid.uuid4()
    params = (
        7,
        Decimal("1.50"),
        datetime.datetime(2024, 2, 29, 12, 30, 1, 5),
        b"\x00\xff",
        {"a": [1, None]},
        u,
        [1, 2, None],
        "tab\there",
        True,
        1.5,
    )
    conn.clear_statement_cache()
    size = conn.statement_cache_size
    with conn.pipeline() as pl:
        first = pl.query(sql, params)
        second = pl.query(sql, params)  # same miss: one Parse, two Binds
    assert conn.statement_cache_size == size + 1
    expected = (*params,)
    assert tuple(first.rows()[0]) == expected
    assert tuple(second.rows()[0]) == expected
    # Now cached: bound with binary codecs, same values.
    with conn.pipeline() as pl:
        third = pl.query(sql, params)
    assert tuple(third.rows()[0]) == expected
    assert tuple(conn.query_one(sql, params)) == expected


def test_pipeline_without_statement_cache(config: PgConfig) -> None:
    with connect(config.replace(statement_cache_capacity=0)) as conn:
        with conn.pipeline() as pl:
            handles = [pl.query("SELECT $1::int * 2", (i,)) for i in range(5)]
            other = pl.query("SELECT $1::text || 'x'", ("a",))
        assert [h.rows()[0][0] for h in handles] == [0, 2, 4, 6, 8]
        assert other.rows()[0][0] == "ax"
        assert conn.statement_cache_size == 0


def test_syntax_error_in_pipeline_parse(conn: Connection) -> None:
    with pytest.raises(ProgrammingError) as info:
        with conn.pipeline() as pl:
            ok = pl.query("SELECT 1")
            bad = pl.query("SELEC 2")
            after = pl.query("SELECT 3")
    assert info.value.sqlstate == "42601"
    assert ok.rows()[0][0] == 1
    with pytest.raises(ProgrammingError):
        bad.result()
    with pytest.raises(PipelineAborted):
        after.result()
    assert conn.query_scalar("SELEC 2".replace("SELEC", "SELECT")) == 2


def test_connection_refuses_direct_queries_while_pipeline_open(conn: Connection) -> None:
    with conn.pipeline() as pl:
        h = pl.query("SELECT 1")
        with pytest.raises(InterfaceError, match="busy with a pipeline"):
            conn.query("SELECT 2")
        with pytest.raises(InterfaceError, match="no result yet"):
            h.result()
        assert pl.pending == 1
    assert h.rows()[0][0] == 1
    assert conn.query_scalar("SELECT 2") == 2


def test_exception_in_block_sends_nothing(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int)")
    with pytest.raises(RuntimeError):
        with conn.pipeline() as pl:
            h = pl.execute("INSERT INTO t VALUES ($1)", (1,))
            raise RuntimeError("boom")
    with pytest.raises(InterfaceError, match="not sent"):
        h.result()
    assert conn.query_scalar("SELECT count(*) FROM t") == 0


def test_large_pipeline_does_not_deadlock(config: PgConfig) -> None:
    # ~1 MB of requests and ~6 MB of answers: more than both sockets' buffers hold.
    with connect(config.replace(io_timeout=30)) as conn:
        with conn.pipeline() as pl:
            handles = [pl.query("SELECT $1::int, repeat('x', 300)", (i,)) for i in range(20000)]
        assert handles[-1].rows()[0][0] == 19999
        assert len(handles[123].rows()[0][1]) == 300
        assert conn.query_scalar("SELECT 1") == 1


def test_stale_cached_statement_is_evicted_in_pipeline(conn: Connection, config: PgConfig, schema: str) -> None:
    conn.execute("CREATE TABLE t (a int)")
    conn.execute("INSERT INTO t VALUES (1)")
    assert conn.query("SELECT * FROM t", ())[0][0] == 1
    with connect(config) as other:  # another connection's DDL: found out when the server refuses
        other.execute(f"ALTER TABLE {schema}.t ADD COLUMN b int")
    with pytest.raises(ProgrammingError):
        with conn.pipeline() as pl:
            pl.query("SELECT * FROM t")
    with conn.pipeline() as pl:
        again = pl.query("SELECT * FROM t")
    assert tuple(again.rows()[0]) == (1, None)
