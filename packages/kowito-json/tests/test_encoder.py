"""Encoder: generated conversion, native orjson path, options, fallbacks."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid

import kowito_json as kj
import orjson
import pytest
from kj_models import Cat, Color, Everything, Item, Level, Node, Order, Pet, Profile, Settings, UserId


def everything() -> Everything:
    return Everything(
        i=1,
        f=2.5,
        s="x",
        b=True,
        n=None,
        raw=b"hi",
        ints=[1, 2],
        pair=(1, "a"),
        many=(1.5,),
        unique={"a"},
        frozen=frozenset({1}),
        mapping={"k": 1},
        maybe=None,
        either="e",
        lit=3,
        color=Color.BLUE,
        level=Level.HIGH,
        when=datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC),
        day=datetime.date(2024, 5, 6),
        clock=datetime.time(7, 8, 9),
        uid=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        money=decimal.Decimal("12.50"),
    )


def test_every_type_encodes_and_round_trips() -> None:
    value = everything()
    data = kj.encode(value)
    assert orjson.loads(data) == {
        "i": 1,
        "f": 2.5,
        "s": "x",
        "b": True,
        "n": None,
        "raw": "aGk=",
        "ints": [1, 2],
        "pair": [1, "a"],
        "many": [1.5],
        "unique": ["a"],
        "frozen": [1],
        "mapping": {"k": 1},
        "maybe": None,
        "either": "e",
        "lit": 3,
        "color": "blue",
        "level": 2,
        "when": "2024-05-06T07:08:09.123456+00:00",
        "day": "2024-05-06",
        "clock": "07:08:09",
        "uid": "12345678-1234-5678-1234-567812345678",
        "money": "12.50",
    }
    assert kj.decode(data, type=Everything) == value


def test_native_path_used_when_no_option_needs_code() -> None:
    assert kj.Encoder(Node).native
    assert not kj.Encoder(Item).native  # slots: generated code beats orjson there
    assert not kj.Encoder(Order).native  # holds Items
    assert not kj.Encoder(Everything).native  # datetime.time needs generated code
    assert not kj.Encoder(Profile).native
    assert not kj.Encoder(Settings).native
    order = Order(UserId(1), [Item(name="a", price=1.0)])
    assert kj.Encoder(Order).encode(order) == orjson.dumps(kj.Encoder(Order).to_builtins(order))


def test_rename_and_omit_none() -> None:
    profile = Profile(user_id=1, display_name="Ann")
    assert kj.encode(profile) == b'{"userId":1,"displayName":"Ann"}'
    assert kj.encode(Profile(user_id=1, display_name="Ann", home_page="h", legacy=3)) == (
        b'{"userId":1,"displayName":"Ann","homePage":"h","LEGACY":3}'
    )


def test_omit_defaults_and_factories() -> None:
    assert kj.encode(Settings()) == b"{}"
    assert kj.encode(Settings(page_size=5, labels=["a"])) == b'{"page-size":5,"labels":["a"]}'


def test_renamed_class_inside_a_list_or_any() -> None:
    profiles = [Profile(user_id=1, display_name="A")]
    assert kj.encode(profiles) == b'[{"userId":1,"displayName":"A"}]'
    assert kj.Encoder(list[Profile]).encode(profiles) == b'[{"userId":1,"displayName":"A"}]'
    assert (
        kj.encode({"p": profiles[0], "d": decimal.Decimal("1.5")}) == b'{"p":{"userId":1,"displayName":"A"},"d":"1.5"}'
    )


def test_union_members_encoded_by_runtime_type() -> None:
    assert kj.encode(Pet(Cat("cat", 9))) == b'{"pet":{"kind":"cat","lives":9},"owner":null}'


def test_recursive() -> None:
    tree = Node(1, [Node(2)])
    assert kj.encode(tree) == b'{"value":1,"children":[{"value":2,"children":[]}]}'


def test_big_integers_fall_back_exactly() -> None:
    assert kj.encode(Node(2**70)) == b'{"value":1180591620717411303424,"children":[]}'
    assert kj.encode([2**70, "é"]) == '[1180591620717411303424,"é"]'.encode()


def test_mismatched_value_is_an_encode_error() -> None:
    with pytest.raises(kj.EncodeError):
        kj.Encoder(Settings).encode(Settings(page_size=object()))  # type: ignore[arg-type]
    with pytest.raises(kj.EncodeError):
        kj.encode(object())
    with pytest.raises(TypeError):
        kj.Encoder(Item).to_builtins(3)  # type: ignore[arg-type]


def test_source_shows_generated_code() -> None:
    source = kj.Encoder(Profile).source
    assert "def encode_Profile(o):" in source
    assert "'userId'" in source


def test_json_names_outside_the_safe_alphabet_travel_as_globals() -> None:
    @dataclasses.dataclass
    class Odd:
        x: int = kj.field(default=1, rename='it\'s "odd"\n')

    encoder = kj.Encoder(Odd)
    assert "odd" not in encoder.source
    assert orjson.loads(encoder.encode(Odd())) == {'it\'s "odd"\n': 1}
    assert kj.decode(encoder.encode(Odd(5)), type=Odd) == Odd(5)


@dataclasses.dataclass
class Underscored:
    a: int
    _b: int


def test_underscore_fields_are_written() -> None:
    # orjson's native path skips "_" keys of __dict__; such a class must use generated code.
    assert not kj.Encoder(Underscored).native
    assert kj.encode(Underscored(1, 2)) == b'{"a":1,"_b":2}'
    assert kj.decode(kj.encode(Underscored(1, 2)), type=Underscored) == Underscored(1, 2)


def test_containers_of_native_and_generated_classes_in_both_orders() -> None:
    # encode() hands lists of native dataclasses to orjson as they are; a class with
    # options anywhere in the list must still go through its generated encoder.
    nodes = [Node(1), Node(2, [Node(3)])]
    profile = Profile(user_id=1, display_name="A")
    native = b'[{"value":1,"children":[]},{"value":2,"children":[{"value":3,"children":[]}]}]'
    mixed = b'[{"value":1,"children":[]},{"userId":1,"displayName":"A"}]'
    for _ in range(2):
        assert kj.encode(nodes) == native
        assert kj.encode(tuple(nodes)) == native
        assert kj.encode([nodes[0], profile]) == mixed
        assert kj.encode([profile, nodes[0]]) == b'[{"userId":1,"displayName":"A"},{"value":1,"children":[]}]'
        assert (
            kj.encode({"n": nodes[0], "p": profile})
            == b'{"n":{"value":1,"children":[]},"p":{"userId":1,"displayName":"A"}}'
        )
        assert kj.encode({"n": nodes[0], "x": None}) == b'{"n":{"value":1,"children":[]},"x":null}'
        assert kj.encode([nodes[0], 2**70]) == b'[{"value":1,"children":[]},1180591620717411303424]'
        assert kj.encode([]) == b"[]"


def test_first_meeting_with_a_class_inside_a_list() -> None:
    @dataclasses.dataclass
    class Fresh:
        when: datetime.datetime
        uid: uuid.UUID

    value = Fresh(datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC), uuid.UUID(int=1))
    expected = b'[{"when":"2024-01-02T00:00:00+00:00","uid":"00000000-0000-0000-0000-000000000001"}]'
    assert kj.encode([value]) == expected
    assert kj.encode([value]) == expected
    assert kj.encode(value) == expected[1:-1]

    @dataclasses.dataclass
    class Unsupported:
        x: complex

    with pytest.raises(kj.EncodeError):
        kj.encode([Unsupported(1j)])


def test_native_encode_errors_stay_encode_errors() -> None:
    with pytest.raises(kj.EncodeError, match="cannot encode Node as Node"):
        kj.encode(Node(object()))  # type: ignore[arg-type]
    with pytest.raises(kj.EncodeError, match="cannot encode list"):
        kj.encode([Node(1), object()])


@dataclasses.dataclass(slots=True)
class Box:
    maybe: Item | None
    inner: Item
    many: list[Item]


def test_nested_classes_written_inline_give_the_same_output() -> None:
    tree = Node(1, [Node(2, [Node(3)])])
    nested = {"value": 1, "children": [{"value": 2, "children": [{"value": 3, "children": []}]}]}
    assert kj.Encoder(Node).to_builtins(tree) == nested  # recursive: calls itself, not inlined
    item = Item(name="a", price=1.0)
    item_json = b'{"name":"a","price":1.0,"qty":0,"tags":[]}'
    assert "'name': _x" in kj.Encoder(Order).source  # Item written inside Order's list comprehension
    assert kj.encode(Order(UserId(1), [item])) == b'{"id":1,"items":[' + item_json + b'],"note":null}'
    assert kj.encode(Box(None, item, [item, item])) == (
        b'{"maybe":null,"inner":' + item_json + b',"many":[' + item_json + b"," + item_json + b"]}"
    )
    assert kj.encode(Box(item, item, [])) == b'{"maybe":' + item_json + b',"inner":' + item_json + b',"many":[]}'
    one = kj.encode(Box(item, item, []))
    assert kj.encode([Box(item, item, [])] * 2) == b"[" + one + b"," + one + b"]"  # one class: one call per item
    with pytest.raises(kj.EncodeError):
        kj.encode(Box(None, None, []))  # type: ignore[arg-type]
    with pytest.raises(kj.EncodeError):
        kj.encode([Box(None, None, [])])  # type: ignore[arg-type]
