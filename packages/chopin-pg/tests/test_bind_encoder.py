"""Compiled Bind encoders give the generic encoder's bytes, value for value and error for error."""

from __future__ import annotations

from typing import Any

import pytest
from chopin_pg import DataError, oids
from chopin_pg import _bind_encoder as be
from chopin_pg.types import DEFAULT_TYPES, STR_PARAM
from hypothesis import given
from hypothesis import strategies as st

# Parameter type and values: the inlined Python type, and others the generic encoder takes.
PARAMS: list[tuple[int, st.SearchStrategy[Any]]] = [
    (oids.INT2, st.integers(-(2**15), 2**15 - 1) | st.integers(2**15, 2**40) | st.booleans()),
    (oids.INT4, st.integers(-(2**31), 2**31 - 1) | st.text(max_size=3)),
    (oids.INT8, st.integers(-(2**63), 2**63 - 1) | st.integers(2**63, 2**70)),
    (oids.FLOAT4, st.floats(width=32) | st.integers(-5, 5)),
    (oids.FLOAT8, st.floats() | st.integers(-(2**60), 2**60)),
    (oids.BOOL, st.booleans() | st.integers(0, 1)),
    (oids.TEXT, st.text(max_size=10) | st.integers()),
    (oids.VARCHAR, st.text(max_size=10)),
]


@st.composite
def statements(draw: st.DrawFn) -> tuple[list[int], list[Any]]:
    picks = draw(st.lists(st.integers(0, len(PARAMS) - 1), min_size=1, max_size=8))
    values = [draw(st.none() | PARAMS[i][1]) for i in picks]
    return [PARAMS[i][0] for i in picks], values


@given(statements(), st.sampled_from([b"\x00\x00", b"\x00\x01\x00\x01"]), st.sampled_from(["", "_cpg7"]))
def test_compiled_matches_generic(statement: tuple[list[int], list[Any]], result_formats: bytes, name: str) -> None:
    param_oids, values = statement
    encoders = [DEFAULT_TYPES.param_encoder(oid) for oid in param_oids]
    prefix = b"\x00" + name.encode() + b"\x00"
    compiled = be.bind_encoder(prefix, encoders, result_formats, STR_PARAM.encode)
    assert getattr(compiled, "func", None) is None  # compiled, not the generic partial
    expected = be.encode_bind(prefix, encoders, result_formats, values)
    assert compiled(values) == expected
    assert compiled(tuple(values)) == expected


def test_wrong_count_raises_the_generic_error() -> None:
    encoders = [DEFAULT_TYPES.param_encoder(oids.INT4), DEFAULT_TYPES.param_encoder(oids.TEXT)]
    compiled = be.bind_encoder(b"\x00\x00", encoders, b"\x00\x00", STR_PARAM.encode)
    with pytest.raises(DataError, match="takes 2 parameters, 1 given"):
        compiled([1])
    assert compiled([1, "a"]) == be.encode_bind(b"\x00\x00", encoders, b"\x00\x00", [1, "a"])


def test_other_parameter_types_use_the_generic_encoder() -> None:
    encoders = [DEFAULT_TYPES.param_encoder(oids.INT4), DEFAULT_TYPES.param_encoder(oids.JSONB)]
    encoder = be.bind_encoder(b"\x00\x00", encoders, b"\x00\x00", STR_PARAM.encode)
    assert encoder([1, {"a": 1}]) == be.encode_bind(b"\x00\x00", encoders, b"\x00\x00", [1, {"a": 1}])
    assert getattr(encoder, "func", None) is be.encode_bind  # a functools.partial of the generic encoder
