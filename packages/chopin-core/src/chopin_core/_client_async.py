"""The non-blocking HTTP/1.1 client for ``async def`` handlers: :class:`AsyncHttpClient`.

How it works: the sockets are non-blocking; where the blocking client would block,
this one awaits :func:`~chopin_core.waiting.wait_fd` (the fd's readiness, bounded by
the connect or read timeout) on whatever loop drives the coroutine -- the worker's
epoll loop in a handler, :func:`chopin_core.run_blocking` in a script.  TLS is a
non-blocking :class:`ssl.SSLSocket`: an ``SSLWantReadError``/``SSLWantWriteError``
(handshake included) says which readiness to await.  Name resolution
(``getaddrinfo`` blocks) runs on the worker's thread pool unless the host is an IP
literal.  The bytes are made and framed by the same sans-IO core as
:class:`~chopin_core.client.HttpClient` (:func:`~._client_base.prepare_request`,
:class:`~._wire.h1_response.ResponseParser`).
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Final

from ._client_base import (
    IDEMPOTENT,
    BodyReaderBase,
    ClientResponse,
    ClientSettings,
    Origin,
    SentRequest,
    prepare_request,
    send_request,
    tls_context,
    tls_failure,
)
from ._client_errors import (
    ClientError,
    ConnectError,
    ConnectTimeout,
    ReadTimeout,
    ResponseTooLarge,
    TlsError,
    UpstreamClosed,
)
from ._client_pool import ConnectionPool
from ._wire.h1_response import Event, ResponseHead, ResponseParser
from .waiting import READABLE, WRITABLE, to_thread, wait_fd

__all__ = ["AsyncHttpClient"]

_IN_PROGRESS: Final = frozenset({errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY})

AddrInfo = tuple[int, int, int, object]  # family, type, proto, sockaddr


class AsyncHttpClient:
    """A non-blocking HTTP/1.1 client for ``async def`` handlers, with a keep-alive pool per process.

    The same settings, responses and errors as :class:`~chopin_core.client.HttpClient`;
    every call is awaited, and while it waits the worker serves its other
    connections.  Make one per app (module level is fine) and share it between
    handlers: concurrent requests each take their own connection, and a finished
    one goes back to the pool for the next.  After a ``fork`` each process starts
    with an empty pool.

    ::

        api = AsyncHttpClient(ClientSettings(read_timeout=5.0))

        @get("/quote")
        async def quote(ctx: Context) -> Response:
            resp = await api.get("https://api.example.com/quote")
            return Response.raw(resp.body, status=resp.status)

    Args:
        settings: timeouts, limits and TLS; defaults when omitted.
    """

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings()
        self._pool = ConnectionPool(self.settings.max_idle_per_host, self.settings.idle_timeout)
        self._pid = os.getpid()
        self._tls: ssl.SSLContext | None = None
        self.connections_opened = 0

    async def request(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> ClientResponse:
        """Send a request and read the whole response (at most ``max_body_size`` bytes of body).

        Args:
            method: the method, e.g. ``"GET"``.
            url: an ``http://`` or ``https://`` URL.
            headers: extra header fields; ``Host`` is added unless given.
            body: the request body (sent with ``Content-Length``).

        Raises:
            InvalidURL: the URL cannot be used.
            ConnectError: the upstream refused, could not be reached or resolved.
            TlsError: the TLS handshake failed (``CertificateVerifyError``: the
                certificate did not verify).
            ConnectTimeout: connecting (with the TLS handshake) took longer than ``connect_timeout``.
            ReadTimeout: the upstream stayed silent for ``read_timeout``.
            ResponseProtocolError: the response was malformed or too large.
            UpstreamClosed: the connection closed before the response was complete.
            ConfigError: the CA bundle or client certificate of the settings cannot be loaded.
        """
        head, chunks = await self._exchange(method, url, headers, body)
        limit = self.settings.max_body_size
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLarge(f"response body over max_body_size ({limit} bytes)")
                parts.append(chunk)
        finally:
            chunks.close()
        return ClientResponse(head, iter(()), b"".join(parts))

    async def stream(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> ClientResponse:
        """Send a request and return once the head is in; the body is read as it is iterated.

        ::

            async with await api.stream("GET", url) as resp:
                async for chunk in resp.aiter_bytes():
                    ...

        Read the body with :meth:`ClientResponse.aiter_bytes` (or ``await resp.read()``),
        then close the response (``async with`` does): a response closed before its end
        closes its connection, one read to its end returns it to the pool.

        Raises:
            The same errors as :meth:`request`; body errors surface while iterating.
        """
        head, chunks = await self._exchange(method, url, headers, body)
        return ClientResponse(head, iter(()), None, chunks)

    async def get(self, url: str, headers: Iterable[tuple[str, str]] = ()) -> ClientResponse:
        """``await request("GET", url, headers)``."""
        return await self.request("GET", url, headers)

    async def post(self, url: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()) -> ClientResponse:
        """``await request("POST", url, headers, body)``."""
        return await self.request("POST", url, headers, body)

    def idle_count(self) -> int:
        """Idle keep-alive connections this process holds."""
        return self._pool_here().idle_count()

    def close(self) -> None:
        """Close every idle connection."""
        self._pool.close()

    async def __aenter__(self) -> AsyncHttpClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the I/O shell ----------------------------------------------------------------

    def _pool_here(self) -> ConnectionPool:
        """This process's pool: a forked child must not share its parent's sockets."""
        pid = os.getpid()
        if pid != self._pid:
            self._pool = ConnectionPool(self.settings.max_idle_per_host, self.settings.idle_timeout)
            self._pid = pid
        return self._pool

    async def _exchange(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes | None
    ) -> tuple[ResponseHead, _AsyncBodyReader]:
        """Send the request (on a pooled connection, or a new one) and read up to the response head."""
        origin, data = prepare_request(method, url, headers, body)
        sock = self._pool_here().checkout(origin, time.monotonic())
        reused = sock is not None
        while True:
            if sock is None:
                sock = await self._connect(origin)
            parser = ResponseParser(method, self.settings.limits())
            try:
                sent = await self._send(sock, data, parser)
                if sent.head is None:
                    head, pending = await self._read_head(sock, parser)
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
            except BaseException:  # an error, or the handler was cancelled at an await: never pool it
                sock.close()
                raise
            return head, _AsyncBodyReader(self, sock, parser, pending, origin, sent)

    async def _resolve(self, host: str, port: int) -> list[AddrInfo]:
        """``getaddrinfo`` at once for an IP literal, else on the thread pool (it blocks)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            try:
                infos = await to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise ConnectError(f"cannot resolve {host!r}: {exc.strerror or exc}") from exc
        return [(int(family), int(kind), proto, addr) for family, kind, proto, _, addr in infos]

    async def _connect(self, origin: Origin) -> socket.socket:
        """A connected socket to ``origin`` (TLS done for https), tried address by address."""
        scheme, host, port = origin
        timeout = self.settings.connect_timeout
        deadline = time.monotonic() + timeout
        problem = "no address"
        for family, kind, proto, addr in await self._resolve(host, port):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                code = sock.connect_ex(addr)  # type: ignore[arg-type]
                if code in _IN_PROGRESS:
                    if not await wait_fd(sock.fileno(), WRITABLE, deadline - time.monotonic()):
                        raise ConnectTimeout(f"connecting to {host}:{port} took longer than {timeout} s")
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    problem = os.strerror(code)
                    sock.close()
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except BaseException:
                sock.close()
                raise
            self.connections_opened += 1
            if scheme == "https":
                return await self._handshake(sock, host, port, deadline)
            return sock
        raise ConnectError(f"cannot connect to {host}:{port}: {problem}")

    async def _handshake(self, sock: socket.socket, host: str, port: int, deadline: float) -> ssl.SSLSocket:
        """TLS over connected ``sock``: SNI and the certificate check for ``host``, by ``deadline``."""
        try:
            ctx = self._tls
            if ctx is None:
                ctx = self._tls = tls_context(self.settings)  # built once: loading the CAs takes milliseconds
            tls = ctx.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
        except BaseException:
            sock.close()
            raise
        try:
            while True:
                try:
                    tls.do_handshake()
                    return tls
                except ssl.SSLWantReadError:
                    events = READABLE
                except ssl.SSLWantWriteError:
                    events = WRITABLE
                if not await wait_fd(tls.fileno(), events, deadline - time.monotonic()):
                    raise ConnectTimeout(
                        f"TLS handshake with {host}:{port} took longer than {self.settings.connect_timeout} s"
                    )
        except ssl.SSLError as exc:
            tls.close()
            raise tls_failure(exc, host, port) from exc
        except OSError as exc:
            tls.close()
            if isinstance(exc, ClientError):  # our ConnectTimeout (a TimeoutError, so an OSError)
                raise
            raise TlsError(f"TLS handshake with {host}:{port} failed: {exc.strerror or exc}") from exc
        except BaseException:
            tls.close()
            raise

    async def _send(self, sock: socket.socket, data: bytes, parser: ResponseParser) -> SentRequest:
        """Send the request, reading the answer meanwhile once the socket cannot take it all at once."""
        steps = send_request(sock, data, 0, parser, self.settings)
        try:
            events = next(steps)  # most requests go out here, before any wait
            while True:
                events = steps.send(await wait_fd(sock.fileno(), events, self.settings.read_timeout))
        except StopIteration as stop:
            result: SentRequest = stop.value
            return result

    async def _recv(self, sock: socket.socket) -> bytes:
        size = self.settings.recv_size
        while True:
            try:
                return sock.recv(size)  # an SSLSocket first returns what it has decrypted already
            except (BlockingIOError, ssl.SSLWantReadError):
                events = READABLE
            except ssl.SSLWantWriteError:
                events = WRITABLE
            except ssl.SSLError as exc:
                raise UpstreamClosed(f"TLS connection broke while reading: {exc.reason or exc}") from exc
            if not await wait_fd(sock.fileno(), events, self.settings.read_timeout):
                raise ReadTimeout(f"upstream sent nothing for {self.settings.read_timeout} s")

    async def _read_head(self, sock: socket.socket, parser: ResponseParser) -> tuple[ResponseHead, list[Event]]:
        """Read until the head is framed; return it and the events that came with it."""
        while True:
            data = await self._recv(sock)
            events = parser.feed(data) if data else parser.feed_eof()
            for i, event in enumerate(events):
                if isinstance(event, ResponseHead):
                    return event, events[i + 1 :]


class _AsyncBodyReader(BodyReaderBase):
    """Body chunks of one response, read as they are awaited; the socket goes back to the pool at a clean end."""

    def __init__(
        self,
        client: AsyncHttpClient,
        sock: socket.socket,
        parser: ResponseParser,
        pending: Iterable[object],
        key: Origin,
        sent: SentRequest,
    ) -> None:
        super().__init__(sock, parser, pending, key, client._pool_here, sent)  # noqa: SLF001  same module
        self._client = client

    def __aiter__(self) -> _AsyncBodyReader:
        return self

    async def __anext__(self) -> bytes:
        while True:
            chunk = self._parsed_chunk()
            if chunk is not None:
                if chunk:
                    return chunk
                raise StopAsyncIteration
            sock = self._sock
            assert sock is not None
            try:
                self._feed(await self._client._recv(sock))  # noqa: SLF001  same module: this reader belongs to the client
            except BaseException as exc:  # an error, or cancelled at the await: the connection is not reusable
                self._read_failed(exc)
                raise
