"""What the blocking and the non-blocking HTTP clients share: settings, URLs, TLS and the response.

:class:`~chopin_core.client.HttpClient` (blocking sockets) and
:class:`~chopin_core.client.AsyncHttpClient` (non-blocking sockets awaited on the
worker's loop) are two I/O shells around one protocol core: requests are
serialised by :func:`~chopin_core._wire.h1_response.build_request` and responses
framed by :class:`~chopin_core._wire.h1_response.ResponseParser`.  This module
holds the rest that is not I/O: the settings, URL splitting, the TLS context, the
mapping of :mod:`ssl` failures onto the client's errors, and :func:`send_request`,
the steps of a request that goes out while its answer is read (each shell waits
its own way between them).
"""

from __future__ import annotations

import dataclasses
import math
import os
import select
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

from ._client_errors import (
    CertificateVerifyError,
    ClientError,
    InvalidURL,
    ReadTimeout,
    ResponseTooLarge,
    TlsError,
    UpstreamClosed,
)
from ._client_pool import ConnectionPool
from ._wire.h1_response import END, Event, ResponseHead, ResponseLimits, ResponseParser, build_request
from .errors import ConfigError

__all__ = [
    "IDEMPOTENT",
    "SENT",
    "TLS_SLICE",
    "BodyReaderBase",
    "ClientResponse",
    "ClientSettings",
    "Origin",
    "SentRequest",
    "body_lost",
    "parse_url",
    "prepare_request",
    "send_request",
    "split_url",
    "tls_context",
    "tls_failure",
]

# RFC 9110 9.2.2: a request with one of these may be repeated on a fresh
# connection when a reused one turned out to be closed before any answer.
IDEMPOTENT: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_TLS_FIELDS: Final = frozenset({"verify", "client_cert", "client_key"})

# Where a connection goes, and the key of its keep-alive pool: (scheme, host, port).
Origin = tuple[str, str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class ClientSettings:
    """Timeouts, limits and TLS of :class:`HttpClient`, :class:`AsyncHttpClient` and the proxy's upstream side.

    Attributes:
        connect_timeout: seconds a TCP connect (plus, for ``https://``, the TLS
            handshake) may take (``ConnectTimeout``; a proxy answers 504).
        read_timeout: seconds the upstream may stay silent while a response is
            awaited or read (``ReadTimeout``; a proxy answers 504 before the head,
            and closes the client connection after it).
        max_idle_per_host: idle keep-alive connections kept per upstream address
            (per process); set it at least to the concurrency a proxy sees, or every
            request past it opens and closes a connection (and leaves a TIME_WAIT).
        idle_timeout: seconds an idle connection is kept for reuse.
        max_response_head_size: status line plus header fields, bytes.
        max_header_count: header fields in one response.
        max_body_size: bytes :meth:`HttpClient.request` buffers (streams are not bounded).
        recv_size: bytes asked of one ``recv``.
        verify: how ``https://`` servers are checked.  ``True`` (the default): the
            certificate must chain to the system's trusted CAs and name the host.
            A path: the same, trusting only the CA certificates of that PEM bundle
            (or ``c_rehash`` directory) instead of the system's.  ``False``: **no
            verification at all** -- any certificate for any name is accepted, so
            anyone on the path can read and change the traffic; for a local test
            server only, never for a real service (trust its CA with a path instead).
        client_cert: a PEM file with the client certificate (and its chain) for
            mutual TLS; it may hold the private key too.
        client_key: the PEM private key of ``client_cert`` when it is a separate file.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_idle_per_host: int = 256
    idle_timeout: float = 30.0
    max_response_head_size: int = 64 * 1024
    max_header_count: int = 200
    max_body_size: int = 64 * 1024 * 1024
    recv_size: int = 64 * 1024
    verify: bool | str = True
    client_cert: str | None = None
    client_key: str | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.name in _TLS_FIELDS:
                continue
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"client setting {field.name}: expected a finite number, got {value!r}")
            if field.name == "max_idle_per_host":
                if value < 0:
                    raise ConfigError(f"client setting {field.name}: expected >= 0, got {value!r}")
            elif value <= 0:
                raise ConfigError(f"client setting {field.name}: expected a value > 0, got {value!r}")
        if not isinstance(self.verify, (bool, str)) or self.verify == "":
            raise ConfigError(f"client setting verify: expected True, False or a CA bundle path, got {self.verify!r}")
        if self.client_key is not None and self.client_cert is None:
            raise ConfigError("client setting client_key: given without client_cert")

    def limits(self) -> ResponseLimits:
        """The response parser's bounds."""
        return ResponseLimits(self.max_response_head_size, self.max_header_count)


def tls_context(settings: ClientSettings) -> ssl.SSLContext:
    """The client TLS context ``settings`` ask for: verification, client certificate, ALPN ``http/1.1``.

    Raises:
        ConfigError: the CA bundle or the client certificate cannot be loaded.
    """
    verify = settings.verify
    if isinstance(verify, str):
        try:
            if os.path.isdir(verify):
                ctx = ssl.create_default_context(capath=verify)
            else:
                ctx = ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"client setting verify: cannot load the CA bundle {verify!r}: {exc}") from None
    else:
        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    if settings.client_cert is not None:
        try:
            ctx.load_cert_chain(settings.client_cert, settings.client_key)
        except (OSError, ssl.SSLError) as exc:
            shown = settings.client_cert
            if settings.client_key is not None:
                shown = f"{shown}, {settings.client_key}"
            raise ConfigError(f"client setting client_cert: cannot load {shown!r}: {exc}") from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def tls_failure(exc: ssl.SSLError, host: str, port: int) -> TlsError:
    """The client error for a failed TLS handshake with ``host:port``."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        return CertificateVerifyError(f"certificate verify failed: {reason} for host {host}:{port}")
    return TlsError(f"TLS handshake with {host}:{port} failed: {exc.reason or exc}")


def split_url(url: str) -> tuple[Origin, str, str]:
    """Split an ``http://`` or ``https://`` URL into ``((scheme, host, port), target, host_header)``.

    ``target`` is the path and query to send (``/`` when the URL has no path).

    Raises:
        InvalidURL: not ``http``/``https``, no host, a bad port.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default is None:
        raise InvalidURL(f"URL {url!r}: expected an http:// or https:// URL, got {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"URL {url!r}: no host")
    if port is None:
        port = default
    if port == 0:
        raise InvalidURL(f"URL {url!r}: port 0")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    return (scheme, host, port), target, host_header


def parse_url(url: str) -> tuple[str, int, str, str]:
    """Split an ``http://`` URL into ``(host, port, target, host_header)`` (the reverse proxy's upstreams).

    Raises:
        InvalidURL: not ``http`` (the proxy speaks plain HTTP to its upstreams), no host, a bad port.
    """
    (scheme, host, port), target, host_header = split_url(url)
    if scheme != "http":
        raise InvalidURL(f"URL {url!r}: expected an http:// URL (https is not supported here), got {scheme!r}")
    return host, port, target, host_header


def prepare_request(
    method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes | None
) -> tuple[Origin, bytes]:
    """Where to send a request and its bytes (``Host`` added unless given).

    Raises:
        InvalidURL: the URL cannot be used.
        ValueError: the method, target or a header would break the request head.
    """
    origin, target, host_header = split_url(url)
    fields = list(headers)
    if not any(name.lower() == "host" for name, _ in fields):
        fields.insert(0, ("Host", host_header))
    return origin, build_request(method, target, fields, body)


def body_lost(origin: Origin, exc: OSError) -> UpstreamClosed:
    """The error for a connection that failed while a response body was read (a reset, say).

    Callers (the blocking proxy forwarder among them) catch ``ClientError``: a bare
    ``ConnectionResetError`` from ``recv`` must not reach them.
    """
    return UpstreamClosed(
        f"connection to {origin[1]}:{origin[2]} lost in the middle of the response body: {exc.strerror or exc}"
    )


# -- sending a request while its answer is read ------------------------------------------
#
# How it works: a request that goes out in one send (nearly all of them) is followed by
# the read of its answer, as it always was.  One the socket cannot take at once goes on
# without blocking, and between two sends the answer's bytes are read and framed as
# they arrive, because the upstream may answer before it has read the whole request
# (RFC 9112 9.5: "A client sending a message body SHOULD monitor the network connection
# for an error response while it is transmitting the request"):
#
# * an error head (status >= 400) stops the sending: the request is refused, and an
#   upstream that will not read the rest would leave us blocked (or reset its side);
# * any other head does not: an upstream that streams its answer while it reads (an
#   echo) needs the rest of the request to finish its answer, so the answer's bytes
#   are buffered (up to ``max_body_size``) while the request goes on; the sending stops
#   only when the answer has ended before the request (nothing more is wanted);
# * a send that fails (EPIPE, ECONNRESET, a TLS error) is not the end yet: an upstream
#   that refused early and then closed with our body unread resets the connection, and
#   its answer may already be here, so it is read (before a reset discards it) and
#   returned if its head is complete.
#
# A request that did not go out whole leaves its connection mid-message: it is never
# pooled (:attr:`SentRequest.complete`, given to the body reader).  :func:`send_request`
# holds these steps once for both clients: a generator over a non-blocking socket that
# yields the readiness it waits for, as psycopg's generators do; the blocking client
# waits with ``poll``, the awaited one on its loop.

_READ: Final = select.EPOLLIN  # the same values as poll's POLLIN/POLLOUT: both shells wait on these
_WRITE: Final = select.EPOLLOUT
_WOULD_BLOCK: Final = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

#: The bytes one TLS record carries.  A non-blocking TLS send that cannot finish keeps
#: its bytes and must be called again with the same ones: sent a record at a time, what
#: went out is known, and reads can come between.
TLS_SLICE: Final = 16 * 1024


class SentRequest:
    """How sending a request ended, and what of its answer came meanwhile.

    Attributes:
        complete: the whole request went out (only then may its connection be reused).
        head: the final response head, when it came while the request was sent; None:
            read it next.
        events: the events that came after ``head`` (body bytes, ``END``).
        lost: what ended the connection after ``head`` came (an ``OSError``, or the
            ``UpstreamClosed`` of an early end); the body reader raises it once
            ``events`` are used up.
    """

    __slots__ = ("complete", "events", "head", "lost")

    def __init__(
        self, complete: bool, head: ResponseHead | None, events: tuple[Event, ...], lost: BaseException | None
    ) -> None:
        self.complete = complete
        self.head = head
        self.events = events
        self.lost = lost


#: The usual outcome: the whole request went out, nothing of the answer was read yet.
SENT: Final = SentRequest(True, None, (), None)


def send_request(
    sock: socket.socket, data: bytes, sent: int, parser: ResponseParser, settings: ClientSettings
) -> Generator[int, int, SentRequest]:
    """Send ``data[sent:]`` on the non-blocking ``sock``, reading what the upstream answers meanwhile.

    Yields the readiness to wait for (``EPOLLIN``/``EPOLLOUT``, the same values as
    poll's); is sent what came (``0``: ``read_timeout`` passed first).  A request that
    goes out at once returns before the first yield.

    Returns:
        How the sending ended (:class:`SentRequest`).

    Raises:
        ReadTimeout: the upstream neither took bytes nor sent any for ``read_timeout``.
        UpstreamClosed: the connection ended (a TLS failure) before a response head came.
        ConnectionError: the connection was reset or closed before a response head came
            (the shell says so, or retries a reused connection).
        ResponseProtocolError: the early answer was malformed or over a limit
            (``ResponseTooLarge``: over ``max_body_size`` while the request went out).
    """
    view = memoryview(data)
    total = len(view)
    step = TLS_SLICE if isinstance(sock, ssl.SSLSocket) else total
    answer: _EarlyAnswer | None = None
    while True:
        try:
            while sent < total:
                sent += sock.send(view[sent : sent + step])
        except (BlockingIOError, ssl.SSLWantWriteError):
            wait = _READ | _WRITE
        except ssl.SSLWantReadError:
            wait = _READ  # TLS must read first (a key update): the read below lets the send on
        except OSError as exc:  # EPIPE, ECONNRESET, a TLS failure: the upstream stopped taking it
            if answer is None:
                answer = _EarlyAnswer(parser, settings)
            return answer.after_send_failed(sock, exc)
        else:
            return SENT if answer is None else answer.outcome(complete=True)
        if answer is None:
            answer = _EarlyAnswer(parser, settings)
        ready = yield wait
        if not ready:
            raise ReadTimeout(f"upstream took no bytes for {settings.read_timeout} s")
        if ready & ~_WRITE and answer.read(sock):  # readable (or an error the read reports)
            return answer.outcome(complete=False)


class _EarlyAnswer:
    """The answer's bytes that arrive while the request is still being sent, framed as they come."""

    __slots__ = ("buffered", "events", "lost", "parser", "settings")

    def __init__(self, parser: ResponseParser, settings: ClientSettings) -> None:
        self.parser = parser
        self.settings = settings
        self.events: list[Event] = []
        self.buffered = 0  # body bytes held, bounded by max_body_size
        self.lost: BaseException | None = None

    def read(self, sock: socket.socket, drain: bool = False) -> bool:
        """Read what the socket holds now (a TLS socket's decrypted bytes too); True: stop sending.

        An error head stops the reading too (the body reader goes on), unless ``drain``:
        then all that is there is read, before a reset can discard it.

        Raises:
            UpstreamClosed, ConnectionError: the connection ended before a response head came.
        """
        size = self.settings.recv_size
        while True:
            try:
                data = sock.recv(size)  # an SSLSocket first returns the bytes it has decrypted already
            except _WOULD_BLOCK:
                return False
            except OSError as exc:
                return self._ended(exc)
            if not data:
                return self._ended(None)
            self._feed(data)
            head = self.parser.head
            if head is not None and (self.parser.done or (head.status >= 400 and not drain)):
                return True  # answered whole, or refused: the rest of the request is not wanted

    def _feed(self, data: bytes) -> None:
        events = self.parser.feed(data)
        self.events += events
        self.buffered += sum(len(event) for event in events if type(event) is bytes)
        limit = self.settings.max_body_size
        if self.buffered > limit:
            raise ResponseTooLarge(f"response body over max_body_size ({limit} bytes) before the request was sent")

    def _ended(self, exc: OSError | None) -> bool:
        """The upstream closed (``exc`` None) or reset the connection while the request went out."""
        if self.parser.head is None:
            if exc is None:
                raise UpstreamClosed("upstream closed the connection before the response head")
            if isinstance(exc, ssl.SSLError):
                raise UpstreamClosed(f"TLS connection broke while reading: {exc.reason or exc}") from exc
            raise exc
        if exc is None:
            try:
                self.events += self.parser.feed_eof()  # END of a body that ends with the connection
            except UpstreamClosed as early:
                self.lost = early
        else:
            self.lost = exc
        return True

    def after_send_failed(self, sock: socket.socket, exc: OSError) -> SentRequest:
        """The send failed: return the answer that came first, if its head is here, else raise as a send error."""
        if self.lost is None:
            try:
                self.read(sock, drain=True)  # a reset may discard what was not read: read it now
            except (OSError, ClientError):
                pass  # nothing usable came: the send's error says what happened
        if self.parser.head is None:
            if isinstance(exc, ssl.SSLError):
                raise UpstreamClosed(f"TLS connection broke while sending: {exc.reason or exc}") from exc
            raise exc
        return self.outcome(complete=False)

    def outcome(self, complete: bool) -> SentRequest:
        head = self.parser.head
        return SentRequest(complete, head, tuple(e for e in self.events if e is not head), self.lost)


class ClientResponse:
    """A response: status and headers at once, the body read whole or streamed.

    Attributes:
        status: the status code.
        reason: the reason phrase.
        http11: False for an HTTP/1.0 response.
        headers: ``(name, value)`` pairs as received.
    """

    def __init__(
        self,
        head: ResponseHead,
        chunks: Iterator[bytes],
        body: bytes | None,
        achunks: AsyncIterator[bytes] | None = None,
    ) -> None:
        self.status = head.status
        self.reason = head.reason
        self.http11 = head.http11
        self.headers = head.headers
        self._head = head
        self._chunks = chunks
        self._achunks = achunks  # the body of AsyncHttpClient.stream, read as it is awaited
        self._body = body

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), repeated fields joined by ``", "``."""
        return self._head.get(name)

    @property
    def body(self) -> bytes:
        """The whole body (read on first access for a response of :meth:`HttpClient.stream`).

        Raises:
            RuntimeError: a response of ``AsyncHttpClient.stream`` not read yet (``await read()`` first).
        """
        if self._body is None:
            if self._achunks is not None:
                raise RuntimeError("the body of AsyncHttpClient.stream is awaited: use `await resp.read()`")
            self._body = b"".join(self._chunks)
        return self._body

    async def read(self) -> bytes:
        """The whole body, read to its end (for a response of ``AsyncHttpClient.stream``; any response works)."""
        if self._body is None and self._achunks is not None:
            self._body = b"".join([chunk async for chunk in self._achunks])
        return self.body

    def iter_bytes(self) -> Iterator[bytes]:
        """The body as it arrives (for a response from :meth:`HttpClient.stream`)."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        if self._achunks is not None:
            raise RuntimeError("the body of AsyncHttpClient.stream is awaited: use `async for ... in aiter_bytes()`")
        yield from self._chunks

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives (for a response of ``AsyncHttpClient.stream``; any response works)."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        if self._achunks is not None:
            async for chunk in self._achunks:
                yield chunk
        else:
            for chunk in self._chunks:
                yield chunk

    def close(self) -> None:
        """Stop reading; the connection is closed unless the body was read to its end."""
        for chunks in (self._chunks, self._achunks):
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> ClientResponse:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> ClientResponse:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ClientResponse {self.status} {self.reason!r}>"


class BodyReaderBase:
    """What the blocking and the awaited body readers share: the parsed events and the socket's release.

    A subclass reads more bytes its own way (a blocking ``recv`` or an awaited one)
    when :meth:`_parsed_chunk` has nothing ready, hands them to :meth:`_feed`, and
    calls :meth:`_release` with ``finished=False`` when that read fails.  ``sent``
    says how the request went out: a connection whose request was not sent whole is
    closed at the end, never pooled.
    """

    def __init__(
        self,
        sock: socket.socket,
        parser: ResponseParser,
        pending: Iterable[object],
        key: Origin,
        pool: Callable[[], ConnectionPool],
        sent: SentRequest = SENT,
    ) -> None:
        self._sock: socket.socket | None = sock
        self._parser = parser
        self._events = list(pending)
        self._key = key
        self._pool = pool  # the pool a cleanly ended response's socket goes back to
        self._request_sent = sent.complete  # a request not sent whole leaves its connection unusable
        self._lost = sent.lost  # the connection ended while the request went out: raised after the events

    def close(self) -> None:
        """Stop reading; an unfinished response's connection is closed."""
        if self._sock is not None:
            self._release(finished=False)

    def _parsed_chunk(self) -> bytes | None:
        """The next body chunk already parsed; ``b""`` once the body ended (or was closed), None to read more."""
        if self._sock is None:
            return b""
        events = self._events
        while events:
            event = events.pop(0)
            if event is END:
                self._release(finished=True)
                return b""
            assert isinstance(event, bytes)
            if event:
                return event
        lost = self._lost
        if lost is not None:  # what came before the connection ended is used up
            self._lost = None
            self._read_failed(lost)
            raise lost
        return None

    def _feed(self, data: bytes) -> None:
        """Parse bytes read from the socket (``b""``: the upstream closed it)."""
        self._events = list(self._parser.feed(data) if data else self._parser.feed_eof())

    def _read_failed(self, exc: BaseException) -> None:
        """Close the connection after a failed read; the caller re-raises ``exc`` when this returns.

        An ``OSError`` that is not a ``ClientError`` (ECONNRESET: the upstream reset the
        connection mid-body) is raised as ``UpstreamClosed`` instead.
        """
        self._release(finished=False)
        if isinstance(exc, OSError) and not isinstance(exc, ClientError):
            raise body_lost(self._key, exc) from exc

    def _release(self, finished: bool) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        head = self._parser.head
        if finished and head is not None and head.keep_alive and self._request_sent:
            self._pool().checkin(self._key, sock, time.monotonic())
        else:
            sock.close()
