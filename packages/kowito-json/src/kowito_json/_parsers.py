"""Runtime helpers of the generated decoders: string formats and query coercions.

Each parser takes the JSON value and returns the Python value, or ``None`` when
the text is not in the expected format, so generated code tests one result
instead of catching exceptions.  Formats follow RFC 3339 section 5.6
(``date-time``, ``full-date``, ``full-time``) and RFC 4648 section 4 (base64).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import re
import uuid
from typing import Any

__all__ = [
    "coerce_bool",
    "coerce_float",
    "coerce_int",
    "int_to_float",
    "json_kind",
    "key_path",
    "parse_base64",
    "parse_date",
    "parse_datetime",
    "parse_decimal",
    "parse_time",
    "parse_uuid",
    "plain_datetime",
]

# RFC 3339 section 5.6; 't', 'T' and ' ' separate date and time (section 5.6 note),
# the offset may be left out (a naive datetime) since Python has those.
_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?"
_OFFSET = r"(?:[Zz]|[+-]\d{2}:\d{2})"
_DATETIME_RE = re.compile(rf"{_DATE}[Tt ]{_TIME}{_OFFSET}?")
# The same with at most six fraction digits: what datetime keeps, so no trimming is needed.
_DATETIME_MICROS_RE = re.compile(rf"{_DATE}[Tt ]\d{{2}}:\d{{2}}:\d{{2}}(?:\.\d{{1,6}})?{_OFFSET}?")
_DATE_RE = re.compile(_DATE)
_TIME_RE = re.compile(rf"{_TIME}{_OFFSET}?")
_FRACTION_RE = re.compile(r"\.(\d{7,9})")

# Looked up once: the parsers run once per value.
plain_datetime = _DATETIME_MICROS_RE.fullmatch
"""Matches the usual RFC 3339 date-times, those ``fromisoformat`` takes as they are."""
_fromisoformat = datetime.datetime.fromisoformat
_new_object = object.__new__
_set_attribute = object.__setattr__
_UUID = uuid.UUID
_UUID_UNKNOWN = uuid.SafeUUID.unknown

_JSON_KINDS: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def json_kind(value: object) -> str:
    """The JSON kind of a decoded value, for messages (``string``, ``number``...)."""
    return _JSON_KINDS.get(type(value)) or type(value).__name__


def key_path(path: str, key: object) -> str:
    """The JSON path of member ``key`` under ``path``: ``$.a`` or ``$["a b"]``."""
    text = str(key)
    if text.isidentifier():
        return f"{path}.{text}"
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'{path}["{escaped}"]'


def _trim_fraction(text: str) -> str:
    # Python keeps microseconds; RFC 3339 allows any precision, so cut to six digits.
    return _FRACTION_RE.sub(lambda m: "." + m.group(1)[:6], text)


def parse_datetime(value: str) -> datetime.datetime | None:
    """An RFC 3339 ``date-time`` (offset optional), or ``None``."""
    if _DATETIME_MICROS_RE.fullmatch(value) is not None:  # the common case: one match, no trimming
        try:
            return _fromisoformat(value)
        except ValueError:
            return None
    if _DATETIME_RE.fullmatch(value) is None:
        return None
    try:
        return _fromisoformat(_trim_fraction(value))
    except ValueError:
        return None


def parse_date(value: str) -> datetime.date | None:
    """An RFC 3339 ``full-date``, or ``None``."""
    if _DATE_RE.fullmatch(value) is None:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def parse_time(value: str) -> datetime.time | None:
    """An RFC 3339 ``partial-time`` or ``full-time``, or ``None``."""
    if _TIME_RE.fullmatch(value) is None:
        return None
    try:
        return datetime.time.fromisoformat(_trim_fraction(value))
    except ValueError:
        return None


def parse_uuid(value: str) -> uuid.UUID | None:
    """A UUID in its 36-character hyphenated or 32-digit form, or ``None``."""
    if len(value) == 36:
        # uuid.UUID(value) drops "urn:", "uuid:", outer braces and hyphens, then needs 32
        # digits for int(_, 16).  When the hyphen-less text already has 32 characters and
        # int() takes it, none of the other removals applied: the same UUID, built cheaper.
        digits = value.replace("-", "")
        if len(digits) == 32:
            try:
                number = int(digits, 16)
            except ValueError:
                pass
            else:  # what uuid.UUID(int=number) builds, without its argument juggling (~3x faster)
                result = _new_object(_UUID)
                _set_attribute(result, "int", number)
                _set_attribute(result, "is_safe", _UUID_UNKNOWN)
                return result
    if len(value) not in (32, 36):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def parse_base64(value: str) -> bytes | None:
    """Bytes from standard base64 with padding (RFC 4648 section 4), or ``None``."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_decimal(value: Any, allow_nan: bool) -> decimal.Decimal | None:
    """A Decimal from a JSON string or number, or ``None``.

    Floats go through their shortest ``repr``, which gives back the digits that
    were written for numbers of up to 15 significant digits.
    """
    kind = type(value)
    if kind is str:
        try:
            result = decimal.Decimal(value)
        except decimal.InvalidOperation:
            return None
    elif kind is int:
        result = decimal.Decimal(value)
    elif kind is float:
        result = decimal.Decimal(repr(value))
    else:
        return None
    if not allow_nan and not result.is_finite():
        return None
    return result


def int_to_float(value: int) -> float | None:
    """``float(value)``, or ``None`` if it is too large for a float."""
    try:
        return float(value)
    except OverflowError:
        return None


# Query-string coercions: each returns the converted value, or the string
# unchanged so the decoder's ordinary type check reports it.
_INT_RE = re.compile(r"[+-]?\d{1,4300}")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def coerce_int(value: str) -> int | str:
    """``int(value)`` for decimal digits with an optional sign, else ``value``."""
    if _INT_RE.fullmatch(value) is None:
        return value
    return int(value)


def coerce_float(value: str) -> float | str:
    """``float(value)``, else ``value``."""
    try:
        return float(value)
    except ValueError:
        return value


def coerce_bool(value: str) -> bool | str:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case), else ``value``."""
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return value
