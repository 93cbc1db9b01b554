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
from chopin_orm import MultipleRows, NotFound, OrmError, aget, ainsert, column, model
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
