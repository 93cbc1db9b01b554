"""The blocking connection against the real server: queries, cache, errors, transactions, cancel, notify, COPY."""

from __future__ import annotations

import gc
import io
import threading
import time

import pytest
from chopin_pg import (
    Connection,
    ConnectionLost,
    DataError,
    ErrorClass,
    InterfaceError,
    IoTimeout,
    NoRows,
    PgConfig,
    PgError,
    PgPool,
    ProgrammingError,
    QueryCanceled,
    TooManyRows,
    Transaction,
    UniqueViolation,
    connect,
)
from chopin_pg.errors import InFailedTransaction, UndefinedTable
from conftest import local_url


def test_connect_over_tcp_and_socket(config: PgConfig) -> None:
    for cfg in (config, config.replace(host="127.0.0.1")):
        with connect(cfg) as conn:
            assert conn.query_scalar("SELECT current_database()") == "test"
            assert conn.backend_pid > 0
            assert conn.parameters["server_encoding"] == "UTF8"
            assert conn.transaction_status == "I"


def test_connect_from_url(config: PgConfig) -> None:
    with connect(local_url(application_name="cpg-test")) as conn:
        assert conn.query_scalar("SELECT current_setting('application_name')") == "cpg-test"


def test_connect_refused_is_connection_lost() -> None:
    with pytest.raises(ConnectionLost) as info:
        connect(PgConfig(host="127.0.0.1", port=1, user="root", sslmode="disable"))
    assert info.value.classify() is ErrorClass.POOL


def test_unknown_database_is_server_error(config: PgConfig) -> None:
    with pytest.raises(ProgrammingError) as info:
        connect(config.replace(database="no_such_db_cpg"))
    assert info.value.sqlstate == "3D000"


def test_closed_connection_refuses_use(config: PgConfig) -> None:
    conn = connect(config)
    conn.close()
    conn.close()
    assert conn.closed
    with pytest.raises(InterfaceError, match="closed"):
        conn.query("SELECT 1")


def test_query_rows_by_index_and_name(conn: Connection) -> None:
    rows = conn.query("SELECT g AS n, g * 2 AS twice FROM generate_series(1, $1) g", (3,))
    assert [tuple(r) for r in rows] == [(1, 2), (2, 4), (3, 6)]
    assert rows[1]["twice"] == 4
    assert rows[1][0] == 2
    assert rows[2].get("missing", "d") == "d"
    assert rows[0].get_typed("n", int) == 1
    with pytest.raises(InterfaceError, match="expected str, got int"):
        rows[0].get_typed(0, str)
    with pytest.raises(KeyError, match="no column 'nope'"):
        rows[0]["nope"]


def test_query_simple_multiple_statements(conn: Connection) -> None:
    rows = conn.query_simple("SELECT 1 AS a; SELECT 'x' AS b, NULL::int AS c")
    assert rows == [("x", None)]
    assert conn.query_simple("SET application_name = 'x'") == []


def test_query_one_opt(conn: Connection) -> None:
    assert conn.query_one("SELECT $1::text AS t", ("a",))["t"] == "a"
    with pytest.raises(NoRows) as info:
        conn.query_one("SELECT 1 WHERE false")
    assert info.value.classify() is ErrorClass.CLIENT
    with pytest.raises(TooManyRows):
        conn.query_one("SELECT generate_series(1, 2)")
    assert conn.query_opt("SELECT 1 WHERE false") is None
    assert conn.query_opt("SELECT 7")[0] == 7  # type: ignore[index]
    with pytest.raises(TooManyRows):
        conn.query_opt("SELECT generate_series(1, 2)")


def test_parameters_are_out_of_band(conn: Connection) -> None:
    evil = "'; DROP TABLE x; --"
    assert conn.query_scalar("SELECT $1::text", (evil,)) == evil
    assert conn.query_scalar("SELECT $1::text IS NULL", (None,)) is True


def test_execute_counts_and_executemany(conn: Connection, schema: str) -> None:
    assert conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)") == -1
    assert conn.executemany("INSERT INTO t VALUES ($1, $2)", [(i, f"n{i}") for i in range(5)]) == 5
    assert conn.execute("UPDATE t SET name = $1 WHERE id < $2", ("x", 3)) == 3
    assert conn.execute("DELETE FROM t WHERE id = 4; DELETE FROM t WHERE id > 0") == 3
    assert conn.executemany("INSERT INTO t VALUES ($1, $2)", []) == 0


def test_executemany_error_rolls_back_the_batch(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with pytest.raises(UniqueViolation) as info:
        conn.executemany("INSERT INTO t VALUES ($1)", [(1,), (2,), (1,), (3,)])
    assert info.value.constraint_name == "t_pkey"
    # One implicit transaction for the whole Sync-terminated batch.
    assert conn.query_scalar("SELECT count(*) FROM t") == 0


def test_server_errors_leave_connection_usable(conn: Connection) -> None:
    with pytest.raises(ProgrammingError) as info:
        conn.query("SELEC 1")
    err = info.value
    assert err.sqlstate == "42601"
    assert err.severity == "ERROR"
    assert err.position == 1
    assert err.classify() is ErrorClass.CLIENT
    assert "syntax error" in str(err)
    with pytest.raises(UndefinedTable):
        conn.query_simple("SELECT * FROM no_such_table_cpg")
    with pytest.raises(UndefinedTable):
        conn.query("SELECT 1 FROM nope")
    assert conn.query_scalar("SELECT 1") == 1


def test_data_error_from_bad_parameter(conn: Connection) -> None:
    from chopin_pg import DataError

    with pytest.raises(DataError) as info:
        conn.query("SELECT $1::int", ("abc",))
    assert info.value.sqlstate == "22P02"
    with pytest.raises(DataError):
        conn.query("SELECT 1 / $1::int", (0,))
    assert conn.query_scalar("SELECT $1::int8", (2**40,)) == 2**40


def test_statement_cache_lru_and_clear(conn: Connection) -> None:
    conn.set_statement_cache_capacity(2)
    for i in range(3):
        assert conn.query_scalar(f"SELECT {i}") == i
    assert conn.statement_cache_size == 2
    # Evicted statements are closed on the server with the next command.
    conn.query("SELECT 1")
    names = {r[0] for r in conn.query("SELECT name FROM pg_prepared_statements")}
    assert len(names) == 2
    conn.clear_statement_cache()
    assert conn.statement_cache_size == 0
    conn.query("SELECT 1")
    assert conn.query_scalar("SELECT count(*) FROM pg_prepared_statements") == 2  # this one too
    conn.set_statement_cache_capacity(0)
    conn.query("SELECT 2")
    assert conn.statement_cache_size == 0


def test_stale_plan_is_reprepared_outside_transaction(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (a int)")
    conn.execute("INSERT INTO t VALUES (1)")
    assert conn.query("SELECT * FROM t") == [(1,)]
    conn.execute("ALTER TABLE t ADD COLUMN b text DEFAULT 'x'")
    assert conn.query("SELECT * FROM t") == [(1, "x")]
    # After DISCARD ALL the server forgets every prepared statement (26000).
    conn.execute("DISCARD ALL")
    conn.execute(f"SET search_path TO {schema}")
    assert conn.query("SELECT * FROM t") == [(1, "x")]


def test_stale_plan_inside_transaction_raises_then_recovers(conn: Connection, config: PgConfig, schema: str) -> None:
    # Another connection changes the table: this one cannot know before the server says so.
    conn.execute("CREATE TABLE t (a int)")
    assert conn.query("SELECT * FROM t") == []
    conn.begin()
    with connect(config) as other:
        other.execute(f"ALTER TABLE {schema}.t ADD COLUMN b int")
    with pytest.raises(ProgrammingError, match="cached plan"):
        conn.query("SELECT * FROM t")
    conn.rollback()
    assert conn.query("SELECT * FROM t") == [] and conn.query("SELECT * FROM t") == []


@pytest.mark.parametrize("path", ["query", "pipeline", "simple"])
def test_own_ddl_clears_the_statement_cache_even_inside_a_transaction(conn: Connection, schema: str, path: str) -> None:
    """DROP/ALTER, or ROLLBACK of a CREATE, on this connection: the next use prepares afresh.

    What SQLAlchemy's dialect suite does (a table made, dropped or rolled back, and made again
    with other column types under the same name, all inside transactions) failed with
    0A000 "cached plan must not change result type" before.
    """

    def run(sql: str) -> None:
        if path == "pipeline":
            with conn.pipeline() as pl:
                pl.execute(sql)
        elif path == "simple":
            conn.execute(sql + ";" + "SELECT 1")  # several statements: the simple protocol
        else:
            conn.execute(sql)

    select = "SELECT * FROM t"
    for shape in ("a int", "a text", "a int, b int"):  # the same name, three result shapes
        conn.begin()
        run(f"CREATE TABLE t ({shape})")
        assert conn.query(select) == [] and conn.query(select) == []  # the second use is the cached statement
        conn.rollback()
    conn.begin()
    run("CREATE TABLE t (a int)")
    conn.query(select)
    run("ALTER TABLE t ALTER COLUMN a TYPE text")
    conn.execute("INSERT INTO t VALUES ('x')")
    assert conn.query(select) == [("x",)]
    run("DROP TABLE t")
    run("CREATE TABLE t (a bool)")
    conn.commit()  # COMMIT after CREATE clears nothing: the table stays
    before = conn.statement_cache_size
    assert conn.query(select) == [] and conn.statement_cache_size == before + 1


def test_transaction_block_and_failed_statement(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.begin()
    assert conn.in_transaction
    conn.execute("INSERT INTO t VALUES ($1)", (1,))
    with pytest.raises(UniqueViolation):
        conn.execute("INSERT INTO t VALUES ($1)", (1,))
    assert conn.transaction_status == "E"
    with pytest.raises(InFailedTransaction):
        conn.query("SELECT 1")
    conn.rollback()
    assert conn.transaction_status == "I"
    assert conn.query_scalar("SELECT count(*) FROM t") == 0


def test_savepoints(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int)")
    conn.begin("serializable")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.savepoint("sp")
    conn.execute("INSERT INTO t VALUES (2)")
    conn.rollback_to("sp")
    conn.release_savepoint("sp")
    conn.commit()
    assert conn.query("SELECT id FROM t") == [(1,)]
    with pytest.raises(InterfaceError, match="isolation"):
        conn.begin("chaos")


def test_transaction_function_and_nesting(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int)")

    def inner(c: Connection) -> None:
        c.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("inner fails")

    def outer(c: Connection) -> int:
        c.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError):
            c.transaction(inner)
        assert c.transaction_status == "T"
        return 42

    assert conn.transaction(outer) == 42
    assert conn.transaction_status == "I"
    assert conn.query("SELECT id FROM t") == [(1,)]

    with pytest.raises(ValueError):
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES (3)")
            raise ValueError
    assert conn.query_scalar("SELECT count(*) FROM t") == 1

    with conn.transaction():
        conn.execute("INSERT INTO t VALUES (4)")
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES (5)")
    assert conn.query_scalar("SELECT count(*) FROM t") == 3


def test_failed_statement_in_nested_transaction_is_rolled_back_to_savepoint(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with conn.transaction():
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(UniqueViolation):
            with conn.transaction():
                conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO t VALUES (2)")
    assert conn.query_scalar("SELECT count(*) FROM t") == 2


def test_transaction_steps_are_public_and_refuse_a_second_begin_or_end(conn: Connection, schema: str) -> None:
    # chopin-orm's Transaction runs on these steps; the context manager is the same steps.
    conn.execute("CREATE TABLE t (id int)")
    outer = Transaction(conn, isolation="serializable")
    outer.begin()
    assert (outer.active, outer.savepoint) == (True, None)
    assert conn.query_scalar("SHOW transaction_isolation") == "serializable"
    with pytest.raises(InterfaceError, match="isolation can only be set on an outermost"):
        Transaction(conn, isolation="serializable").begin()
    assert conn.savepoint_depth == 0
    inner = Transaction(conn)
    inner.begin()
    assert (inner.savepoint, conn.savepoint_depth) == ("_cpg_sp1", 1)
    conn.execute("INSERT INTO t VALUES (1)")
    inner.rollback()
    assert (inner.active, conn.savepoint_depth) == (False, 0)
    with pytest.raises(InterfaceError, match="cannot end, it is ended"):
        inner.commit()
    with pytest.raises(InterfaceError, match="cannot begin, it is ended"):
        inner.begin()
    conn.execute("INSERT INTO t VALUES (2)")
    outer.commit()
    assert conn.transaction_status == "I"
    assert conn.query("SELECT id FROM t") == [(2,)]


def test_a_savepoint_that_fails_to_start_is_not_counted(conn: Connection) -> None:
    with conn.transaction():
        with pytest.raises(PgError, match="division by zero"):
            conn.execute("SELECT 1/0")
        assert conn.transaction_status == "E"
        with pytest.raises(InFailedTransaction):
            with conn.transaction():
                pass  # SAVEPOINT is refused in a failed block
        assert conn.savepoint_depth == 0


def test_notices_reach_the_handler(conn: Connection) -> None:
    seen: list[dict[str, str]] = []
    conn.set_notice_handler(seen.append)
    conn.execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$")
    assert seen[-1]["M"] == "hello 42"
    assert seen[-1]["S"] == "NOTICE"
    assert conn.notices[-1]["M"] == "hello 42"


def test_io_timeout_closes_connection(config: PgConfig) -> None:
    conn = connect(config)
    conn.set_io_timeout(0.2)
    with pytest.raises(IoTimeout) as info:
        conn.query("SELECT pg_sleep(2)")
    assert info.value.classify() is ErrorClass.POOL
    assert conn.closed


def test_cancel_running_query(conn: Connection) -> None:
    timer = threading.Timer(0.3, conn.cancel)
    timer.start()
    try:
        with pytest.raises(QueryCanceled) as info:
            conn.query("SELECT pg_sleep(5)")
    finally:
        timer.join()
    assert info.value.sqlstate == "57014"
    assert conn.query_scalar("SELECT 1") == 1


def test_terminated_backend_reports_fatal(config: PgConfig) -> None:
    conn = connect(config)
    with connect(config) as killer:
        killer.query("SELECT pg_terminate_backend($1)", (conn.backend_pid,))
    time.sleep(0.1)
    with pytest.raises(PgError) as info:  # AdminShutdown (FATAL before EOF) or ConnectionLost
        conn.query("SELECT 1")
    assert info.value.classify() is ErrorClass.POOL
    assert conn.closed


def test_listen_notify(conn: Connection, config: PgConfig) -> None:
    conn.listen("cpg chan")
    assert conn.poll_notification(0.05) is None
    with connect(config) as other:
        other.notify("cpg chan", "one")
        other.notify("cpg chan", "two")
    n = conn.poll_notification(5)
    assert n is not None
    assert (n.channel, n.payload) == ("cpg chan", "one")
    assert n.pid != conn.backend_pid
    time.sleep(0.2)  # the second NOTIFY was a separate transaction: let it arrive
    assert [x.payload for x in conn.drain_notifications()] == ["two"]
    assert conn.fileno() > 0


def test_notifications_during_queries_are_kept(conn: Connection) -> None:
    conn.listen("self")
    conn.notify("self", "a")  # own notifications arrive with the query's response
    assert conn.query_scalar("SELECT 1") == 1
    assert [n.payload for n in conn.drain_notifications()] == ["a"]
    conn.unlisten("self")
    conn.notify("self", "b")
    assert conn.drain_notifications() == []
    conn.listen("x")
    conn.unlisten_all()
    conn.notify("x", "c")
    assert conn.poll_notification(0.05) is None


def test_copy_in_and_out(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int, name text)")
    assert conn.copy_from("COPY t FROM STDIN", b"1\ta\n2\tb\n") == 2
    assert conn.copy_from("COPY t FROM STDIN", (f"{i}\tn{i}\n".encode() for i in range(3, 2000))) == 1997
    assert conn.copy_from("COPY t (id, name) FROM STDIN WITH (FORMAT csv)", io.BytesIO(b"5000,z\n")) == 1
    out: list[bytes] = []
    assert conn.copy_to("COPY (SELECT * FROM t WHERE id <= 2 ORDER BY id) TO STDOUT", out.append) == 2
    assert b"".join(out) == b"1\ta\n2\tb\n"


def test_copy_errors_leave_connection_usable(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TABLE t (id int)")
    from chopin_pg import DataError

    with pytest.raises(DataError):
        conn.copy_from("COPY t FROM STDIN", b"not-an-int\n")

    def broken() -> object:
        yield b"1\n"
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        conn.copy_from("COPY t FROM STDIN", broken())  # type: ignore[arg-type]
    assert conn.query_scalar("SELECT count(*) FROM t") == 0
    with pytest.raises(InterfaceError, match="did not run a COPY"):
        conn.copy_to("SELECT 1", print)


def test_register_user_type(conn: Connection, schema: str) -> None:
    conn.execute("CREATE TYPE mood AS ENUM ('sad', 'happy')")
    assert conn.query_scalar("SELECT 'happy'::mood") == "happy"
    assert conn.query_scalar("SELECT ARRAY['sad','happy']::mood[]") == "{sad,happy}"
    conn.register_type("mood", text=lambda b: b.decode().upper())
    assert conn.query_scalar("SELECT 'happy'::mood") == "HAPPY"
    assert conn.query_scalar("SELECT ARRAY['sad', NULL]::mood[]") == ["SAD", None]
    with connect(conn.config) as other:  # registries are per connection
        assert other.query_scalar("SELECT 'happy'::text") == "happy"


# -- the one-query fast path (Connection._bind_execute) and its fallbacks -----------


def test_fast_path_results_larger_than_one_read(conn: Connection) -> None:
    rows = conn.query("SELECT g, repeat('x', 200) FROM generate_series(1, $1::int) g", (3000,))  # ~650 KB
    assert len(rows) == 3000
    assert rows[-1][0] == 3000
    assert all(len(r[1]) == 200 for r in rows)
    assert conn.query_scalar("SELECT $1::int + 1", (1,)) == 2


@pytest.mark.parametrize("enabled", [True, False], ids=["collector-on", "collector-off"])
def test_a_fetch_leaves_the_garbage_collector_as_it_found_it(conn: Connection, enabled: bool) -> None:
    # read_execute pauses the collector while it decodes a read's rows (see _session.py):
    # after many reads, a server error in the middle of the rows, and a query that fails
    # at the first row, the collector is back as the application had it.
    sql = "SELECT g, repeat('x', 200), 1 / (g - $1::int) FROM generate_series(1, 3000) g"
    if not enabled:
        gc.disable()
    try:
        assert len(conn.query(sql, (0,))) == 3000  # ~650 KB: many reads
        assert gc.isenabled() is enabled
        with pytest.raises(DataError, match="division by zero"):
            conn.query(sql, (2000,))  # an ErrorResponse after 1 999 DataRows
        assert gc.isenabled() is enabled
        with pytest.raises(DataError, match="division by zero"):
            conn.query(sql, (1,))
        assert gc.isenabled() is enabled
        assert conn.query_scalar("SELECT $1::int + 1", (1,)) == 2
    finally:
        gc.enable()


def test_fast_path_notices_during_a_query_reach_the_handler(conn: Connection, schema: str) -> None:
    conn.execute(
        "CREATE FUNCTION shout(n int) RETURNS int LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE NOTICE 'got %', n; RETURN n; END $$"
    )
    seen: list[dict[str, str]] = []
    conn.set_notice_handler(seen.append)
    for i in range(3):  # the first run prepares; the others are cached statements
        assert conn.query_scalar("SELECT shout($1)", (i,)) == i
    assert [n["M"] for n in seen] == ["got 0", "got 1", "got 2"]


def test_fast_path_errors_leave_the_connection_in_step(conn: Connection, schema: str) -> None:
    from chopin_pg import DataError

    assert conn.query_scalar("SELECT 10 / $1::int", (5,)) == 2
    with pytest.raises(DataError):
        conn.query_scalar("SELECT 10 / $1::int", (0,))
    assert conn.transaction_status == "I"
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.begin()
    assert conn.execute("INSERT INTO t VALUES ($1)", (1,)) == 1
    assert conn.transaction_status == "T"
    with pytest.raises(UniqueViolation):
        conn.execute("INSERT INTO t VALUES ($1)", (1,))
    assert conn.transaction_status == "E"
    conn.rollback()
    assert conn.query("SELECT id FROM t WHERE id = $1", (1,)) == []


def test_fast_path_decoder_failure_is_raised_after_the_answer(conn: Connection) -> None:
    from chopin_pg import oids

    def refuse(data: bytes) -> int:
        raise ValueError(f"refused {data!r}")

    assert conn.query_scalar("SELECT $1::int4", (7,)) == 7
    conn.types.register(oids.INT4, binary=refuse)
    conn.clear_statement_cache()
    for _ in range(2):  # prepared, then cached
        with pytest.raises(ValueError, match="refused"):
            conn.query("SELECT $1::int4", (7,))
    assert conn.query_scalar("SELECT $1::int8", (7,)) == 7


def test_fast_path_keeps_notifications_that_arrive_with_an_answer(conn: Connection, config: PgConfig) -> None:
    conn.listen("fast")
    assert conn.query_scalar("SELECT $1::int", (1,)) == 1
    with connect(config) as other:
        other.notify("fast", "p")
    time.sleep(0.2)  # let it reach our socket before the next query's answer
    assert conn.query_scalar("SELECT $1::int", (2,)) == 2
    assert [n.payload for n in conn.drain_notifications()] == ["p"]


def test_fast_path_large_parameters_are_sent_duplex(conn: Connection) -> None:
    big = "y" * 300_000
    for _ in range(2):
        assert conn.query_scalar("SELECT length($1::text)", (big,)) == 300_000


def test_none_params_mean_no_parameters_everywhere(conn: Connection, config: PgConfig) -> None:
    # query(sql, None) once raised TypeError: object of type 'NoneType' has no len().
    assert conn.query("SELECT 1", None) == [(1,)]
    assert conn.query_one("SELECT 2", None)[0] == 2
    assert conn.query_opt("SELECT 3 WHERE false", None) is None
    assert conn.query_scalar("SELECT 4", None) == 4
    assert conn.execute("CREATE TEMP TABLE none_params (v int); INSERT INTO none_params VALUES (1)", None) == 1
    assert conn.executemany("INSERT INTO none_params VALUES (2)", [None, None]) == 2
    assert conn.executemany("INSERT INTO none_params VALUES (3)", None) == 0
    with conn.pipeline() as pl:
        counted = pl.query("SELECT count(*) FROM none_params", None)
        inserted = pl.execute("INSERT INTO none_params VALUES (4)", None)
    assert counted.rows() == [(3,)] and inserted.rowcount == 1
    with PgPool.connect(config, 1) as pool, pool.get() as pooled:
        assert pooled.query_scalar("SELECT 5", None) == 5
