"""Fixtures: a connection to the machine's server (trust, unix socket) and a private schema per test.

Password, MD5, SCRAM and TLS tests use ``pg_cluster`` from chopin-testkit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from chopin_pg import Connection, PgConfig, connect

LOCAL = PgConfig(host="/var/run/postgresql", port=5432, user="root", database="test", sslmode="disable")


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
