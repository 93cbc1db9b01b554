"""Unrolled DataRow decoders give what the generic loop gives, value for value and error for error."""

from __future__ import annotations

import linecache
import struct
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from chopin_pg import _codecs as c
from chopin_pg import oids
from chopin_pg._row_decoder import MAX_UNROLLED_COLUMNS, decode_row, row_decoder
from chopin_pg.types import DEFAULT_TYPES, Decoder
from hypothesis import given
from hypothesis import strategies as st

TIMESTAMPTZ = DEFAULT_TYPES.binary[oids.TIMESTAMPTZ]
# Microseconds from 2000-01-01: inside datetime's range, at its ends, past them, and the infinities.
TIMESTAMPS = st.sampled_from([-63082281600000000, 252455615999999999, 2**63 - 1, -(2**63)]) | st.integers(
    -63082281600000000, 252455615999999999
)
TIMESTAMPS = TIMESTAMPS.map(struct.Struct("!q").pack)
JSON_TEXTS = st.sampled_from(
    [b'{"a": 1}', b"[1e400]", b"12345678901234567890123", b"1e-400", b'"x"', b"null", b"[1.5, true]"]
)

# (decoder, strategy of raw values): the inlined kinds, text, and decoders that are called.
COLUMNS: list[tuple[Decoder, st.SearchStrategy[bytes]]] = [
    (c.int2_binary, st.integers(-(2**15), 2**15 - 1).map(struct.Struct("!h").pack)),
    (c.int4_binary, st.integers(-(2**31), 2**31 - 1).map(struct.Struct("!i").pack)),
    (c.int8_binary, st.integers(-(2**63), 2**63 - 1).map(struct.Struct("!q").pack)),
    (c.oid_binary, st.integers(0, 2**32 - 1).map(struct.Struct("!I").pack)),
    (c.float4_binary, st.floats(width=32, allow_nan=False).map(struct.Struct("!f").pack)),
    (c.float8_binary, st.floats(allow_nan=False).map(struct.Struct("!d").pack)),
    (c.bool_binary, st.sampled_from([b"\x00", b"\x01"])),
    (c.text_any, st.text(max_size=20).map(str.encode)),
    (c.bytea_binary, st.binary(max_size=20)),
    (c.numeric_text, st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: str(d).encode())),
    (c.uuid_binary, st.uuids().map(lambda u: u.bytes)),
    (c.jsonb_binary, JSON_TEXTS.map(lambda t: b"\x01" + t)),
    (c.timestamp_binary, TIMESTAMPS),
    (TIMESTAMPTZ, TIMESTAMPS),
]


@st.composite
def rows(draw: st.DrawFn) -> tuple[list[Decoder], list[bytes | None]]:
    picks = draw(st.lists(st.integers(0, len(COLUMNS) - 1), max_size=MAX_UNROLLED_COLUMNS + 3))
    decoders = [COLUMNS[i][0] for i in picks]
    raw = [draw(st.none() | COLUMNS[i][1]) for i in picks]
    return decoders, raw


def data_row(raw: list[bytes | None]) -> bytes:
    body = struct.pack("!h", len(raw))
    for value in raw:
        body += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    return body


@given(rows(), st.binary(max_size=4))
def test_unrolled_matches_the_loop(shape: tuple[list[Decoder], list[bytes | None]], prefix: bytes) -> None:
    decoders, raw = shape
    names = {f"c{i}": i for i in range(len(raw))}
    body = data_row(raw)
    row = row_decoder(decoders, names)(prefix + body, len(prefix) + 2)  # at an offset inside a bigger buffer
    expected = [None if v is None else d(v) for d, v in zip(decoders, raw, strict=True)]
    assert list(row) == expected
    assert row == decode_row(body, decoders, names)
    for value in row:
        assert type(value) in (type(None), int, float, bool, str, bytes, Decimal, UUID, datetime, dict, list)
    if raw:
        assert row["c0"] == expected[0]


@pytest.mark.parametrize(
    ("decoder", "raw"),
    [
        (c.int4_binary, b"x"),
        (c.int8_binary, b"\x00" * 4),
        (c.float8_binary, b"\x00" * 9),
        (c.bool_binary, b"\x01\x01"),
        (c.text_any, b"\xff"),
        (c.numeric_text, b"abc"),
        (c.uuid_binary, b"\x00" * 15),
        (c.jsonb_binary, b"\x02{}"),
        (c.jsonb_binary, b"\x01{"),
        (c.jsonb_binary, b""),
        (c.timestamp_binary, b"\x00" * 7),
        (c.timestamp_binary, b"\x7f" + b"\x00" * 7),
        (TIMESTAMPTZ, b"\x80" + b"\x00" * 7),
        (TIMESTAMPTZ, b"\x7f" + b"\xff" * 7),
    ],
)
def test_a_value_of_the_wrong_size_raises_the_decoders_error(decoder: Decoder, raw: bytes) -> None:
    body = data_row([struct.pack("!i", 1), raw])
    decoders = [c.int4_binary, decoder]
    outcomes: list[Any] = []
    for decode in (lambda: row_decoder(decoders, {})(body, 2), lambda: decode_row(body, decoders, {})):
        try:
            outcomes.append(("ok", tuple(decode())))
        except Exception as exc:
            outcomes.append((type(exc), str(exc)))
    assert outcomes[0] == outcomes[1]


def test_generated_source_shows_in_tracebacks() -> None:
    decode = row_decoder([c.int4_binary, c.text_any, c.numeric_binary], {})
    filename = decode.__code__.co_filename
    assert "3 columns" in filename
    source = "".join(linecache.getlines(filename))
    assert "def decode_row(body, pos):" in source
    assert "unpack_i32(body, pos)[0]" in source
    assert "d2(body[pos : pos + size])" in source


@given(st.binary(max_size=40) | st.text("0123456789eE+-.x ", max_size=40).map(str.encode))
def test_may_lose_precision_is_the_regex(data: bytes) -> None:
    assert c.may_lose_precision(data) == (c._MAY_LOSE_PRECISION.search(data) is not None)


def test_timestamptz_in_another_zone_is_the_decoders() -> None:
    registry = DEFAULT_TYPES.copy()
    registry.set_timezone("Europe/Paris")  # changes offset: not inlined, the decoder converts
    decoder = registry.binary[oids.TIMESTAMPTZ]
    raw = struct.pack("!q", 10**15)
    row = row_decoder([decoder], {})(data_row([raw]), 2)
    assert row[0] == decoder(raw)
    assert row[0].utcoffset() == decoder(raw).utcoffset()
    registry.set_timezone("UTC")  # the same decoder, now on its fixed-epoch case
    assert row_decoder([decoder], {})(data_row([raw]), 2)[0] == decoder(raw)
