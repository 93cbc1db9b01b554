"""Expressions and raw fragments compile to SQL with out-of-band parameters (no database)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from chopin_orm import OrmError, Raw, col, column, model
from chopin_orm.expr import Params, quote_identifier, renumber


@model(table="expr_items")
@dataclass
class Item:
    name: str
    quantity: int = 0
    id: int | None = column(primary_key=True, generated=True, default=None)


def compile_(expr: object) -> tuple[str, list[object]]:
    params = Params()
    return expr.compile(params), params.values  # type: ignore[attr-defined]


def test_comparisons_become_parameters() -> None:
    sql, values = compile_((Item.quantity < 5) & ~(Item.name == "a'; DROP TABLE x") | Item.id.is_null())
    assert sql == (
        '((("expr_items"."quantity" < $1) AND (NOT ("expr_items"."name" = $2))) OR ("expr_items"."id" IS NULL))'
    )
    assert values == [5, "a'; DROP TABLE x"]


def test_none_comparison_is_is_null_and_in_is_one_array() -> None:
    assert compile_(Item.name == None)[0] == '("expr_items"."name" IS NULL)'  # noqa: E711
    assert compile_(Item.name != None)[0] == '("expr_items"."name" IS NOT NULL)'  # noqa: E711
    assert compile_(Item.id.in_([1, 2, 3])) == ('("expr_items"."id" = ANY($1))', [[1, 2, 3]])
    assert compile_(Item.id.in_([])) == ("FALSE", [])
    assert compile_(col(Item.name).like("a%")) == ('("expr_items"."name" LIKE $1)', ["a%"])


def test_raw_fragments_are_renumbered() -> None:
    params = Params()
    params.add("first")
    sql = renumber("a = $2 AND b = $1 AND c = '$1' AND \"$1\" = $$ $1 $$ -- $1", ("x", "y"), params)
    assert sql == "a = $3 AND b = $2 AND c = '$1' AND \"$1\" = $$ $1 $$ -- $1"
    assert params.values == ["first", "x", "y"]
    assert compile_(Raw("q < $1", 3) & (Item.quantity > 1)) == ('((q < $1) AND ("expr_items"."quantity" > $2))', [3, 1])


def test_raw_fragment_errors() -> None:
    with pytest.raises(OrmError, match=r"\$2 but 1 parameter"):
        renumber("a = $2", (1,), Params())
    with pytest.raises(OrmError, match="2 parameter"):
        renumber("a = $1", (1, 2), Params())
    with pytest.raises(OrmError, match="unterminated"):
        renumber("a = $tag$ x", (), Params())


def test_expressions_refuse_python_truth() -> None:
    with pytest.raises(OrmError, match="no truth value"):
        bool(Item.quantity < 3)
    with pytest.raises(OrmError, match="expected an SQL expression"):
        (Item.quantity < 3) & True  # type: ignore[operator]
    with pytest.raises(OrmError, match="expected a model column"):
        col(3)


def test_quote_identifier() -> None:
    assert quote_identifier('a"b') == '"a""b"'
    with pytest.raises(OrmError):
        quote_identifier("")
