"""PgPool hooks as psycopg_pool's: configure, check, on_reset, drain(), and a connection-info callable."""

from __future__ import annotations

from typing import Any

import pytest
from chopin_pg import AuthenticationFailed, Connection, InterfaceError, PgConfig, PgPool, PgPoolConfig, ServerError
from chopin_testkit import PgCluster


def _pool(config: PgConfig, pool_config: PgPoolConfig) -> PgPool:
    return PgPool.connect_with_config(config, pool_config.max_size(2).min_size(1).checkout_timeout(5))


def test_configure_runs_on_new_connections_and_again_after_a_session_reset(config: PgConfig) -> None:
    calls: list[int] = []

    def configure(conn: Connection) -> None:
        calls.append(conn.backend_pid)
        conn.execute("SET application_name = 'configured'")

    with _pool(config, PgPoolConfig().configure(configure)) as pool:
        assert len(calls) == 1  # min_size connection
        with pool.get() as conn:
            assert conn.query_scalar("SHOW application_name") == "configured"
            conn.execute("SET application_name = 'changed by a user'")
        with pool.get() as conn:  # DISCARD ALL ran on return, then configure again
            assert conn.query_scalar("SHOW application_name") == "configured"
        assert len(calls) == 3 and len(set(calls)) == 1


def test_a_failing_configure_rejects_the_connection_and_frees_its_slot(config: PgConfig) -> None:
    def configure(conn: Connection) -> None:
        conn.execute("SELECT no_such_column")

    pool = PgPool(config, PgPoolConfig().configure(configure).max_size(1).checkout_timeout(1))
    with pool, pytest.raises(ServerError):
        pool.get()
    assert pool.stats().active == 0 and pool.stats().total == 0

    def leaves_a_transaction(conn: Connection) -> None:
        conn.begin()

    with PgPool(config, PgPoolConfig().configure(leaves_a_transaction).max_size(1)) as pool:
        with pytest.raises(InterfaceError, match="left a transaction open"):
            pool.get()
        assert pool.stats().active == 0


def test_a_check_that_raises_replaces_the_connection(config: PgConfig) -> None:
    rejected: list[int] = []

    def check(conn: Connection) -> None:
        if not rejected:
            rejected.append(conn.backend_pid)
            raise RuntimeError("not this one")
        conn.execute("")

    with _pool(config, PgPoolConfig().check(check)) as pool:
        with pool.get() as conn:
            assert conn.backend_pid != rejected[0]
        assert pool.stats().broken == 1


def test_on_reset_runs_on_return_and_a_failure_closes_the_connection(config: PgConfig) -> None:
    seen: list[tuple[int, bool]] = []

    def on_reset(conn: Connection) -> None:
        seen.append((conn.backend_pid, conn.in_transaction))
        if len(seen) == 2:
            raise RuntimeError("cannot clean this session")

    with _pool(config, PgPoolConfig().on_reset(on_reset)) as pool:
        with pool.get() as conn:
            first = conn.backend_pid
            conn.begin()  # left open: rolled back by the reset mode before the hook runs
        assert seen == [(first, False)]
        with pool.get() as conn:
            assert conn.backend_pid == first
        assert pool.stats().broken == 1 and pool.stats().idle == 0  # closed, not returned
        with pool.get() as conn:
            assert conn.backend_pid != first


def test_drain_replaces_idle_connections_now_and_checked_out_ones_on_return(config: PgConfig) -> None:
    with _pool(config, PgPoolConfig()) as pool:
        guard = pool.get()
        busy = guard.conn.backend_pid
        with pool.get() as conn:
            idle = conn.backend_pid
        pool.drain()
        assert pool.stats().idle == 0 and pool.stats().closed == 1  # the checked-out one still counts to min_size
        assert guard.conn.query_scalar("SELECT 1") == 1  # a checked-out connection keeps working
        guard.release()
        assert guard.conn.closed
        with pool.get() as conn:
            assert conn.backend_pid not in (busy, idle)
        assert pool.stats().total == 1 and pool.stats().closed == 2


def test_connection_info_is_asked_at_each_connection_and_drain_rotates_credentials(pg_cluster: PgCluster) -> None:
    current: dict[str, Any] = {"password": "scram-secret"}

    def info() -> PgConfig:
        return PgConfig(
            host=pg_cluster.host,
            port=pg_cluster.port,
            user="scram_user",
            password=current["password"],
            database=pg_cluster.database,
        )

    pool_config = PgPoolConfig().connection_info(info).max_size(2).min_size(1).checkout_timeout(5)
    try:
        with PgPool(PgConfig(host="unused.invalid"), pool_config) as pool:
            pool.fill()
            with pool.get() as conn:
                old = conn.backend_pid
                conn.execute("ALTER ROLE scram_user PASSWORD 'rotated-secret'")
            with pool.get() as conn:  # the open session outlives the password change
                assert conn.backend_pid == old
            with pytest.raises((ServerError, AuthenticationFailed)):
                pool.drain()  # refilling with the old password fails
            current["password"] = "rotated-secret"
            pool.drain()
            with pool.get() as conn:
                assert conn.backend_pid != old and conn.query_scalar("SELECT current_user") == "scram_user"
    finally:
        pg_cluster.psql("ALTER ROLE scram_user PASSWORD 'scram-secret'")
