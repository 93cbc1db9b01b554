"""Decoder: validation, building values, every problem reported with its path."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import sys
import uuid

import kowito_json as kj
import pytest
from kj_models import Cat, Color, Constrained, Dog, Everything, Item, Level, Node, Order, Pet, Positive, Profile, Search


def problems(data: bytes | str, tp: object, **options: object) -> list[tuple[str, str]]:
    with pytest.raises(kj.ValidationError) as info:
        kj.decode(data, type=tp, **options)  # type: ignore[arg-type]
    return info.value.errors


EVERYTHING = (
    b'{"i": 1, "f": 2, "s": "x", "b": true, "n": null, "raw": "aGk=", "ints": [1, 2], "pair": [1, "a"],'
    b' "many": [1.5], "unique": ["a", "a"], "frozen": [1], "mapping": {"k": 1}, "maybe": null, "either": "e",'
    b' "lit": 3, "color": "blue", "level": 2, "when": "2024-05-06T07:08:09.123456Z", "day": "2024-05-06",'
    b' "clock": "07:08:09", "uid": "12345678-1234-5678-1234-567812345678", "money": "12.50"}'
)


def test_every_supported_type_decodes() -> None:
    value = kj.decode(EVERYTHING, type=Everything)
    assert value == Everything(
        i=1,
        f=2.0,
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
    assert type(value.f) is float


def test_defaults_and_factories_apply() -> None:
    item = kj.decode(b'{"name": "a", "price": 1.5}', type=Item)
    assert item == Item(name="a", price=1.5, qty=0, tags=[])


def test_nested_paths_in_messages() -> None:
    data = b'{"id": 1, "items": [{"name": "a", "price": 1}, {"name": "b", "price": "x"}, {"price": 2, "qty": -1}]}'
    assert problems(data, Order) == [
        ("$.items[1].price", "expected number, got string"),
        ("$.items[2].name", "required field missing"),
        ("$.items[2].qty", "expected >= 0, got -1"),
    ]


def test_error_text_is_one_problem_per_line() -> None:
    with pytest.raises(kj.ValidationError) as info:
        kj.decode(b'{"items": 3}', type=Order)
    assert str(info.value) == "$.id: required field missing\n$.items: expected array, got number"
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, kj.KowitoJSONError)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"[1, 2", ("$", "invalid JSON")),
        (b'"\xff"', ("$", "invalid JSON")),
        (b"NaN", ("$", "invalid JSON")),
        (b"[]", ("$", "expected object, got array")),
        (b'{"value": true}', ("$.value", "expected integer, got boolean")),
        (b'{"value": 1.0}', ("$.value", "expected integer, got number")),
        (b'{"value": 1, "children": [{"value": "x"}]}', ("$.children[0].value", "expected integer, got string")),
    ],
)
def test_bad_input_is_a_validation_error(data: bytes, expected: tuple[str, str]) -> None:
    (path, message), *_ = problems(data, Node)
    assert path == expected[0]
    assert message.startswith(expected[1])


def test_recursive_types() -> None:
    tree = kj.decode(b'{"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}', type=Node)
    assert tree == Node(1, [Node(2, [Node(3)])])


def test_deep_nesting_is_a_validation_error() -> None:
    deep = b'{"value": 1, "children": [' * 2000 + b"]}" * 2000
    assert problems(deep, Node)[0][0] == "$"
    value: object = {"value": 1}
    for _ in range(sys.getrecursionlimit() + 10):
        value = {"value": 1, "children": [value]}
    with pytest.raises(kj.ValidationError, match="nesting too deep"):
        kj.Decoder(Node).from_builtins(value)


def test_integers_stay_exact() -> None:
    big = 2**70 + 1
    assert kj.decode(str(big).encode(), type=int) == big
    assert kj.decode(f'{{"value": {big}}}'.encode(), type=Node).value == big
    assert kj.decode(b"123456789012345678", type=int) == 123456789012345678


def test_nan_rejected_unless_allowed() -> None:
    decoder = kj.Decoder(float)
    with pytest.raises(kj.ValidationError, match="finite"):
        decoder.from_builtins(float("nan"))
    with pytest.raises(kj.ValidationError, match="finite"):
        decoder.from_builtins(float("inf"))
    assert kj.Decoder(float, allow_nan=True).from_builtins(float("inf")) == float("inf")
    assert problems(b"1e400", float)[0][1].startswith("invalid JSON")


def test_unknown_fields_ignored_or_rejected() -> None:
    assert kj.decode(b'{"name": "a", "price": 1, "extra": 1}', type=Item).name == "a"
    errors = problems(b'{"name": "a", "price": 1, "extra": 1, "a b": 2}', Item, forbid_unknown=True)
    assert errors == [("$.extra", "unknown field"), ('$["a b"]', "unknown field")]
    assert problems(b'{"userId": 1, "displayName": "x", "user_id": 2}', Profile) == [("$.user_id", "unknown field")]


def test_renamed_fields_decode_by_json_name() -> None:
    data = b'{"userId": 1, "displayName": "Ann", "homePage": null, "LEGACY": 5}'
    assert kj.decode(data, type=Profile) == Profile(user_id=1, display_name="Ann", home_page=None, legacy=5)


def test_tagged_union() -> None:
    assert kj.decode(b'{"pet": {"kind": "dog", "good": true}}', type=Pet).pet == Dog("dog", True)
    assert kj.decode(b'{"pet": {"kind": "cat", "lives": 9}}', type=Pet).pet == Cat("cat", 9)
    assert problems(b'{"pet": {"kind": "cow"}}', Pet) == [("$.pet.kind", "expected one of ['cat', 'dog'], got 'cow'")]
    assert problems(b'{"pet": {"lives": 1}}', Pet) == [("$.pet.kind", "required field missing")]
    assert problems(b'{"pet": {"kind": "cat", "lives": "x"}}', Pet) == [("$.pet.lives", "expected integer, got string")]
    assert problems(b'{"pet": {"kind": []}}', Pet)[0][0] == "$.pet.kind"


def test_untagged_union_prefers_exact_types() -> None:
    assert kj.decode(b"1", type=int | float) == 1
    assert type(kj.decode(b"1", type=float | int)) is int
    assert kj.decode(b"1.5", type=int | float) == 1.5
    assert kj.decode(b'"2024-01-02"', type=str | datetime.date) == datetime.date(2024, 1, 2)
    assert problems(b"true", int | str) == [("$", "expected integer or string, got true")]
    assert problems(b'[{"value": "x"}]', list[Node | int]) == [("$[0].value", "expected integer, got string")]


def test_constraints() -> None:
    assert kj.decode(b'{"code": "AB", "ratio": 0.5}', type=Constrained).code == "AB"
    errors = problems(b'{"code": "abcde", "ratio": 1, "items": [1, 2, 3]}', Constrained)
    assert errors == [
        ("$.code", "expected length <= 4, got 5"),
        ("$.ratio", "expected < 1, got 1"),
        ("$.items", "expected length <= 2, got 3"),
    ]
    assert problems(b'{"code": "ab", "ratio": 0.1}', Constrained) == [
        ("$.code", "expected string matching '^[A-Z]+$', got 'ab'")
    ]


def test_literal_and_enum_messages() -> None:
    errors = problems(EVERYTHING.replace(b'"lit": 3', b'"lit": true').replace(b'"level": 2', b'"level": 7'), Everything)
    assert errors == [
        ("$.lit", "expected one of ['a', 'b', 3], got true"),
        ("$.level", "expected one of [1, 2], got 7"),
    ]


def test_formats_are_checked() -> None:
    bad = (
        EVERYTHING.replace(b'"aGk="', b'"!!"')
        .replace(b"2024-05-06T07:08:09.123456Z", b"2024-05-06")
        .replace(b'"day": "2024-05-06"', b'"day": "2024-02-30"')
        .replace(b'"12.50"', b'"NaN"')
    )
    assert [p for p, _ in problems(bad, Everything)] == ["$.raw", "$.when", "$.day", "$.money"]


def test_wrong_tuple_length_and_dict_values() -> None:
    bad = EVERYTHING.replace(b'[1, "a"]', b"[1]").replace(b'{"k": 1}', b'{"k": "v", "a b": 2.5}')
    assert problems(bad, Everything) == [
        ("$.pair", "expected array of 2 items, got array"),
        ("$.mapping.k", "expected integer, got string"),
        ('$.mapping["a b"]', "expected integer, got number"),
    ]


def test_constructor_errors_become_validation_errors() -> None:
    assert kj.decode(b'{"n": 1}', type=Positive) == Positive(1)
    assert problems(b'{"n": 0}', Positive) == [("$", "ValueError: n must be positive")]


def test_from_builtins() -> None:
    decoder = kj.Decoder(Item)
    assert decoder.from_builtins({"name": "a", "price": 2}) == Item(name="a", price=2.0)
    with pytest.raises(kj.ValidationError) as info:
        decoder.from_builtins({"name": "a", "price": 2, "tags": {"x": 1}})
    assert info.value.errors == [("$.tags", "expected array, got object")]
    with pytest.raises(kj.ValidationError):
        kj.Decoder(dict[str, int]).from_builtins({1: 1})


def test_from_query_coerces_strings() -> None:
    decoder = kj.Decoder(Search)
    pairs = [("q", "x"), ("limit", "5"), ("exact", "true"), ("tags", "a"), ("tags", "b"), ("level", "2"), ("score", "")]
    assert decoder.from_query(pairs) == Search(q="x", limit=5, exact=True, tags=["a", "b"], level=Level.HIGH)
    assert decoder.from_query({"q": "y", "tags": ["c"]}) == Search(q="y", tags=["c"])
    with pytest.raises(kj.ValidationError) as info:
        decoder.from_query([("limit", "ten"), ("exact", "maybe")])
    assert info.value.errors == [
        ("$.q", "required field missing"),
        ("$.limit", "expected integer, got string"),
        ("$.exact", "expected boolean, got string"),
    ]
    with pytest.raises(kj.UnsupportedType):
        kj.Decoder(list[int]).from_query([])


def test_source_is_shown_and_registered() -> None:
    import linecache

    source = kj.Decoder(Order).source
    assert "def decode_Order(v):" in source
    assert "def check_Item(v, path, errs):" in source
    assert any("decode tests" in name or "kj_models.Order" in name for name in linecache.cache if "kowito_json" in name)


def test_unsupported_types_fail_at_build_time() -> None:
    with pytest.raises(kj.UnsupportedType):
        kj.Decoder(dict[int, int])
    with pytest.raises(kj.UnsupportedType):
        kj.Decoder(complex)

    @dataclasses.dataclass
    class Local:
        x: Missing  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(kj.UnsupportedType, match="cannot resolve"):
        kj.Decoder(Local)


@dataclasses.dataclass
class Mixed:
    a: int
    b: str = dataclasses.field(kw_only=True)
    c: float = 0.0


def test_keyword_only_fields_before_positional_ones() -> None:
    assert kj.decode(b'{"a": 1, "b": "x", "c": 2}', type=Mixed) == Mixed(1, 2.0, b="x")
    assert "_cls0(_a0, _a2, b=_a1)" in kj.Decoder(Mixed).source


def test_decode_shortcut_caches_per_type_and_settings_in_both_orders() -> None:
    data = b'{"name": "a", "price": 1, "extra": 1}'
    for _ in range(2):
        assert kj.decode(data, type=Item) == Item(name="a", price=1.0)
        assert problems(data, Item, forbid_unknown=True) == [("$.extra", "unknown field")]
        assert kj.decode(data, type=Item, forbid_unknown=False) == Item(name="a", price=1.0)
        assert kj.decoder_for(Item).decode(data) == Item(name="a", price=1.0)
        assert kj.decode(b"[1]", type=list[int]) == [1]
        assert problems(b"[1", list[int])[0][1].startswith("invalid JSON")


class _Counted(type):
    calls = 0

    def __call__(cls, *args: object, **kwargs: object) -> object:
        _Counted.calls += 1
        return super().__call__(*args, **kwargs)


@dataclasses.dataclass
class Metered(metaclass=_Counted):
    n: int


@dataclasses.dataclass
class OwnNew:
    n: int

    def __new__(cls, *args: object, **kwargs: object) -> OwnNew:
        instance = super().__new__(cls)
        instance.tagged = True  # type: ignore[attr-defined]
        return instance


@dataclasses.dataclass
class ReturnsValue:
    n: int

    def __init__(self, n: int) -> None:
        self.n = n
        return 1  # type: ignore[return-value]  # noqa: PLE0101 (what the decoder must refuse)


@dataclasses.dataclass(frozen=True)
class FrozenChecked:
    n: int
    doubled: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "doubled", self.n * 2)


def test_construction_runs_what_calling_the_class_runs() -> None:
    before = _Counted.calls
    assert kj.decode(b'{"n": 1}', type=Metered) == Metered(1)
    assert _Counted.calls == before + 2  # the decoder's call and the comparison's
    assert kj.decode(b'{"n": 1}', type=OwnNew).tagged  # type: ignore[attr-defined]
    assert problems(b'{"n": 1}', ReturnsValue) == [("$", "TypeError: __init__() should return None, not 'int'")]
    assert kj.decode(b'{"n": 2}', type=FrozenChecked).doubled == 4
    assert kj.decode(b'[{"n": 3}]', type=list[FrozenChecked])[0].doubled == 6
