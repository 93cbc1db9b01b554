"""The pool against the real server: checkout, rollback, exhaustion, expiry, broken connections, restart, fork."""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Any

import pytest
from chopin_pg import (
    ConfigError,
    Connection,
    ErrorClass,
    InterfaceError,
    PgConfig,
    PgError,
    PgPool,
    PgPoolConfig,
    PoolTimeout,
    connect,
)


def test_checkout_and_return(config: PgConfig) -> None:
    with PgPool.connect(config, 2) as pool:
        assert (pool.idle_connections, pool.active_connections, pool.total_connections) == (1, 0, 1)
        with pool.get() as conn:
            pid = conn.backend_pid
            assert conn.query_scalar("SELECT 1") == 1
            assert (pool.idle_connections, pool.active_connections) == (0, 1)
        assert (pool.idle_connections, pool.active_connections) == (1, 0)
        with pool.get() as again:
            assert again.backend_pid == pid  # reused
        stats = pool.stats()
        assert (stats.opened, stats.checkouts, stats.total, stats.max_size) == (1, 2, 1, 2)
    assert pool.closed
    with pytest.raises(InterfaceError, match="closed"):
        pool.get()


def test_open_transaction_is_rolled_back_on_return(config: PgConfig) -> None:
    # reset("none"): the temporary table must outlive a checkout for this test.
    with PgPool.connect_with_config(config, PgPoolConfig().max_size(1).reset("none")) as pool:
        with pool.get() as conn:
            conn.execute("CREATE TEMP TABLE pool_t (id int)")
        with pool.get() as conn:
            conn.begin()
            conn.execute("INSERT INTO pool_t VALUES (1)")
        with pool.get() as conn:
            assert conn.transaction_status == "I"
            assert conn.query_scalar("SELECT count(*) FROM pool_t") == 0
        guard = pool.get()
        with pytest.raises(Exception, match="division by zero"):
            with guard as conn:
                conn.begin()
                conn.query("SELECT 1 / 0")
        with pool.get() as conn:
            assert conn.transaction_status == "I"
        guard.release()  # a second release does nothing
        assert pool.active_connections == 0


def test_try_get_and_timeout_when_exhausted(config: PgConfig) -> None:
    pool = PgPool.connect_with_config(config, PgPoolConfig().max_size(2).min_size(0).checkout_timeout(0.2))
    try:
        a = pool.get()
        b = pool.try_get()
        assert b is not None
        assert pool.try_get() is None
        started = time.monotonic()
        with pytest.raises(PoolTimeout):
            pool.get()
        assert 0.15 < time.monotonic() - started < 2
        assert pool.stats().timeouts == 1
        a.release()
        c = pool.try_get()
        assert c is not None and c.conn is a.conn
        b.release()
        c.release()
        assert pool.idle_connections == 2
    finally:
        pool.close()


def test_threads_wait_for_a_returned_connection(config: PgConfig) -> None:
    with PgPool.connect_with_config(config, PgPoolConfig().max_size(1).checkout_timeout(5)) as pool:
        guard = pool.get()
        got: list[int] = []

        def worker() -> None:
            with pool.get() as conn:
                got.append(conn.query_scalar("SELECT 7"))

        thread = threading.Thread(target=worker)
        thread.start()
        time.sleep(0.1)
        assert not got
        guard.release()
        thread.join(5)
        assert got == [7]


def test_idle_timeout_and_max_lifetime_evict(config: PgConfig) -> None:
    cfg = PgPoolConfig().max_size(3).min_size(0).idle_timeout(0.1)
    with PgPool.connect_with_config(config, cfg) as pool:
        guards = [pool.get() for _ in range(3)]
        for g in guards:
            g.release()
        assert pool.idle_connections == 3
        time.sleep(0.15)
        with pool.get():
            assert pool.total_connections == 1
        assert pool.stats().closed == 3
    with PgPool.connect_with_config(config, PgPoolConfig().max_size(1).max_lifetime(0.1)) as pool:
        with pool.get() as conn:
            first = conn.backend_pid
        time.sleep(0.15)
        with pool.get() as conn:
            assert conn.backend_pid != first
    with pytest.raises(ConfigError):
        PgPool(config, PgPoolConfig().max_size(1).min_size(2))


def test_killed_connection_is_replaced(config: PgConfig) -> None:
    with (
        PgPool.connect_with_config(config, PgPoolConfig().max_size(2).test_on_checkout()) as pool,
        connect(config) as admin,
    ):
        with pool.get() as conn:
            victim = conn.backend_pid
        assert admin.query_scalar("SELECT pg_terminate_backend($1)", (victim,)) is True
        time.sleep(0.1)
        with pool.get() as conn:
            assert conn.backend_pid != victim
            assert conn.query_scalar("SELECT 1") == 1
        assert pool.stats().broken == 1
        assert pool.total_connections == 1


def test_connection_lost_while_checked_out_is_discarded(config: PgConfig) -> None:
    with PgPool.connect(config, 1) as pool, connect(config) as admin:
        with pytest.raises(PgError) as info:
            with pool.get() as conn:
                admin.query("SELECT pg_terminate_backend($1)", (conn.backend_pid,))
                time.sleep(0.05)
                conn.query("SELECT 1")
        assert info.value.classify() is ErrorClass.POOL
        assert pool.total_connections == 0
        with pool.get() as conn:
            assert conn.query_scalar("SELECT 2") == 2


def cluster_config(pg_cluster: Any) -> PgConfig:
    return PgConfig(
        host=pg_cluster.host,
        port=pg_cluster.port,
        user=pg_cluster.superuser,
        database=pg_cluster.database,
        sslmode="disable",
        connect_timeout=10,
    )


def test_pool_recovers_after_server_restart(pg_cluster: Any) -> None:
    with PgPool.connect_with_config(cluster_config(pg_cluster), PgPoolConfig().max_size(3)) as pool:
        guards = [pool.get() for _ in range(3)]
        before = {g.conn.backend_pid for g in guards}
        for g in guards:
            g.release()
        pg_cluster.restart()
        # Every idle connection is broken now; each checkout finds that and replaces it.
        for _ in range(3):
            with pool.get() as conn:
                assert conn.query_scalar("SELECT 1") == 1
                assert conn.backend_pid not in before
        guards = [pool.get() for _ in range(3)]
        assert all(g.conn.query_scalar("SELECT 2") == 2 for g in guards)
        for g in guards:
            g.release()
        assert pool.stats().broken == 3
        assert pool.total_connections == 3


def test_fork_child_starts_fresh_and_parent_keeps_its_connections(config: PgConfig) -> None:
    with PgPool.connect(config, 2) as pool:
        held = pool.get()
        with pool.get() as conn:
            idle_pid = conn.backend_pid
        parent_pids = {held.conn.backend_pid, idle_pid}
        pid = os.fork()
        if pid == 0:  # the child: must not touch the parent's sessions
            status = 1
            try:
                with pool.get() as conn:
                    mine = conn.backend_pid
                    ok = conn.query_scalar("SELECT 40 + 2") == 42 and mine not in parent_pids
                    ok = ok and pool.stats().opened == 1
                held.release()  # the parent's checked-out connection: forgotten, not returned
                status = 0 if ok and pool.total_connections == 1 else 2
                pool.close()
            finally:
                os._exit(status)
        _, code = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(code) == 0
        assert held.conn.query_scalar("SELECT 1") == 1
        held.release()
        with pool.get() as conn:
            assert conn.backend_pid in parent_pids
            assert conn.query_scalar("SELECT 2") == 2
        assert pool.stats().broken == 0


def test_returning_connection_mid_copy_closes_it(config: PgConfig) -> None:
    with PgPool.connect(config, 1) as pool:
        with pool.get() as conn:
            conn.execute("CREATE TEMP TABLE c (id int)")
            conn.copy_in("COPY c FROM STDIN").write_row((1,))
        assert pool.total_connections == 0
        with pool.get() as conn:
            assert isinstance(conn, Connection) and conn.query_scalar("SELECT 1") == 1


# -- session reset on return: one test per kind of session state -----------------------


RESETTING_MODES = pytest.mark.parametrize("mode", ["discard", "keep_statements"])


def one_connection_pool(config: PgConfig, mode: str = "discard") -> PgPool:
    return PgPool.connect_with_config(config, PgPoolConfig().max_size(1).reset(mode))


@RESETTING_MODES
def test_reset_search_path_set_by_previous_user(config: PgConfig, mode: str) -> None:
    # The reported failure: a search_path naming no existing schema made the next user's CREATE TABLE fail (3F000).
    with one_connection_pool(config, mode) as pool:
        with pool.get() as conn:
            pid = conn.backend_pid
            default = conn.query_scalar("SELECT current_setting('search_path')")
            conn.execute("SET search_path TO no_such_schema_cpg")
            assert conn.query_scalar("SELECT current_schema()") is None
        with pool.get() as conn:
            assert conn.backend_pid == pid
            assert conn.query_scalar("SELECT current_setting('search_path')") == default
            assert conn.query_scalar("SELECT current_schema()") is not None


@RESETTING_MODES
def test_reset_drops_previous_users_temp_table(config: PgConfig, mode: str) -> None:
    with one_connection_pool(config, mode) as pool:
        with pool.get() as conn:
            pid = conn.backend_pid
            conn.execute("CREATE TEMP TABLE secret_cpg (v text)")
            conn.execute("INSERT INTO secret_cpg VALUES ('alice')")
        with pool.get() as conn:
            assert conn.backend_pid == pid
            assert conn.query_scalar("SELECT to_regclass('pg_temp.secret_cpg')") is None


@RESETTING_MODES
def test_reset_stops_previous_users_listen_and_drops_their_notifications(config: PgConfig, mode: str) -> None:
    with one_connection_pool(config, mode) as pool, connect(config) as other:
        with pool.get() as conn:
            pid = conn.backend_pid
            conn.listen("cpg_reset_chan")
            other.notify("cpg_reset_chan", "for alice")
            time.sleep(0.05)  # delivered to the session, not read by it
        with pool.get() as conn:
            assert conn.backend_pid == pid
            assert conn.query("SELECT pg_listening_channels()") == []
            assert conn.poll_notification(0.1) is None
            other.notify("cpg_reset_chan", "after the reset")
            assert conn.poll_notification(0.2) is None


@RESETTING_MODES
def test_reset_clears_session_setting_made_with_set_config(config: PgConfig, mode: str) -> None:
    with one_connection_pool(config, mode) as pool:
        with pool.get() as conn:
            pid = conn.backend_pid
            conn.query("SELECT set_config('app.user_id', 'alice', false)")
        with pool.get() as conn:
            assert conn.backend_pid == pid
            assert conn.query_scalar("SELECT current_setting('app.user_id', true)") in (None, "")


@RESETTING_MODES
def test_reset_deallocates_sql_prepared_statement(config: PgConfig, mode: str) -> None:
    with one_connection_pool(config, mode) as pool:
        with pool.get() as conn:
            pid = conn.backend_pid
            conn.execute("PREPARE alice_stmt_cpg AS SELECT 'alice'")
            conn.execute('PREPARE "Alices; stmt" AS SELECT 2')  # deallocated by its quoted name
        with pool.get() as conn:
            assert conn.backend_pid == pid
            assert conn.query("SELECT name FROM pg_prepared_statements WHERE from_sql") == []
            with pytest.raises(PgError) as info:
                conn.execute("EXECUTE alice_stmt_cpg")
            assert info.value.sqlstate == "26000"


@RESETTING_MODES
@pytest.mark.parametrize("aborted", [False, True], ids=["open", "aborted"])
def test_reset_ends_previous_users_transaction(config: PgConfig, aborted: bool, mode: str) -> None:
    with one_connection_pool(config, mode) as pool:
        with pool.get() as conn:
            pid = conn.backend_pid
            conn.begin()
            conn.execute("SET app.tx_user = 'alice'")  # session-level, inside the transaction
            conn.execute("CREATE TEMP TABLE tx_cpg (v int)")
            if aborted:
                with pytest.raises(PgError):
                    conn.query("SELECT 1 / 0")
            assert conn.transaction_status == ("E" if aborted else "T")
        with pool.get() as conn:
            assert conn.backend_pid == pid
            assert conn.transaction_status == "I"
            assert conn.query_scalar("SELECT current_setting('app.tx_user', true)") in (None, "")
            assert conn.query_scalar("SELECT to_regclass('pg_temp.tx_cpg')") is None
            assert conn.query_scalar("SELECT 1") == 1


def test_driver_statement_cache_works_after_reset(config: PgConfig) -> None:
    # DISCARD ALL deallocates the driver's statements too: its cache must be emptied in step (else 26000).
    sql = "SELECT $1::int + 1"
    with one_connection_pool(config) as pool:
        for round_ in range(3):
            with pool.get() as conn:
                assert conn.statement_cache_size == 0  # nothing names a statement DISCARD ALL deallocated
                with conn.transaction():  # inside a transaction a stale statement is not retried: it fails
                    assert conn.query_scalar(sql, (round_,)) == round_ + 1
                    assert conn.query_scalar(sql, (round_,)) == round_ + 1  # the cached statement, reused
                assert conn.executemany("SELECT $1::int", [(1,), (2,)]) == 2
                with conn.pipeline() as pl:
                    pl.query(sql, (5,))
                assert conn.statement_cache_size >= 1
        assert pool.stats().opened == 1 and pool.stats().broken == 0


def test_unused_checkout_is_returned_without_reset(config: PgConfig) -> None:
    with one_connection_pool(config) as pool:
        with pool.get() as conn:
            conn.query("SELECT 1")
        with pool.get() as conn:
            count = conn.command_count
        with pool.get() as conn:
            assert conn.command_count == count  # no DISCARD ALL was sent for the unused checkout


def test_reset_none_keeps_session_state_and_statement_cache(config: PgConfig) -> None:
    with PgPool.connect_with_config(config, PgPoolConfig().max_size(1).reset("none")) as pool:
        with pool.get() as conn:
            conn.query("SELECT 1")
            conn.execute("SET application_name = 'kept'")
        with pool.get() as conn:
            assert conn.statement_cache_size == 1
            assert conn.query_scalar("SELECT current_setting('application_name')") == "kept"
    with pytest.raises(ConfigError, match="reset"):
        PgPoolConfig().reset("sometimes")


def test_connection_whose_reset_fails_is_discarded_not_returned(config: PgConfig) -> None:
    with one_connection_pool(config) as pool, connect(config) as admin:
        guard = pool.get()
        conn = guard.conn
        conn.query("SELECT 1")
        assert admin.query_scalar("SELECT pg_terminate_backend($1)", (conn.backend_pid,)) is True
        select.select([conn.fileno()], [], [], 5.0)  # the FATAL message has arrived; the driver has not read it
        assert not conn.closed
        guard.release()  # DISCARD ALL fails here
        stats = pool.stats()
        assert (stats.idle, stats.broken) == (0, 1)
        with pool.get() as fresh:
            assert fresh.query_scalar("SELECT 1") == 1


@RESETTING_MODES
def test_reset_releases_previous_users_advisory_lock(config: PgConfig, mode: str) -> None:
    with one_connection_pool(config, mode) as pool, connect(config) as other:
        with pool.get() as conn:
            pid = conn.backend_pid
            assert conn.query_scalar("SELECT pg_try_advisory_lock(424242)") is True
        assert other.query_scalar("SELECT pg_try_advisory_lock(424242)") is True  # free again
        other.query("SELECT pg_advisory_unlock(424242)")
        with pool.get() as conn:
            assert conn.backend_pid == pid
            assert (
                conn.query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1", (pid,)) == 0
            )


@RESETTING_MODES
def test_reset_undoes_previous_users_set_role(config: PgConfig, mode: str) -> None:
    with one_connection_pool(config, mode) as pool:
        with pool.get() as conn:
            pid = conn.backend_pid
            me = conn.query_scalar("SELECT current_user")
            conn.execute("SET ROLE pg_monitor")
            assert conn.query_scalar("SELECT current_user") == "pg_monitor"
        with pool.get() as conn:
            assert conn.backend_pid == pid
            assert conn.query_scalar("SELECT current_user") == me


def test_keep_statements_reset_keeps_the_cache_and_reanalyzes_under_the_clean_session(config: PgConfig) -> None:
    # A literal is converted when the statement is analyzed: under user A's TimeZone here.  The
    # reset's DISCARD PLANS makes the server analyze it again for user B, under the default zone.
    sql = "SELECT extract(epoch FROM '2020-01-01 00:00'::timestamptz)"
    with one_connection_pool(config, "keep_statements") as pool:
        with pool.get() as conn:
            pid = conn.backend_pid
            in_default_zone = conn.query_simple(sql)[0][0]  # the simple protocol: nothing cached
            zone = conn.query_scalar("SELECT current_setting('TimeZone')")
            conn.execute(f"SET TimeZone = '{'America/New_York' if zone == 'Asia/Tokyo' else 'Asia/Tokyo'}'")
            in_other_zone = conn.query_scalar(sql)
            assert in_other_zone != in_default_zone
            cached = conn.statement_cache_size
        with pool.get() as conn:
            assert conn.backend_pid == pid
            assert conn.statement_cache_size == cached  # nothing to prepare again
            with conn.transaction():  # no silent re-prepare here: the cached statement itself answers
                assert conn.query_scalar(sql) == in_default_zone


@RESETTING_MODES
def test_reset_restores_io_timeout_and_drops_notice_handler(config: PgConfig, mode: str) -> None:
    seen: list[dict[str, str]] = []
    with one_connection_pool(config, mode) as pool:
        with pool.get() as conn:
            first = conn.backend_pid
            conn.set_notice_handler(seen.append)
            conn.execute("SET client_min_messages = notice")
            conn.set_io_timeout(0.001)  # last: no query of this user runs under it
        with pool.get() as conn:
            assert conn.backend_pid == first  # the same session, reset, not a new connection
            conn.execute("DO $$BEGIN RAISE NOTICE 'for the second user'; END$$")
            assert seen == []  # the first user's handler is gone
            assert conn.query_scalar("SELECT pg_sleep(0.05)::text") == ""  # 1 ms I/O timeout would have closed it
