"""@model declarations: TableMeta contents, type mapping, Column attributes, declaration errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from chopin_orm import Column, ForeignKey, ModelError, column, model, model_info, table_meta


@model(table="items")
@dataclass
class Item:
    name: str = column(unique=True)
    quantity: int = column(default=0, index=True)
    note: str | None = None
    id: int | None = column(primary_key=True, generated=True, default=None)


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@dataclass
class Address:
    street: str
    city: str


@model(table="people")
@dataclass
class Person:
    id: uuid.UUID = column(primary_key=True, server_default="gen_random_uuid()")
    born: dt.date
    seen: dt.datetime
    at: dt.time
    span: dt.timedelta
    price: Decimal
    ratio: float
    ok: bool
    blob: bytes
    tags: list[str]
    scores: list[int] | None
    extra: dict[str, Any]
    address: Address
    mood: Mood
    code: str = column(name="person_code", sql_type="character varying(20)", default="x")
    item_id: int | None = column(references=Item, on_delete="cascade", default=None)
    other: int | None = column(references="things.thing_id", default=None)


def test_table_meta_of_the_cli_declaration() -> None:
    meta = table_meta(Item)
    assert meta.name == "items" and meta.schema is None and meta.primary_key == ("id",)
    cols = {c.name: c for c in meta.columns}
    assert [c.name for c in meta.columns] == ["name", "quantity", "note", "id"]
    assert cols["name"].sql_type == "text" and cols["name"].unique and not cols["name"].nullable
    assert cols["quantity"].sql_type == "integer" and cols["quantity"].index
    assert cols["note"].nullable
    assert cols["id"].identity and cols["id"].primary_key and not cols["id"].nullable


def test_type_mapping_spelled_as_format_type() -> None:
    cols = {c.name: c for c in table_meta(Person).columns}
    expected = {
        "id": "uuid",
        "born": "date",
        "seen": "timestamp with time zone",
        "at": "time without time zone",
        "span": "interval",
        "price": "numeric",
        "ratio": "double precision",
        "ok": "boolean",
        "blob": "bytea",
        "tags": "text[]",
        "scores": "integer[]",
        "extra": "jsonb",
        "address": "jsonb",
        "mood": "mood",
        "person_code": "character varying(20)",
        "item_id": "integer",
        "other": "integer",
    }
    assert {name: c.sql_type for name, c in cols.items()} == expected
    assert cols["id"].default_sql == "gen_random_uuid()"
    assert cols["mood"].enum_values == ("happy", "sad")
    assert cols["person_code"].attr == "code"
    assert cols["item_id"].references == ForeignKey("items", "id", "CASCADE")
    assert cols["other"].references == ForeignKey("things", "thing_id", None)
    assert cols["scores"].nullable and not cols["tags"].nullable


def test_class_attributes_are_columns_and_instances_keep_values() -> None:
    assert isinstance(Item.quantity, Column)
    item = Item("pen", 2)
    assert item.quantity == 2 and item.note is None and item.id is None
    assert Item("a") == Item("a")  # dataclass eq unaffected
    assert dataclasses.asdict(item) == {"name": "pen", "quantity": 2, "note": None, "id": None}


def test_slots_and_frozen_models() -> None:
    @model(table="frozen_things")
    @dataclass(frozen=True, slots=True)
    class Thing:
        id: int = column(primary_key=True)
        label: str = "x"

    thing = Thing(1)
    assert thing.label == "x" and isinstance(Thing.label, Column)
    with pytest.raises(dataclasses.FrozenInstanceError):
        thing.label = "y"  # type: ignore[misc]
    decoded = model_info(Thing).decode((5, "five"))
    assert decoded == Thing(5, "five")


def test_generated_decoder_builds_instances() -> None:
    info = model_info(Item)
    obj = info.decode(("pen", 3, None, 7))
    assert obj == Item("pen", 3, None, 7)
    assert info.to_row(obj) == ("pen", 3, None, 7)


def test_not_a_dataclass() -> None:
    with pytest.raises(ModelError, match="not a dataclass"):

        @model(table="x")
        class Plain:
            pass


def test_unmappable_annotation_needs_sql_type() -> None:
    with pytest.raises(ModelError, match=r"Bad\.thing: no SQL type"):

        @model(table="bad")
        @dataclass
        class Bad:
            thing: set[int]

    @model(table="good")
    @dataclass
    class Good:
        thing: set[int] = column(sql_type="integer[]")

    assert table_meta(Good).columns[0].sql_type == "integer[]"


def test_declaration_errors() -> None:
    with pytest.raises(ModelError, match="on_delete"):
        column(references="a.b", on_delete="explode")
    with pytest.raises(ModelError, match="needs references"):
        column(on_delete="CASCADE")
    with pytest.raises(ModelError, match="identity"):

        @model(table="bad_identity")
        @dataclass
        class BadIdentity:
            id: str = column(primary_key=True, generated=True)

    with pytest.raises(ModelError, match="used twice"):

        @model(table="twice")
        @dataclass
        class Twice:
            a: int = column(name="x")
            b: int = column(name="x")

    with pytest.raises(ModelError, match="invalid table name"):

        @model(table='bad"name')
        @dataclass
        class BadName:
            a: int

    with pytest.raises(ModelError, match="not a chopin-orm model"):
        table_meta(Address)


def test_default_table_name_and_composite_options() -> None:
    @model(unique_together=(("a", "b"),), indexes=(("b",),))
    @dataclass
    class OrderLine:
        a: int = column(primary_key=True)
        b: int = column(primary_key=True)

    meta = table_meta(OrderLine)
    assert meta.name == "order_line" and meta.primary_key == ("a", "b")
    assert meta.unique_together == (("a", "b"),) and meta.indexes == (("b",),)
