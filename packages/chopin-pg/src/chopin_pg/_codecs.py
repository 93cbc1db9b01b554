"""Value codecs for the built-in types: binary and text, both directions.

Binary layouts follow the server's ``*_send`` / ``*_recv`` functions
(``src/backend/utils/adt``); text layouts follow the ``*_out`` functions with
``DateStyle=ISO`` and ``IntervalStyle=postgres`` (the driver sets DateStyle at
startup).  Decoders take the raw column bytes; encoders return bytes.
Timestamps are microseconds since 2000-01-01 (PostgreSQL 15 docs §8.5).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import struct
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from enum import Enum
from types import ModuleType
from typing import Any
from uuid import UUID, SafeUUID

from .errors import DataError, ParameterError
from .ranges import Range

orjson: ModuleType | None
try:  # optional speed-up; the standard library is enough
    import orjson as _orjson  # type: ignore[import-not-found,unused-ignore]

    orjson = _orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

# -- JSON ------------------------------------------------------------------------
#
# Exact numbers out: jsonb stores numbers as numeric and writes them without an
# exponent ('1e400'::jsonb comes back as a 1 and 400 zeros), so a value may hold
# integers past 64 bits and numbers past float range.  orjson rounds the first to
# floats, refuses the second and turns tiny ones into 0.0, so it is only the fast
# path: a text with a run of 19 or more digits or a three-digit exponent (json
# keeps the text as written), or one orjson refuses, goes through the standard
# library, where integer literals stay exact ints and a number float cannot hold
# (1e400, 1e-400) comes back as a Decimal.  Other numbers with a fraction or an
# exponent are floats on both paths.
#
# No inf/nan in: JSON has no literal for them (orjson writes null, the standard
# library "Infinity", which the server refuses); a parameter holding one is
# refused with ParameterError before anything is sent.

_MAY_LOSE_PRECISION = re.compile(rb"[0-9]{19}|[eE][-+]?[0-9]{3}")
# The same test without the regex (a quarter of its cost on the benchmark's jsonb
# values): every digit becomes "0", e/E "e", +/- "+", any other byte a space, and the
# pattern matches exactly when the translation holds one of three substrings.  The
# translation is searched as a str: ``in`` on bytes costs four times as much.
NUMBER_SHAPE = bytes(
    ord("0") if ch in b"0123456789" else ord("e") if ch in b"eE" else ord("+") if ch in b"+-" else ord(" ")
    for ch in range(256)
)
NINETEEN_DIGITS = "0" * 19


def may_lose_precision(data: bytes) -> bool:
    """Whether JSON text ``data`` may hold a number orjson would not read exactly (``_MAY_LOSE_PRECISION``)."""
    shape = data.translate(NUMBER_SHAPE).decode("latin-1")
    return NINETEEN_DIGITS in shape or "e000" in shape or "e+000" in shape


def _exact_float(text: str) -> float | Decimal:
    value = float(text)
    if math.isinf(value) or (value == 0.0 and any(ch in "123456789" for ch in text.lower().partition("e")[0])):
        return Decimal(text)
    return value


def _exact_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # past sys.get_int_max_str_digits(): Decimal has no such limit
        return int(Decimal(text))


def _json_loads_exact(data: bytes) -> Any:
    return json.loads(data, parse_float=_exact_float, parse_int=_exact_int)


def json_loads(data: bytes) -> Any:
    """Parse JSON text, numbers exact: big integers as ints, numbers past float range as ``Decimal``."""
    if orjson is not None and not may_lose_precision(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # a number past float range, or not JSON at all: the exact path says which
    return _json_loads_exact(data)


def _nonfinite_at(value: Any, path: str = "$") -> str | None:
    """The path of the first inf/nan float inside ``value`` (dicts, lists, tuples), or ``None``."""
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path}: expected a finite number, got {value!r}"
    if isinstance(value, dict):
        for key, item in value.items():
            found = _nonfinite_at(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _nonfinite_at(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _refuse_nonfinite(value: Any) -> None:
    found = _nonfinite_at(value)
    if found is not None:
        raise ParameterError(f"JSON parameter {found}: JSON has no inf or nan; nothing was sent")


def _json_dumps_std(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except ValueError as exc:
        if "Out of range float" in str(exc):  # not "Circular reference", where a walk would not end
            _refuse_nonfinite(value)
        raise


def json_dumps(value: Any) -> bytes:
    """Serialize ``value`` as JSON text.

    Raises:
        ParameterError: ``value`` holds an ``inf`` or ``nan`` float.
        TypeError: ``value`` holds something JSON cannot represent.
    """
    if orjson is None:
        return _json_dumps_std(value)
    try:
        out: bytes = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _json_dumps_std(value)  # integers past 64 bits, among others: exact in the standard library
    if b"null" in out:  # orjson writes inf and nan as null: look for them only when one may be there
        _refuse_nonfinite(value)
    return out


Decoder = Callable[[bytes], Any]

_bool = struct.Struct("!?")
_i16 = struct.Struct("!h")
_i32 = struct.Struct("!i")
_u32 = struct.Struct("!I")
_i64 = struct.Struct("!q")
_f32 = struct.Struct("!f")
_f64 = struct.Struct("!d")
_numeric_head = struct.Struct("!hhHh")  # ndigits, weight, sign, dscale (numeric_send)
_interval = struct.Struct("!qii")  # microseconds, days, months (interval_send)
_timetz = struct.Struct("!qi")  # microseconds, zone seconds west of UTC (timetz_send)
_array_head = struct.Struct("!iiI")  # ndim, has-nulls flag, element OID (array_send)
_dim = struct.Struct("!ii")  # size, lower bound

PG_EPOCH = datetime(2000, 1, 1)
PG_EPOCH_UTC = datetime(2000, 1, 1, tzinfo=UTC)
PG_EPOCH_DATE_ORDINAL = date(2000, 1, 1).toordinal()
_INF64 = (1 << 63) - 1
_NEG_INF64 = -(1 << 63)
_INF32 = (1 << 31) - 1
_NEG_INF32 = -(1 << 31)
_NUMERIC_NAN = 0xC000
_NUMERIC_PINF = 0xD000
_NUMERIC_NINF = 0xF000
_NUMERIC_NEG = 0x4000
#: numeric values up to this many base-10000 digits (124 decimal digits) decode with precompiled codecs.
_NUMERIC_PRECOMPILED = 32
_NUMERIC_DIGITS = [struct.Struct(f"!{n}H") for n in range(_NUMERIC_PRECOMPILED)]
_NUMERIC_FORMATS = ["%04d" * n for n in range(_NUMERIC_PRECOMPILED)]


# ---------------------------------------------------------------------------
# Binary decoders
# ---------------------------------------------------------------------------


def bool_binary(data: bytes) -> bool:
    """bool: one byte."""
    return data == b"\x01"


def int2_binary(data: bytes) -> int:
    """int2: big-endian int16."""
    return _i16.unpack(data)[0]  # type: ignore[no-any-return]


def int4_binary(data: bytes) -> int:
    """int4: big-endian int32."""
    return _i32.unpack(data)[0]  # type: ignore[no-any-return]


def int8_binary(data: bytes) -> int:
    """int8: big-endian int64."""
    return _i64.unpack(data)[0]  # type: ignore[no-any-return]


def oid_binary(data: bytes) -> int:
    """oid: big-endian uint32."""
    return _u32.unpack(data)[0]  # type: ignore[no-any-return]


def float4_binary(data: bytes) -> float:
    """float4: IEEE 754 single."""
    return _f32.unpack(data)[0]  # type: ignore[no-any-return]


def float8_binary(data: bytes) -> float:
    """float8: IEEE 754 double."""
    return _f64.unpack(data)[0]  # type: ignore[no-any-return]


def text_any(data: bytes) -> str:
    """text, varchar, bpchar, name, and every type decoded as its text form."""
    return data.decode()


def char_binary(data: bytes) -> str:
    """ "char" (the one-byte catalog type) as its text form, as ``charout`` writes it.

    The binary form is the byte itself; text mode gives ``""`` for the zero byte (what
    ``pg_attribute.attgenerated`` holds for an ordinary column) and ``\\ooo`` for a byte
    with the high bit set, so a statement gives the same value in both formats.
    """
    if not data or data == b"\x00":
        return ""
    byte = data[0]
    return f"\\{byte:03o}" if byte & 0x80 else chr(byte)


def bytea_binary(data: bytes) -> bytes:
    """bytea: the bytes themselves."""
    return data


def numeric_binary(data: bytes) -> Decimal:
    """numeric: base-10000 digits with weight, sign and display scale."""
    ndigits, weight, sign, dscale = _numeric_head.unpack_from(data, 0)
    if sign > _NUMERIC_NEG:
        if sign == _NUMERIC_NAN:
            return Decimal("NaN")
        if sign == _NUMERIC_PINF:
            return Decimal("Infinity")
        if sign == _NUMERIC_NINF:
            return Decimal("-Infinity")
    if ndigits == 0:
        return Decimal((0, (0,), -dscale))
    if ndigits < _NUMERIC_PRECOMPILED:
        # One precompiled unpack and one %-format: a quarter of the cost of a
        # format string built per value and an f-string per digit.
        digits = _NUMERIC_FORMATS[ndigits] % _NUMERIC_DIGITS[ndigits].unpack_from(data, 8)
    else:
        digits = "".join([f"{d:04d}" for d in struct.unpack_from(f"!{ndigits}H", data, 8)])
    exponent = 4 * (weight - ndigits + 1)
    # Present exactly `dscale` fraction digits, as the server's text form does.
    if exponent > -dscale:
        digits += "0" * (exponent + dscale)
    elif exponent < -dscale:
        digits = digits[: len(digits) - (-dscale - exponent)]
    return Decimal(f"{'-' if sign == _NUMERIC_NEG else ''}{digits or '0'}E{-dscale}")


def date_binary(data: bytes) -> date:
    """date: int32 days since 2000-01-01; infinities become ``date.max`` / ``date.min``."""
    days = _i32.unpack(data)[0]
    if days == _INF32:
        return date.max
    if days == _NEG_INF32:
        return date.min
    try:
        return date.fromordinal(days + PG_EPOCH_DATE_ORDINAL)
    except (ValueError, OverflowError):
        raise DataError({"M": f"date out of Python's range: {days} days from 2000-01-01"}) from None


def time_binary(data: bytes) -> time:
    """time: int64 microseconds since midnight."""
    us = _i64.unpack(data)[0]
    seconds, us = divmod(us, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours == 24:
        return time.max
    return time(hours, minutes, seconds, us)


def timetz_binary(data: bytes) -> time:
    """timetz: int64 microseconds since midnight, int32 zone seconds *west* of UTC."""
    us, zone = _timetz.unpack(data)
    seconds, us = divmod(us, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return time(min(hours, 23), minutes, seconds, us, tzinfo=timezone(timedelta(seconds=-zone)))


def timestamp_binary(data: bytes) -> datetime:
    """timestamp: int64 microseconds since 2000-01-01 00:00."""
    us = _i64.unpack(data)[0]
    if us == _INF64:
        return datetime.max
    if us == _NEG_INF64:
        return datetime.min
    try:
        return PG_EPOCH + timedelta(0, 0, us)  # positional: half the cost of microseconds=us
    except OverflowError:
        raise DataError({"M": f"timestamp out of Python's range: {us} us from 2000-01-01"}) from None


def make_timestamptz_binary(get_tz: Callable[[], tzinfo], get_fixed_epoch: Callable[[], datetime | None]) -> Decoder:
    """timestamptz: int64 microseconds since 2000-01-01 UTC, shown in the session time zone.

    ``get_fixed_epoch()`` is 2000-01-01 00:00 UTC expressed in the session zone when
    that zone never changes offset (UTC and its aliases): adding to it skips the
    ``astimezone`` call, which costs as much as the rest of the decoding.
    """

    def timestamptz_binary(data: bytes) -> datetime:
        us = _i64.unpack(data)[0]
        if us == _INF64:
            return datetime.max.replace(tzinfo=UTC)
        if us == _NEG_INF64:
            return datetime.min.replace(tzinfo=UTC)
        try:
            epoch = get_fixed_epoch()
            if epoch is not None:
                return epoch + timedelta(0, 0, us)  # positional: half the cost of microseconds=us
            return (PG_EPOCH_UTC + timedelta(0, 0, us)).astimezone(get_tz())
        except OverflowError:
            raise DataError({"M": f"timestamptz out of Python's range: {us} us from 2000-01-01"}) from None

    # The generated row decoders (_row_decoder) inline the fixed-epoch case and read it here.
    timestamptz_binary.fixed_epoch = get_fixed_epoch  # type: ignore[attr-defined]
    return timestamptz_binary


def _interval_days(days: int, months: int) -> int:
    # timedelta has no months: a month is 30 days and a year 365, as psycopg does.
    if months:
        years, rest = divmod(abs(months), 12)
        extra = 30 * rest + 365 * years
        days += extra if months > 0 else -extra
    return days


def interval_binary(data: bytes) -> timedelta:
    """interval: int64 microseconds, int32 days, int32 months."""
    us, days, months = _interval.unpack(data)
    return timedelta(days=_interval_days(days, months), microseconds=us)


_new_uuid = UUID.__new__
_set_attribute = object.__setattr__
_UUID_SAFETY_UNKNOWN = SafeUUID.unknown  # an enum member lookup costs a descriptor call each time


def uuid_binary(data: bytes) -> UUID:
    """uuid: 16 bytes."""
    if len(data) != 16:
        return UUID(bytes=data)  # raises its ValueError
    # UUID.__init__ checks which of its five arguments was given, then freezes the
    # instance through object.__setattr__: doing only the last step costs a third.
    value = _new_uuid(UUID)
    _set_attribute(value, "int", int.from_bytes(data))
    _set_attribute(value, "is_safe", _UUID_SAFETY_UNKNOWN)
    return value


def json_binary(data: bytes) -> Any:
    """json: the text itself."""
    return json_loads(data)


def jsonb_binary(data: bytes) -> Any:
    """jsonb: a version byte (1) then the text."""
    if data[:1] != b"\x01":
        raise DataError({"M": f"jsonb: unknown binary format version {data[:1]!r}"})
    return json_loads(data[1:])


def inet_binary(data: bytes) -> Any:
    """inet/cidr: family (2 IPv4, 3 IPv6), prefix bits, is_cidr flag, address length, address."""
    family, bits, is_cidr, size = data[0], data[1], data[2], data[3]
    packed = bytes(data[4 : 4 + size])
    full = 32 if family == 2 else 128
    if is_cidr:
        return ipaddress.ip_network((packed, bits))
    if bits == full:
        return ipaddress.ip_address(packed)
    return ipaddress.ip_interface((packed, bits))


def make_array_binary(element_decoder: Callable[[int], Decoder | None]) -> Decoder:
    """Build a binary array decoder; ``element_decoder(oid)`` finds the decoder of the element type."""

    def array_binary(data: bytes) -> list[Any]:
        ndim, _, elem_oid = _array_head.unpack_from(data, 0)
        if ndim == 0:
            return []
        dims = [_dim.unpack_from(data, 12 + 8 * i)[0] for i in range(ndim)]
        decode = element_decoder(elem_oid) or text_any
        pos = 12 + 8 * ndim
        unpack = _i32.unpack_from
        flat: list[Any] = []
        append = flat.append
        for _ in range(math.prod(dims)):
            size = unpack(data, pos)[0]
            pos += 4
            if size < 0:
                append(None)
            else:
                append(decode(data[pos : pos + size]))
                pos += size
        return _nest(flat, dims)

    return array_binary


def _nest(flat: list[Any], dims: list[int]) -> list[Any]:
    for size in reversed(dims[1:]):
        flat = [flat[i : i + size] for i in range(0, len(flat), size)]
    return flat


# ---------------------------------------------------------------------------
# Text decoders (simple query protocol, and types without a binary decoder)
# ---------------------------------------------------------------------------


def bool_text(data: bytes) -> bool:
    """bool: ``t`` or ``f``."""
    return data == b"t"


def int_text(data: bytes) -> int:
    """Any integer type."""
    return int(data)


def float_text(data: bytes) -> float:
    """float4/float8, including NaN and Infinity."""
    return float(data)


def numeric_text(data: bytes) -> Decimal:
    """numeric."""
    return Decimal(data.decode())


def bytea_text(data: bytes) -> bytes:
    """bytea in hex format (``\\x0a0b``), the default since PostgreSQL 9.0."""
    if data[:2] == b"\\x":
        return bytes.fromhex(data[2:].decode())
    raise DataError({"M": "bytea: expected hex output format (bytea_output = hex)"})


def date_text(data: bytes) -> date:
    """date in ISO style."""
    if data == b"infinity":
        return date.max
    if data == b"-infinity":
        return date.min
    try:
        return date.fromisoformat(data.decode())
    except ValueError:
        raise DataError({"M": f"date out of Python's range: {data.decode()}"}) from None


def time_text(data: bytes) -> time:
    """time / timetz in ISO style."""
    text = data.decode()
    if text.startswith("24:00:00"):
        return time.max
    return time.fromisoformat(text)


def timestamp_text(data: bytes) -> datetime:
    """timestamp in ISO style."""
    if data == b"infinity":
        return datetime.max
    if data == b"-infinity":
        return datetime.min
    try:
        return datetime.fromisoformat(data.decode())
    except ValueError:
        raise DataError({"M": f"timestamp out of Python's range: {data.decode()}"}) from None


def make_timestamptz_text(get_tz: Callable[[], tzinfo]) -> Decoder:
    """timestamptz in ISO style, shown in the session time zone."""

    def timestamptz_text(data: bytes) -> datetime:
        if data == b"infinity":
            return datetime.max.replace(tzinfo=UTC)
        if data == b"-infinity":
            return datetime.min.replace(tzinfo=UTC)
        try:
            return datetime.fromisoformat(data.decode()).astimezone(get_tz())
        except ValueError:
            raise DataError({"M": f"timestamptz out of Python's range: {data.decode()}"}) from None

    return timestamptz_text


_INTERVAL_RE = re.compile(
    r"(?:(?P<years>[-+]?\d+) years?)?\s*(?:(?P<months>[-+]?\d+) mons?)?\s*(?:(?P<days>[-+]?\d+) days?)?\s*"
    r"(?:(?P<sign>[-+])?(?P<hours>\d+):(?P<minutes>\d+):(?P<seconds>\d+)(?:\.(?P<us>\d{1,6}))?)?$"
)


def interval_text(data: bytes) -> timedelta:
    """interval in ``IntervalStyle=postgres`` (``1 year 2 mons 3 days 04:05:06.5``)."""
    text = data.decode()
    match = _INTERVAL_RE.match(text)
    if match is None:
        raise DataError({"M": f"interval: cannot parse {text!r} (IntervalStyle must be postgres)"})
    g = match.groupdict()
    months = int(g["years"] or 0) * 12 + int(g["months"] or 0)
    days = _interval_days(int(g["days"] or 0), months)
    us = 0
    if g["hours"] is not None:
        us = (int(g["hours"]) * 3600 + int(g["minutes"]) * 60 + int(g["seconds"])) * 1_000_000
        us += int((g["us"] or "0").ljust(6, "0"))
        if g["sign"] == "-":
            us = -us
    return timedelta(days=days, microseconds=us)


def uuid_text(data: bytes) -> UUID:
    """uuid."""
    return UUID(data.decode())


def jsonb_text(data: bytes) -> Any:
    """json/jsonb."""
    return json_loads(data)


def inet_text(data: bytes) -> Any:
    """inet: an address, or an interface when it carries a prefix."""
    text = data.decode()
    return ipaddress.ip_interface(text) if "/" in text else ipaddress.ip_address(text)


def cidr_text(data: bytes) -> Any:
    """cidr: a network."""
    return ipaddress.ip_network(data.decode())


def make_array_text(element: Decoder, delimiter: bytes = b",") -> Decoder:
    """Build a decoder for the text form of arrays (``{{1,2},{NULL,"a b"}}``)."""

    def array_text(data: bytes) -> list[Any]:
        if data[:1] == b"[":  # explicit bounds "[0:1]={...}": ignore them
            data = data[data.index(b"=") + 1 :]
        return _parse_array_text(data, element, delimiter[0])

    return array_text


def _parse_array_text(data: bytes, element: Decoder, delim: int) -> list[Any]:
    stack: list[list[Any]] = []
    result: list[Any] = []
    i, n = 0, len(data)
    while i < n:
        ch = data[i]
        if ch == 0x7B:  # {
            new: list[Any] = []
            if stack:
                stack[-1].append(new)
            else:
                result = new
            stack.append(new)
            i += 1
        elif ch == 0x7D:  # }
            stack.pop()
            i += 1
        elif ch in (delim, 32):
            i += 1
        elif ch == 0x22:  # "quoted"
            i += 1
            chunks = bytearray()
            while data[i] != 0x22:
                if data[i] == 0x5C:  # backslash escapes the next byte
                    i += 1
                chunks.append(data[i])
                i += 1
            i += 1
            stack[-1].append(element(bytes(chunks)))
        else:
            j = i
            while data[j] != delim and data[j] != 0x7D:
                j += 1
            token = data[i:j]
            stack[-1].append(None if token == b"NULL" else element(token))
            i = j
    return result


# ---------------------------------------------------------------------------
# Encoders (parameters)
# ---------------------------------------------------------------------------


def encode_bool(value: Any) -> bytes:
    """bool, binary."""
    return b"\x01" if value else b"\x00"


def encode_int2(value: Any) -> bytes:
    """int2, binary."""
    return _i16.pack(value)


def encode_int4(value: Any) -> bytes:
    """int4, binary."""
    return _i32.pack(value)


def encode_int8(value: Any) -> bytes:
    """int8, binary."""
    return _i64.pack(value)


def encode_float4(value: Any) -> bytes:
    """float4, binary."""
    return _f32.pack(value)


def encode_float8(value: Any) -> bytes:
    """float8, binary."""
    return _f64.pack(value)


def encode_bytes(value: Any) -> bytes:
    """bytea, binary: the bytes themselves.

    Raises:
        TypeError: ``value`` is not bytes, bytearray or memoryview (``bytes(5)`` would be
            five zero bytes, ``bytes([1, 2])`` two bytes: neither is what was meant).
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"bytea takes bytes, bytearray or memoryview, not {type(value).__name__}")


def encode_uuid(value: Any) -> bytes:
    """uuid, binary."""
    return value.bytes  # type: ignore[no-any-return]


def encode_jsonb(value: Any) -> bytes:
    """jsonb, binary: version byte 1 and the text."""
    return b"\x01" + (value.encode() if isinstance(value, str) else json_dumps(value))


def _interval_literal(value: timedelta) -> str:
    return f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"


def _float_literal(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def text_literal(value: Any) -> str:
    """Render a Python value in the text input format PostgreSQL parses for its natural type.

    Args:
        value: bool, int, float, Decimal, str, bytes, date/time/datetime, timedelta,
            UUID, ip address/interface/network, dict (JSON), list (array), or an
            ``enum.Enum`` member (its name; StrEnum and IntEnum members by value).

    Returns:
        The text form.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return int.__repr__(value)  # the digits, also for IntEnum/IntFlag and int-mixin enums
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return _float_literal(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _interval_literal(value)
    if isinstance(value, list | tuple):
        if value and type(value[0]) is Range:  # a list of ranges: a multirange (PostgreSQL 14+)
            return "{" + ",".join(str(item) for item in value) + "}"
        if hasattr(value, "_fields"):  # a named tuple: a composite value
            return composite_literal(value)
        return array_literal(value)
    if isinstance(value, dict):
        return json_dumps(value).decode()
    if isinstance(value, Enum):
        # As psycopg: an enum member is sent by name (str- and int-mixin enums were sent above by value).
        return value.name
    return str(value)


def array_literal(values: list[Any] | tuple[Any, ...]) -> str:
    """Render a (nested) list as an array literal, quoting every element."""
    parts = []
    for item in values:
        if item is None:
            parts.append("NULL")
        elif isinstance(item, list | tuple):
            parts.append(array_literal(item))
        else:
            text = text_literal(item)
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def composite_literal(fields: tuple[Any, ...] | list[Any]) -> str:
    """Render fields as a composite (row) literal: ``("1",,"a""b")``, an empty field being NULL."""
    parts = []
    for field in fields:
        if field is None:
            parts.append("")
        else:
            text = text_literal(field)
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '""') + '"')
    return "(" + ",".join(parts) + ")"


def encode_json_text(value: Any) -> bytes:
    """json/jsonb parameter in text format."""
    return value.encode() if isinstance(value, str) else json_dumps(value)


def encode_text(value: Any) -> bytes:
    """Any parameter in text format."""
    return text_literal(value).encode()
