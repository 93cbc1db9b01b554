"""transaction()/Transaction.begin: commit, rollback, savepoints, failed blocks, finished-state refusal."""
# ruff: noqa: N803, N806  (models are classes made per test, for unique table names)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import chopin_pg
import pytest
from chopin_orm import OrmError, Transaction, column, model, transaction
from orm_testing import DSN, create_table


def counter_model(names: Callable[[str], str]) -> Any:
    @model(table=names("tx"))
    @dataclass
    class Entry:
        label: str = column(unique=True)
        id: int | None = column(primary_key=True, generated=True, default=None)

    return Entry


def count(Entry: Any) -> int:
    # Counted on a second connection: what is committed, not what this session sees.
    with chopin_pg.connect(DSN) as other:
        return Entry.query().count(other)  # type: ignore[no-any-return]


def test_commit_and_rollback(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Entry = counter_model(names)
    create_table(conn, Entry)
    with transaction(conn) as tx:
        Entry("a").insert(tx)
        assert count(Entry) == 0  # not committed yet
    assert count(Entry) == 1 and tx.state == "committed"
    with pytest.raises(RuntimeError), transaction(conn) as tx:
        Entry("b").insert(tx)
        raise RuntimeError("boom")
    assert tx.state == "rolled back" and count(Entry) == 1
    tx = Transaction.begin(conn)
    Entry("c").insert(tx)
    tx.rollback()
    assert count(Entry) == 1
    with pytest.raises(OrmError, match="rolled back: it cannot run"):
        Entry("d").insert(tx)


def test_nested_transactions_are_savepoints(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Entry = counter_model(names)
    create_table(conn, Entry)
    with transaction(conn) as outer:
        Entry("kept").insert(outer)
        with pytest.raises(chopin_pg.UniqueViolation), transaction(outer) as inner:
            assert inner.is_savepoint
            Entry("dropped").insert(inner)
            Entry("kept").insert(inner)  # fails: rolls back to the savepoint only
        with outer.transaction() as inner2:
            Entry("also kept").insert(inner2)
        Entry("last").insert(outer)
    assert sorted(e.label for e in Entry.query().all(conn)) == ["also kept", "kept", "last"]


def test_a_failed_block_is_not_committed(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Entry = counter_model(names)
    create_table(conn, Entry)
    tx = Transaction.begin(conn)
    Entry("x").insert(tx)
    with pytest.raises(chopin_pg.UniqueViolation):
        Entry("x").insert(tx)
    with pytest.raises(OrmError, match="rolled back, not committed"):
        tx.commit()
    assert conn.transaction_status == "I" and count(Entry) == 0


def test_isolation_and_errors(conn: chopin_pg.Connection) -> None:
    with transaction(conn, isolation="serializable"):
        assert conn.query_scalar("SHOW transaction_isolation") == "serializable"
    with pytest.raises(OrmError, match="isolation"):
        transaction(conn, isolation="chaotic")
    with transaction(conn) as tx, pytest.raises(OrmError, match="outermost"):
        Transaction.begin(tx, isolation="serializable")


def test_raw_paths_take_none_as_no_parameters(conn: chopin_pg.Connection) -> None:
    from chopin_orm.executor import run_execute, run_query

    with chopin_pg.PgPool.connect(DSN, 1) as pool:
        for executor in (conn, pool):
            assert run_query(executor, "SELECT 1", None) == [(1,)]
            assert run_execute(executor, "SELECT 1", None) == 1
        with transaction(pool) as tx:
            assert run_query(tx, "SELECT 2", None) == [(2,)]
