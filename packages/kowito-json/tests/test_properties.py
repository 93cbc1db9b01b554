"""Property tests: round trips, agreement with orjson, and no exception but ValidationError."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

import kowito_json as kj
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from kj_models import Cat, Color, Dog, Everything, Item, Level, Node, Order, Pet, Profile, UserId

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False)
small_int = st.integers(-(2**63), 2**63 - 1)

items = st.builds(Item, name=text, price=finite, qty=st.integers(0, 1000), tags=st.lists(text, max_size=3))
orders = st.builds(Order, id=small_int.map(UserId), items=st.lists(items, max_size=4), note=st.none() | text)
nodes = st.recursive(
    st.builds(Node, value=small_int, children=st.just([])),
    lambda kids: st.builds(Node, value=small_int, children=st.lists(kids, max_size=3)),
    max_leaves=20,
)
pets = st.builds(
    Pet,
    pet=st.builds(Cat, kind=st.just("cat"), lives=small_int) | st.builds(Dog, kind=st.just("dog"), good=st.booleans()),
    owner=st.none() | text,
)
profiles = st.builds(
    Profile, user_id=st.integers(), display_name=text, home_page=st.none() | text, legacy=st.integers()
)
everything = st.builds(
    Everything,
    i=st.integers(),
    f=finite,
    s=text,
    b=st.booleans(),
    n=st.none(),
    raw=st.binary(max_size=20),
    ints=st.lists(st.integers(), max_size=4),
    pair=st.tuples(st.integers(), text),
    many=st.lists(finite, max_size=3).map(tuple),
    unique=st.sets(text, max_size=3),
    frozen=st.frozensets(st.integers(), max_size=3),
    mapping=st.dictionaries(text, st.integers(), max_size=3),
    maybe=st.none() | st.integers(),
    either=st.integers() | text,
    lit=st.sampled_from(["a", "b", 3]),
    color=st.sampled_from(Color),
    level=st.sampled_from(Level),
    when=st.datetimes(timezones=st.none() | st.just(datetime.UTC)),
    day=st.dates(),
    clock=st.times(),
    uid=st.uuids(),
    money=st.decimals(allow_nan=False, allow_infinity=False),
)

values = st.one_of(orders, nodes, pets, profiles, everything)


@given(values)
@settings(max_examples=300, deadline=None)
def test_decode_inverts_encode(value: Any) -> None:
    assert kj.decode(kj.encode(value), type=type(value)) == value


@given(st.one_of(orders, nodes, pets))
@settings(max_examples=200, deadline=None)
def test_encode_matches_orjson_of_asdict(value: Any) -> None:
    assert kj.encode(value) == orjson.dumps(dataclasses.asdict(value))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=30,
)


def mutate(value: Any, data: st.DataObject) -> Any:
    """Replace one member somewhere in ``value`` with arbitrary JSON."""
    if isinstance(value, dict) and value:
        key = data.draw(st.sampled_from(sorted(value)))
        choice = data.draw(st.integers(0, 2))
        if choice == 0:
            return {k: v for k, v in value.items() if k != key}
        if choice == 1:
            return {**value, key: data.draw(json_values)}
        return {**value, key: mutate(value[key], data)}
    if isinstance(value, list) and value:
        index = data.draw(st.integers(0, len(value) - 1))
        return [mutate(v, data) if i == index else v for i, v in enumerate(value)]
    return data.draw(json_values)


@given(values, st.data())
@settings(max_examples=300, deadline=None)
def test_bad_input_gives_validation_error_only(value: Any, data: st.DataObject) -> None:
    broken = mutate(orjson.loads(kj.encode(value)), data)
    try:
        kj.decode(kj.encode(broken), type=type(value))
    except kj.ValidationError as exc:
        assert exc.errors
        assert all(path.startswith("$") for path, _ in exc.errors)


@given(st.binary(max_size=60))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_give_validation_error_only(data: bytes) -> None:
    for tp in (Order, Everything, list[int], int | str):
        try:
            kj.decode(data, type=tp)
        except kj.ValidationError:
            pass


@given(json_values)
@settings(max_examples=200, deadline=None)
def test_fast_and_reporting_paths_agree(value: Any) -> None:
    decoder = kj.Decoder(Everything)
    for tp in (Order, Node, Pet, list[int | str], dict[str, float | None]):
        decoder = kj.Decoder(tp)
        errors: list[tuple[str, str]] = []
        try:
            fast_ok = True
            decoder._fast(value)
        except Exception:
            fast_ok = False
        decoder._check(value, "$", errors)
        assert fast_ok == (not errors)


@given(st.lists(values, max_size=5), st.booleans())
@settings(max_examples=200, deadline=None)
def test_encode_of_a_container_is_the_encoding_of_its_items(items: list[Any], as_dict: bool) -> None:
    # encode() picks a path per container (all native, one generated class, mixed): the bytes may not depend on it.
    if as_dict:
        expected = b"{" + b",".join(b'"k%d":' % i + kj.encode(item) for i, item in enumerate(items)) + b"}"
        assert kj.encode({f"k{i}": item for i, item in enumerate(items)}) == expected
    else:
        expected = b"[" + b",".join(kj.encode(item) for item in items) + b"]"
        assert kj.encode(items) == expected
        assert kj.encode(tuple(items)) == expected


@given(values, st.data())
@settings(max_examples=200, deadline=None)
def test_json_entry_and_from_builtins_agree(value: Any, data: st.DataObject) -> None:
    # decode() runs the generated JSON entry (parse + fast path inline), from_builtins the fast
    # path as a function: same value, or the same problems (json.loads: integers past 64 bits
    # stay exact, as decode() keeps them).
    text = kj.encode(mutate(orjson.loads(kj.encode(value)), data) if data.draw(st.booleans()) else value)
    decoder = kj.decoder_for(type(value))
    outcomes = []
    for run in (lambda: decoder.decode(text), lambda: decoder.from_builtins(json.loads(text))):
        try:
            outcomes.append(("ok", run()))
        except kj.ValidationError as exc:
            outcomes.append(("error", exc.errors))
    assert outcomes[0] == outcomes[1]
