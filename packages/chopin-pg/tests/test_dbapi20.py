"""The DB-API 2.0 compliance suite (dbapi20.py by Stuart Bishop, public domain, from the
``dbapi-compliance`` distribution) run against :mod:`chopin_pg.dbapi` on the local server.

All 37 tests of ``dbapi20.DatabaseAPI20Test`` run; the two the suite leaves to drivers
(``test_nextset``, ``test_setoutputsize``) are written here.
"""

from __future__ import annotations

import uuid
from typing import Any

import dbapi20  # type: ignore[import-untyped]
from chopin_pg import dbapi
from conftest import LOCAL  # the shared test server ($CHOPIN_TEST_DATABASE_URL, else the local socket)

_PREFIX = f"dbapi20_{uuid.uuid4().hex[:8]}_"


class TestChopinDbapi20(dbapi20.DatabaseAPI20Test):  # type: ignore[misc]
    driver = dbapi
    connect_args = (LOCAL,)
    connect_kw_args: dict[str, Any] = {}  # noqa: RUF012 - the suite's own attribute
    table_prefix = _PREFIX
    ddl1 = f"create table {_PREFIX}booze (name varchar(20))"
    ddl2 = f"create table {_PREFIX}barflys (name varchar(20), drink varchar(30))"
    xddl1 = f"drop table {_PREFIX}booze"
    xddl2 = f"drop table {_PREFIX}barflys"

    def test_nextset(self) -> None:
        # PostgreSQL functions return one result set: the cursor has no nextset(), which PEP 249 allows.
        con = self._connect()
        try:
            self.assertFalse(hasattr(con.cursor(), "nextset"))
        finally:
            con.close()

    def test_setoutputsize(self) -> None:
        # Accepted and ignored: column sizes come from the server.
        con = self._connect()
        try:
            cur = con.cursor()
            cur.setoutputsize(100, 0)
            cur.execute("select 'a longer text than 100 bytes' || repeat('x', 200)")
            self.assertEqual(len(cur.fetchone()[0]), 228)
        finally:
            con.close()
