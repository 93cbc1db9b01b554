"""Unrolled DataRow decoders give what the generic loop gives, value for value and error for error."""

from __future__ import annotations

import linecache
import os
import struct
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from chopin_pg import _codecs as c
from chopin_pg import _row_decoder, oids
from chopin_pg._row_decoder import MAX_UNROLLED_COLUMNS, decode_row, row_decoder, rows_decoder
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


# -- the C accelerator (chopin_pg._rows) and its pure-Python fallback --------------------
# Session.read_execute hands each read to rows_decoder's function first; where it stops
# at a DataRow, the generated decoder decodes that row (value or error), then the C
# function goes on.  These tests drive both the same way.


def message(body: bytes, tag: bytes = b"D") -> bytes:
    return tag + struct.pack("!i", len(body) + 4) + body


def decode_read(
    decoders: list[Decoder], names: dict[str, int], data: bytes, pos: int, accelerated: bool = True
) -> list[Any]:
    """Every DataRow of ``data`` from ``pos`` as read_execute decodes it: rows, or (type, message) of an error."""
    fast = rows_decoder(decoders, names) if accelerated else None
    slow = row_decoder(decoders, names)
    out: list[Any] = []
    while pos < len(data) and data[pos : pos + 1] == b"D":
        if fast is not None:
            rows: list[Any] = []
            done = fast(data, pos, len(data), rows, 1 << 30)
            out += [("ok", tuple(row), row) for row in rows]
            if done != pos:
                pos = done
                continue
            if data[pos : pos + 1] != b"D":
                break
        end = pos + 1 + struct.unpack_from("!i", data, pos + 1)[0]
        try:
            row = slow(data, pos + 7)
            out.append(("ok", tuple(row), row))
        except Exception as exc:
            out.append((type(exc), str(exc), None))
        pos = end
    return out


@pytest.mark.skipif(bool(os.environ.get("CHOPIN_PURE_PYTHON")), reason="CHOPIN_PURE_PYTHON is set")
def test_the_c_accelerator_is_built() -> None:
    # The package's build hook compiles chopin_pg._rows wherever a C compiler is (here, CI):
    # a missing accelerator would make every fetch take twice the time, silently.
    assert _row_decoder.ACCELERATED
    assert rows_decoder([c.int4_binary], {}) is not None


def test_rows_decoder_is_none_without_the_accelerator_or_past_the_column_limit() -> None:
    assert rows_decoder([], {}) is None
    assert rows_decoder([c.int4_binary] * (MAX_UNROLLED_COLUMNS + 1), {}) is None
    if not _row_decoder.ACCELERATED:
        assert rows_decoder([c.int4_binary], {}) is None


@given(rows(), st.binary(max_size=4), st.integers(1, 3))
def test_the_c_decoder_gives_what_the_generated_one_gives(
    shape: tuple[list[Decoder], list[bytes | None]], prefix: bytes, copies: int
) -> None:
    decoders, raw = shape
    if not 0 < len(decoders) <= MAX_UNROLLED_COLUMNS:
        return
    names = {f"c{i}": i for i in range(len(raw))}
    body = data_row(raw)
    data = prefix + message(body) * copies + message(b"SELECT 1\x00", b"C") + message(body)[:-1]
    got = decode_read(decoders, names, data, len(prefix))
    slow = row_decoder(decoders, names)
    try:
        expected: Any = ("ok", tuple(slow(body, 2)))
    except Exception as exc:
        expected = (type(exc), str(exc))
    assert [outcome[:2] for outcome in got] == [expected] * copies  # stops at the CommandComplete
    for outcome in got:
        if outcome[2] is not None:
            assert outcome[2] == slow(body, 2)
            assert outcome[2].keys() == list(names)
            assert [type(v) for v in outcome[2]] == [type(v) for v in expected[1]]
            if any(isinstance(v, datetime) for v in outcome[2]):
                assert [getattr(v, "tzinfo", None) for v in outcome[2]] == [
                    getattr(v, "tzinfo", None) for v in expected[1]
                ]


def test_a_row_the_c_decoder_refuses_is_the_generated_decoders_and_the_next_rows_are_c_again() -> None:
    decoders = [c.int4_binary, c.int8_binary, c.text_any]
    good = data_row([struct.pack("!i", 1), struct.pack("!q", 2), b"ok"])
    wrong_size = data_row([struct.pack("!i", 1), b"\x00" * 4, b"ok"])
    bad_utf8 = data_row([struct.pack("!i", 1), struct.pack("!q", 2), b"\xff"])
    short = data_row([struct.pack("!i", 1), struct.pack("!q", 2)])  # two values of three
    data = b"".join(message(body) for body in (good, wrong_size, good, bad_utf8, short, good))
    names = {"a": 0, "b": 1, "c": 2}
    got = decode_read(decoders, names, data, 0)
    assert [outcome[:2] for outcome in got] == [outcome[:2] for outcome in decode_read(decoders, names, data, 0, False)]
    assert [outcome[0] for outcome in got][:4] == ["ok", struct.error, "ok", UnicodeDecodeError]
    assert got[0][1] == got[2][1] == got[5][1] == (1, 2, "ok")


def test_the_c_decoder_stops_at_a_partial_message_and_a_bad_length() -> None:
    decoders = [c.int4_binary]
    whole = message(data_row([struct.pack("!i", 7)]))
    fast = rows_decoder(decoders, {"a": 0})
    if fast is None:
        pytest.skip("no C accelerator")
    rows_out: list[Any] = []
    assert fast(whole + whole[:-1], 0, len(whole) * 2 - 1, rows_out, 1 << 30) == len(whole)  # read more
    assert fast(whole * 2, 0, len(whole) * 2, rows_out, len(whole) - 1) == 0  # too long: the caller refuses it
    assert fast(b"D\x00\x00\x00\x02" + whole, 0, 5 + len(whole), rows_out, 1 << 30) == 0  # impossible length
    assert [tuple(r) for r in rows_out] == [(7,)]


def test_the_c_decoder_follows_the_session_zone() -> None:
    registry = DEFAULT_TYPES.copy()
    decoder = registry.binary[oids.TIMESTAMPTZ]
    raw = struct.pack("!q", 10**15)
    data = message(data_row([raw]))
    for zone in ("UTC", "Europe/Paris", "Etc/UTC"):  # fixed epoch, an offset-changing zone, fixed again
        registry.set_timezone(zone)
        got = decode_read([decoder], {"t": 0}, data, 0)
        assert got[0][1] == (decoder(raw),)
        assert got[0][1][0].tzinfo == decoder(raw).tzinfo


def test_a_zone_getter_that_raises_leaves_every_row_to_the_generated_decoder() -> None:
    # The generated code calls the epoch getter per row and raises its error; the C decoder
    # must not decode those rows some other way.
    def getter() -> datetime:
        raise LookupError("no zone")

    def decoder(raw: bytes) -> str:
        return "decoded"

    decoder.fixed_epoch = getter  # type: ignore[attr-defined]
    data = message(data_row([struct.pack("!q", 0)])) * 2
    got = decode_read([decoder], {"t": 0}, data, 0)
    assert [outcome[:2] for outcome in got] == [(LookupError, "no zone")] * 2
