"""Unrolled DataRow decoders give what the generic loop gives, value for value and error for error."""

from __future__ import annotations

import linecache
import struct
from typing import Any

import pytest
from chopin_pg import _codecs as c
from chopin_pg._row_decoder import MAX_UNROLLED_COLUMNS, decode_row, row_decoder
from chopin_pg.types import Decoder
from hypothesis import given
from hypothesis import strategies as st

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
        assert type(value) in (type(None), int, float, bool, str, bytes, type(c.numeric_text(b"1")))
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
