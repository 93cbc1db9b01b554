"""The pytest plugin (entry point `pytest11`): PostgreSQL fixtures.

Installing chopin-testkit makes these fixtures available in every test run:

- `pg_cluster`: a private `PgCluster` for the session (TLS, scram/md5/trust roles).
- `local_pg`: the shared server: `$CHOPIN_TEST_DATABASE_URL` when set (a PostgreSQL
  started elsewhere, password authentication included), else the machine's server on
  127.0.0.1:5432 (trust), started if it is down.

Both fail the tests that use them, with the reason, when the server cannot be had:
database tests never skip.

When nothing serves the shared server's address and there is nothing to start there (a
machine that never had PostgreSQL), the plugin starts a private cluster for the run
before any conftest is imported, and names it in `$CHOPIN_TEST_DATABASE_URL`
(`chopin_testkit.fallback`); `CHOPIN_TESTKIT_PRIVATE_FALLBACK=0` turns that off.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import fallback
from .errors import ClusterError
from .localpg import LocalPg, ensure_local_pg
from .pgcluster import PgCluster

_FALLBACK_KEY = pytest.StashKey[PgCluster]()
_FALLBACK_ERROR_KEY = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Start the private stand-in for the shared server, if needed, before conftests read the variable."""
    fallback.put_client_programs_on_path()
    if not fallback.needs_private_server():
        return
    try:
        early_config.stash[_FALLBACK_KEY] = fallback.start_private_server()
    except ClusterError as exc:
        # Not fatal here: tests that need no database still run; local_pg fails with the reason.
        early_config.stash[_FALLBACK_ERROR_KEY] = str(exc)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the private stand-in, if one was started."""
    cluster = config.stash.get(_FALLBACK_KEY, None)
    if cluster is not None:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A private PostgreSQL cluster, started once per session and stopped at its end.

    See `PgCluster` for the roles, `dsn()`, `libpq_env()`, `psql()` and `restart()`.
    """
    cluster = PgCluster()
    try:
        cluster.start()
    except ClusterError as exc:
        pytest.fail(f"pg_cluster: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def local_pg(pytestconfig: pytest.Config) -> LocalPg:
    """The shared PostgreSQL server (host, port, user, database, password), accepting connections.

    `$CHOPIN_TEST_DATABASE_URL` names it when set; else $PGHOST, $PGPORT, $PGUSER and
    $PGDATABASE override 127.0.0.1, 5432, postgres, test.
    """
    if (error := pytestconfig.stash.get(_FALLBACK_ERROR_KEY, None)) is not None:
        pytest.fail(
            f"local_pg: nothing serves the shared server, and a private one did not start: {error}", pytrace=False
        )
    try:
        return ensure_local_pg()
    except ClusterError as exc:
        pytest.fail(f"local_pg: {exc}", pytrace=False)
