"""String formats (RFC 3339, RFC 4648) and query coercions."""

from __future__ import annotations

import datetime
import uuid

import pytest
from kowito_json import _parsers


@pytest.mark.parametrize(
    "text",
    ["1985-04-12T23:20:50.52Z", "1996-12-19T16:39:57-08:00", "1990-12-31T23:59:59+00:00", "2024-01-01 10:00:00"],
)
def test_rfc3339_section_5_8_examples(text: str) -> None:
    assert isinstance(_parsers.parse_datetime(text), datetime.datetime)


@pytest.mark.parametrize("text", ["2024-01-01", "20240101T000000", "2024-01-01T10:00", "2024-13-01T00:00:00Z"])
def test_not_rfc3339(text: str) -> None:
    assert _parsers.parse_datetime(text) is None


def test_nanoseconds_truncate_to_microseconds() -> None:
    parsed = _parsers.parse_datetime("2024-01-01T00:00:00.123456789Z")
    assert parsed is not None and parsed.microsecond == 123456


def test_base64_is_strict() -> None:
    assert _parsers.parse_base64("aGk=") == b"hi"
    assert _parsers.parse_base64("aGk") is None
    assert _parsers.parse_base64("a$Gk=") is None


def test_coercions() -> None:
    assert _parsers.coerce_int("-12") == -12
    assert _parsers.coerce_int("1.5") == "1.5"
    assert _parsers.coerce_bool("YES") is True
    assert _parsers.coerce_float("x") == "x"
    assert _parsers.key_path("$", 'a "b"') == '$["a \\"b\\""]'


@pytest.mark.parametrize(
    "text",
    [
        "12345678-1234-5678-1234-567812345678",
        "12345678123456781234567812345678",
        "12345678123456781234567812345678----",
        "urn:12345678123456781234567812345678",
        "{2345678-1234-5678-1234-56781234567}",
        " 2345678-1234-5678-1234-567812345678",
        "1_345678-1234-5678-1234-567812345678",
        "g2345678-1234-5678-1234-567812345678",
        "12345678-1234-5678-1234-5678123456",
    ],
)
def test_uuid_parsing_matches_the_standard_library(text: str) -> None:
    try:
        expected: uuid.UUID | None = uuid.UUID(text) if len(text) in (32, 36) else None
    except ValueError:
        expected = None
    parsed = _parsers.parse_uuid(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.is_safe is uuid.SafeUUID.unknown and str(parsed) == str(expected)


def test_long_fractions_still_truncate_through_the_slow_form() -> None:
    assert _parsers.plain_datetime("2024-01-01T00:00:00.1234567Z") is None
    parsed = _parsers.parse_datetime("2024-01-01T00:00:00.1234567+01:00")
    assert parsed is not None and parsed.microsecond == 123456 and parsed.utcoffset() == datetime.timedelta(hours=1)
