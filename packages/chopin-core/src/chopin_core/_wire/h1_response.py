"""Sans-IO HTTP/1.1 client side: request serialisation and a response parser (RFC 9112).

How it works: :func:`build_request` turns a method, target and header fields into
the bytes to send, refusing anything that could split the message.  A
:class:`ResponseParser` is made for one exchange (it must know the request method:
the answer to ``HEAD`` has no body); :meth:`ResponseParser.feed` takes what the
socket produced and returns events in order: one :class:`ResponseHead`, body data
as ``bytes`` (de-chunked), then :data:`END`.  :meth:`ResponseParser.feed_eof` says
the peer closed: that ends a body delimited by the close and is an error anywhere
else.  Interim ``1xx`` responses are read and dropped.  Errors raise
:class:`~chopin_core._client_errors.ResponseProtocolError`; the parser then
refuses further input.  No socket, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .._client_errors import ResponseProtocolError, ResponseTooLarge, UpstreamClosed
from ._abnf import TCHAR, TCHARS
from .chunked import ChunkedDecoder

__all__ = [
    "END",
    "HOP_BY_HOP",
    "BodyKind",
    "End",
    "Event",
    "ResponseHead",
    "ResponseLimits",
    "ResponseParser",
    "build_request",
    "end_to_end",
]

_TCHAR: Final = TCHAR
_TCHARS: Final = TCHARS
_TARGET_CHARS: Final = frozenset(chr(c) for c in range(0x21, 0x7F))

# RFC 9110 7.6.1: fields that describe one connection, never forwarded.  The
# fields named in Connection are hop-by-hop too (see end_to_end).  Proxy-Connection
# is not standard but old clients send it (RFC 9112 9.3 mentions its misuse).
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class BodyKind:
    """How a response body is delimited (RFC 9112 6.3)."""

    NONE: Final = 0
    LENGTH: Final = 1
    CHUNKED: Final = 2
    CLOSE: Final = 3


class ResponseHead:
    """A parsed status line and header section.

    Attributes:
        status: the status code.
        reason: the reason phrase (may be empty).
        http11: False for an HTTP/1.0 response.
        headers: ``(name, value)`` pairs as received (names keep their case).
        body_kind: a :class:`BodyKind` value.
        length: the ``Content-Length`` for ``BodyKind.LENGTH``, else -1.
        keep_alive: whether the connection may carry another request afterwards.
    """

    __slots__ = ("body_kind", "headers", "http11", "keep_alive", "length", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: str,
        http11: bool,
        headers: list[tuple[str, str]],
        body_kind: int,
        length: int,
        keep_alive: bool,
    ) -> None:
        self.status = status
        self.reason = reason
        self.http11 = http11
        self.headers = headers
        self.body_kind = body_kind
        self.length = length
        self.keep_alive = keep_alive

    def get(self, name: str) -> str | None:
        """The value of header ``name`` (any case), repeated fields joined by ``", "``."""
        key = name.lower()
        values = [v for k, v in self.headers if k.lower() == key]
        return ", ".join(values) if values else None

    def __repr__(self) -> str:
        return f"<ResponseHead {self.status} {self.reason!r}>"


class End:
    """Event: the response is complete."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END: Final = End()


class ResponseLimits:
    """The bounds a :class:`ResponseParser` enforces.

    Args:
        max_head: status line plus header fields, in bytes.
        max_headers: number of header fields.
    """

    __slots__ = ("max_head", "max_headers")

    def __init__(self, max_head: int = 64 * 1024, max_headers: int = 200) -> None:
        if max_head < 1 or max_headers < 1:
            raise ValueError(f"response limits: expected >= 1, got max_head={max_head}, max_headers={max_headers}")
        self.max_head = max_head
        self.max_headers = max_headers


# Parser states.
_HEAD: Final = 0
_BODY: Final = 1
_CHUNKED: Final = 2  # a chunked body: self._chunks decodes it
_UNTIL_CLOSE: Final = 6
_DONE: Final = 7
_ERROR: Final = 8

Event = ResponseHead | bytes | End


class ResponseParser:
    """Frames one HTTP/1.1 response out of a byte stream.

    Args:
        method: the request method (a response to ``HEAD`` has no body).
        limits: the head bounds; defaults when omitted.
    """

    __slots__ = ("_buf", "_chunks", "_head_only", "_limits", "_remaining", "_state", "head", "received")

    def __init__(self, method: str, limits: ResponseLimits | None = None) -> None:
        self._limits = limits or ResponseLimits()
        self._head_only = method == "HEAD"
        self._buf = b""
        self._state = _HEAD
        self._remaining = 0
        self._chunks: ChunkedDecoder | None = None
        self.head: ResponseHead | None = None
        # Whether any byte arrived: a reused connection that fails before this is safe to retry.
        self.received = False

    @property
    def done(self) -> bool:
        """True once the whole response has been framed."""
        return self._state == _DONE

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the events it completes, in order.

        Raises:
            ResponseProtocolError: the response is malformed or over a limit.
        """
        if self._state == _ERROR:
            raise ResponseProtocolError("response parser already failed")
        if self._state == _DONE:
            if data:
                raise ResponseProtocolError(f"{len(data)} bytes after the end of the response")
            return []
        if data:
            self.received = True
        buf = self._buf + data if self._buf else data
        self._buf = b""
        events: list[Event] = []
        try:
            pos = self._run(buf, events)
        except ResponseProtocolError:
            self._state = _ERROR
            raise
        if pos < len(buf):
            if self._state == _DONE:
                self._state = _ERROR
                raise ResponseProtocolError(f"{len(buf) - pos} bytes after the end of the response")
            self._buf = buf[pos:]
        return events

    def feed_eof(self) -> list[Event]:
        """The peer closed its side; return the final events.

        Raises:
            UpstreamClosed: the response was not complete.
        """
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE
            return [END]
        if self._state == _DONE:
            return []
        where = "before the response head" if self._state == _HEAD else "in the middle of the response body"
        self._state = _ERROR
        raise UpstreamClosed(f"upstream closed the connection {where}")

    # -- the state machine ------------------------------------------------------

    def _run(self, buf: bytes, events: list[Event]) -> int:
        pos = 0
        end = len(buf)
        while pos < end or self._state == _DONE:
            state = self._state
            if state == _HEAD:
                stop = buf.find(b"\r\n\r\n", pos)
                if stop < 0:
                    if end - pos > self._limits.max_head:
                        raise ResponseTooLarge(f"response head over {self._limits.max_head} bytes")
                    return pos
                if stop - pos > self._limits.max_head:
                    raise ResponseTooLarge(f"response head is {stop - pos} bytes, limit {self._limits.max_head}")
                head = self._parse_head(buf[pos:stop])
                pos = stop + 4
                if 100 <= head.status < 200:
                    if head.status == 101:
                        raise ResponseProtocolError("upstream switched protocols (101), which was not asked for")
                    continue  # interim response (RFC 9110 15.2): the final one follows
                self.head = head
                events.append(head)
                kind = head.body_kind
                if kind == BodyKind.NONE or (kind == BodyKind.LENGTH and head.length == 0):
                    self._state = _DONE
                elif kind == BodyKind.LENGTH:
                    self._state = _BODY
                    self._remaining = head.length
                elif kind == BodyKind.CHUNKED:
                    self._state = _CHUNKED
                    self._chunks = ChunkedDecoder(
                        bad=ResponseProtocolError, trailer_too_large=ResponseTooLarge,
                        max_trailer=self._limits.max_head, strict=False,
                    )  # fmt: skip
                else:
                    self._state = _UNTIL_CLOSE
            elif state == _DONE:
                events.append(END)
                return pos
            elif state == _BODY:
                take = min(self._remaining, end - pos)
                events.append(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _DONE
            elif state == _UNTIL_CLOSE:
                events.append(buf[pos:] if pos else buf)
                return end
            else:
                chunks = self._chunks
                assert chunks is not None
                pos = chunks.feed(buf, pos, end, events.append)
                if not chunks.done:
                    return pos  # more bytes needed; buf[pos:] is kept
                self._state = _DONE
        return pos

    def _parse_head(self, head: bytes) -> ResponseHead:
        """Validate one head (without its final CRLFCRLF)."""
        crlf = head.count(b"\r\n")
        if head.count(b"\r") != crlf or head.count(b"\n") != crlf:
            raise ResponseProtocolError("response head: bare CR or LF, expected CRLF line endings")
        if b"\x00" in head:
            raise ResponseProtocolError("response head: NUL byte")
        lines = head.split(b"\r\n")
        if len(lines) - 1 > self._limits.max_headers:
            raise ResponseTooLarge(f"response has {len(lines) - 1} header fields, limit {self._limits.max_headers}")
        # status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 4).
        version, _, rest = lines[0].partition(b" ")
        code, _, reason = rest.partition(b" ")
        if version == b"HTTP/1.1":
            http11 = True
        elif version == b"HTTP/1.0":
            http11 = False
        else:
            shown = lines[0][:40].decode("latin-1")
            raise ResponseProtocolError(f"status line: expected 'HTTP/1.x NNN reason', got {shown!r}")
        if len(code) != 3 or not code.isdigit():
            raise ResponseProtocolError(f"status line: expected a 3-digit status, got {code[:10].decode('latin-1')!r}")
        status = int(code)
        if status < 100:
            raise ResponseProtocolError(f"status line: status {status} is below 100")
        headers: list[tuple[str, str]] = []
        connection: list[str] = []
        lengths: list[bytes] = []
        codings: list[str] = []
        for number, line in enumerate(lines[1:], 1):
            colon = line.find(b":")
            if colon <= 0 or line[:colon].translate(None, _TCHAR):
                shown = line[:40].decode("latin-1")
                raise ResponseProtocolError(f"response header line {number}: expected 'name: value', got {shown!r}")
            name = line[:colon].decode("ascii")
            raw = line[colon + 1 :].strip(b" \t")
            value = raw.decode("latin-1")
            headers.append((name, value))
            lname = name.lower()
            if lname == "content-length":
                lengths.extend(item.strip(b" \t") for item in raw.split(b","))
            elif lname == "transfer-encoding":
                codings.extend(c.strip().lower() for c in value.split(",") if c.strip())
            elif lname == "connection":
                connection.extend(c.strip().lower() for c in value.split(",") if c.strip())
        keep_alive = "keep-alive" in connection if not http11 else "close" not in connection
        # RFC 9112 6.3: the framing rules, in their order.
        length = -1
        if self._head_only or status < 200 or status in (204, 304):
            kind = BodyKind.NONE
        elif codings:
            if codings[-1] == "chunked":
                kind = BodyKind.CHUNKED
            else:
                kind = BodyKind.CLOSE
            if lengths:
                keep_alive = False  # both sent: Transfer-Encoding wins, the connection is not reused
        elif lengths:
            first = lengths[0]
            if any(other != first for other in lengths) or not first.isdigit():
                shown = b", ".join(lengths)[:60].decode("latin-1")
                raise ResponseProtocolError(f"Content-Length: expected one decimal number, got {shown!r}")
            kind = BodyKind.LENGTH
            # int() refuses over 4300 digits (ValueError); 18 digits are past any real body already.
            digits = first.lstrip(b"0")
            if len(digits) > 18:
                raise ResponseProtocolError(f"Content-Length: {len(digits)} digits, expected at most 18")
            length = int(digits or b"0")
        else:
            kind = BodyKind.CLOSE
        if kind == BodyKind.CLOSE:
            keep_alive = False
        return ResponseHead(status, reason.decode("latin-1"), http11, headers, kind, length, keep_alive)


def end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` without the hop-by-hop fields (RFC 9110 7.6.1), also those named in ``Connection``."""
    pairs = list(headers)
    named = set(HOP_BY_HOP)
    for name, value in pairs:
        if name.lower() == "connection":
            named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return [(name, value) for name, value in pairs if name.lower() not in named]


def build_request(method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes | None) -> bytes:
    """Serialise a request head (and body) for HTTP/1.1.

    ``Content-Length`` is added for a body (or an empty one when ``body`` is
    ``b""`` and the method usually has one); ``headers`` must not hold framing
    fields (``Content-Length``, ``Transfer-Encoding``), which are computed here.

    Raises:
        ValueError: the method is not a token, the target is not visible ASCII
            starting with ``/``, or a header would break the head (CR, LF, NUL).
    """
    if not method or not _TCHARS.issuperset(method):
        raise ValueError(f"method {method!r}: expected a token (RFC 9110 9.1)")
    if not target.startswith("/") or not _TARGET_CHARS.issuperset(target):
        raise ValueError(f"target {target[:60]!r}: expected visible ASCII starting with '/'")
    parts = [f"{method} {target} HTTP/1.1\r\n"]
    for name, value in headers:
        if not name or not _TCHARS.issuperset(name):
            raise ValueError(f"header name {name!r}: expected a token (RFC 9110 5.1)")
        if "\r" in value or "\n" in value or "\x00" in value:
            raise ValueError(f"header {name}: value contains CR, LF or NUL")
        lname = name.lower()
        if lname in ("content-length", "transfer-encoding"):
            raise ValueError(f"header {name!r} is computed from the body")
        parts.append(f"{name}: {value}\r\n")
    if body or (body is not None and method in ("POST", "PUT", "PATCH")):
        parts.append(f"Content-Length: {len(body)}\r\n")
    parts.append("\r\n")
    head = "".join(parts).encode("latin-1")
    return head + body if body else head
