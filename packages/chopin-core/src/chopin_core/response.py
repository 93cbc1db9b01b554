"""Responses and their HTTP/1.1 serialisation.

A :class:`Response` keeps its header block pre-encoded: constructors build the
``Content-Type``/``Content-Length`` lines once, and :meth:`Response.with_header`
appends encoded lines, so serialising is a few concatenations.  Status lines and
common ``Content-Length`` lines are pre-encoded tables.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

import kowito_json

from ._wire._abnf import TCHARS
from ._wire.h1_writer import CL_LINES, TEXT_PLAIN, content_length_line, status_line
from .cookies import format_delete_cookie, format_set_cookie
from .files import FileBody, content_type_line, if_range_holds, open_file, parse_range, validator_lines
from .files import http_date as format_http_date

if TYPE_CHECKING:
    from .request import Request
    from .sse import ServerSentEvent

__all__ = ["AsyncStream", "Response", "send_whole_if_range_fails", "status_line"]

log = logging.getLogger("chopin_core.worker")

_CL_LINES: Final = CL_LINES
_BAD_VALUE_CHARS: Final = "\r\n\x00"

APPLICATION_JSON: Final = b"Content-Type: application/json\r\n"
TEXT_HTML: Final = b"Content-Type: text/html; charset=utf-8\r\n"


def _check_status(status: int) -> None:
    """Refuse a status HTTP does not define: RFC 9110 15 makes 100..599 the only valid codes."""
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"status: expected an integer in 100..599, got {status!r}")


_TCHARS: Final = TCHARS


def _encode_header(name: str, value: str) -> bytes:
    """``name: value\r\n``, refusing anything that could break the header block."""
    if not name or not _TCHARS.issuperset(name):
        raise ValueError(f"header name {name!r}: expected a token (RFC 9110 5.1)")
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError(f"header {name}: value contains CR, LF or NUL")
    return f"{name}: {value}\r\n".encode("latin-1")


class Response:
    """What a handler returns: status, header block and body.

    Build one with a constructor (:meth:`text`, :meth:`json`, …) and refine it with
    :meth:`with_status` and :meth:`with_header`, which return the same object.

    Attributes:
        status: the status code.
        body: the body bytes (empty for a stream).
        stream_body: an iterator of chunks for chunked transfer-coding, an
            :class:`AsyncStream` (chunks an async iterator produces), or ``None``.
        file_body: an open file region sent with ``sendfile``, or ``None``.
        takeover: what takes the connection over instead of a body (a WebSocket
            upgrade, a proxied exchange), or ``None``.
        content_lines: the encoded ``Content-Type`` and ``Content-Length`` lines (what the
            engine writes; use :meth:`with_header` and the constructors to set them).
        extra_lines: every other encoded header line.
    """

    __slots__ = (
        "body",
        "close",
        "content_lines",
        "extra_lines",
        "file_body",
        "status",
        "stream_body",
        "takeover",
    )

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        content_type: bytes = b"",
        extra: bytes = b"",
    ) -> None:
        self.status = status
        self.body = body
        # Pre-encoded Content-Type + Content-Length lines (the table lookup inlined: hot path).
        size = len(body)
        self.content_lines = content_type + (_CL_LINES[size] if size < 4096 else b"Content-Length: %d\r\n" % size)
        self.extra_lines = extra
        self.stream_body: Iterator[bytes | str] | AsyncStream | None = None
        self.file_body: FileBody | None = None
        # The connection is taken over by another exchange: a WebSocket endpoint's
        # chopin_core.websocket.Upgrade (the protocol switches), or chopin_core.proxy's
        # ProxyPlan (the loop forwards the request and streams the answer).
        self.takeover: object | None = None
        self.close = False

    # -- constructors ----------------------------------------------------------

    @classmethod
    def new(cls, status: int) -> Response:
        """An empty response with ``status``.

        Raises:
            ValueError: ``status`` is outside 100..599 (RFC 9110 15).
        """
        _check_status(status)
        return cls(status)

    @classmethod
    def text(cls, body: str | bytes, status: int = 200) -> Response:
        """A ``text/plain`` response."""
        return cls(status, body.encode() if isinstance(body, str) else body, TEXT_PLAIN)

    @classmethod
    def text_static(cls, body: bytes) -> Response:
        """A ``text/plain`` response from constant bytes (no encoding step)."""
        return cls(200, body, TEXT_PLAIN)

    @classmethod
    def html(cls, body: str | bytes, status: int = 200) -> Response:
        """A ``text/html`` response."""
        return cls(status, body.encode() if isinstance(body, str) else body, TEXT_HTML)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        """A JSON response; ``value`` is encoded with kowito-json (dataclasses by their generated encoders)."""
        return cls(status, kowito_json.encode(value), APPLICATION_JSON)

    @classmethod
    def json_bytes(cls, body: bytes, status: int = 200) -> Response:
        """A JSON response from bytes that are already JSON."""
        return cls(status, body, APPLICATION_JSON)

    @classmethod
    def json_static(cls, body: bytes) -> Response:
        """A JSON response from constant, pre-serialised bytes."""
        return cls(200, body, APPLICATION_JSON)

    @classmethod
    def raw(cls, body: bytes, status: int = 200, content_type: str = "application/octet-stream") -> Response:
        """A response with raw bytes and an explicit content type."""
        return cls(status, body, _encode_header("Content-Type", content_type))

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Response:
        """A redirect to ``location`` (302 unless told: 301, 303, 307, 308)."""
        return cls(status).with_header("Location", location)

    @classmethod
    def stream(
        cls,
        chunks: Iterable[bytes | str] | AsyncIterable[bytes | str],
        content_type: str = "application/octet-stream",
    ) -> Response:
        """A body sent with chunked transfer-coding (HTTP/1.0: ended by closing the connection).

        ``chunks`` is either

        * an **async** iterable (an ``async def`` generator): the worker drives it on
          its loop, and each chunk goes out as soon as it is produced; the producer
          may wait (``await sleep(...)``, a query, a topic) without holding the
          worker.  It is not asked for its next chunk while the connection has more
          than ``Settings.write_high_water`` bytes pending (a slow reader), and it is
          closed where it waits when the client leaves (its ``finally`` runs; like a
          cancelled handler's, it must not wait there).  Over HTTP/2 it is asked for
          more only while the stream's window is open;
        * a plain iterable (a ``def`` generator): pulled on the worker's loop,
          one chunk at a time as the socket drains: each chunk it yields is written
          before the next is asked for, so it leaves as soon as it is produced, but
          a generator that blocks (``time.sleep`` between chunks) stalls the whole
          worker meanwhile: produce over time with an async generator.

        A producer that raises before its first chunk is answered 500 like a failing
        handler (an async one: before it first waits); after, the connection is
        closed without the terminal chunk, so the client sees an incomplete body.
        """
        resp = cls(200)
        # The worker adds Transfer-Encoding: chunked (HTTP/1.1) or closes after the body (HTTP/1.0).
        resp.content_lines = _encode_header("Content-Type", content_type)
        if isinstance(chunks, AsyncIterable):
            resp.stream_body = AsyncStream(aiter(chunks))
        else:
            resp.stream_body = iter(chunks)
        return resp

    @classmethod
    def sse(
        cls,
        events: AsyncIterable[ServerSentEvent | str] | Iterable[ServerSentEvent | str],
        *,
        keepalive: float = 15.0,
        retry: int | None = None,
    ) -> Response:
        """A stream of server-sent events (``text/event-stream``), each sent as soon as it is produced.

        ``events`` yields :class:`~chopin_core.sse.ServerSentEvent` objects, or strings
        (an event of that data).  Give an async generator to produce over time (see
        :meth:`stream`); it is closed when the client leaves.  The response says
        ``Cache-Control: no-cache`` and ``X-Accel-Buffering: no`` (proxies must not
        hold events back) and is never compressed.  A reconnecting client's
        ``Last-Event-ID``: :func:`chopin_core.sse.last_event_id`.

        Args:
            events: the events.
            keepalive: while an async producer waits this many seconds without an
                event, a ``: keep-alive`` comment is sent (so idle proxies keep the
                connection, and a client that left is noticed); 0 turns it off.
                A plain iterable cannot wait, and gets none.
            retry: sent first as the ``retry`` field: the client's reconnection delay (ms).

        Raises:
            ValueError: ``keepalive`` is negative.
        """
        from .sse import encode_events, encode_events_async

        if keepalive < 0:
            raise ValueError(f"keepalive: expected seconds >= 0, got {keepalive!r}")
        resp = cls(200)
        resp.content_lines = b"Content-Type: text/event-stream\r\n"
        resp.extra_lines = b"Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
        if isinstance(events, AsyncIterable):
            from ._wire.sse import KEEPALIVE

            resp.stream_body = AsyncStream(encode_events_async(events, retry), keepalive, KEEPALIVE)
        else:
            resp.stream_body = encode_events(events, retry)
        return resp

    @classmethod
    def file(cls, path: str | os.PathLike[str], content_type: str | None = None) -> Response:
        """A file, sent from the worker loop with ``sendfile``; 404 when it is missing.

        The content type comes from the extension unless given.  The response
        carries ``ETag``/``Last-Modified``, and the worker answers 304 when the
        request's ``If-None-Match``/``If-Modified-Since`` match.
        """
        return cls.file_range(path, None, content_type)

    @classmethod
    def file_range(
        cls,
        path: str | os.PathLike[str],
        range_header: str | None,
        content_type: str | None = None,
        *,
        within: str | None = None,
    ) -> Response:
        """A file honouring a ``Range`` header (RFC 9110 14): 206 for one range,
        416 when unsatisfiable, 200 with the whole file otherwise (also for several ranges).

        The worker checks the request's ``If-Range`` itself: a stale validator
        gets the whole file (200), as RFC 9110 13.1.5 asks.  With ``within``, a
        path that resolves outside that directory (symlinks followed) is a 404.
        """
        return cls._file(path, range_header, content_type, within)

    @classmethod
    def _file(
        cls,
        path: str | os.PathLike[str],
        range_header: str | None,
        content_type: str | None,
        within: str | None = None,
    ) -> Response:
        opened = open_file(path, within)
        if opened is None:
            return cls.not_found()
        fd, st = opened
        ctype = _encode_header("Content-Type", content_type) if content_type else content_type_line(os.fspath(path))
        wanted = parse_range(range_header, st.st_size)
        if wanted is False:
            os.close(fd)
            return cls(416).with_header("Content-Range", f"bytes */{st.st_size}")
        if not isinstance(wanted, tuple):
            return cls._from_file(FileBody(fd, st), ctype, 200)
        start, length = wanted
        resp = cls._from_file(FileBody(fd, st, start, length), ctype, 206)
        return resp.with_header("Content-Range", f"bytes {start}-{start + length - 1}/{st.st_size}")

    @classmethod
    def sendfile(cls, fd: int, offset: int, length: int, content_type: str) -> Response:
        """``length`` bytes of the open file ``fd`` from ``offset``; the response owns (and closes) ``fd``.

        The region is its own representation, so its ``ETag`` names the region,
        not the whole file.
        """
        st = os.fstat(fd)
        body = FileBody(fd, st, offset, length, part=True)
        return cls._from_file(body, _encode_header("Content-Type", content_type), 200)

    @classmethod
    def _from_file(cls, body: FileBody, content_type_line: bytes, status: int) -> Response:
        resp = cls(status)
        resp.content_lines = content_type_line + content_length_line(body.length)
        resp.file_body = body
        resp.extra_lines = validator_lines(body)
        return resp

    @classmethod
    def not_found(cls) -> Response:
        """404 with a plain-text body."""
        return cls(404, b"Not Found", TEXT_PLAIN)

    @classmethod
    def bad_request(cls, message: str = "Bad Request") -> Response:
        """400 with a plain-text body."""
        return cls(400, message.encode(), TEXT_PLAIN)

    @classmethod
    def unauthorized(cls) -> Response:
        """401 with a plain-text body."""
        return cls(401, b"Unauthorized", TEXT_PLAIN)

    @classmethod
    def forbidden(cls) -> Response:
        """403 with a plain-text body."""
        return cls(403, b"Forbidden", TEXT_PLAIN)

    @classmethod
    def server_error(cls) -> Response:
        """500 with a plain-text body and no details."""
        return cls(500, b"Internal Server Error", TEXT_PLAIN)

    @classmethod
    def method_not_allowed(cls, allow: Iterable[str]) -> Response:
        """405 with the ``Allow`` header listing ``allow``."""
        return cls(405, b"Method Not Allowed", TEXT_PLAIN).with_header("Allow", ", ".join(allow))

    # -- builders ----------------------------------------------------------------

    def with_status(self, status: int) -> Response:
        """Set the status code; returns ``self``.

        Raises:
            ValueError: ``status`` is outside 100..599, the range HTTP defines (RFC 9110 15).
        """
        _check_status(status)
        self.status = status
        return self

    def with_header(self, name: str, value: str) -> Response:
        """Add a header field; returns ``self``.

        Raises:
            ValueError: the name or value would break the header block (CR, LF, NUL).
        """
        lname = name.lower()
        if lname in {"content-length", "transfer-encoding"}:
            raise ValueError(f"header {name!r} is set by the engine from the body")
        if lname == "content-type":
            rest = self.content_lines
            if rest.startswith(b"Content-Type:"):
                rest = rest[rest.find(b"\r\n") + 2 :]
            self.content_lines = _encode_header("Content-Type", value) + rest
            return self
        if lname == "connection" and value.lower() == "close":
            self.close = True
            return self
        self.extra_lines += _encode_header(name, value)
        return self

    def set_cookie(
        self,
        name: str,
        value: str,
        *,
        max_age: int | datetime.timedelta | None = None,
        expires: datetime.datetime | float | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = "Lax",
    ) -> Response:
        """Add a ``Set-Cookie`` line (RFC 6265 4.1); call it again for more cookies.

        The arguments are those of :func:`chopin_core.cookies.format_set_cookie`:
        ``samesite="None"`` needs ``secure=True``, names must be tokens and values
        cookie-octets (encode anything else first).

        Raises:
            ValueError: a name, value or attribute that cannot be sent safely.
        """
        line = format_set_cookie(
            name,
            value,
            max_age=max_age,
            expires=expires,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )
        self.extra_lines += b"Set-Cookie: " + line.encode("ascii") + b"\r\n"
        return self

    def delete_cookie(
        self, name: str, *, path: str | None = "/", domain: str | None = None, secure: bool = False
    ) -> Response:
        """Add a ``Set-Cookie`` line that removes cookie ``name`` (``Max-Age=0``, expired).

        ``path`` and ``domain`` must be the ones the cookie was set with.

        Raises:
            ValueError: ``name``, ``path`` or ``domain`` is malformed.
        """
        line = format_delete_cookie(name, path=path, domain=domain, secure=secure)
        self.extra_lines += b"Set-Cookie: " + line.encode("ascii") + b"\r\n"
        return self

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` value, if set."""
        content = self.content_lines
        if not content.startswith(b"Content-Type: "):
            return None
        return content[14 : content.find(b"\r\n")].decode("latin-1")

    @property
    def content_encoding(self) -> str | None:
        """The ``Content-Encoding`` value, if set."""
        for name, value in self.headers:
            if name.lower() == "content-encoding":
                return value
        return None

    def gzip(self, level: int = 6) -> Response:
        """Compress the body (or the stream) with gzip and say so; returns ``self``.

        Sets ``Content-Encoding: gzip`` and ``Vary: Accept-Encoding`` and fixes the
        length. It does not look at the request: the caller checks that the client
        accepts gzip (``ctx.req.accepts_encoding("gzip")``), or uses the
        :func:`~chopin_core.compress.compression` middleware, which does.

        Raises:
            ValueError: for a file response (serve a precompressed ``.gz`` instead)
                or a body that already has a ``Content-Encoding``.
        """
        from .compress import gzip_body, gzip_stream

        if self.file_body is not None:
            raise ValueError("gzip(): file responses are sent as they are; serve a precompressed .gz file")
        if self.content_type == "text/event-stream":
            raise ValueError("gzip(): server-sent events are sent uncompressed (keep-alives, prompt delivery)")
        if self.content_encoding is not None:
            raise ValueError(f"gzip(): body is already encoded ({self.content_encoding})")
        ctype = self.content_lines[: self.content_lines.find(b"\r\n") + 2] if self.content_type is not None else b""
        stream = self.stream_body
        if isinstance(stream, AsyncStream):
            from .compress import gzip_async_stream

            self.stream_body = AsyncStream(gzip_async_stream(stream.source, level), stream.keepalive, b"")
            self.content_lines = ctype
        elif stream is not None:
            self.stream_body = gzip_stream(stream, level)
            self.content_lines = ctype
        else:
            self.body = gzip_body(self.body, level)
            self.content_lines = ctype + content_length_line(len(self.body))
        self.extra_lines += b"Content-Encoding: gzip\r\n"
        if b"Vary: Accept-Encoding\r\n" not in self.extra_lines:
            self.extra_lines += b"Vary: Accept-Encoding\r\n"
        return self

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The header fields this response carries (without Server/Date/Connection)."""
        block = (self.content_lines + self.extra_lines).decode("latin-1")
        out: list[tuple[str, str]] = []
        for line in block.split("\r\n"):
            if line:
                name, _, value = line.partition(": ")
                out.append((name, value))
        if self.stream_body is not None:
            out.insert(1 if self.content_lines.startswith(b"Content-Type:") else 0, ("Transfer-Encoding", "chunked"))
        return out

    def header_block(self) -> bytes:
        """The encoded header lines (Content-Type, Content-Length, extras)."""
        return self.content_lines + self.extra_lines

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


class AsyncStream:
    """A response body produced over time by an async iterator (see :meth:`Response.stream`).

    It sits in :attr:`Response.stream_body` so that everything treating a response
    as a stream (HEAD, bodiless statuses, framing, pipelining) treats this one so
    too; the worker recognises it and drives :attr:`source` on its loop.  It is not
    an iterator: code outside the worker iterates :attr:`source` with ``async for``.

    Attributes:
        source: the async iterator of chunks.
        keepalive: seconds of the producer's silence after which ``keepalive_chunk``
            is sent; 0: never.
        keepalive_chunk: what is sent then (for server-sent events, a comment).
    """

    __slots__ = ("keepalive", "keepalive_chunk", "source")

    def __init__(
        self, source: AsyncIterator[bytes | str], keepalive: float = 0.0, keepalive_chunk: bytes = b""
    ) -> None:
        self.source = source
        self.keepalive = keepalive if keepalive_chunk else 0.0
        self.keepalive_chunk = keepalive_chunk

    def close(self) -> None:
        """Close a producer that is not waiting (never started, or between chunks): its ``finally`` runs.

        A ``finally`` that waits cannot finish here (there is no loop): it is closed
        at that wait, and the failure logged.
        """
        aclose = getattr(self.source, "aclose", None)
        if aclose is None:
            return
        step = aclose().__await__()
        try:
            step.send(None)
        except StopIteration:
            return
        except Exception:
            log.exception("closing an async response stream failed")
            return
        step.close()
        log.error("an async response stream waited in its finally while being closed outside the loop")


def send_whole_if_range_fails(req: Request, resp: Response) -> bool:
    """Turn a 206 file response into a 200 of the whole file when ``If-Range`` fails.

    RFC 9110 13.1.5: a stale validator means the client's earlier bytes belong to
    another version, so the Range is ignored and the whole representation sent.
    The engine calls this for every file response, so a handler that passed only
    the ``Range`` header to :meth:`Response.file_range` is covered too.

    Returns:
        Whether ``resp`` was changed (its status is then 200).
    """
    body = resp.file_body
    if resp.status != 206 or body is None or if_range_holds(req, body):
        return False
    body.offset = 0
    body.length = body.size
    resp.status = 200
    content = resp.content_lines
    ctype = content[: content.find(b"\r\n") + 2] if content.startswith(b"Content-Type:") else b""
    resp.content_lines = ctype + content_length_line(body.size)
    kept = [line for line in resp.extra_lines.split(b"\r\n") if line and not line.lower().startswith(b"content-range:")]
    resp.extra_lines = b"".join(line + b"\r\n" for line in kept)
    return True


def http_date() -> bytes:
    """The current time as an IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return format_http_date(time.time()).encode("ascii")
