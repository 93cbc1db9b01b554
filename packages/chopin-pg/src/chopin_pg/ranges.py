"""Range and multirange values: :class:`Range`, and their binary and text codecs.

``int4range``, ``int8range``, ``numrange``, ``daterange``, ``tsrange`` and ``tstzrange`` come
back as :class:`Range`; their multiranges (PostgreSQL 14+) as a ``list`` of :class:`Range`.
A :class:`Range` (or a list of them for a multirange) is accepted as a parameter.

Wire formats (``src/backend/utils/adt/rangetypes.c``, ``multirangetypes.c``): a range is a
flags byte then, for each finite bound, an int32 length and the element's own binary form;
a multirange is an int32 count then, for each range, an int32 length and the range.  The text
forms are ``empty``, ``[1,5)``, ``("2024-01-01 00:00:00",)`` and ``{[1,3),[5,7)}``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import DataError, InterfaceError

__all__ = ["Range", "encode_multirange", "encode_range", "make_multirange_binary", "make_multirange_text"]

Decoder = Callable[[bytes], Any]

# Flag bits of a range's first byte (rangetypes.h).
_EMPTY = 0x01
_LB_INC = 0x02
_UB_INC = 0x04
_LB_INF = 0x08
_UB_INF = 0x10

_i32 = struct.Struct("!i")


@dataclass(frozen=True, slots=True)
class Range:
    """A range value, as psycopg's: ``Range(1, 5)`` is ``[1,5)``; ``None`` bounds are infinite.

    Attributes:
        lower: The lower bound, ``None`` when unbounded.
        upper: The upper bound, ``None`` when unbounded.
        bounds: ``"[)"``, ``"(]"``, ``"[]"`` or ``"()"``: which bounds are included.
        empty: The empty range (``Range(empty=True)``; the bounds are then ignored).
    """

    lower: Any = None
    upper: Any = None
    bounds: str = "[)"
    empty: bool = False

    def __post_init__(self) -> None:
        if self.bounds not in ("[)", "(]", "[]", "()"):
            raise InterfaceError(f"Range bounds: expected '[)', '(]', '[]' or '()', got {self.bounds!r}")

    @property
    def isempty(self) -> bool:
        """Whether the range is empty."""
        return self.empty

    @property
    def lower_inc(self) -> bool:
        """Whether the lower bound is included (an infinite bound never is)."""
        return not self.empty and self.lower is not None and self.bounds[0] == "["

    @property
    def upper_inc(self) -> bool:
        """Whether the upper bound is included (an infinite bound never is)."""
        return not self.empty and self.upper is not None and self.bounds[1] == "]"

    @property
    def lower_inf(self) -> bool:
        """Whether the range is unbounded below."""
        return not self.empty and self.lower is None

    @property
    def upper_inf(self) -> bool:
        """Whether the range is unbounded above."""
        return not self.empty and self.upper is None

    def __contains__(self, value: Any) -> bool:
        if self.empty:
            return False
        if self.lower is not None and (value < self.lower or (value == self.lower and self.bounds[0] == "(")):
            return False
        return not (self.upper is not None and (value > self.upper or (value == self.upper and self.bounds[1] == ")")))

    def __str__(self) -> str:
        """The range's PostgreSQL text form (``[1,5)``)."""
        if self.empty:
            return "empty"
        return f"{self.bounds[0]}{_bound_literal(self.lower)},{_bound_literal(self.upper)}{self.bounds[1]}"


def _bound_literal(value: Any) -> str:
    if value is None:
        return ""
    from ._codecs import text_literal  # _codecs imports this module (ranges are parameters too)

    text = text_literal(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- parameters ------------------------------------------------------------------


def encode_range(value: Any) -> bytes:
    """A range parameter in text format: a :class:`Range`, or a str taken as the literal itself."""
    if isinstance(value, str):
        return value.encode()
    return str(value).encode()


def encode_multirange(value: Any) -> bytes:
    """A multirange parameter in text format: a list of :class:`Range`, one :class:`Range`, or a literal str."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, Range):
        value = [value]
    return ("{" + ",".join(str(item) for item in value) + "}").encode()


# -- results ---------------------------------------------------------------------


def make_range_binary(element: Callable[[int], Decoder | None], element_oid: int) -> Decoder:
    """Build the binary decoder of a range whose bounds are of type ``element_oid``.

    Args:
        element: Finds a binary decoder by OID (looked up at decode time: the registry's own codecs).
        element_oid: The range's subtype.
    """

    def range_binary(data: bytes) -> Range:
        flags = data[0]
        if flags & _EMPTY:
            return Range(empty=True)
        decode = element(element_oid)
        if decode is None:
            raise DataError({"M": f"range of type {element_oid}: no binary decoder for its bounds", "C": "22000"})
        pos = 1
        lower = upper = None
        if not flags & _LB_INF:
            size = _i32.unpack_from(data, pos)[0]
            lower = decode(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        if not flags & _UB_INF:
            size = _i32.unpack_from(data, pos)[0]
            upper = decode(data[pos + 4 : pos + 4 + size])
        bounds = ("[" if flags & _LB_INC else "(") + ("]" if flags & _UB_INC else ")")
        return Range(lower, upper, bounds)

    return range_binary


def make_range_text(element: Callable[[int], Decoder | None], element_oid: int) -> Decoder:
    """Build the text decoder of a range (``[1,5)``, ``empty``); ``element`` finds text decoders by OID."""

    def range_text(data: bytes) -> Range:
        return _parse_range(data.decode(), element(element_oid) or (lambda b: b.decode()))

    return range_text


def _parse_range(text: str, decode: Decoder) -> Range:
    if text == "empty":
        return Range(empty=True)
    if len(text) < 3 or text[0] not in "[(" or text[-1] not in ")]":
        raise DataError({"M": f"range: expected '[lower,upper)' or 'empty', got {text[:60]!r}", "C": "22P02"})
    lower, end = _parse_bound(text, 1, ",")
    upper, end = _parse_bound(text, end + 1, text[-1])
    if end != len(text) - 1:
        raise DataError({"M": f"range: unexpected text after the upper bound in {text[:60]!r}", "C": "22P02"})
    return Range(
        None if lower is None else decode(lower.encode()),
        None if upper is None else decode(upper.encode()),
        text[0] + text[-1],
    )


def _parse_bound(text: str, i: int, stop: str) -> tuple[str | None, int]:
    # Returns the bound's text (None when empty, i.e. infinite) and the index of `stop`.
    if text[i] == stop:
        return None, i
    out: list[str] = []
    n = len(text)
    quoted = False
    while i < n:
        ch = text[i]
        if ch == '"':
            if quoted and i + 1 < n and text[i + 1] == '"':
                out.append('"')  # a doubled quote inside quotes
                i += 2
                continue
            quoted = not quoted
        elif ch == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
            continue
        elif ch == stop and not quoted:
            return "".join(out), i
        else:
            out.append(ch)
        i += 1
    raise DataError({"M": f"range: unterminated bound in {text[:60]!r}", "C": "22P02"})


def make_multirange_binary(range_decoder: Decoder) -> Decoder:
    """Build the binary decoder of a multirange from the binary decoder of its range type."""

    def multirange_binary(data: bytes) -> list[Range]:
        count = _i32.unpack_from(data, 0)[0]
        pos = 4
        out = []
        for _ in range(count):
            size = _i32.unpack_from(data, pos)[0]
            out.append(range_decoder(data[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        return out

    return multirange_binary


def make_multirange_text(range_decoder: Decoder) -> Decoder:
    """Build the text decoder of a multirange (``{[1,3),[5,7)}``) from the text decoder of its range type."""

    def multirange_text(data: bytes) -> list[Range]:
        text = data.decode()
        if text[:1] != "{" or text[-1:] != "}":
            raise DataError({"M": f"multirange: expected '{{...}}', got {text[:60]!r}", "C": "22P02"})
        out: list[Range] = []
        i, n = 1, len(text) - 1
        while i < n:
            if text[i] in ", ":
                i += 1
                continue
            start, quoted = i, False
            while i < n and (quoted or text[i] not in ")]"):
                if text[i] == "\\":
                    i += 1
                elif text[i] == '"':
                    quoted = not quoted
                i += 1
            out.append(range_decoder(text[start : i + 1].encode()))
            i += 1
        return out

    return multirange_text
