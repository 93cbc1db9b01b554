"""Fixtures: a connection to the shared test server and a private schema per test.

The shared server is ``$CHOPIN_TEST_DATABASE_URL`` when set (a PostgreSQL started
elsewhere, or chopin-testkit's private fallback when nothing listens on 5432), else the
machine's server (trust, unix socket).  Password, MD5, SCRAM and TLS tests use
``pg_cluster`` from chopin-testkit.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from chopin_pg import Connection, PgConfig, connect
from hypothesis import HealthCheck, settings

# Hypothesis's timing checks judge the machine, not the code: on a shared CI machine one
# draw can stall for seconds (seen: test_bind_encoder, 1.96 s for one input).  The
# properties are checked as before; only the too_slow health check and the deadline go.
settings.register_profile("chopin", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("chopin")

# SQLAlchemy's dialect suite runs in its own pytest invocation (see sqla_suite/setup.cfg).
collect_ignore = ["sqla_suite"]

LOCAL = PgConfig(host="/var/run/postgresql", port=5432, user="root", database="test", sslmode="disable")
if _url := os.environ.get("CHOPIN_TEST_DATABASE_URL"):
    LOCAL = PgConfig.from_url(_url, environ={})


def local_url(**query: str) -> str:
    """``LOCAL`` as a TCP URL (127.0.0.1 for the socket), with extra query parameters."""
    host = "127.0.0.1" if LOCAL.is_unix_socket else LOCAL.host
    auth = LOCAL.user + (f":{LOCAL.password}" if LOCAL.password is not None else "")
    params = "&".join(f"{key}={value}" for key, value in {"sslmode": LOCAL.sslmode, **query}.items())
    return f"postgres://{auth}@{host}:{LOCAL.port}/{LOCAL.database}?{params}"


@pytest.fixture
def config() -> PgConfig:
    """Settings for the local trust server over its unix socket."""
    return LOCAL


@pytest.fixture
def conn(config: PgConfig) -> Iterator[Connection]:
    """An open connection, closed after the test."""
    with connect(config) as c:
        yield c


@pytest.fixture
def schema(conn: Connection) -> Iterator[str]:
    """A fresh schema on ``conn``'s search_path, dropped after the test."""
    name = f"cpg_{uuid.uuid4().hex[:12]}"
    conn.execute(f"CREATE SCHEMA {name}; SET search_path TO {name}, public")
    yield name
    if conn.closed:
        with connect(LOCAL) as other:
            other.execute(f"DROP SCHEMA {name} CASCADE")
    else:
        if conn.in_transaction:
            conn.rollback()
        conn.execute(f"DROP SCHEMA {name} CASCADE")
