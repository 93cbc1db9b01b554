"""The Redis serialization protocol (RESP2), the little of it pub/sub needs (sans-IO).

Commands go out as arrays of bulk strings; replies come back as simple strings
(``+``), errors (``-``), integers (``:``), bulk strings (``$``, ``$-1`` for nil) and
arrays (``*``), each line ending in CRLF (https://redis.io/docs/latest/develop/reference/protocol-spec/).
A subscribed connection receives ``["message", channel, payload]`` arrays.
"""

from __future__ import annotations

from typing import Final, Union

from ..errors import ChopinError

__all__ = ["RespError", "RespParser", "RespProtocolError", "RespValue", "command"]

RespValue = Union[bytes, int, str, None, "RespError", list["RespValue"]]

# A bulk string or array larger than this is refused (the backplane's frames are far smaller).
_MAX_BULK: Final = 16 * 1024 * 1024
# A simple string, error or length line (error messages are the long ones).
_MAX_LINE: Final = 4096


class RespError(ChopinError):
    """An error reply (``-ERR ...``): the server refused a command."""


class RespProtocolError(ChopinError):
    """Bytes that are not RESP2: the connection cannot be used further."""


def command(*parts: bytes | str) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        out += (b"$%d\r\n" % len(raw), raw, b"\r\n")
    return b"".join(out)


class RespParser:
    """Feed bytes, get the complete replies they finish; a partial reply waits for more bytes."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[RespValue]:
        """The replies completed by ``data``.

        Raises:
            RespProtocolError: the bytes are not RESP2, or a length is past the bound.
        """
        self._buf += data
        replies: list[RespValue] = []
        pos = 0
        while True:
            parsed = self._value(pos)
            if parsed is None:
                break
            value, pos = parsed
            replies.append(value)
        del self._buf[:pos]
        return replies

    def _line(self, pos: int) -> tuple[bytes, int] | None:
        end = self._buf.find(b"\r\n", pos)
        if end < 0:
            if len(self._buf) - pos > _MAX_LINE:
                raise RespProtocolError(f"RESP: a line longer than {_MAX_LINE} bytes")
            return None
        return bytes(self._buf[pos:end]), end + 2

    def _value(self, pos: int) -> tuple[RespValue, int] | None:
        found = self._line(pos)
        if found is None:
            return None
        line, pos = found
        if not line:
            raise RespProtocolError("RESP: an empty line where a reply starts")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace"), pos
        if kind == b"-":
            return RespError(rest.decode("utf-8", "replace")), pos
        try:
            number = int(rest)
        except ValueError:
            raise RespProtocolError(f"RESP: {kind!r} followed by {rest[:20]!r}, expected a number") from None
        if kind == b":":
            return number, pos
        if number > _MAX_BULK:
            raise RespProtocolError(f"RESP: a length of {number}, at most {_MAX_BULK} accepted")
        if kind == b"$":
            if number < 0:
                return None, pos
            if len(self._buf) < pos + number + 2:
                return None
            return bytes(self._buf[pos : pos + number]), pos + number + 2
        if kind == b"*":
            if number < 0:
                return None, pos
            items: list[RespValue] = []
            for _ in range(number):
                parsed = self._value(pos)
                if parsed is None:
                    return None
                item, pos = parsed
                items.append(item)
            return items, pos
        raise RespProtocolError(f"RESP: unknown reply type {kind!r}")
