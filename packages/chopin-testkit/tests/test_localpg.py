"""LocalPg and ensure_local_pg against the machine's server (127.0.0.1:5432, trust)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from chopin_testkit import ClusterError, LocalPg, ensure_local_pg
from chopin_testkit import localpg as localpg_module
from chopin_testkit._pgbin import find_bin_dir


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_fixture_points_at_a_server_that_answers(local_pg: LocalPg) -> None:
    done = subprocess.run(
        [str(find_bin_dir() / "psql"), "--no-psqlrc", "--tuples-only", "--no-align", local_pg.dsn(),
         "--command", "SELECT current_user, current_database()"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{local_pg.user}|{local_pg.database}"


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "CHOPIN_TEST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert LocalPg.from_env() == LocalPg("127.0.0.1", 5432, "postgres", "test")
    monkeypatch.setenv("PGPORT", "5433")
    monkeypatch.setenv("PGUSER", "root")
    assert LocalPg.from_env() == LocalPg("127.0.0.1", 5433, "root", "test")
    assert LocalPg.from_env().dsn() == "postgres://root@127.0.0.1:5433/test?sslmode=disable"


def test_nothing_listening_is_not_ready() -> None:
    assert not LocalPg(port=unused_port()).accepts_connections()


def test_ensure_fails_loudly_and_quickly_when_nothing_can_be_started(monkeypatch: pytest.MonkeyPatch) -> None:
    # No /etc/postgresql: nothing to start, so no side effect on the machine's server.
    monkeypatch.setattr(localpg_module, "DEBIAN_CONF", Path("/nonexistent"))
    monkeypatch.delenv("CHOPIN_TEST_DATABASE_URL", raising=False)  # the machine's server, not a named one
    started = time.monotonic()
    with pytest.raises(ClusterError, match="does not accept connections") as info:
        ensure_local_pg(LocalPg(port=unused_port()), timeout=0.5)
    assert "cannot start the system cluster" in str(info.value)
    assert time.monotonic() - started < 15


def test_the_test_database_url_names_the_server_password_included(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGUSER", "ignored")
    monkeypatch.setenv("CHOPIN_TEST_DATABASE_URL", "postgres://app:p%40ss@db.example:55432/apps?sslmode=require")
    local = LocalPg.from_env()
    assert local == LocalPg("db.example", 55432, "app", "apps", password="p@ss", sslmode="require")
    assert local.dsn() == "postgres://app:p%40ss@db.example:55432/apps?sslmode=require"
    assert local.libpq_env() == {
        "PGHOST": "db.example",
        "PGPORT": "55432",
        "PGUSER": "app",
        "PGDATABASE": "apps",
        "PGSSLMODE": "require",
        "PGPASSWORD": "p@ss",
    }
    assert LocalPg.from_url("postgres://h") == LocalPg(host="h")
    with pytest.raises(ClusterError, match="CHOPIN_TEST_DATABASE_URL: expected a postgres:// URL"):
        LocalPg.from_url("mysql://h/d")


def test_a_server_the_variable_names_is_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgres://app:pw@127.0.0.1:{unused_port()}/test"
    monkeypatch.setenv("CHOPIN_TEST_DATABASE_URL", url)
    tried: list[str] = []
    monkeypatch.setattr(localpg_module, "_start_system_cluster", lambda: tried.append("start") or "")
    with pytest.raises(ClusterError, match=r"\$CHOPIN_TEST_DATABASE_URL names 127.0.0.1:\d+, which does not accept"):
        ensure_local_pg(timeout=0.5)
    assert tried == []
