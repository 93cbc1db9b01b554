"""A small blocking HTTP/1.1 client with a keep-alive pool, on the sans-IO core of :mod:`._wire.h1_response`.

::

    client = HttpClient(ClientSettings(connect_timeout=2.0, read_timeout=10.0))
    resp = client.request("GET", "http://127.0.0.1:9000/users/1")
    resp.status, resp.header("content-type"), resp.body

    with client.stream("GET", "http://127.0.0.1:9000/export") as resp:
        for chunk in resp.iter_bytes():
            ...

It speaks ``http://`` only (plain TCP).  Idle connections are kept per
``(host, port)`` and belong to the process that opened them: after a ``fork``
the child starts with an empty pool.  The reverse proxy (:mod:`chopin_core.proxy`)
uses the same parser and settings but is driven by the worker's epoll loop.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

from ._client_errors import (
    ClientError,
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    ReadTimeout,
    ResponseProtocolError,
    ResponseTooLarge,
    UpstreamClosed,
)
from ._client_pool import ConnectionPool
from ._wire.h1_response import END, ResponseHead, ResponseLimits, ResponseParser, build_request
from .errors import ConfigError

__all__ = [
    "ClientError",
    "ClientResponse",
    "ClientSettings",
    "ConnectError",
    "ConnectTimeout",
    "HttpClient",
    "InvalidURL",
    "ReadTimeout",
    "ResponseProtocolError",
    "ResponseTooLarge",
    "UpstreamClosed",
    "parse_url",
]

# RFC 9110 9.2.2: a request with one of these may be repeated on a fresh
# connection when a reused one turned out to be closed before any answer.
IDEMPOTENT: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})


@dataclasses.dataclass(frozen=True, slots=True)
class ClientSettings:
    """Timeouts and limits of :class:`HttpClient` and of the proxy's upstream side.

    Attributes:
        connect_timeout: seconds a TCP connect may take (``ConnectTimeout``; a proxy answers 504).
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
    """

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_idle_per_host: int = 256
    idle_timeout: float = 30.0
    max_response_head_size: int = 64 * 1024
    max_header_count: int = 200
    max_body_size: int = 64 * 1024 * 1024
    recv_size: int = 64 * 1024

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"client setting {field.name}: expected a finite number, got {value!r}")
            if field.name == "max_idle_per_host":
                if value < 0:
                    raise ConfigError(f"client setting {field.name}: expected >= 0, got {value!r}")
            elif value <= 0:
                raise ConfigError(f"client setting {field.name}: expected a value > 0, got {value!r}")

    def limits(self) -> ResponseLimits:
        """The response parser's bounds."""
        return ResponseLimits(self.max_response_head_size, self.max_header_count)


def parse_url(url: str) -> tuple[str, int, str, str]:
    """Split an ``http://`` URL into ``(host, port, target, host_header)``.

    ``target`` is the path and query to send (``/`` when the URL has no path).

    Raises:
        InvalidURL: not ``http``, no host, a bad port, or a fragment-only oddity.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"URL {url!r}: {exc}") from None
    if parts.scheme.lower() != "http":
        raise InvalidURL(f"URL {url!r}: expected an http:// URL (https is not supported), got {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"URL {url!r}: no host")
    if port is None:
        port = 80
    if port == 0:
        raise InvalidURL(f"URL {url!r}: port 0")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == 80 else f"{shown}:{port}"
    return host, port, target, host_header


class ClientResponse:
    """A response: status and headers at once, the body read whole or streamed.

    Attributes:
        status: the status code.
        reason: the reason phrase.
        http11: False for an HTTP/1.0 response.
        headers: ``(name, value)`` pairs as received.
    """

    def __init__(self, head: ResponseHead, chunks: Iterator[bytes], body: bytes | None) -> None:
        self.status = head.status
        self.reason = head.reason
        self.http11 = head.http11
        self.headers = head.headers
        self._head = head
        self._chunks = chunks
        self._body = body

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), repeated fields joined by ``", "``."""
        return self._head.get(name)

    @property
    def body(self) -> bytes:
        """The whole body (read on first access for a streamed response)."""
        if self._body is None:
            self._body = b"".join(self._chunks)
        return self._body

    def iter_bytes(self) -> Iterator[bytes]:
        """The body as it arrives (for a response from :meth:`HttpClient.stream`)."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        yield from self._chunks

    def close(self) -> None:
        """Stop reading; the connection is closed unless the body was read to its end."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ClientResponse:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ClientResponse {self.status} {self.reason!r}>"


class HttpClient:
    """A blocking HTTP/1.1 client with one keep-alive pool per process (not thread-safe: one per thread).

    Args:
        settings: timeouts and limits; defaults when omitted.
    """

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings()
        self._pool = ConnectionPool(self.settings.max_idle_per_host, self.settings.idle_timeout)
        self._pid = os.getpid()

    def request(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> ClientResponse:
        """Send a request and read the whole response.

        Args:
            method: the method, e.g. ``"GET"``.
            url: an ``http://`` URL.
            headers: extra header fields; ``Host`` is added unless given.
            body: the request body (sent with ``Content-Length``).

        Raises:
            InvalidURL: the URL cannot be used.
            ConnectError: the upstream refused or could not be reached.
            ConnectTimeout, ReadTimeout: a timeout passed.
            ResponseProtocolError: the response was malformed or too large.
            UpstreamClosed: the connection closed before the response was complete.
        """
        head, chunks = self._exchange(method, url, headers, body)
        limit = self.settings.max_body_size
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLarge(f"response body over max_body_size ({limit} bytes)")
                parts.append(chunk)
        finally:
            chunks.close()
        return ClientResponse(head, iter(()), b"".join(parts))

    def stream(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> ClientResponse:
        """Send a request and return once the head is in; read the body with
        :meth:`ClientResponse.iter_bytes`, then :meth:`ClientResponse.close` (or use ``with``).

        Raises:
            The same errors as :meth:`request`; body errors surface while iterating.
        """
        head, chunks = self._exchange(method, url, headers, body)
        return ClientResponse(head, chunks, None)

    def close(self) -> None:
        """Close every idle connection."""
        self._pool.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- one exchange ---------------------------------------------------------------

    def _pool_here(self) -> ConnectionPool:
        """This process's pool: a forked child must not share its parent's sockets."""
        pid = os.getpid()
        if pid != self._pid:
            self._pool = ConnectionPool(self.settings.max_idle_per_host, self.settings.idle_timeout)
            self._pid = pid
        return self._pool

    def _exchange(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes | None
    ) -> tuple[ResponseHead, _BodyReader]:
        host, port, target, host_header = parse_url(url)
        fields = list(headers)
        if not any(name.lower() == "host" for name, _ in fields):
            fields.insert(0, ("Host", host_header))
        data = build_request(method, target, fields, body)
        key = (host, port)
        pool = self._pool_here()
        sock = pool.checkout(key, time.monotonic())
        reused = sock is not None
        while True:
            if sock is None:
                sock = self._connect(host, port)
            parser = ResponseParser(method, self.settings.limits())
            try:
                sock.sendall(data)
                head, pending = self._read_head(sock, parser)
            except (UpstreamClosed, ConnectionError) as exc:
                sock.close()
                sock = None
                if reused and not parser.received and method in IDEMPOTENT:
                    reused = False  # the idle connection had been closed: once more on a fresh one
                    continue
                if isinstance(exc, UpstreamClosed):
                    raise
                raise UpstreamClosed(f"connection to {host}:{port} lost: {exc}") from exc
            except BaseException:
                sock.close()
                raise
            return head, self._body(sock, parser, pending, key)

    def _connect(self, host: str, port: int) -> socket.socket:
        try:
            sock = socket.create_connection((host, port), timeout=self.settings.connect_timeout)
        except TimeoutError:
            raise ConnectTimeout(
                f"connecting to {host}:{port} took longer than {self.settings.connect_timeout} s"
            ) from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.settings.read_timeout)
        return sock

    def _recv(self, sock: socket.socket) -> bytes:
        try:
            return sock.recv(self.settings.recv_size)
        except TimeoutError:
            raise ReadTimeout(f"upstream sent nothing for {self.settings.read_timeout} s") from None

    def _read_head(self, sock: socket.socket, parser: ResponseParser) -> tuple[ResponseHead, list[bytes | object]]:
        """Read until the head is framed; return it and the events that came with it."""
        while True:
            data = self._recv(sock)
            events = parser.feed(data) if data else parser.feed_eof()
            for i, event in enumerate(events):
                if isinstance(event, ResponseHead):
                    return event, list(events[i + 1 :])

    def _body(
        self, sock: socket.socket, parser: ResponseParser, pending: list[bytes | object], key: tuple[str, int]
    ) -> _BodyReader:
        return _BodyReader(self, sock, parser, pending, key)


class _BodyReader:
    """Body chunks of one response; gives the socket back to the pool once the response ended cleanly."""

    def __init__(
        self,
        client: HttpClient,
        sock: socket.socket,
        parser: ResponseParser,
        pending: list[bytes | object],
        key: tuple[str, int],
    ) -> None:
        self._client = client
        self._sock: socket.socket | None = sock
        self._parser = parser
        self._events = pending
        self._key = key

    def __iter__(self) -> _BodyReader:
        return self

    def __next__(self) -> bytes:
        while True:
            sock = self._sock
            if sock is None:
                raise StopIteration
            events = self._events
            while events:
                event = events.pop(0)
                if event is END:
                    self._release(finished=True)
                    raise StopIteration
                assert isinstance(event, bytes)
                if event:
                    return event
            try:
                data = self._client._recv(sock)  # noqa: SLF001  same module: this iterator belongs to the client
                self._events = list(self._parser.feed(data) if data else self._parser.feed_eof())
            except BaseException:
                self._release(finished=False)
                raise

    def close(self) -> None:
        """Stop reading; an unfinished response's connection is closed."""
        if self._sock is not None:
            self._release(finished=False)

    def _release(self, finished: bool) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        head = self._parser.head
        if finished and head is not None and head.keep_alive:
            self._client._pool_here().checkin(self._key, sock, time.monotonic())  # noqa: SLF001  same module
        else:
            sock.close()
