"""The pytest plugin (entry point `pytest11`): PostgreSQL fixtures.

Installing chopin-testkit makes these fixtures available in every test run:

- `pg_cluster`: a private `PgCluster` for the session (TLS, scram/md5/trust roles).
- `local_pg`: the shared server: `$CHOPIN_TEST_DATABASE_URL` when set (a PostgreSQL
  started elsewhere, password authentication included), else the machine's server on
  127.0.0.1:5432 (trust), started if it is down.

Both fail the tests that use them, with the reason, when the server cannot be had:
database tests never skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .errors import ClusterError
from .localpg import LocalPg, ensure_local_pg
from .pgcluster import PgCluster


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
def local_pg() -> LocalPg:
    """The shared PostgreSQL server (host, port, user, database, password), accepting connections.

    `$CHOPIN_TEST_DATABASE_URL` names it when set; else $PGHOST, $PGPORT, $PGUSER and
    $PGDATABASE override 127.0.0.1, 5432, postgres, test.
    """
    try:
        return ensure_local_pg()
    except ClusterError as exc:
        pytest.fail(f"local_pg: {exc}", pytrace=False)
