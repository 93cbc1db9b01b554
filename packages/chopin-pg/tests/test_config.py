"""PgConfig: keywords, URLs, the libpq environment, validation."""

from __future__ import annotations

import pytest
from chopin_pg import ConfigError, PgConfig, connect
from conftest import LOCAL


def test_from_url_full() -> None:
    cfg = PgConfig.from_url(
        "postgres://al%40ice:p%3Aw@db.example:6543/my%20db"
        "?sslmode=verify-full&sslrootcert=/ca.pem&application_name=app&connect_timeout=3&search_path=s1",
        environ={},
    )
    assert (cfg.user, cfg.password, cfg.host, cfg.port, cfg.database) == ("al@ice", "p:w", "db.example", 6543, "my db")
    assert (cfg.sslmode, cfg.sslrootcert, cfg.application_name, cfg.connect_timeout) == (
        "verify-full",
        "/ca.pem",
        "app",
        3.0,
    )
    assert cfg.options == {"search_path": "s1"}
    assert cfg.startup_params()["search_path"] == "s1"


def test_from_url_socket_dir_and_defaults() -> None:
    cfg = PgConfig.from_url("postgresql:///test?host=/var/run/postgresql", environ={"PGUSER": "root"})
    assert cfg.is_unix_socket
    assert cfg.socket_path == "/var/run/postgresql/.s.PGSQL.5432"
    assert (cfg.user, cfg.database) == ("root", "test")
    assert PgConfig.from_url("postgres://[::1]:5433/x", environ={}).host == "::1"


def test_env_defaults_and_url_wins() -> None:
    env = {"PGHOST": "h", "PGPORT": "7000", "PGUSER": "u", "PGPASSWORD": "pw", "PGDATABASE": "d"}
    cfg = PgConfig.from_env(env)
    assert (cfg.host, cfg.port, cfg.user, cfg.password, cfg.database) == ("h", 7000, "u", "pw", "d")
    cfg = PgConfig.from_url("postgres://other@x/db2", environ=env)
    assert (cfg.host, cfg.port, cfg.user, cfg.password, cfg.database) == ("x", 7000, "other", "pw", "db2")


def test_database_defaults_to_user() -> None:
    assert PgConfig(user="bob").database == "bob"


def test_with_socket_dir() -> None:
    cfg = PgConfig(host="127.0.0.1", user="root").with_socket_dir("/tmp/pg")
    assert cfg.host == "/tmp/pg"
    with pytest.raises(ConfigError, match="absolute"):
        cfg.with_socket_dir("relative")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "scheme"),
        ("postgres://h:99999/d", "port"),
        ("postgres://h/d?sslmode=sometimes", "sslmode"),
        ("postgres://h/d?connect_timeout=soon", "connect_timeout"),
        ("postgres://h/d?port=abc", "port"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PgConfig.from_url(url, environ={})


def test_zero_connect_timeout_means_forever() -> None:
    assert PgConfig.from_url("postgres://h/d?connect_timeout=0", environ={}).connect_timeout is None


def test_connect_with_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    env = {"PGHOST": LOCAL.host, "PGPORT": str(LOCAL.port), "PGUSER": LOCAL.user, "PGDATABASE": LOCAL.database}
    env.update(PGSSLMODE=LOCAL.sslmode, PGPASSWORD=LOCAL.password or "")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with connect() as conn:
        assert conn.query_scalar("SELECT current_user") == LOCAL.user
