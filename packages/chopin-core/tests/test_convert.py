"""from_data / from_query: typed dataclasses from decoded JSON and query pairs, with paths in errors."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Literal, Optional

import pytest
from chopin_core.convert import from_data, from_query
from chopin_core.errors import ChopinError, ExtractError


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Item:
    name: str
    price: float
    qty: int = 1


@dataclasses.dataclass
class Address:
    city: str
    zip: str | None = None


@dataclasses.dataclass
class Order:
    id: int
    items: list[Item]
    address: Address
    color: Color
    status: Literal["new", "paid"]
    tags: dict[str, int] = dataclasses.field(default_factory=dict)
    note: Optional[str] = None  # noqa: UP045 - typing.Optional must work too
    gift: bool = False


ORDER = {
    "id": 7,
    "items": [{"name": "pen", "price": 1.5}, {"name": "ink", "price": 3, "qty": 2}],
    "address": {"city": "Warsaw"},
    "color": "green",
    "status": "paid",
    "tags": {"a": 1, "b": 2},
    "note": None,
    "gift": True,
}


def problems(tp: Any, value: Any) -> list[str]:
    with pytest.raises(ExtractError) as info:
        from_data(tp, value)
    assert info.value.status == 422
    return info.value.message.split("\n")


# -- from_data: happy path ------------------------------------------------------------------------


def test_nested_dataclasses_lists_optional_literal_enum_dict() -> None:
    order = from_data(Order, ORDER)
    assert order == Order(
        id=7,
        items=[Item("pen", 1.5), Item("ink", 3.0, 2)],
        address=Address("Warsaw"),
        color=Color.GREEN,
        status="paid",
        tags={"a": 1, "b": 2},
        note=None,
        gift=True,
    )
    assert type(order.items[1].price) is float  # JSON integers widen to float


def test_defaults_fill_missing_optional_fields() -> None:
    order = from_data(Order, {k: v for k, v in ORDER.items() if k not in ("tags", "note", "gift")})
    assert order.tags == {}
    assert order.note is None
    assert order.gift is False


def test_unknown_keys_are_ignored() -> None:
    assert from_data(Address, {"city": "Oslo", "extra": 1}) == Address("Oslo")


def test_optional_with_a_value() -> None:
    assert from_data(Address, {"city": "Oslo", "zip": "0150"}).zip == "0150"
    assert from_data(Optional[int], 3) == 3  # noqa: UP045
    assert from_data(int | None, None) is None


def test_int_enum_and_plain_types() -> None:
    assert from_data(Level, 2) is Level.HIGH
    assert from_data(list[int], [1, 2]) == [1, 2]
    assert from_data(tuple[int, ...], [1, 2]) == (1, 2)
    assert from_data(set[str], ["a", "a"]) == {"a"}
    assert from_data(dict[str, list[int]], {"x": [1]}) == {"x": [1]}
    assert from_data(Any, {"anything": [1]}) == {"anything": [1]}
    assert from_data(object, 1) == 1
    assert from_data(type(None), None) is None


def test_union_tries_each_member() -> None:
    assert from_data(int | str, "x") == "x"
    assert from_data(int | str, 1) == 1
    assert from_data(list[Item] | None, [{"name": "a", "price": 1}]) == [Item("a", 1.0)]


def test_top_level_list_of_dataclasses() -> None:
    assert from_data(list[Address], [{"city": "A"}, {"city": "B"}]) == [Address("A"), Address("B")]


def test_init_false_fields_are_not_read() -> None:
    @dataclasses.dataclass
    class Counted:
        name: str
        count: int = dataclasses.field(default=0, init=False)

    assert from_data(Counted, {"name": "x", "count": "ignored"}).count == 0


# -- from_data: problems -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "value", "message"),
    [
        (
            list[Item],
            [{"name": "a", "price": 1}, {"name": "b", "price": "9"}],
            "$[1].price: expected number, got string",
        ),
        (float, True, "$: expected number, got boolean"),
        (int, 1.5, "$: expected integer, got number"),
        (int, True, "$: expected integer, got boolean"),
        (int, "1", "$: expected integer, got string"),
        (str, 1, "$: expected string, got number"),
        (str, None, "$: expected string, got null"),
        (bool, 0, "$: expected boolean, got number"),
        (list[int], {"a": 1}, "$: expected array, got object"),
        (dict[str, int], [1], "$: expected object, got array"),
        (Item, "pen", "$: expected object, got string"),
        (type(None), 0, "$: expected null, got number"),
        (dict[str, int], {"k": "v"}, "$.k: expected integer, got string"),
        (Color, "blue", "$: expected one of ['red', 'green'], got 'blue'"),
        (Color, ["red"], "$: expected one of ['red', 'green'], got ['red']"),
        (Literal["a", "b"], "c", "$: expected one of ['a', 'b'], got 'c'"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("$") else None,
)
def test_type_mismatch_message(tp: Any, value: Any, message: str) -> None:
    assert problems(tp, value) == [message]


def test_message_names_the_full_json_path() -> None:
    @dataclasses.dataclass
    class Cart:
        items: list[Item]

    value = {"items": [{"name": "a", "price": 1}, {"name": "b", "price": "12.50"}]}
    assert problems(Cart, value) == ["$.items[1].price: expected number, got string"]


def test_nested_dataclass_path() -> None:
    order = dict(ORDER, address={"city": 5})
    assert problems(Order, order) == ["$.address.city: expected string, got number"]


def test_missing_required_field() -> None:
    assert problems(Item, {"price": 1}) == ["$.name: required field missing"]
    order = dict(ORDER, items=[{"price": 2}])
    assert problems(Order, order) == ["$.items[0].name: required field missing"]


def test_every_problem_is_reported_one_per_line() -> None:
    value = {"id": "7", "items": [{"name": 1, "price": "x"}], "color": "blue", "status": "new"}
    assert problems(Order, value) == [
        "$.id: expected integer, got string",
        "$.items[0].name: expected string, got number",
        "$.items[0].price: expected number, got string",
        "$.address: required field missing",
        "$.color: expected one of ['red', 'green'], got 'blue'",
    ]


def test_union_mismatch_names_each_member() -> None:
    (message,) = problems(int | list[int], "x")
    assert message.startswith("$: expected ")
    assert message.endswith(", got string")


def test_unsupported_type_is_reported() -> None:
    class Opaque:
        pass

    (message,) = problems(Opaque, {"a": 1})
    assert message.startswith("$: unsupported type")


def test_extract_error_is_a_chopin_error() -> None:
    with pytest.raises(ChopinError):
        from_data(int, "x")


def test_optional_mismatch_message_uses_json_names() -> None:
    assert problems(Address, {"city": "x", "zip": 1}) == ["$.zip: expected string or null, got number"]


def test_literal_does_not_confuse_booleans_and_numbers() -> None:
    assert problems(Literal[1, 2], True) == ["$: expected one of [1, 2], got True"]


# -- from_query ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Search:
    q: str
    page: int = 1
    ratio: float = 1.0
    exact: bool = False
    tags: list[str] = dataclasses.field(default_factory=list)
    ids: list[int] = dataclasses.field(default_factory=list)
    limit: Optional[int] = None  # noqa: UP045
    color: Color | None = None


def test_query_conversions() -> None:
    pairs = [
        ("q", "shoes"),
        ("page", "3"),
        ("ratio", "0.25"),
        ("exact", "true"),
        ("tags", "a"),
        ("tags", "b"),
        ("ids", "1"),
        ("ids", "2"),
        ("limit", "10"),
        ("color", "red"),
    ]
    assert from_query(Search, pairs) == Search("shoes", 3, 0.25, True, ["a", "b"], [1, 2], 10, Color.RED)


def test_query_defaults_when_absent() -> None:
    assert from_query(Search, [("q", "x")]) == Search("x")


def test_query_scalar_last_repeat_wins() -> None:
    assert from_query(Search, [("q", "first"), ("q", "last")]).q == "last"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        *(("1", True), ("true", True), ("True", True), ("YES", True), ("on", True)),
        *(("0", False), ("false", False), ("No", False), ("off", False)),
    ],
)
def test_query_bool_words(raw: str, value: bool) -> None:
    assert from_query(Search, [("q", ""), ("exact", raw)]).exact is value


def test_query_missing_required() -> None:
    with pytest.raises(ExtractError) as info:
        from_query(Search, [("page", "2")])
    assert info.value.status == 422
    assert info.value.message == "query parameter 'q': required, missing"


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("page", "two", "query parameter 'page': expected int, got 'two'"),
        ("page", "", "query parameter 'page': expected int, got ''"),
        ("ratio", "half", "query parameter 'ratio': expected float, got 'half'"),
        ("exact", "maybe", "query parameter 'exact': expected bool, got 'maybe'"),
        ("ids", "x", "query parameter 'ids': expected int, got 'x'"),
        ("limit", "many", "query parameter 'limit': expected int, got 'many'"),
        ("color", "blue", "query parameter 'color': expected Color, got 'blue'"),
    ],
)
def test_query_malformed_value(name: str, raw: str, message: str) -> None:
    with pytest.raises(ExtractError) as info:
        from_query(Search, [("q", "x"), (name, raw)])
    assert info.value.status == 422
    assert info.value.message == message


def test_query_reports_every_problem() -> None:
    with pytest.raises(ExtractError) as info:
        from_query(Search, [("page", "x"), ("ratio", "y")])
    assert info.value.message.split("\n") == [
        "query parameter 'q': required, missing",
        "query parameter 'page': expected int, got 'x'",
        "query parameter 'ratio': expected float, got 'y'",
    ]


def test_query_needs_a_dataclass() -> None:
    with pytest.raises(TypeError, match="dataclass"):
        from_query(dict, [])  # type: ignore[type-var]
