"""HTTP/1.1 clients with a keep-alive pool: blocking :class:`HttpClient`, :class:`AsyncHttpClient` for handlers.

::

    client = HttpClient(ClientSettings(connect_timeout=2.0, read_timeout=10.0))
    resp = client.request("GET", "https://api.example.com/users/1")
    resp.status, resp.header("content-type"), resp.body

    with client.stream("GET", "http://127.0.0.1:9000/export") as resp:
        for chunk in resp.iter_bytes():
            ...

    api = AsyncHttpClient()                      # in an ``async def`` handler:
    resp = await api.get("https://api.example.com/users/1")

Both speak ``http://`` and ``https://`` (TLS verified against the system's CAs by
default, see :attr:`ClientSettings.verify`), frame responses with the same sans-IO
core (:mod:`._wire.h1_response`) and raise the same errors.  A request larger than
the socket takes at once goes out while the answer is read: an early refusal (a 413
sent before the body was read) is returned, and an upstream that answers as it reads
(an echo) gets the whole request (see :func:`._client_base.send_request`).  Idle
connections are kept per ``(scheme, host, port)`` and belong to the process that
opened them: after a ``fork`` the child starts with an empty pool.  The reverse proxy
(:mod:`chopin_core.proxy`) uses the same parser and settings but is driven by the
worker's epoll loop (plain ``http://`` upstreams).
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import time
from collections.abc import Generator, Iterable
from types import TracebackType

from ._client_async import AsyncHttpClient
from ._client_base import (
    IDEMPOTENT,
    SENT,
    TLS_SLICE,
    BodyReaderBase,
    ClientResponse,
    ClientSettings,
    Origin,
    SentRequest,
    parse_url,
    prepare_request,
    send_request,
    split_url,
    tls_context,
    tls_failure,
)
from ._client_errors import (
    CertificateVerifyError,
    ClientError,
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    ReadTimeout,
    ResponseProtocolError,
    ResponseTooLarge,
    TlsError,
    UpstreamClosed,
)
from ._client_pool import ConnectionPool
from ._wire.h1_response import ResponseHead, ResponseParser

__all__ = [
    "AsyncHttpClient",
    "CertificateVerifyError",
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
    "TlsError",
    "UpstreamClosed",
    "parse_url",
    "split_url",
]


class HttpClient:
    """A blocking HTTP/1.1 client with one keep-alive pool per process (not thread-safe: one per thread).

    In an ``async def`` handler use :class:`AsyncHttpClient`: this one holds the
    worker while it waits.

    Args:
        settings: timeouts, limits and TLS; defaults when omitted.
    """

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings()
        self._pool = ConnectionPool(self.settings.max_idle_per_host, self.settings.idle_timeout)
        self._pid = os.getpid()
        self._tls: ssl.SSLContext | None = None

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
            url: an ``http://`` or ``https://`` URL.
            headers: extra header fields; ``Host`` is added unless given.
            body: the request body (sent with ``Content-Length``).

        Raises:
            InvalidURL: the URL cannot be used.
            ConnectError: the upstream refused or could not be reached.
            TlsError: the TLS handshake failed (``CertificateVerifyError``: the
                certificate did not verify).
            ConnectTimeout, ReadTimeout: a timeout passed.
            ResponseProtocolError: the response was malformed or too large.
            UpstreamClosed: the connection closed before the response was complete.
            ConfigError: the CA bundle or client certificate of the settings cannot be loaded.
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

    def get(self, url: str, headers: Iterable[tuple[str, str]] = ()) -> ClientResponse:
        """``request("GET", url, headers)``."""
        return self.request("GET", url, headers)

    def post(self, url: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()) -> ClientResponse:
        """``request("POST", url, headers, body)``."""
        return self.request("POST", url, headers, body)

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
        origin, data = prepare_request(method, url, headers, body)
        pool = self._pool_here()
        sock = pool.checkout(origin, time.monotonic())
        reused = sock is not None
        while True:
            if sock is None:
                sock = self._connect(origin)
            parser = ResponseParser(method, self.settings.limits())
            try:
                sent = self._send(sock, data, parser)
                if sent.head is None:
                    head, pending = self._read_head(sock, parser)
                else:  # answered while the request went out
                    head, pending = sent.head, list(sent.events)
            except (UpstreamClosed, ConnectionError) as exc:
                sock.close()
                sock = None
                if reused and not parser.received and method in IDEMPOTENT:
                    reused = False  # the idle connection had been closed: once more on a fresh one
                    continue
                if isinstance(exc, UpstreamClosed):
                    raise
                raise UpstreamClosed(f"connection to {origin[1]}:{origin[2]} lost: {exc}") from exc
            except BaseException:
                sock.close()
                raise
            return head, _BodyReader(self, sock, parser, pending, origin, sent)

    def _connect(self, origin: Origin) -> socket.socket:
        scheme, host, port = origin
        timeout = self.settings.connect_timeout
        deadline = time.monotonic() + timeout
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError:
            raise ConnectTimeout(f"connecting to {host}:{port} took longer than {timeout} s") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            sock = self._handshake(sock, host, port, deadline)
        sock.settimeout(self.settings.read_timeout)
        return sock

    def _tls_context(self) -> ssl.SSLContext:
        ctx = self._tls
        if ctx is None:
            ctx = self._tls = tls_context(self.settings)  # built once: loading the CAs takes milliseconds
        return ctx

    def _handshake(self, sock: socket.socket, host: str, port: int, deadline: float) -> ssl.SSLSocket:
        """TLS over ``sock`` (SNI and the certificate check for ``host``) in what is left of the connect timeout."""
        try:
            ctx = self._tls_context()
            # Each step of the handshake may wait this long (the socket timeout is per call).
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            return ctx.wrap_socket(sock, server_hostname=host)
        except TimeoutError:
            sock.close()
            raise ConnectTimeout(
                f"TLS handshake with {host}:{port} took longer than {self.settings.connect_timeout} s"
            ) from None
        except ssl.SSLError as exc:
            sock.close()
            raise tls_failure(exc, host, port) from exc
        except OSError as exc:
            sock.close()
            raise TlsError(f"TLS handshake with {host}:{port} failed: {exc.strerror or exc}") from exc
        except BaseException:
            sock.close()
            raise

    def _send(self, sock: socket.socket, data: bytes, parser: ResponseParser) -> SentRequest:
        """Send the request: at once if the socket takes it, else while reading the answer (send_request)."""
        try:
            # One send, as sendall's first (both wait for room first, at most the socket
            # timeout).  A TLS send finishes what it is given, so a large request is not given
            # to it whole: it goes out a record at a time below.
            sent = 0 if isinstance(sock, ssl.SSLSocket) and len(data) > TLS_SLICE else sock.send(data)
        except TimeoutError:
            # An upstream that does not read (a GET's body it ignores, say): the socket timeout
            # is the read timeout, and the error a ClientError like every other here.
            raise ReadTimeout(f"upstream took no bytes for {self.settings.read_timeout} s") from None
        except ssl.SSLError as exc:
            raise UpstreamClosed(f"TLS connection broke while sending: {exc.reason or exc}") from exc
        if sent == len(data):
            return SENT
        sock.settimeout(0)  # the rest would block: go on without, waiting with poll for either side
        try:
            return self._wait(sock, send_request(sock, data, sent, parser, self.settings))
        finally:
            sock.settimeout(self.settings.read_timeout)

    def _wait(self, sock: socket.socket, steps: Generator[int, int, SentRequest]) -> SentRequest:
        """Run ``steps``, waiting for the readiness each asks for (at most ``read_timeout``; 0 when it passed)."""
        poller = select.poll()  # POLLIN/POLLOUT have the EPOLL values send_request yields
        fd = sock.fileno()
        timeout_ms = self.settings.read_timeout * 1000
        try:
            events = next(steps)
            while True:
                poller.register(fd, events)  # registering again changes the mask
                ready = poller.poll(timeout_ms)
                events = steps.send(ready[0][1] if ready else 0)
        except StopIteration as stop:
            result: SentRequest = stop.value
            return result

    def _recv(self, sock: socket.socket) -> bytes:
        try:
            return sock.recv(self.settings.recv_size)
        except TimeoutError:
            raise ReadTimeout(f"upstream sent nothing for {self.settings.read_timeout} s") from None
        except ssl.SSLError as exc:
            raise UpstreamClosed(f"TLS connection broke while reading: {exc.reason or exc}") from exc

    def _read_head(self, sock: socket.socket, parser: ResponseParser) -> tuple[ResponseHead, list[bytes | object]]:
        """Read until the head is framed; return it and the events that came with it."""
        while True:
            data = self._recv(sock)
            events = parser.feed(data) if data else parser.feed_eof()
            for i, event in enumerate(events):
                if isinstance(event, ResponseHead):
                    return event, list(events[i + 1 :])


class _BodyReader(BodyReaderBase):
    """Body chunks of one response, read with blocking ``recv``; the socket goes back to the pool at a clean end."""

    def __init__(
        self,
        client: HttpClient,
        sock: socket.socket,
        parser: ResponseParser,
        pending: Iterable[object],
        key: Origin,
        sent: SentRequest,
    ) -> None:
        super().__init__(sock, parser, pending, key, client._pool_here, sent)  # noqa: SLF001  same module
        self._client = client

    def __iter__(self) -> _BodyReader:
        return self

    def __next__(self) -> bytes:
        while True:
            chunk = self._parsed_chunk()
            if chunk is not None:
                if chunk:
                    return chunk
                raise StopIteration
            sock = self._sock
            assert sock is not None
            try:
                self._feed(self._client._recv(sock))  # noqa: SLF001  same module: this iterator belongs to the client
            except BaseException as exc:
                self._read_failed(exc)
                raise
