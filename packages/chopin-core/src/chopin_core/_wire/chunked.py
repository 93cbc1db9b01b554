"""The chunked transfer coding (RFC 9112 7.1), decoded without I/O.

One decoder serves both directions: request bodies in :mod:`chopin_core._wire.h1_request`
(strict: a bare CR or LF in a chunk-size line is refused, trailer lines must be
well-formed field lines, the body size is bounded) and response bodies in :mod:`chopin_core._wire.h1_response`
(lenient about line endings, unbounded body: it is streamed). Each side passes
the exception types its own errors are reported with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["ChunkedDecoder"]

_HEX: Final = b"0123456789abcdefABCDEF"
# RFC 9110 5.6.2 token characters, and field-value bytes (5.5: VCHAR, obs-text, SP, HTAB).
_TCHAR: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FIELD_VALUE: Final = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
_MAX_CHUNK_LINE: Final = 4096  # a chunk-size line, extensions included

_SIZE: Final = 0  # expecting a chunk-size line
_DATA: Final = 1  # inside a chunk's data
_DATA_END: Final = 2  # expecting the CRLF after a chunk's data
_TRAILER: Final = 3  # in the trailer section (read and dropped)
_DONE: Final = 4


class ChunkedDecoder:
    """Decodes one chunked body at a time; :meth:`reset` before each.

    Args:
        bad: the exception type for malformed framing (called with a message).
        trailer_too_large: the exception type for a trailer section over ``max_trailer``.
        max_trailer: bytes the trailer section may have in all.
        strict: refuse bare CR or LF in chunk-size lines, and trailer lines that are not
            field lines (``name: value``).
        body_too_large: the exception type for a body over ``max_body``.
        max_body: data bytes the body may have in all; None for no bound.
    """

    __slots__ = ("_bad", "_body_too_large", "_max_body", "_max_trailer", "_remaining", "_state", "_strict",
                 "_total", "_trailer_too_large")  # fmt: skip

    def __init__(
        self,
        *,
        bad: type[Exception],
        trailer_too_large: type[Exception],
        max_trailer: int,
        strict: bool,
        body_too_large: type[Exception] | None = None,
        max_body: int | None = None,
    ) -> None:
        self._bad = bad
        self._trailer_too_large = trailer_too_large
        self._max_trailer = max_trailer
        self._strict = strict
        self._body_too_large = body_too_large or bad
        self._max_body = max_body
        self._state = _SIZE
        self._remaining = 0  # data bytes left in the chunk, or trailer bytes so far
        self._total = 0

    def reset(self) -> None:
        """Start a new body."""
        self._state = _SIZE
        self._remaining = 0
        self._total = 0

    @property
    def received(self) -> int:
        """Data bytes of the current body decoded so far."""
        return self._total - self._remaining if self._state == _DATA else self._total

    @property
    def done(self) -> bool:
        """True once the last chunk and the trailer section have been read."""
        return self._state == _DONE

    def feed(self, buf: bytes, pos: int, end: int, emit: Callable[[bytes], object]) -> int:
        """Decode ``buf[pos:end]``, passing each piece of chunk data to ``emit``.

        Returns the position it stopped at: after the body's final CRLF once
        :attr:`done`, else where more bytes are needed (a partial line is not
        consumed: the caller keeps ``buf[returned:]`` and feeds it again with
        what follows).
        """
        while True:
            state = self._state
            if state == _DATA:
                if pos >= end:
                    return pos
                take = min(self._remaining, end - pos)
                emit(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _DATA_END
                continue
            if state == _DATA_END:
                if end - pos < 2:
                    return pos
                if buf[pos : pos + 2] != b"\r\n":
                    raise self._bad("chunked body: chunk data not followed by CRLF")
                self._state = _SIZE
                pos += 2
                continue
            if state == _DONE:
                return pos
            eol = buf.find(b"\r\n", pos, end)
            if state == _SIZE:
                pos = self._size_line(buf, pos, end, eol)
                if pos < 0:
                    return -pos - 1
                continue
            # The trailer section: read and dropped, bounded like a head.
            if eol < 0:
                if self._remaining + end - pos > self._max_trailer:
                    raise self._trailer_too_large("chunked trailer section too large")
                return pos
            if eol == pos:
                self._state = _DONE
                return pos + 2
            if self._strict:
                self._check_trailer_line(buf[pos:eol])
            self._remaining += eol - pos + 2
            if self._remaining > self._max_trailer:
                raise self._trailer_too_large("chunked trailer section too large")
            pos = eol + 2

    def _check_trailer_line(self, line: bytes) -> None:
        """A trailer line is a field line (RFC 9112 7.1.2, 5): ``name: value``, nothing else.

        A line without a colon, with whitespace before it (RFC 9112 5.1), folded (5.2) or
        holding control bytes would be dropped unread here, but a proxy or a later parser
        that reads it differently disagrees with us on where the message ends.
        """
        colon = line.find(b":")
        if colon <= 0 or line[:colon].translate(None, _TCHAR):
            raise self._bad(f"chunked trailer: expected 'name: value', got {line[:40]!r}")
        if line[colon + 1 :].translate(None, _FIELD_VALUE):
            raise self._bad("chunked trailer: control character, or bare CR or LF, in a field value")

    def _size_line(self, buf: bytes, pos: int, end: int, eol: int) -> int:
        """Read a chunk-size line ending at ``eol``; the position after it, or ``-(pos + 1)`` if partial."""
        if eol < 0:
            if end - pos > _MAX_CHUNK_LINE:
                raise self._bad("chunked body: chunk-size line too long")
            return -(pos + 1)
        line = buf[pos:eol]
        if self._strict and (b"\n" in line or b"\r" in line):
            raise self._bad("chunked body: bare CR or LF in chunk-size line")
        size_b = line.split(b";", 1)[0].rstrip(b" \t")
        if not size_b or size_b.translate(None, _HEX) or len(size_b) > 16:
            raise self._bad(f"chunked body: bad chunk size {size_b[:20]!r}")
        size = int(size_b, 16)
        self._total += size
        if self._max_body is not None and self._total > self._max_body:
            raise self._body_too_large(f"chunked body over {self._max_body} bytes")
        if size == 0:
            self._state = _TRAILER
            self._remaining = 0
        else:
            self._state = _DATA
            self._remaining = size
        return eol + 2
