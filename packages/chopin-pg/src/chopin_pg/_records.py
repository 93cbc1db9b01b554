"""Composite and record codecs (sans-IO): binary and text record forms, composite parameters.

See :mod:`chopin_pg.usertypes` for registering a composite type on a connection.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ._codecs import composite_literal, text_any
from .errors import DataError

__all__ = ["encode_composite", "make_record_binary", "make_record_text"]

Decoder = Callable[[bytes], Any]
_field_head = struct.Struct("!Ii")
_i32 = struct.Struct("!i")


def make_record_binary(decoder: Callable[[int], Decoder | None], build: Callable[..., Any] = tuple) -> Decoder:
    """Build a binary record decoder; ``decoder(oid)`` finds each field's decoder (text of unknown types).

    Args:
        decoder: Finds a binary decoder by OID, at decode time.
        build: Makes the value from the list of fields (``tuple``, or ``lambda f: Cls(*f)``).
    """

    def record_binary(data: bytes) -> Any:
        count = _i32.unpack_from(data, 0)[0]
        pos = 4
        fields: list[Any] = []
        for _ in range(count):
            oid, size = _field_head.unpack_from(data, pos)
            pos += 8
            if size < 0:
                fields.append(None)
                continue
            fields.append((decoder(oid) or text_any)(data[pos : pos + size]))
            pos += size
        return build(fields)

    return record_binary


def _split_record_text(text: str) -> list[str | None]:
    if text[:1] != "(" or text[-1:] != ")":
        raise DataError({"M": f"record: expected '(...)', got {text[:60]!r}", "C": "22P02"})
    fields: list[str | None] = []
    i, n = 1, len(text) - 1
    while True:
        if i >= n or text[i] == ",":
            fields.append(None)  # an empty field is NULL
        else:
            out: list[str] = []
            quoted = False
            while i < n and (quoted or text[i] != ","):
                ch = text[i]
                if ch == '"':
                    if quoted and i + 1 < n and text[i + 1] == '"':
                        out.append('"')
                        i += 1
                    else:
                        quoted = not quoted
                elif ch == "\\" and i + 1 < n:
                    i += 1
                    out.append(text[i])
                else:
                    out.append(ch)
                i += 1
            fields.append("".join(out))
        if i >= n:
            return fields
        i += 1  # the comma
        if i >= n:
            fields.append(None)  # a trailing comma: the last field is NULL
            return fields


def make_record_text(decoders: Callable[[], list[Decoder]] | None = None, build: Callable[..., Any] = tuple) -> Decoder:
    """Build a text record decoder.

    Args:
        decoders: Returns one text decoder per field (a registered composite); ``None`` keeps
            every field a ``str`` (an anonymous record).
        build: Makes the value from the list of fields.
    """

    def record_text(data: bytes) -> Any:
        raw = _split_record_text(data.decode())
        if decoders is None:
            return build(raw)
        decode = decoders()
        if len(decode) != len(raw):
            raise DataError({"M": f"record: expected {len(decode)} fields, got {len(raw)}", "C": "22P02"})
        return build([None if f is None else d(f.encode()) for d, f in zip(decode, raw, strict=True)])

    return record_text


def encode_composite(value: Any) -> bytes:
    """A composite parameter in text format: a tuple (or named tuple) of fields, or a literal str."""
    if isinstance(value, str):
        return value.encode()
    return composite_literal(value).encode()
