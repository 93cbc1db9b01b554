"""insert/update/upsert/delete/refresh/get/get_or_none/insert_many against the real server."""
# ruff: noqa: N806  (models are classes made per test, for unique table names)

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import chopin_pg
import pytest
from chopin_orm import ModelError, NotFound, column, insert, model, model_info, transaction
from orm_testing import DSN, create_table


def item_model(table: str) -> Any:
    @model(table=table)
    @dataclass
    class Item:
        name: str = column(unique=True)
        quantity: int = column(default=0, index=True)
        note: str | None = None
        id: int | None = column(primary_key=True, generated=True, default=None)

    return Item


def test_insert_fills_identity_and_get_reads_it_back(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    a, b = Item("pen", 3), Item("cup", note="blue")
    a.insert(conn)
    insert(b, conn)
    assert isinstance(a.id, int) and b.id == a.id + 1
    assert Item.get(conn, b.id) == Item("cup", 0, "blue", b.id)
    assert conn.query_one(
        f'SELECT name, quantity, note FROM "{Item.__chopin_table__.name}" WHERE id = $1', (a.id,)
    ) == (
        "pen",
        3,
        None,
    )
    assert Item.get_or_none(conn, 999_999) is None
    with pytest.raises(NotFound, match="999999"):
        Item.get(conn, 999_999)
    with pytest.raises(chopin_pg.UniqueViolation):
        Item("pen").insert(conn)


def test_update_delete_refresh(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    item = Item("pen", 1)
    item.insert(conn)
    item.quantity = 10
    item.note = "restocked"
    item.update(conn)
    assert conn.query_one(f'SELECT quantity, note FROM "{Item.__chopin_table__.name}"') == (10, "restocked")
    conn.execute(f'UPDATE "{Item.__chopin_table__.name}" SET quantity = 42')
    item.refresh(conn)
    assert item.quantity == 42
    item.delete(conn)
    assert conn.query_scalar(f'SELECT count(*) FROM "{Item.__chopin_table__.name}"') == 0
    with pytest.raises(NotFound):
        item.delete(conn)
    with pytest.raises(NotFound):
        item.update(conn)
    with pytest.raises(NotFound):
        item.refresh(conn)
    with pytest.raises(ModelError, match="primary key id is None"):
        Item("new").update(conn)


def test_upsert_on_primary_key_and_on_unique(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    table = names("stock")

    @model(table=table)
    @dataclass
    class Stock:
        sku: str = column(primary_key=True)
        quantity: int = 0
        label: str = column(unique=True, default="")
        updated: dt.datetime | None = column(server_default="now()", default=None)

    create_table(conn, Stock)
    s = Stock("A1", 5, "first")
    s.upsert(conn)
    assert isinstance(s.updated, dt.datetime)
    Stock("A1", 7, "second").upsert(conn)
    assert conn.query(f'SELECT sku, quantity, label FROM "{table}"') == [("A1", 7, "second")]
    Stock("B2", 9, "second").upsert(conn, on="label")  # the label's row now has sku B2
    assert conn.query(f'SELECT sku, quantity, label FROM "{table}"') == [("B2", 9, "second")]
    Stock("C3", 1, "second").upsert(conn, constraint=f"{table}_label_key")  # the constraint by name
    assert conn.query(f'SELECT sku, quantity, label FROM "{table}"') == [("C3", 1, "second")]
    with pytest.raises(ModelError, match="no field 'nope'"):
        Stock("C3").upsert(conn, on="nope")
    with pytest.raises(ModelError, match="not both"):
        Stock("C3").upsert(conn, on="label", constraint="x")


def test_upsert_with_generated_key(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    item = Item("pen", 1)
    item.upsert(conn)  # no id yet: a plain insert
    first_id = item.id
    item.quantity = 5
    item.upsert(conn)  # id given: OVERRIDING SYSTEM VALUE, conflict on the key -> update
    assert item.id == first_id
    assert [tuple(r) for r in conn.query(f'SELECT id, quantity FROM "{Item.__chopin_table__.name}"')] == [(first_id, 5)]


def test_insert_and_upsert_on_one_class_in_both_orders(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    # insert() and upsert() once shared a cached statement: the second of the two on a class got the other's SQL.
    # Two statement shapes (status left to the server or given) so each order starts from an empty cache entry.
    @model(table=names("tickets"))
    @dataclass
    class Ticket:
        name: str = column(unique=True)
        status: str | None = column(server_default="'new'", default=None)
        id: int | None = column(primary_key=True, generated=True, default=None)

    create_table(conn, Ticket)
    table = Ticket.__chopin_table__.name
    # Order 1, status left to the server: upsert, then insert.
    a = Ticket("a")
    a.upsert(conn)
    b = Ticket("b")
    b.insert(conn)  # once: wrote and committed the row, then IndexError with id left None
    # Order 2, status given: insert, then upsert.
    c = Ticket("c", "open")
    c.insert(conn)
    d = Ticket("d", "open")
    d.upsert(conn)  # once: "INSERT ... RETURNING ... ON CONFLICT ... RETURNING ..." (42601)
    made = (a, b, c, d)
    assert all(isinstance(t.id, int) for t in made) and len({t.id for t in made}) == 4
    assert (a.status, b.status) == ("new", "new")
    rows = [tuple(r) for r in conn.query(f'SELECT id, name, status FROM "{table}" ORDER BY name')]
    assert rows == [(t.id, t.name, t.status) for t in made]


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@dataclass
class Address:
    street: str
    city: str


def test_types_round_trip(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    table = names("people")
    conn.execute(f"CREATE TYPE \"{table}_enum\" AS ENUM ('happy', 'sad')")

    @model(table=table)
    @dataclass
    class Person:
        id: uuid.UUID = column(primary_key=True, server_default="gen_random_uuid()", default=None)
        born: dt.date = dt.date(2000, 1, 2)
        price: Decimal = Decimal("1.50")
        tags: list[str] = column(default_factory=list)
        extra: dict[str, Any] = column(default_factory=dict)
        address: Address | None = None
        mood: Mood = column(sql_type=f"{table}_enum", default=Mood.HAPPY)

    create_table(conn, Person)
    p = Person(tags=["a", "b,c"], extra={"k": [1, 2]}, address=Address("Main St", "Paris"), mood=Mood.SAD)
    p.insert(conn)
    assert isinstance(p.id, uuid.UUID)
    got = Person.get(conn, p.id)
    assert got == p
    assert isinstance(got.address, Address) and got.mood is Mood.SAD
    assert conn.query_one(f"SELECT address->>'city', mood::text FROM \"{table}\"") == ("Paris", "sad")
    # insert_many through COPY: jsonb, arrays and enums in the text format
    Person.insert_many(conn, [Person(tags=["x"], extra={"n": i}, address=Address("s", str(i))) for i in range(3)])
    rows = Person.query().filter("extra ? 'n'").order_by("(extra->>'n')::int").all(conn)
    assert [r.address for r in rows] == [Address("s", "0"), Address("s", "1"), Address("s", "2")]
    assert all(r.mood is Mood.HAPPY and r.tags == ["x"] for r in rows)


def test_insert_many_copy_and_values(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    assert Item.insert_many(conn, []) == 0
    assert Item.insert_many(conn, [Item(f"c{i}", i) for i in range(2500)]) == 2500
    batch = [Item(f"v{i}", i, note="n") for i in range(25)]
    assert Item.insert_many(conn, batch, returning=True, batch_size=10) == 25
    ids = [b.id for b in batch]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 25
    table = Item.__chopin_table__.name
    assert conn.query_scalar(f'SELECT count(*) FROM "{table}"') == 2525
    for b in batch[::7]:
        assert conn.query_one(f'SELECT name, quantity FROM "{table}" WHERE id = $1', (b.id,)) == (b.name, b.quantity)
    # explicit identity values: VALUES ... OVERRIDING SYSTEM VALUE, every column a parameter
    assert Item.insert_many(conn, [Item(f"x{i}", i, id=10_000 + i) for i in range(3)]) == 3
    assert Item.get(conn, 10_002) == Item("x2", 2, None, 10_002)
    with pytest.raises(ModelError, match="batch_size"):
        Item.insert_many(conn, [Item("z")], returning=True, batch_size=0)


def test_composite_primary_key(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    @model(table=names("lines"))
    @dataclass
    class Line:
        order_id: int = column(primary_key=True)
        line: int = column(primary_key=True)
        qty: int = 1

    create_table(conn, Line)
    Line(1, 1).insert(conn)
    Line(1, 2, 5).insert(conn)
    assert Line.get(conn, (1, 2)) == Line(1, 2, 5)
    with pytest.raises(ModelError, match="2 columns"):
        Line.get(conn, 1)


def test_executors_pool_guard_and_transaction(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    with chopin_pg.PgPool.connect(DSN, 2) as pool:
        Item("from-pool").insert(pool)
        assert pool.stats().active == 0  # checked out for the statement only
        guard = pool.get()
        Item("from-guard").insert(guard)
        guard.release()
        with transaction(pool) as tx:
            Item("from-tx").insert(tx)
            assert pool.stats().active == 1
        assert pool.stats().active == 0
    assert sorted(i.name for i in Item.query().all(conn)) == ["from-guard", "from-pool", "from-tx"]
    with pytest.raises(Exception, match="executor: expected"):
        Item("x").insert(object())  # type: ignore[arg-type]


def test_update_many_pipelines_updates_by_key(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    items = [Item(f"i{i}", i) for i in range(50)]
    Item.insert_many(conn, items, returning=True)
    for item in items:
        item.quantity += 1000
    gone = items.pop()
    gone.delete(conn)
    assert Item.update_many(conn, [*reversed(items), gone]) == 49  # the deleted row is not counted
    table = Item.__chopin_table__.name
    assert conn.query_scalar(f'SELECT min(quantity) FROM "{table}"') == 1000
    assert Item.update_many(conn, []) == 0


def test_model_base_class_gives_the_same_methods(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    from chopin_orm import Model

    @model(table=names("typed"))
    @dataclass
    class Typed(Model):
        label: str
        id: int | None = column(primary_key=True, generated=True, default=None)

    create_table(conn, Typed)
    t = Typed("x")
    t.insert(conn)
    assert Typed.get(conn, t.id) == t
    assert Typed.query().filter(Typed.label == "x").one(conn) == t


def test_insert_many_mixed_server_defaults(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    @model(table=names("defaults"))
    @dataclass
    class Stamp:
        label: str
        status: str | None = column(server_default="'new'", default=None)
        id: int | None = column(primary_key=True, generated=True, default=None)

    create_table(conn, Stamp)
    # Some rows give the column, some leave it to the server: DEFAULT per row, not NULL.
    assert Stamp.insert_many(conn, [Stamp("a"), Stamp("b", "done"), Stamp("c")]) == 3
    rows = {s.label: s.status for s in Stamp.query().all(conn)}
    assert rows == {"a": "new", "b": "done", "c": "new"}
    # Every row leaves it: COPY without the column.
    assert Stamp.insert_many(conn, [Stamp("d"), Stamp("e")]) == 2
    assert Stamp.query().filter(Stamp.status == "new").count(conn) == 4
    # Explicit identity values go in with OVERRIDING SYSTEM VALUE.
    assert Stamp.insert_many(conn, [Stamp("f", id=1000)]) == 1
    assert Stamp.get(conn, 1000).label == "f"


def test_frozen_slots_model_and_schema_qualified_table(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    schema = names("schema")
    conn.execute(f'CREATE SCHEMA "{schema}"')
    try:

        @model(table="frozen", schema=schema)
        @dataclass(frozen=True, slots=True)
        class Frozen:
            label: str
            created: dt.datetime | None = column(server_default="now()", default=None)
            id: int | None = column(primary_key=True, generated=True, default=None)

        conn.execute(
            f'CREATE TABLE "{schema}"."frozen" (label text NOT NULL, created timestamptz DEFAULT now(),'
            " id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY)"
        )
        f = Frozen("ice")
        f.insert(conn)  # RETURNING fills a frozen, slotted instance
        assert isinstance(f.id, int) and isinstance(f.created, dt.datetime)
        conn.execute(f'UPDATE "{schema}"."frozen" SET label = $1', ("melted",))
        f.refresh(conn)
        assert f.label == "melted"
        assert Frozen.query().filter(Frozen.label == "melted").one(conn) == f
        assert [x.label for x in Frozen.query().iter(conn)] == ["melted"]
    finally:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_generated_source_shows_in_tracebacks() -> None:
    import linecache
    import traceback

    @model(table="conv")
    @dataclass
    class Conv:
        mood: Mood
        id: int = column(primary_key=True, default=0)

    with pytest.raises(ValueError) as info:
        model_info(Conv).decode(("furious", 1))  # not a Mood value: the generated converter call raises
    frames = traceback.extract_tb(info.value.__traceback__)
    generated = [f for f in frames if f.filename.startswith("<chopin_orm decode")]
    assert generated and "_from0" in (generated[0].line or "")
    assert linecache.getline(generated[0].filename, 1).startswith("def decode(v):")


def test_get_many_pipelines_one_select_per_key(conn: chopin_pg.Connection, names: Callable[[str], str]) -> None:
    Item = item_model(names("items"))
    create_table(conn, Item)
    items = [Item(f"g{i}", i) for i in range(10)]
    Item.insert_many(conn, items, returning=True)
    keys = [items[3].id, 999_999, items[0].id, items[3].id]
    got = Item.get_many(conn, keys)
    assert got == [items[3], None, items[0], items[3]]  # in key order, duplicates kept, None when missing
    assert Item.get_many(conn, []) == []
    assert conn.transaction_status == "I"
