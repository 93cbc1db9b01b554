"""Binary codecs without a server: the fast numeric and uuid decoders against the straightforward forms."""

from __future__ import annotations

import pickle
import struct
import uuid
from decimal import Decimal

import pytest
from chopin_pg import _codecs as c
from hypothesis import given
from hypothesis import strategies as st


def numeric_reference(data: bytes) -> Decimal:
    """numeric_recv spelled out (the decoder before its fast path), as the oracle."""
    ndigits, weight, sign, dscale = struct.unpack_from("!hhHh", data, 0)
    special = {0xC000: "NaN", 0xD000: "Infinity", 0xF000: "-Infinity"}
    if sign in special:
        return Decimal(special[sign])
    if ndigits == 0:
        return Decimal((0, (0,), -dscale))
    digits = "".join(f"{d:04d}" for d in struct.unpack_from(f"!{ndigits}H", data, 8))
    exponent = 4 * (weight - ndigits + 1)
    if exponent > -dscale:
        digits += "0" * (exponent + dscale)
    elif exponent < -dscale:
        digits = digits[: len(digits) - (-dscale - exponent)]
    return Decimal(f"{'-' if sign == 0x4000 else ''}{digits or '0'}E{-dscale}")


@given(
    digits=st.lists(st.integers(0, 9999), max_size=40),  # past the 32 precompiled widths too
    weight=st.integers(-20, 20),
    sign=st.sampled_from([0x0000, 0x4000, 0xC000, 0xD000, 0xF000]),
    dscale=st.integers(0, 60),
)
def test_numeric_binary_matches_the_reference(digits: list[int], weight: int, sign: int, dscale: int) -> None:
    data = struct.pack(f"!hhHh{len(digits)}H", len(digits), weight, sign, dscale, *digits)
    assert str(c.numeric_binary(data)) == str(numeric_reference(data))


@given(st.uuids())
def test_uuid_binary_is_a_complete_uuid(value: uuid.UUID) -> None:
    decoded = c.uuid_binary(value.bytes)
    assert type(decoded) is uuid.UUID
    assert decoded == value
    assert hash(decoded) == hash(value)
    assert (str(decoded), decoded.version, decoded.is_safe) == (str(value), value.version, uuid.SafeUUID.unknown)
    assert pickle.loads(pickle.dumps(decoded)) == value
    with pytest.raises(TypeError):
        decoded.int = 1  # type: ignore[misc]  # still immutable


def test_uuid_binary_refuses_a_wrong_length() -> None:
    with pytest.raises(ValueError, match="16"):
        c.uuid_binary(b"\x00" * 15)


def test_char_binary_gives_the_text_form() -> None:
    """ "char" in binary is the byte; charout writes "" for the zero byte and \\ooo above 127.

    SQLAlchemy's PostgreSQL reflection tells generated columns by ``attgenerated not in
    (None, "")``: a zero byte decoded as "\\x00" made every column default reflect as None
    once the reflection query was prepared (binary results); SQLAlchemy's dialect suite found it.
    """
    assert c.char_binary(b"s") == "s"
    assert c.char_binary(b"\x00") == ""
    assert c.char_binary(b"\xe9") == "\\351"
