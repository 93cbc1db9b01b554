"""The a-prefixed calls (``await Item.aget(pool, 1)``) on chopin-pg's AsyncPool and AsyncConnection.

Driven by chopin-core's ``run_blocking`` (the same scheduler a worker runs ``async def``
handlers on), against the real server.
"""
# ruff: noqa: N806  (models are classes made per test, for unique table names)

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import chopin_pg
import pytest
from chopin_core import gather, run_blocking
from chopin_orm import (
    MultipleRows,
    NotFound,
    OrmError,
    aget,
    aget_many,
    ainsert,
    ainsert_many,
    atransaction,
    aupdate_many,
    column,
    model,
)
from orm_testing import DSN, create_table


def item_model(table: str) -> Any:
    @model(table=table)
    @dataclass
    class Item:
        name: str = column(unique=True)
        quantity: int = column(default=0)
        id: int | None = column(primary_key=True, generated=True, default=None)

    return Item


@pytest.fixture
def pool() -> Iterator[chopin_pg.AsyncPool]:
    p = chopin_pg.AsyncPool(DSN, size=2)
    yield p
    p.close()


def test_insert_get_update_refresh_delete(
    conn: chopin_pg.Connection, names: Callable[[str], str], pool: chopin_pg.AsyncPool
) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)

    async def main() -> None:
        pen = Item("pen", 3)
        await pen.ainsert(pool)
        assert isinstance(pen.id, int)
        await ainsert(Item("cup"), pool)
        assert await Item.aget(pool, pen.id) == pen
        assert await aget(Item, pool, pen.id) == pen
        pen.quantity = 10
        await pen.aupdate(pool)
        conn.execute(f'UPDATE "{Item.__chopin_table__.name}" SET quantity = 11 WHERE id = $1', (pen.id,))
        await pen.arefresh(pool)
        assert pen.quantity == 11
        await Item("pen", 99).aupsert(pool, on="name")
        assert (await Item.aget(pool, pen.id)).quantity == 99
        await pen.adelete(pool)
        assert await Item.aget_or_none(pool, pen.id) is None
        with pytest.raises(NotFound):
            await Item.aget(pool, pen.id)
        with pytest.raises(NotFound):
            await pen.aupdate(pool)

    run_blocking(main())


def test_queries(conn: chopin_pg.Connection, names: Callable[[str], str], pool: chopin_pg.AsyncPool) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    for i in range(5):
        Item(f"n{i}", i).insert(conn)

    async def main() -> None:
        q = Item.query()
        assert [i.name for i in await q.order_by(Item.quantity).aall(pool)] == [f"n{i}" for i in range(5)]
        assert (await q.filter(Item.quantity > 3).aone(pool)).name == "n4"
        with pytest.raises(MultipleRows):
            await q.aone(pool)
        with pytest.raises(NotFound):
            await q.filter(Item.quantity > 100).aone(pool)
        assert (await q.order_by(Item.quantity.desc()).afirst(pool)).name == "n4"  # type: ignore[union-attr]
        assert await q.filter(Item.quantity > 100).afirst(pool) is None
        assert await q.acount(pool) == 5
        assert await q.filter(Item.quantity > 2).aexists(pool)
        assert await q.filter(Item.quantity < 2).aupdate(pool, quantity=50) == 2
        assert await q.filter(Item.quantity == 50).adelete(pool) == 2
        values = q.select(Item.name, Item.quantity).order_by(Item.quantity)
        assert await values.aall(pool) == [("n2", 2), ("n3", 3), ("n4", 4)]
        assert await values.afirst(pool) == ("n2", 2)
        assert await values.filter(Item.quantity == 3).aone(pool) == ("n3", 3)

    run_blocking(main())


def test_concurrent_calls_share_the_pool_and_each_gets_its_own_rows(
    conn: chopin_pg.Connection, names: Callable[[str], str], pool: chopin_pg.AsyncPool
) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    ids = []
    for i in range(50):
        item = Item(f"n{i}", i)
        item.insert(conn)
        ids.append(item.id)

    async def main() -> list[Any]:
        return await gather(*(Item.aget(pool, pk) for pk in ids))

    found = run_blocking(main())
    assert [f.quantity for f in found] == list(range(50))
    assert pool.connections <= 2


def test_a_transaction_pins_a_connection_and_rolls_back_on_error(
    conn: chopin_pg.Connection, names: Callable[[str], str], pool: chopin_pg.AsyncPool
) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="changed my mind"):
            async with pool.transaction() as tx:
                await Item("kept?").ainsert(tx)
                assert await Item.query().acount(tx) == 1
                raise RuntimeError("changed my mind")
        assert await Item.query().acount(pool) == 0
        async with pool.transaction() as tx:
            await Item("kept").ainsert(tx)
        assert await Item.query().acount(pool) == 1

    run_blocking(main())


def test_a_blocking_connection_is_refused_with_a_hint(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    with pytest.raises(OrmError, match="without the 'a' prefix"):
        run_blocking(Item.aget(conn, 1))


def status_model(table: str) -> Any:
    @model(table=table)
    @dataclass
    class Ticket:
        title: str
        status: str | None = column(server_default="'new'", default=None)
        id: int | None = column(primary_key=True, generated=True, default=None)

    return Ticket


def test_ainsert_many_with_and_without_returning_in_batches(
    conn: chopin_pg.Connection, names: Callable[[str], str], pool: chopin_pg.AsyncPool
) -> None:
    Ticket = status_model(names("tickets"))
    create_table(conn, Ticket)
    some = [Ticket(f"t{i}", None if i % 3 else "open") for i in range(25)]
    plain = [Ticket(f"p{i}") for i in range(7)]

    async def main() -> tuple[int, int, int]:
        with_ids = await Ticket.ainsert_many(pool, some, returning=True, batch_size=10)  # 3 statements
        without = await ainsert_many(Ticket, pool, plain, batch_size=4)
        none = await Ticket.ainsert_many(pool, [])
        return with_ids, without, none

    assert run_blocking(main()) == (25, 7, 0)
    # RETURNING filled each instance in VALUES order: ids, and the server default where status was None.
    assert [t.id for t in some] == sorted(t.id for t in some) and len({t.id for t in some}) == 25
    assert [t.status for t in some[:4]] == ["open", "new", "new", "open"]
    assert all(t.id is None for t in plain)  # without returning nothing is read back (as insert_many)
    table = Ticket.__chopin_table__.name
    rows = conn.query(f'SELECT title, status FROM "{table}" WHERE title LIKE $1 ORDER BY id', ("p%",))
    assert [tuple(r) for r in rows] == [(f"p{i}", "new") for i in range(7)]
    assert conn.query_scalar(f'SELECT count(*) FROM "{table}"') == 32
    with pytest.raises(OrmError, match="got a str"):
        run_blocking(Ticket.ainsert_many(pool, ["nope"]))
    with pytest.raises(OrmError, match="batch_size must be >= 1"):
        run_blocking(Ticket.ainsert_many(pool, plain, batch_size=0))


def test_ainsert_many_explicit_identity_values_and_an_identical_twin_of_insert_many(
    conn: chopin_pg.Connection, names: Callable[[str], str], pool: chopin_pg.AsyncPool
) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    run_blocking(Item.ainsert_many(pool, [Item("a", 1, id=100), Item("b", 2, id=101)], returning=True))
    Item.insert_many(conn, [Item("c", 3, id=102)], returning=True)
    table = Item.__chopin_table__.name
    assert [tuple(r) for r in conn.query(f'SELECT id, name FROM "{table}" ORDER BY id')] == [
        (100, "a"),
        (101, "b"),
        (102, "c"),
    ]


def test_aget_many_one_write_one_connection_answers_in_key_order(
    conn: chopin_pg.Connection, names: Callable[[str], str], pool: chopin_pg.AsyncPool
) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    items = [Item(f"n{i}", i) for i in range(20)]
    Item.insert_many(conn, items, returning=True)
    ids = [i.id for i in items]
    keys = [ids[5], -1, ids[0], ids[5], *ids[10:]]

    async def main() -> tuple[list[Any], list[Any], list[Any]]:
        got = await Item.aget_many(pool, keys)
        again = await aget_many(Item, pool, keys)  # the statement is cached now: binary binds
        async with pool.transaction() as tx:
            in_tx = await Item.aget_many(tx, keys[:3])
        return got, again, in_tx

    got, again, in_tx = run_blocking(main())
    expected = [items[5], None, items[0], items[5], *items[10:]]
    assert got == expected and again == expected and in_tx == expected[:3]
    assert pool.connections == 1  # every key's query went out on one connection
    assert run_blocking(Item.aget_many(pool, [])) == []


def test_aupdate_many_writes_every_instance_in_one_request(
    conn: chopin_pg.Connection, names: Callable[[str], str], pool: chopin_pg.AsyncPool
) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    items = [Item(f"n{i}", i) for i in range(6)]
    Item.insert_many(conn, items, returning=True)
    for item in items:
        item.quantity *= 10
    gone = Item("gone", 0, id=-5)  # no such row: not counted
    assert run_blocking(Item.aupdate_many(pool, [*reversed(items), gone])) == 6
    assert run_blocking(aupdate_many(Item, pool, [])) == 0
    assert [i.quantity for i in Item.query().order_by(Item.id).all(conn)] == [0, 10, 20, 30, 40, 50]


def test_atransaction_commits_rolls_back_nests_and_refuses_a_failed_block(
    conn: chopin_pg.Connection, names: Callable[[str], str], pool: chopin_pg.AsyncPool
) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)

    async def main() -> None:
        async with atransaction(pool) as tx:
            await Item("kept").ainsert(tx)
            with pytest.raises(RuntimeError):
                async with atransaction(tx) as inner:  # a savepoint on the pinned connection
                    assert inner is tx and tx.savepoint_depth == 1
                    await Item("undone").ainsert(inner)
                    raise RuntimeError("inner only")
            async with atransaction(tx):
                await Item("nested").ainsert(tx)
            assert pool.pinned == 1
        assert pool.pinned == 0
        assert sorted(i.name for i in await Item.query().aall(pool)) == ["kept", "nested"]
        with pytest.raises(ValueError, match="all of it"):
            async with atransaction(pool, "serializable") as tx:
                await Item("lost").ainsert(tx)
                raise ValueError("all of it")
        assert await Item.query().acount(pool) == 2
        # A failed statement caught inside the block: the block is rolled back, and says so.
        with pytest.raises(OrmError, match="rolled back, not committed"):
            async with atransaction(pool) as tx:
                await Item("also lost").ainsert(tx)
                with pytest.raises(chopin_pg.UniqueViolation):
                    await Item("kept").ainsert(tx)
        assert await Item.query().acount(pool) == 2
        async with atransaction(pool) as tx:  # the connection went back clean
            assert tx.transaction_status == "T"

    run_blocking(main())
    with pytest.raises(OrmError, match="use transaction"):
        atransaction(conn)  # type: ignore[arg-type]
    with pytest.raises(OrmError, match="isolation"):
        atransaction(pool, "whenever")
