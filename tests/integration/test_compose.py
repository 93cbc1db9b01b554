"""The root compose.yaml names a working PostgreSQL, and the suites run against one through one variable.

Docker is not available where these tests run, so the file is proved in two steps: it is
parsed and checked (image, password, health check, named volume, the port and URL the
README documents), then the suites' fixtures run, through ``$CHOPIN_TEST_DATABASE_URL``,
against a private server configured as the file says (its role, password, SCRAM, database)
and against the machine's server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chopin_testkit import LocalPg, PgCluster, PgUser

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.yaml"
README = REPO / "README.md"
RUN_TIMEOUT = 300

#: Test files whose fixtures use the shared server, with the tests that start a cluster of
#: their own left out. chopin-pg's tests import their own ``conftest``, so they run in a
#: pytest process of their own (pytest's start-up is most of the time these take).
SHARED_SERVER_SUITES = (
    [
        "packages/chopin-testkit/tests/test_localpg.py::test_fixture_points_at_a_server_that_answers",
        "packages/chopin-orm/tests/test_transaction.py",
        "tests/integration/test_readme.py",
    ],
    ["packages/chopin-pg/tests/test_database_url.py", "-k", "not password"],
)


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _db() -> dict[str, Any]:
    service = _compose()["services"]["db"]
    assert isinstance(service, dict)
    return service


def _readme_url() -> str:
    found = re.findall(r"CHOPIN_TEST_DATABASE_URL=(\S+)", README.read_text())
    assert len(set(found)) == 1, found
    return str(found[0])


def test_compose_names_postgres_with_a_password_a_health_check_and_a_named_volume() -> None:
    db = _db()
    assert re.fullmatch(r"postgres:\d+", db["image"])
    env = db["environment"]
    assert env["POSTGRES_PASSWORD"] and env["POSTGRES_USER"] and env["POSTGRES_DB"]
    assert "--auth-host=scram-sha-256" in env["POSTGRES_INITDB_ARGS"]
    check = db["healthcheck"]
    assert check["test"][0] == "CMD-SHELL" and "pg_isready" in check["test"][1]
    assert f"-U {env['POSTGRES_USER']}" in check["test"][1] and f"-d {env['POSTGRES_DB']}" in check["test"][1]
    assert check["retries"] > 0
    (volume,) = db["volumes"]
    name, _, target = volume.partition(":")
    assert name in _compose()["volumes"] and target == "/var/lib/postgresql"


def test_the_readme_url_names_the_compose_server() -> None:
    env = _db()["environment"]
    (port,) = _db()["ports"]
    host, host_port, container_port = port.split(":")
    url = LocalPg.from_url(_readme_url())
    assert (url.host, url.port, container_port) == (host, int(host_port), "5432")
    assert (url.user, url.password, url.database) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )


@pytest.fixture(scope="module")
def compose_like_server() -> Iterator[PgCluster]:
    """A private server set up as compose.yaml's: its role (a superuser), password (SCRAM) and database."""
    env = _db()["environment"]
    user = PgUser(env["POSTGRES_USER"], "scram-sha-256", env["POSTGRES_PASSWORD"])
    with PgCluster([user], settings={"log_connections": "on"}) as cluster:
        cluster.psql(f"ALTER ROLE {user.name} SUPERUSER")
        if env["POSTGRES_DB"] != cluster.database:
            cluster.psql(f"CREATE DATABASE {env['POSTGRES_DB']} OWNER {user.name}")
        yield cluster


def _sessions_of(cluster: PgCluster, user: str) -> int:
    """How many sessions ``user`` has opened on ``cluster`` so far (from its log)."""
    return cluster.log_file.read_text(errors="replace").count(f"connection authorized: user={user} ")


def _run_suites(url: str, cluster: PgCluster | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["CHOPIN_TEST_DATABASE_URL"] = url
    user = LocalPg.from_url(url).user
    for args in SHARED_SERVER_SUITES:
        before = _sessions_of(cluster, user) if cluster else 0
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"{args}:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
        assert " passed" in done.stdout and "error" not in done.stdout.splitlines()[-1], done.stdout[-2000:]
        if cluster is not None:
            # The fixtures went where the variable said, not to the machine's server.
            assert _sessions_of(cluster, user) > before, args


def test_the_suites_run_against_a_server_configured_like_compose(compose_like_server: PgCluster) -> None:
    readme = LocalPg.from_url(_readme_url())
    url = LocalPg("127.0.0.1", compose_like_server.port, readme.user, readme.database, readme.password).dsn()
    _run_suites(url, compose_like_server)


def test_the_suites_run_against_the_machines_server_through_the_variable(local_pg: LocalPg) -> None:
    _run_suites(local_pg.dsn())
