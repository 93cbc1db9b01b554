"""chopin_pg.dbapi against the local server: errors by SQLSTATE, transactions, placeholders,
executemany on the pipeline, server-side cursors, descriptions."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import chopin_pg
import pytest
from chopin_pg import dbapi
from conftest import LOCAL  # the shared test server ($CHOPIN_TEST_DATABASE_URL, else the local socket)


@pytest.fixture
def db() -> Iterator[dbapi.Connection]:
    """A DB-API connection with a private schema first on its search_path, dropped afterwards."""
    schema = f"dbapi_{uuid.uuid4().hex[:10]}"
    conn = dbapi.connect(LOCAL)
    conn.native.execute(f"CREATE SCHEMA {schema}; SET search_path TO {schema}, public")
    yield conn
    if not conn.closed:
        conn.close()
    with chopin_pg.connect(LOCAL) as other:
        other.execute(f"DROP SCHEMA {schema} CASCADE")


def test_errors_are_both_the_pep249_class_by_sqlstate_and_the_chopin_class(db: dbapi.Connection) -> None:
    cur = db.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY)")
    cur.execute("INSERT INTO t VALUES (%s)", (1,))
    db.commit()
    with pytest.raises(dbapi.IntegrityError) as info:
        cur.execute("INSERT INTO t VALUES (%s)", (1,))
    assert isinstance(info.value, chopin_pg.UniqueViolation)
    assert isinstance(info.value, dbapi.DatabaseError) and isinstance(info.value, chopin_pg.PgError)
    assert info.value.sqlstate == "23505" and "duplicate key" in str(info.value)
    assert info.value.classify() is chopin_pg.ErrorClass.CLIENT
    db.rollback()
    cases = [
        ("SELEC 1", dbapi.ProgrammingError, "42601"),
        ("SELECT 1/0", dbapi.DataError, "22012"),
        ("SELECT * FROM no_such_table", dbapi.ProgrammingError, "42P01"),
        ("SELECT count(*) FROM t FOR UPDATE", dbapi.NotSupportedError, "0A000"),
    ]
    for sql, cls, sqlstate in cases:
        with pytest.raises(cls) as caught:
            cur.execute(sql)
        assert caught.value.sqlstate == sqlstate
        db.rollback()
    cur.execute("SELECT 1")
    with pytest.raises(dbapi.InternalError) as failed:  # 25P02: the transaction block is aborted
        try:
            cur.execute("SELECT 1/0")
        except dbapi.DataError:
            cur.execute("SELECT 1")
    assert failed.value.sqlstate == "25P02"
    db.rollback()


def test_a_lost_connection_is_an_operational_error(db: dbapi.Connection) -> None:
    pid = db.native.backend_pid
    with chopin_pg.connect(LOCAL) as other:
        other.query("SELECT pg_terminate_backend($1)", (pid,))
    with pytest.raises(dbapi.OperationalError) as info:
        db.cursor().execute("SELECT 1")
    assert isinstance(info.value, chopin_pg.PgError)
    with pytest.raises(dbapi.Error):
        db.cursor()


def test_statements_run_in_a_transaction_until_commit_or_rollback(db: dbapi.Connection) -> None:
    cur = db.cursor()
    cur.execute("CREATE TABLE t (id int)")
    db.commit()
    cur.execute("INSERT INTO t VALUES (1)")
    assert db.native.in_transaction
    db.rollback()
    cur.execute("SELECT count(*) FROM t")
    assert cur.fetchone() == (0,)
    cur.execute("INSERT INTO t VALUES (2)")
    db.commit()
    assert not db.native.in_transaction
    with dbapi.connect(LOCAL) as other:  # commits at the end of the block, then closes
        schema = db.native.query_scalar("SELECT current_schema()")
        ocur = other.cursor()
        ocur.execute(f"SELECT id FROM {schema}.t")
        assert ocur.fetchall() == [(2,)]
        ocur.execute(f"INSERT INTO {schema}.t VALUES (3)")
    assert other.closed
    cur.execute("SELECT count(*) FROM t")
    assert cur.fetchone() == (2,)


def test_autocommit_commits_each_statement_and_cannot_change_inside_a_transaction(db: dbapi.Connection) -> None:
    cur = db.cursor()
    cur.execute("SELECT 1")
    with pytest.raises(dbapi.ProgrammingError, match="inside a transaction"):
        db.autocommit = True
    db.rollback()
    db.autocommit = True
    cur.execute("CREATE TABLE t (id int)")
    cur.execute("INSERT INTO t VALUES (1)")
    assert not db.native.in_transaction
    cur.execute("VACUUM t")  # refused inside a transaction block: proves no BEGIN was sent
    db.autocommit = False
    cur.execute("INSERT INTO t VALUES (2)")
    assert db.native.in_transaction


def test_pyformat_format_and_native_placeholders(db: dbapi.Connection) -> None:
    cur = db.cursor()
    assert cur.execute("SELECT %(a)s::int + %(b)s::int, %(a)s::int, '100%%'", {"a": 1, "b": 2}).fetchone() == (
        3,
        1,
        "100%",
    )
    assert cur.execute("SELECT %s::text || %s::text", ("x", "y")).fetchone() == ("xy",)
    assert cur.execute("SELECT $1::int * 2", (21,)).fetchone() == (42,)
    assert cur.execute("SELECT '50%'").fetchone() == ("50%",)  # no parameters: % is not markup
    with pytest.raises(dbapi.ProgrammingError, match="literal % is written %%"):
        cur.execute("SELECT '50%' || %s", ("x",))
    with pytest.raises(dbapi.ProgrammingError, match="2 placeholders, 1 values"):
        cur.execute("SELECT %s, %s", (1,))
    native = dbapi.Connection(chopin_pg.connect(LOCAL), paramstyle="native")
    try:
        assert native.cursor().execute("SELECT '50%' || $1::text", ("!",)).fetchone() == ("50%!",)
    finally:
        native.close()


def test_executemany_is_one_round_trip_and_sums_the_rowcounts(db: dbapi.Connection) -> None:
    cur = db.cursor()
    cur.execute("CREATE TABLE t (id int, name text)")
    db.commit()
    before = db.native.command_count
    cur.executemany("INSERT INTO t VALUES (%(id)s, %(name)s)", [{"id": i, "name": f"n{i}"} for i in range(500)])
    assert db.native.command_count - before == 1  # BEGIN and 500 INSERTs in one pipeline
    assert cur.rowcount == 500
    cur.executemany("UPDATE t SET name = 'x' WHERE id < %s", [(10,), (20,)])
    assert cur.rowcount == 30
    with pytest.raises(dbapi.ProgrammingError):
        cur.executemany("INSERT INTO t VALUES (%s, %s)", [(1, "a"), (2, "b", "c")])
    db.rollback()
    cur.execute("SELECT count(*) FROM t")
    assert cur.fetchone() == (0,)


def test_several_statements_without_parameters_use_the_simple_protocol(db: dbapi.Connection) -> None:
    cur = db.cursor()
    cur.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2); UPDATE t SET id = id + 1")
    assert cur.rowcount == 2 and cur.description is None
    db.rollback()  # the block ran inside the transaction the DB-API opened
    with pytest.raises(dbapi.ProgrammingError):
        cur.execute("SELECT * FROM t")
    db.rollback()


def test_description_and_type_objects(db: dbapi.Connection) -> None:
    cur = db.cursor()
    cur.execute("SELECT 1::int AS i, 'a'::varchar(12) AS s, 1.5::numeric(10, 2) AS n, now() AS ts, '\\x00'::bytea AS b")
    d = cur.description
    assert d is not None and [c.name for c in d] == ["i", "s", "n", "ts", "b"]
    assert d[0].type_code == dbapi.NUMBER and d[1].type_code == dbapi.STRING and d[2].type_code == dbapi.NUMBER
    assert d[3].type_code == dbapi.DATETIME and d[4].type_code == dbapi.BINARY and d[4].type_code != dbapi.STRING
    assert d[1].internal_size == 12 and (d[2].precision, d[2].scale) == (10, 2)
    assert d[0][0] == "i" and len(d[0]) == 7
    row = cur.fetchone()
    assert row is not None and row[:3] == (1, "a", Decimal("1.50")) and row[4] == b"\x00"
    assert isinstance(row[3], dt.datetime) and row[3].tzinfo is not None
    cur.execute("CREATE TABLE t (id int)")
    assert cur.description is None and cur.rowcount == -1
    with pytest.raises(dbapi.ProgrammingError, match="no result to fetch"):
        cur.fetchone()


def test_constructors() -> None:
    ticks = time.mktime((2024, 2, 29, 13, 45, 10, 0, 0, -1))
    assert dbapi.DateFromTicks(ticks) == dt.date(2024, 2, 29)
    assert dbapi.TimeFromTicks(ticks) == dt.time(13, 45, 10)
    assert dbapi.TimestampFromTicks(ticks) == dt.datetime(2024, 2, 29, 13, 45, 10)
    assert dbapi.Binary(b"\x00") == b"\x00" and dbapi.Date(2024, 1, 1) == dt.date(2024, 1, 1)
    assert (dbapi.apilevel, dbapi.threadsafety, dbapi.paramstyle) == ("2.0", 1, "pyformat")


def _open_cursors(db: dbapi.Connection) -> list[str]:
    return [r[0] for r in db.native.query("SELECT name FROM pg_cursors WHERE name <> '' ORDER BY name")]


def test_server_side_cursor_fetches_itersize_rows_per_round_trip(db: dbapi.Connection) -> None:
    cur = db.cursor("big")
    cur.itersize = 1000
    cur.execute("SELECT g, g * 2 FROM generate_series(1, %s) AS g", (4500,))
    assert cur.description is not None and [c.name for c in cur.description] == ["g", "?column?"]
    assert _open_cursors(db) == ["big"]
    assert cur.fetchone() == (1, 2)
    assert len(cur.fetchmany(1500)) == 1500  # the buffer's 999 rows then one FETCH
    seen = list(cur)
    assert len(seen) == 4500 - 1501 and seen[-1] == (4500, 9000)
    assert cur.fetchone() is None and cur.rowcount == 4500
    cur.close()
    assert _open_cursors(db) == []
    db.commit()


def test_server_side_cursor_fetchall_and_withhold_past_commit(db: dbapi.Connection) -> None:
    cur = db.cursor("held", withhold=True)
    cur.itersize = 10
    cur.execute("SELECT g FROM generate_series(1, 25) AS g")
    db.commit()
    assert _open_cursors(db) == ["held"]
    assert len(cur.fetchall()) == 25
    cur.close()
    assert _open_cursors(db) == []
    db.rollback()
    plain = db.cursor("plain")
    plain.execute("SELECT 1")
    db.commit()  # the cursor ended with its transaction: close() must not send CLOSE (it would fail, 34000)
    plain.close()
    assert db.cursor().execute("SELECT 1").fetchone() == (1,)
    db.rollback()


def test_a_statement_made_stale_by_another_connection_is_run_again_when_it_opens_the_transaction(
    db: dbapi.Connection,
) -> None:
    """Another connection drops and makes again a table with other column types (a migration).

    The first use of the cached SELECT fails on the server (0A000); when that use opened the
    transaction (or autocommit) nothing else ran in it, so the cursor runs it again prepared
    afresh. Later in a transaction the block is aborted and the error stands. (SQLAlchemy's
    dialect suite met the first case once per pooled connection.)
    """
    schema = db.native.query_scalar("SELECT current_schema()")
    cur = db.cursor()
    cur.execute("CREATE TABLE t (a int)")
    cur.execute("INSERT INTO t VALUES (1)")
    db.commit()

    def migrate(shape: str, value: str) -> None:
        with chopin_pg.connect(LOCAL) as other:
            other.execute(f"DROP TABLE {schema}.t")
            other.execute(f"CREATE TABLE {schema}.t ({shape})")
            other.execute(f"INSERT INTO {schema}.t VALUES ({value})")

    for _ in range(2):  # prepared and cached
        assert cur.execute("SELECT * FROM t").fetchall() == [(1,)]
        db.rollback()
    migrate("a text", "'x'")
    assert cur.execute("SELECT * FROM t").fetchall() == [("x",)]  # this call opened the transaction
    db.rollback()
    migrate("a bool", "true")
    db.autocommit = True
    assert cur.execute("SELECT * FROM t").fetchall() == [(True,)]
    db.autocommit = False
    cur.execute("SELECT 1")  # the transaction is open: a stale statement aborts it
    migrate("a date", "'2024-01-01'")
    with pytest.raises(dbapi.NotSupportedError, match="cached plan"):
        cur.execute("SELECT * FROM t")
    db.rollback()
    assert cur.execute("SELECT * FROM t").fetchall() == [(dt.date(2024, 1, 1),)]
