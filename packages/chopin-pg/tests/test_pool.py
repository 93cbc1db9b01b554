"""The pool against the real server: checkout, rollback, exhaustion, expiry, broken connections, restart, fork."""

from __future__ import annotations

import os
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
    with PgPool.connect(config, 1) as pool:
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
