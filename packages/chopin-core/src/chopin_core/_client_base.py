"""What the blocking and the non-blocking HTTP clients share: settings, URLs, TLS and the response.

:class:`~chopin_core.client.HttpClient` (blocking sockets) and
:class:`~chopin_core.client.AsyncHttpClient` (non-blocking sockets awaited on the
worker's loop) are two I/O shells around one protocol core: requests are
serialised by :func:`~chopin_core._wire.h1_response.build_request` and responses
framed by :class:`~chopin_core._wire.h1_response.ResponseParser`.  This module
holds the rest that is not I/O: the settings, URL splitting, the TLS context and
the mapping of :mod:`ssl` failures onto the client's errors.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

from ._client_errors import CertificateVerifyError, ClientError, InvalidURL, TlsError, UpstreamClosed
from ._client_pool import ConnectionPool
from ._wire.h1_response import END, ResponseHead, ResponseLimits, ResponseParser, build_request
from .errors import ConfigError

__all__ = [
    "IDEMPOTENT",
    "BodyReaderBase",
    "ClientResponse",
    "ClientSettings",
    "Origin",
    "body_lost",
    "parse_url",
    "prepare_request",
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
    calls :meth:`_release` with ``finished=False`` when that read fails.
    """

    def __init__(
        self,
        sock: socket.socket,
        parser: ResponseParser,
        pending: Iterable[object],
        key: Origin,
        pool: Callable[[], ConnectionPool],
    ) -> None:
        self._sock: socket.socket | None = sock
        self._parser = parser
        self._events = list(pending)
        self._key = key
        self._pool = pool  # the pool a cleanly ended response's socket goes back to

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
        if finished and head is not None and head.keep_alive:
            self._pool().checkin(self._key, sock, time.monotonic())
        else:
            sock.close()
