"""Sans-IO HTTP/1.1 request parser (RFC 9112).

How it works: :meth:`RequestParser.feed` takes the bytes a socket produced and
returns the events they complete, in order: a :class:`~chopin_core.request.Request`
for every whole request (so a pipelined burst yields many), :data:`CONTINUE` when
a client that sent ``Expect: 100-continue`` is waiting for a go-ahead, and, last,
a :class:`~chopin_core.errors.ProtocolError` when the peer broke the protocol.
After an error the parser is in its error state and refuses further input: the
connection must be answered and closed.

The parser never touches a socket or a clock. It slices the buffer with
``find``/``split`` (no regex), validates every byte that matters for framing and
smuggling, and leaves header decoding to :class:`~chopin_core.request.Headers`,
which runs only if a handler asks for a header.  Nor does it decide where a body
is kept: it reports the body in progress (:attr:`RequestParser.body_pending`,
``body_received``) and its owner may send the rest to a :class:`BodySink`
(:meth:`RequestParser.divert_body`), such as the worker's temporary-file spool.
"""

from __future__ import annotations

from typing import Final, Protocol

from ..errors import (
    BadRequest,
    BodyTooLarge,
    HeadTooLarge,
    ProtocolError,
    UnsupportedTransferCoding,
    UnsupportedVersion,
    UriTooLong,
)
from ..request import Request
from ._abnf import TARGET_CHARS, TCHAR
from .chunked import ChunkedDecoder

__all__ = ["CONTINUE", "BodySink", "Continue", "ParserLimits", "RequestParser"]


class Continue:
    """Event: the client waits for ``100 Continue`` before sending its body."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CONTINUE"


CONTINUE: Final = Continue()


class BodySink(Protocol):
    """Where :meth:`RequestParser.divert_body` sends a body instead of memory (the I/O shell's choice)."""

    def write(self, data: bytes) -> object:
        """Take the next piece of the body (raise :class:`ProtocolError` to refuse the request)."""
        ...

    def finish(self, req: Request) -> Request:
        """The body is complete: return the request to hand on (its ``body`` is empty)."""
        ...


# RFC 9110 5.6.2: token = 1*tchar.  Deleting every tchar leaves what is not one.
_TCHAR: Final = TCHAR
_TARGET_CHARS: Final = TARGET_CHARS
# RFC 3986 3.2.2-3.2.3: host (reg-name, IPv4, [IP-literal]) and ":" port; no "@" userinfo.
_AUTHORITY_CHARS: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:[]"
# Bytes allowed anywhere in a head: VCHAR, obs-text, SP, HTAB, and CR/LF (checked as pairs).
_HEAD_CHARS: Final = b"\t\r\n" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))

_METHODS: Final = {
    m.encode(): m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT")
}

# Parser states.
_HEAD: Final = 0
_BODY: Final = 1
_CHUNKED: Final = 2  # a chunked body: self._chunks decodes it
_ERROR: Final = 6
_PAUSED: Final = 7


class ParserLimits:
    """The bounds a parser enforces; each maps to the status it answers with.

    Args:
        max_head: request line plus header fields, bytes (431).
        max_headers: number of header fields (431).
        max_uri: request-target length, bytes (414).
        max_body: body length after de-chunking, bytes (413).
    """

    __slots__ = ("head_cache", "max_body", "max_head", "max_headers", "max_uri")

    def __init__(
        self,
        max_head: int = 16 * 1024,
        max_headers: int = 100,
        max_uri: int = 8 * 1024,
        max_body: int = 10 * 1024 * 1024,
    ) -> None:
        self.max_head = max_head
        self.max_headers = max_headers
        self.max_uri = max_uri
        self.max_body = max_body
        # Parsing a head is a pure function of its bytes and these limits, and
        # keep-alive clients resend identical heads, so the parsers sharing these
        # limits (one worker's connections) memoise valid heads here.  Bounded:
        # only heads up to _CACHEABLE_HEAD bytes, at most _HEAD_CACHE_SIZE entries.
        self.head_cache: dict[bytes, _Head] = {}


# What parsing a head yields: method, target, path, query, http11, keep_alive,
# header lines, the body length (0 none, -1 chunked, else Content-Length), and
# whether it asks to switch protocols (Upgrade + Connection: upgrade).
_Head = tuple[str, str, str, "str | None", bool, bool, "tuple[bytes, ...]", int, bool]
_CACHEABLE_HEAD: Final = 1024
_HEAD_CACHE_SIZE: Final = 512


class RequestParser:
    """Frames HTTP/1.1 requests out of a byte stream; one instance per connection."""

    __slots__ = ("_body_parts", "_buf", "_chunks", "_expected", "_limits", "_pending", "_remaining", "_sink", "_state")

    def __init__(self, limits: ParserLimits | None = None) -> None:
        self._limits = limits if limits is not None else ParserLimits()
        self._buf = b""
        self._state = _HEAD
        self._pending: Request | None = None
        self._remaining = 0
        self._chunks: ChunkedDecoder | None = None  # made for the connection's first chunked body
        self._body_parts: list[bytes] = []
        self._expected = 0  # the Content-Length of the body in progress, -1 when chunked
        self._sink: BodySink | None = None  # set by divert_body for the body in progress

    @property
    def in_request(self) -> bool:
        """True while part of a request (head or body) has arrived but not all of it."""
        return bool(self._buf) or self._state != _HEAD

    @property
    def paused(self) -> bool:
        """True after an upgrade request: bytes are kept, not parsed, until
        :meth:`take_remaining` (protocol switched) or :meth:`resume` (it was not)."""
        return self._state == _PAUSED

    def take_remaining(self) -> bytes:
        """The bytes received after the upgrade request, for the new protocol."""
        data = self._buf
        self._buf = b""
        return data

    def resume(self) -> list[Request | Continue | ProtocolError]:
        """Go on parsing HTTP after an upgrade that did not happen; returns the events."""
        if self._state != _PAUSED:
            return []
        self._state = _HEAD
        data = self._buf
        self._buf = b""
        return self.feed(data) if data else []

    @property
    def body_pending(self) -> Request | None:
        """The request whose body is arriving (its head is parsed), or None."""
        return self._pending if self._state in (_BODY, _CHUNKED) else None

    @property
    def body_expected(self) -> int:
        """The Content-Length of the body in progress, or -1 when it is chunked."""
        return self._expected

    @property
    def body_received(self) -> int:
        """Bytes (de-chunked) of the body in progress received so far."""
        if self._state == _BODY:
            return self._expected - self._remaining
        if self._state == _CHUNKED and self._chunks is not None:
            return self._chunks.received
        return 0

    def divert_body(self, sink: BodySink) -> None:
        """Send the body in progress to ``sink``: what is held now, then each piece as it arrives.

        Once the body is complete, the event for it is ``sink.finish(request)``.
        Called between :meth:`feed` calls by the owner, which decides where a
        body is kept (memory or a file); the parser itself does no I/O.

        Raises:
            ProtocolError: ``sink`` refused a piece (the connection must be answered and closed).
        """
        if self.body_pending is None:
            raise RuntimeError("divert_body: no body in progress")
        parts = self._body_parts
        self._body_parts = []
        self._sink = sink
        for part in parts:
            sink.write(part)

    @property
    def broken(self) -> bool:
        """True once the parser has reported a protocol error."""
        return self._state == _ERROR

    def feed(self, data: bytes) -> list[Request | Continue | ProtocolError]:
        """Consume ``data``; return the events it completes, in order.

        A :class:`ProtocolError`, if any, is the last event; the parser then
        refuses further input.
        """
        if not self._buf and not self._state:  # _HEAD is 0
            # Fast path: exactly one whole, bodiless request whose head was seen before.
            end = data.find(b"\r\n\r\n")
            if end + 4 == len(data):
                parsed = self._limits.head_cache.get(data[:end])
                if parsed is not None and not parsed[7] and not parsed[8]:
                    method, target, path, query, http11, keep_alive, lines, _, _ = parsed
                    return [Request(method, target, path, query, http11, keep_alive, lines)]
        elif self._state == _ERROR:
            return [BadRequest("connection already failed")]
        elif self._state == _PAUSED:
            self._buf += data  # bounded by the caller, which stops reading or switches protocol
            return []
        buf = self._buf + data if self._buf else data
        events: list[Request | Continue | ProtocolError] = []
        pos = 0
        end_of_data = len(buf)
        limits = self._limits
        cache = limits.head_cache
        try:
            while pos < end_of_data:
                if self._state == _HEAD:
                    end = buf.find(b"\r\n\r\n", pos)
                    if end < 0:
                        self._check_partial_head(buf, pos)
                        break
                    head = buf[pos:end]
                    parsed = cache.get(head)
                    if parsed is None:
                        if end - pos > limits.max_head:
                            raise HeadTooLarge(f"request head is {end - pos} bytes, limit {limits.max_head}")
                        parsed = self._parse_head(head)
                        if parsed is None:  # empty lines before a request line (RFC 9112 2.2)
                            pos = end + 4
                            continue
                        if end - pos <= _CACHEABLE_HEAD:
                            if len(cache) >= _HEAD_CACHE_SIZE:
                                cache.clear()
                            cache[head] = parsed
                    pos = end + 4
                    method, target, path, query, http11, keep_alive, lines, length, upgrade = parsed
                    req = Request(method, target, path, query, http11, keep_alive, lines)
                    if length == 0:
                        events.append(req)
                        if upgrade:
                            # What follows an upgrade request may be another protocol
                            # (RFC 9110 7.8): stop here until the owner decides.
                            self._state = _PAUSED
                            break
                        continue
                    if length > 0 and end_of_data - pos >= length:
                        # Fast path: the whole body is already here.
                        req.body = buf[pos : pos + length]
                        pos += length
                        events.append(req)
                        continue
                    self._pending = req
                    self._expected = length
                    if length > 0:
                        self._state = _BODY
                        self._remaining = length
                    else:
                        self._state = _CHUNKED
                        self._start_chunked()
                    if pos >= end_of_data and req.http11 and _expects_continue(req):
                        events.append(CONTINUE)
                elif self._state == _BODY:
                    take = min(self._remaining, end_of_data - pos)
                    if self._sink is None:
                        self._body_parts.append(buf[pos : pos + take])
                    else:
                        self._sink.write(buf[pos : pos + take])
                    pos += take
                    self._remaining -= take
                    if self._remaining == 0:
                        events.append(self._finish_body())
                else:
                    chunks = self._chunks
                    assert chunks is not None
                    sink = self._sink
                    pos = chunks.feed(buf, pos, end_of_data, self._body_parts.append if sink is None else sink.write)
                    if not chunks.done:
                        break  # more bytes needed; buf[pos:] is kept
                    events.append(self._finish_body())
        except ProtocolError as exc:
            self._state = _ERROR
            self._buf = b""
            self._body_parts = []
            self._sink = None
            events.append(exc)
            return events
        self._buf = buf[pos:] if pos < end_of_data else b""
        return events

    # -- head -----------------------------------------------------------------

    def _check_partial_head(self, buf: bytes, pos: int) -> None:
        """Refuse an incomplete head that is already over a limit or bare-LF framed."""
        # Up to 3 bytes of the closing CRLFCRLF may already be here; they do not count.
        size = len(buf) - pos - 3
        limits = self._limits
        if size > limits.max_head:
            if buf.find(b"\r\n", pos) < 0 and size > limits.max_uri:
                raise UriTooLong(f"request line longer than {limits.max_uri} bytes")
            raise HeadTooLarge(f"request head over {limits.max_head} bytes")
        if buf.find(b"\n\n", pos) >= 0 or buf.find(b"\n\r\n", pos) >= 0:
            raise BadRequest("request head: line ends in bare LF, expected CRLF")

    def _parse_head(self, head: bytes) -> _Head | None:
        """Validate and parse one head (without its final CRLFCRLF); ``None`` if it is only empty lines."""
        if not head:
            return None
        if head.translate(None, _HEAD_CHARS):
            raise BadRequest("request head: control character not allowed")
        crlf = head.count(b"\r\n")
        if head.count(b"\r") != crlf or head.count(b"\n") != crlf:
            raise BadRequest("request head: bare CR or LF, expected CRLF line endings")
        lines = head.split(b"\r\n")
        while not lines[0]:  # ignore empty lines before the request line
            del lines[0]
            head = head[2:]
        if len(lines) - 1 > self._limits.max_headers:
            raise HeadTooLarge(f"{len(lines) - 1} header fields, limit {self._limits.max_headers}")

        # Request line: method SP request-target SP HTTP-version (RFC 9112 3).
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            raise BadRequest("request line: expected 'METHOD target HTTP/1.x'")
        method_b, target_b, version = parts
        method = _METHODS.get(method_b)
        if method is None:
            if not method_b or method_b.translate(None, _TCHAR):
                raise BadRequest("request line: method is not a token")
            method = method_b.decode("ascii")
        if version == b"HTTP/1.1":
            http11 = True
        elif version == b"HTTP/1.0":
            http11 = False
        elif len(version) == 8 and version[:7] == b"HTTP/1." and version[7:8].isdigit():
            http11 = True  # a later 1.x minor version is served as 1.1 (RFC 9110 2.5)
        elif len(version) == 8 and version[:5] == b"HTTP/" and version[5:6].isdigit() and version[7:8].isdigit():
            # Only bytes 5 and 7 were checked: the rest may be anything, so no strict decode.
            raise UnsupportedVersion(f"HTTP version {version.decode('ascii', 'backslashreplace')} not supported")
        else:
            raise BadRequest("request line: malformed HTTP version")
        if len(target_b) > self._limits.max_uri:
            raise UriTooLong(f"request target is {len(target_b)} bytes, limit {self._limits.max_uri}")
        if not target_b or target_b.translate(None, _TARGET_CHARS):
            raise BadRequest("request line: request target has invalid characters")
        target = target_b.decode("ascii")
        target_host = None
        if target[0] == "/" or (target == "*" and method == "OPTIONS"):
            path = target
        elif target[:8].lower().startswith(("http://", "https://")):
            # absolute-form (RFC 9112 3.2.2): route on its path (the scheme is case-insensitive).
            authority = target.find("//") + 2
            cut = len(target)
            for sep in "/?":
                at = target.find(sep, authority)
                if 0 <= at < cut:
                    cut = at
            path = target[cut:]
            if not path or path[0] == "?":
                path = "/" + path
            target_host = target_b[authority:cut]
            # RFC 9110 4.2.1: an empty host is invalid; 4.2.4: userinfo ("@") is treated as an error.
            if not target_host or target_host.translate(None, _AUTHORITY_CHARS):
                raise BadRequest("request line: absolute-form target needs host[:port], without userinfo")
        elif method == "CONNECT":
            path = target
        else:
            raise BadRequest("request line: request target must start with '/'")
        query = None
        q = path.find("?")
        if q >= 0:
            query = path[q + 1 :]
            path = path[:q]

        # Header fields: field-name ":" OWS field-value OWS (RFC 9112 5).
        header_lines = lines[1:]
        for number, line in enumerate(header_lines, 1):
            colon = line.find(b":")
            if colon <= 0 or line[:colon].translate(None, _TCHAR):
                raise BadRequest(_header_problem(number, line, colon))

        # Framing headers are found in one lower-cased copy of the head.
        lhead = head.lower()
        keep_alive = http11
        upgrade = False
        at = lhead.find(b"\r\nconnection:")
        if at >= 0:
            tokens = _field_values(lhead, at, b"\r\nconnection:")
            if "close" in tokens:
                keep_alive = False
            elif "keep-alive" in tokens:
                keep_alive = True
            upgrade = "upgrade" in tokens and lhead.find(b"\r\nupgrade:") >= 0
        hosts = lhead.count(b"\r\nhost:")
        if hosts != 1 and (http11 or hosts > 1):
            raise BadRequest("request needs exactly one Host header" if http11 else "more than one Host header")
        if hosts:
            # RFC 9112 3.2: 400 for a Host field with an invalid value, not a guess at
            # what it meant (a front end that strips or keeps odd bytes routes elsewhere).
            host_value = _field_lines(lhead, lhead.find(b"\r\nhost:"), b"\r\nhost:")[0]
            if not _is_host(host_value):
                shown = host_value[:40].decode("latin-1")
                raise BadRequest(f"Host header: expected host[:port], got {shown!r}")
        if target_host is not None:
            # RFC 9112 3.2.2: with an absolute-form target its authority is the host, and
            # Host is replaced by it, so a handler never sees a Host the target contradicts.
            header_lines = [line for line in header_lines if line[:5].lower() != b"host:"]
            header_lines.insert(0, b"Host: " + target_host)

        length = 0
        cl_at = lhead.find(b"\r\ncontent-length:")
        te_at = lhead.find(b"\r\ntransfer-encoding:")
        if te_at >= 0:
            if cl_at >= 0:
                raise BadRequest("both Content-Length and Transfer-Encoding sent")
            if not http11:
                raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
            codings = _field_values(lhead, te_at, b"\r\ntransfer-encoding:")
            if codings == [""]:
                raise BadRequest("Transfer-Encoding: empty value")
            for coding in codings:
                if coding != "chunked":
                    raise UnsupportedTransferCoding(f"transfer-coding {coding!r} not supported")
            if len(codings) != 1:
                raise BadRequest("Transfer-Encoding: chunked applied more than once")
            length = -1
        elif cl_at >= 0:
            # RFC 9110 8.6: repeated fields or a list are accepted only if every value is the same.
            values = _field_lines(lhead, cl_at, b"\r\ncontent-length:")
            value = values[0]
            if len(values) > 1 or b"," in value:
                items = [item.strip(b" \t") for v in values for item in v.split(b",")]
                value = items[0]
                for other in items:
                    if other != value:
                        raise BadRequest("Content-Length: differing values")
            if not value.isdigit():
                raise BadRequest(f"Content-Length: expected digits, got {value.decode('latin-1')!r}")
            # int() refuses over 4300 digits (ValueError); no body limit needs more than 18.
            digits = value.lstrip(b"0")
            if len(digits) > 18:
                raise BodyTooLarge(f"body of {len(digits)} decimal digits, limit {self._limits.max_body} bytes")
            length = int(digits or b"0")
            if length > self._limits.max_body:
                raise BodyTooLarge(f"body of {length} bytes, limit {self._limits.max_body}")

        return method, target, path, query, http11, keep_alive, tuple(header_lines), length, upgrade

    # -- bodies ---------------------------------------------------------------

    def _finish_body(self) -> Request:
        req = self._pending
        assert req is not None
        self._pending = None
        self._state = _HEAD
        sink = self._sink
        if sink is not None:
            self._sink = None
            return sink.finish(req)
        parts = self._body_parts
        req.body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._body_parts = []
        return req

    def _start_chunked(self) -> None:
        chunks = self._chunks
        if chunks is None:
            limits = self._limits
            self._chunks = ChunkedDecoder(
                bad=BadRequest,
                trailer_too_large=HeadTooLarge,
                max_trailer=limits.max_head,
                strict=True,
                body_too_large=BodyTooLarge,
                max_body=limits.max_body,
            )
        else:
            chunks.reset()


def _expects_continue(req: Request) -> bool:
    value = req.header("expect")
    return value is not None and value.lower() == "100-continue"


def _field_values(lhead: bytes, at: int, prefix: bytes) -> list[str]:
    """Comma-separated values of every field ``prefix`` names, from ``at`` on."""
    values: list[str] = []
    while at >= 0:
        start = at + len(prefix)
        eol = lhead.find(b"\r\n", start)
        raw = lhead[start:] if eol < 0 else lhead[start:eol]
        for item in raw.split(b","):
            item = item.strip(b" \t")
            if item:
                values.append(item.decode("latin-1"))
        at = lhead.find(prefix, start)
    if not values:
        values.append("")
    return values


def _field_lines(lhead: bytes, at: int, prefix: bytes) -> list[bytes]:
    """The whole value of every field ``prefix`` names, one per line (no list splitting)."""
    values: list[bytes] = []
    while at >= 0:
        start = at + len(prefix)
        eol = lhead.find(b"\r\n", start)
        values.append((lhead[start:] if eol < 0 else lhead[start:eol]).strip(b" \t"))
        at = lhead.find(prefix, start)
    return values


def _is_host(value: bytes) -> bool:
    """Whether ``value`` is ``uri-host [":" port]`` (RFC 9110 7.2, RFC 3986 3.2.2-3.2.3), or empty.

    An empty Host is what a client sends for a target without an authority (RFC 9110 7.2).
    The host is an ``[IP-literal]`` or a reg-name / IPv4 address (unreserved, pct-encoded
    and sub-delims characters; no userinfo), the port digits only.
    """
    if value.translate(None, _AUTHORITY_CHARS):
        return False
    if value[:1] == b"[":
        close = value.find(b"]")
        if close < 0 or b"[" in value[1:close]:
            return False
        port = value[close + 1 :]
        if b"[" in port or b"]" in port:
            return False
    elif b"[" in value or b"]" in value:
        return False
    else:
        colon = value.find(b":")
        port = value[colon:] if colon >= 0 else b""
    # port = *DIGIT, after the one ":" (a reg-name holds no ":").
    return not port or (port[:1] == b":" and (len(port) == 1 or port[1:].isdigit()))


def _header_problem(number: int, line: bytes, colon: int) -> str:
    """Say what is wrong with a header line, for the 400 body."""
    where = f"header line {number}"
    if line[:1] in (b" ", b"\t"):
        return f"{where}: obsolete line folding not allowed"
    if colon < 0:
        return f"{where}: expected 'name: value', found no colon"
    if colon == 0:
        return f"{where}: empty field name"
    if line[colon - 1 : colon] in (b" ", b"\t"):
        return f"{where}: whitespace before colon"
    return f"{where}: field name has invalid characters"
