"""A client connection's state, the listening socket, and the output-buffer helpers.

The worker (:mod:`chopin_core.worker`) owns every :class:`Connection`; nothing here
does I/O except :func:`open_listener`, which creates a listening socket, and
:func:`probe_port`, which checks an address before the workers listen on it.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import AddressInUse

if TYPE_CHECKING:
    from ._body import BodyIntake
    from ._wire.h1_request import RequestParser
    from .errors import ProtocolError
    from .files import FileBody
    from .forwarded import TrustedProxies
    from .request import Request

__all__ = ["Connection", "Producer", "close_stream", "consume", "open_listener", "pending_bytes", "probe_port"]

log = logging.getLogger("chopin_core.worker")


def open_listener(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A non-blocking listening socket with ``SO_REUSEPORT`` and ``TCP_NODELAY``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # Accepted sockets inherit TCP_NODELAY from the listener on Linux.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def probe_port(host: str, port: int, *, shared: bool = False) -> int:
    """Check that a server may listen on ``host:port``; return the port (0 picks a free one).

    Every worker binds its own ``SO_REUSEPORT`` socket, and the kernel lets any number
    of those share a port: a second server would start and quietly take part of the
    first one's connections.  So the probe binds *without* ``SO_REUSEPORT`` and fails
    while anyone listens there.  It does set ``SO_REUSEADDR``, which on Linux passes
    over the ``TIME_WAIT`` connections of an earlier run but never over a listener.
    Call it before this server's own workers listen, never beside them.

    Args:
        host: the address to bind.
        port: the port; 0 for one the kernel picks.
        shared: probe with ``SO_REUSEPORT`` as the workers bind: a listener with
            ``SO_REUSEPORT`` of the same user is shared (a rolling restart).

    Returns:
        The port, the one the kernel picked when ``port`` is 0.

    Raises:
        AddressInUse: the address is taken (by a listener that cannot be shared, or
            by any listener when ``shared`` is off).
        OSError: the address cannot be bound for another reason.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            if shared:
                reason = "the address is in use by a socket without SO_REUSEPORT, which cannot be shared"
            else:
                reason = (
                    "another process is already listening there; to share the port on purpose "
                    "(a rolling restart), set CHOPIN_REUSE_PORT_SHARED=1 or Settings(reuse_port_shared=True)"
                )
            raise AddressInUse(address, reason) from None
        bound: int = sock.getsockname()[1]
    return bound


class Producer:
    """What fills a connection's ``stream`` slot besides a chunk iterator: output the loop does not pull.

    The reverse proxy's upstream exchange is one
    (:class:`~chopin_core._engine.upstream.UpstreamExchange`): it adds the answer to
    the connection's output itself, as its own socket delivers it.  An ``async def``
    handler that waits is another (:class:`~chopin_core._engine.awaiting.Awaiting`):
    it produces nothing until its answer is framed.  While a producer stands in the
    slot the connection's later requests wait, as behind a stream.
    """

    __slots__ = ()

    def drained(self, pending: int) -> None:
        """The loop wrote the connection's output down to ``pending`` bytes (produce more if paused)."""

    def close(self) -> None:
        """The connection closed (or the worker exits): let go of what produces the output."""


class Connection:
    """One client connection's state, owned by one worker.

    Attributes:
        out: buffers waiting to be written, in order.
        last_active: tick of the last read or write progress.
        head_since: tick the current partial request head began, or -1.
        body: the request body in progress once its head is in and it takes more
            than one read (memory budget, spool file, waiting), else None.
        close_after: close once ``out`` is written.
        reading: whether the connection is registered for reads.
        stream: the chunk iterator of a streaming response being sent, or the
            :class:`Producer` adding it to ``out`` itself.
        file: the file region of a response being sent with ``sendfile``.
        queued: pipelined requests (and a final protocol error) waiting for a
            stream to finish or for pending output to drain.
        peer: the client's socket address as ``accept()`` gave it.
        proxies: the worker's trusted proxies (``Settings.trusted_proxies``), or None.
    """

    __slots__ = (
        "big",
        "body",
        "close_after",
        "closed",
        "fd",
        "file",
        "head_since",
        "last_active",
        "out",
        "parser",
        "peer",
        "proxies",
        "queued",
        "reading",
        "sock",
        "stream",
        "stream_chunked",
        "stream_keep",
        "waiting_write",
    )

    def __init__(self, sock: socket.socket | None, parser: RequestParser, tick: int) -> None:
        self.sock = sock
        self.fd = sock.fileno() if sock is not None else -1
        self.parser = parser
        self.out: list[bytes | memoryview] = []
        self.peer: object = None
        self.proxies: TrustedProxies | None = None
        self.big = False
        self.last_active = tick
        self.head_since = -1
        self.body: BodyIntake | None = None
        self.close_after = False
        self.closed = False
        self.reading = True
        self.waiting_write = False
        self.stream: Iterator[bytes | str] | Producer | None = None
        self.file: FileBody | None = None
        self.stream_chunked = True
        self.stream_keep = True
        self.queued: list[Request | ProtocolError] = []


def pending_bytes(out: list[bytes | memoryview]) -> int:
    """Bytes waiting in ``out``."""
    return sum(map(len, out))


def consume(out: list[bytes | memoryview], written: int) -> None:
    """Drop ``written`` bytes from the front of ``out``."""
    while written and out:
        first = out[0]
        size = len(first)
        if written >= size:
            del out[0]
            written -= size
        else:
            out[0] = memoryview(first)[written:]
            return


def close_stream(stream: object) -> None:
    """Close a response stream, sync or async, or a producer (a generator's ``finally`` runs); a failure is logged."""
    close = getattr(stream, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("closing a response stream failed")
