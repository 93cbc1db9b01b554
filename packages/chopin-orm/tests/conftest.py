"""Fixtures: a connection to the real server (database ``test`` at 127.0.0.1:5432) and unique table names."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import chopin_pg
import pytest
from chopin_orm.expr import quote_identifier
from orm_testing import DSN


@pytest.fixture
def conn() -> Iterator[chopin_pg.Connection]:
    with chopin_pg.connect(DSN) as c:
        yield c


@pytest.fixture
def names(conn: chopin_pg.Connection) -> Iterator[Callable[[str], str]]:
    """``names("items")`` gives a unique table name; every table made with it is dropped after the test."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"orm_{prefix}_{uuid.uuid4().hex[:10]}"
        made.append(name)
        return name

    yield make
    if conn.in_transaction:
        conn.rollback()
    for name in reversed(made):
        conn.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)} CASCADE")
        conn.execute(f"DROP TYPE IF EXISTS {quote_identifier(name + '_enum')} CASCADE")
