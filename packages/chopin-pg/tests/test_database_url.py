"""Finding the database: ``DATABASE_URL``, then the libpq variables, in ``connect()`` and ``PgPool``.

The real-server tests set the variables in this process's environment and call the
entry points with no arguments, as an app does.
"""

from __future__ import annotations

from typing import Any

import pytest
from chopin_pg import ConfigError, PgConfig, PgPool, connect
from conftest import LOCAL, local_url

LOCAL_URL = local_url()
#: Who the shared test server says we are: (current_user, current_database(), port).
EXPECTED = (LOCAL.user, LOCAL.database, str(LOCAL.port))


def test_from_env_prefers_database_url_over_the_libpq_variables() -> None:
    env = {"DATABASE_URL": "postgres://app:pw@db.example:6543/appdb", "PGHOST": "other", "PGUSER": "nobody"}
    cfg = PgConfig.from_env(env)
    assert (cfg.host, cfg.port, cfg.user, cfg.password, cfg.database) == ("db.example", 6543, "app", "pw", "appdb")


def test_from_env_fills_what_database_url_leaves_out_from_the_libpq_variables() -> None:
    env = {"DATABASE_URL": "postgres:///appdb", "PGHOST": "h", "PGUSER": "u", "PGPASSWORD": "secret"}
    cfg = PgConfig.from_env(env)
    assert (cfg.host, cfg.user, cfg.password, cfg.database) == ("h", "u", "secret", "appdb")


def test_from_env_keyword_overrides_win_over_database_url() -> None:
    cfg = PgConfig.from_env({"DATABASE_URL": "postgres://u@h/d"}, database="other")
    assert (cfg.user, cfg.database) == ("u", "other")


def test_from_env_without_database_url_reads_the_libpq_variables() -> None:
    cfg = PgConfig.from_env({"PGHOST": "h", "PGPORT": "6000", "PGUSER": "u", "PGDATABASE": "d"})
    assert (cfg.host, cfg.port, cfg.user, cfg.database) == ("h", 6000, "u", "d")


def test_a_malformed_database_url_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL: url: expected scheme"):
        PgConfig.from_env({"DATABASE_URL": "mysql://x/y"})


def test_from_url_does_not_read_database_url() -> None:
    cfg = PgConfig.from_url("postgres://u@h/given", environ={"DATABASE_URL": "postgres://x@y/other"})
    assert cfg.database == "given"


@pytest.fixture
def no_pg_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _who(conn: Any) -> tuple[str, str, str]:
    # The server's port setting, not inet_server_port(): behind the testkit's TLS front (the
    # embedded fallback) the server sees a Unix-socket client, whose inet_server_port() is NULL.
    row = conn.query_one("SELECT current_user, current_database(), current_setting('port')")
    return row[0], row[1], row[2]


def test_connect_without_arguments_uses_database_url(no_pg_env: pytest.MonkeyPatch) -> None:
    no_pg_env.setenv("DATABASE_URL", LOCAL_URL)
    no_pg_env.setenv("PGUSER", "nobody_here")  # DATABASE_URL wins
    with connect() as conn:
        assert _who(conn) == EXPECTED


def test_connect_without_arguments_falls_back_to_the_libpq_variables(no_pg_env: pytest.MonkeyPatch) -> None:
    host = "127.0.0.1" if LOCAL.is_unix_socket else LOCAL.host
    env = {"PGHOST": host, "PGPORT": str(LOCAL.port), "PGUSER": LOCAL.user, "PGDATABASE": LOCAL.database}
    env.update(PGSSLMODE=LOCAL.sslmode, PGPASSWORD=LOCAL.password or "")
    for name, value in env.items():
        no_pg_env.setenv(name, value)
    with connect() as conn:
        assert _who(conn) == EXPECTED


def test_pool_accepts_a_url() -> None:
    pool = PgPool(LOCAL_URL)
    try:
        with pool.get() as conn:
            assert _who(conn) == EXPECTED
    finally:
        pool.close()


def test_pool_without_a_config_uses_database_url(no_pg_env: pytest.MonkeyPatch) -> None:
    no_pg_env.setenv("DATABASE_URL", LOCAL_URL)
    pool = PgPool.connect(None, 2)
    try:
        with pool.get() as conn:
            assert _who(conn) == EXPECTED
    finally:
        pool.close()


@pytest.mark.parametrize("user", ["scram_user", "md5_user"])
def test_database_url_with_a_password_reaches_a_password_server(
    pg_cluster: Any, no_pg_env: pytest.MonkeyPatch, user: str
) -> None:
    no_pg_env.setenv("DATABASE_URL", pg_cluster.dsn(user))
    with connect() as conn:
        assert _who(conn) == (user, "test", str(pg_cluster.port))
    pool = PgPool()
    try:
        with pool.get() as conn:
            assert _who(conn)[0] == user
    finally:
        pool.close()


def test_libpq_password_variable_reaches_a_password_server(pg_cluster: Any, no_pg_env: pytest.MonkeyPatch) -> None:
    for name, value in pg_cluster.libpq_env("scram_user").items():
        no_pg_env.setenv(name, value)
    with connect() as conn:
        assert _who(conn)[0] == "scram_user"
