"""The interface between the worker's loop and the protocols it drives.

The worker serves HTTP/1.1 inline (the measured hot path).  Every other fd in its
epoll, a TLS handshake, an HTTP/2 session, an upgraded WebSocket, a topic inbox, is
a :class:`Channel`: the loop calls ``on_event`` when the fd is ready, ``on_tick``
once a second, ``stop`` on a graceful stop and ``abort`` when the worker exits.  A
protocol uses its worker only through :class:`Loop`, these typed public names, never
through the worker's private members, so the worker can change behind them.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import ssl

    from .._wire.h1_request import ParserLimits
    from ..connection import Connection
    from ..errors import ProtocolError
    from ..forwarded import Origin, TrustedProxies
    from ..request import Request
    from ..response import Response
    from ..settings import Settings
    from ..topics import Subscriber
    from .tasks import Scheduler

__all__ = ["Answers", "Channel", "ChannelTable", "Loop", "Pending", "SocketIO", "WebSockets"]


class Channel(Protocol):
    """An fd in the worker's epoll that is not a plain HTTP/1.1 connection (a TLS handshake, a WebSocket, ...).

    The loop looks these up only when a ready fd is not an HTTP/1.1 connection,
    so they cost the plain-HTTP path nothing.
    """

    fd: int
    peer: object

    @property
    def sock(self) -> socket.socket:
        """The channel's socket."""
        ...

    def on_event(self, events: int) -> None:
        """The fd is ready: ``events`` is epoll's mask (IN, OUT, ERR, HUP)."""
        ...

    def on_tick(self, tick: int) -> None:
        """Once a second: deadlines and idle checks (``tick`` is the loop's clock in seconds)."""
        ...

    def stop(self) -> None:
        """Graceful stop: finish what is in flight, then close."""
        ...

    def abort(self) -> None:
        """The worker exits now: close at once."""
        ...


class ChannelTable(dict[int, "Channel"]):
    """The loop's channels by fd, and their entries in its epoll (:attr:`Loop.channels`).

    The worker looks a ready fd up here only when it is not an HTTP/1.1
    connection; a channel joins with :meth:`attach` and leaves with :meth:`detach`
    (its socket stays open) or :meth:`release` (its socket is closed).

    Args:
        close_socket: closes a client's socket (a TLS one sends close_notify first).
        teardown: a client connection of a channel closed (``teardown(peer, error)``):
            the connection teardown hook and the active-connection count.
    """

    def __init__(
        self,
        close_socket: Callable[[int, socket.socket], None],
        teardown: Callable[[object, BaseException | None], None],
    ) -> None:
        super().__init__()
        # The worker's epoll while its loop runs, else None.
        self.ep: select.epoll | None = None
        self.close_socket = close_socket
        self.teardown = teardown

    def watch(self, fd: int, mask: int) -> None:
        """Add ``fd`` to the loop's epoll with event ``mask``."""
        assert self.ep is not None
        self.ep.register(fd, mask)

    def rewatch(self, fd: int, mask: int) -> None:
        """Change the events the loop waits for on ``fd``."""
        assert self.ep is not None
        self.ep.modify(fd, mask)

    def unwatch(self, fd: int) -> None:
        """Take ``fd`` out of the loop's epoll (a closed or unknown fd is no error)."""
        try:
            if self.ep is not None:
                self.ep.unregister(fd)
        except (OSError, ValueError):
            pass

    def attach(self, channel: Channel, mask: int) -> None:
        """Serve ``channel`` from the loop: its fd joins the epoll with ``mask``."""
        self[channel.fd] = channel
        self.watch(channel.fd, mask)

    def detach(self, channel: Channel) -> None:
        """Stop serving ``channel``; its socket stays open (it belongs to whoever attached it)."""
        if self.get(channel.fd) is channel:
            del self[channel.fd]
            self.unwatch(channel.fd)

    def release(self, channel: Channel, error: BaseException | None = None) -> None:
        """Close a channel's client socket and forget it (``error``: why, for the teardown hook)."""
        self.pop(channel.fd, None)
        self.unwatch(channel.fd)
        self.close_socket(channel.fd, channel.sock)
        self.teardown(channel.peer, error)

    def on_tick(self, tick: int, contain: Callable[[int, Exception], None]) -> None:
        """Once a second: every channel's ``on_tick`` (one that fails goes to ``contain(fd, exc)``)."""
        for channel in list(self.values()):
            try:
                channel.on_tick(tick)
            except Exception as exc:
                contain(channel.fd, exc)

    def abort(self) -> None:
        """The worker exits: close every channel at once."""
        for channel in list(self.values()):
            channel.abort()


class Pending(Protocol):
    """An ``async def`` handler still waiting for a request of a channel (see :meth:`Answers.serve`)."""

    def cancel(self) -> None:
        """The stream went away: cancel the handler where it waits; its answer is never delivered."""
        ...

    def expire(self, tick: int) -> None:
        """Once a second: past ``Settings.handler_timeout``, interrupt the handler (HandlerTimeout)."""
        ...


class SocketIO(Protocol):
    """What the HTTP/1.1 path reads and writes with: the ``os`` module, or :class:`~chopin_core._engine.tls.TlsIO`."""

    def read(self, fd: int, size: int, /) -> bytes:
        """Read up to ``size`` bytes from ``fd``."""
        ...

    def write(self, fd: int, data: bytes | memoryview, /) -> int:
        """Write ``data`` to ``fd``; the number of bytes taken."""
        ...

    def writev(self, fd: int, buffers: list[bytes | memoryview], /) -> int:
        """Write ``buffers`` to ``fd`` in one call; the number of bytes taken."""
        ...


class Answers(Protocol):
    """How the worker answers off the HTTP/1.1 path (:class:`~chopin_core._engine.serving.Routing`)."""

    def serve(
        self, req: Request, later: Callable[[Response], None] | None = None, origin: Origin | None = None
    ) -> Response | Pending | None:
        """Route and answer one request that came over ``origin``; None when the pre-routing hook dropped it.

        An ``async def`` handler that waits gives a :class:`Pending`; its response goes
        to ``later`` once it has finished (without ``later`` it runs to its end first).
        """
        ...

    def handler_failed(self, req: Request, exc: Exception) -> Response:
        """The response for a handler's exception (a 5xx is logged with its traceback)."""
        ...

    def served(self, req: Request, resp: Response, started: int, origin: Origin | None = None) -> Response:
        """The end of :meth:`serve`: a stream's first chunk pulled (a 500 if it fails), metrics and the log."""
        ...

    def account(self, req: Request, resp: Response, started: int, origin: Origin | None = None) -> None:
        """Metrics and access log for a response finished off the HTTP/1.1 path (``origin``: its connection)."""
        ...


class WebSockets(Protocol):
    """The worker's WebSockets as other channels see them (``ws_channel.WebSocketService``)."""

    def upgrade(self, conn: Connection, resp: Response, out: list[bytes | memoryview]) -> None:
        """Switch ``conn`` to WebSocket (``resp.takeover`` is its upgrade); ``out`` is its output."""
        ...

    def cork(self) -> bool:
        """Hold WebSocket frames until :meth:`uncork`; False if already held (the outer holder uncorks)."""
        ...

    def uncork(self) -> None:
        """Write the WebSocket frames held since :meth:`cork`, one write per connection."""
        ...


class Loop(Protocol):
    """What a protocol may use of the worker that drives it (:class:`~chopin_core.worker.Worker` implements it).

    Attributes:
        settings: the server's settings.
        index: the worker's number, for log lines.
        tick: the loop's clock in whole seconds, advanced once a second.
        date_line: the ``Server`` and ``Date`` header lines, rebuilt every tick.
        stopping: the worker is stopping gracefully (answer with ``Connection: close``).
        io: the socket I/O of the worker's connections (the ``os`` module, or TLS).
        recv_size: bytes asked for per read.
        keepalive_ticks: ticks an idle connection is kept.
        topics: the WebSocket topics of this worker and their subscribers.
        waiting: ``async def`` handlers waiting now (capped by ``Settings.max_waiting_handlers``).
        access_log: ``emit(request, response, duration_ns, origin)`` per response, or None (log off).
        limits: the request parser's limits for a new HTTP/1.1 connection.
        woke: when the loop last woke (``monotonic_ns``): the HTTP/1.1 path's durations start there.
    """

    settings: Settings
    index: int
    tick: int
    date_line: bytes
    stopping: bool
    io: SocketIO
    recv_size: int
    keepalive_ticks: int
    topics: dict[str, set[Subscriber]]
    waiting: int
    access_log: Callable[[Request, Response, int, Origin | None], None] | None
    limits: ParserLimits
    woke: int

    @property
    def proxies(self) -> TrustedProxies | None:
        """The trusted proxies a new HTTP/1.1 connection gets (``ctx.client``), or None."""
        ...

    def respond(
        self, conn: Connection, req: Request, out: list[bytes | memoryview], resp: Response | None = None
    ) -> None:
        """Answer ``req`` on the inlined HTTP/1.1 path, appending the response to ``out`` (``resp``: only frame it)."""
        ...

    def pull_stream(self, conn: Connection) -> None:
        """Have ``conn``'s response stream produce more output (into ``conn.out``)."""
        ...

    @property
    def secure(self) -> bool:
        """Whether the worker serves TLS."""
        ...

    @property
    def running(self) -> bool:
        """Whether the loop runs (False: the worker serves in process, with no socket)."""
        ...

    def scheduler(self) -> Scheduler:
        """The scheduler of the worker's waiting coroutines, made on first use (only while the loop runs)."""
        ...

    def schedule(self, conn: Connection, tick: int) -> None:
        """Have the timing wheel look at an HTTP/1.1 connection at ``tick``."""
        ...

    def close(self, conn: Connection, error: BaseException | None = None) -> None:
        """Close an HTTP/1.1 connection now (``error``: why, for the teardown hook)."""
        ...

    def stop_reading(self, conn: Connection) -> None:
        """Leave an HTTP/1.1 connection unread until something reads it again."""
        ...

    def set_mask(self, conn: Connection) -> None:
        """Make the epoll wait for what an HTTP/1.1 connection wants now (its ``reading`` and ``waiting_write``)."""
        ...

    def refuse(self, conn: Connection, error: ProtocolError) -> None:
        """Answer ``error`` on an HTTP/1.1 connection after what is owed, then close it."""
        ...

    @property
    def channels(self) -> ChannelTable:
        """The loop's channels by fd, and their epoll entries."""
        ...

    def contain(self, fd: int, exc: Exception) -> None:
        """An unexpected exception while serving ``fd``: log it, close that connection or channel, carry on."""
        ...

    def teardown(self, peer: object, error: BaseException | None) -> None:
        """A channel's connection closed: run the teardown hook and count one active connection fewer."""
        ...

    def adopt(self, sock: ssl.SSLSocket, peer: object) -> None:
        """Serve ``sock``, whose TLS handshake just finished, as an HTTP/1.1 connection (its fd is watched already)."""
        ...

    def disown(self, conn: Connection) -> socket.socket:
        """Give up HTTP/1.1 on ``conn``: its socket, still watched for reading, goes to another protocol."""
        ...

    def count_sent(self, nbytes: int) -> None:
        """Count ``nbytes`` written (metrics; nothing when they are off)."""
        ...

    @property
    def routing(self) -> Answers:
        """How the worker answers a request off the HTTP/1.1 path: hook, route, handler failures, accounting."""
        ...

    @property
    def websockets(self) -> WebSockets:
        """The worker's WebSockets: the upgrade, and frames held while a batch is handled (``cork``)."""
        ...

    def flush(self, conn: Connection) -> None:
        """Write what is pending on an HTTP/1.1 connection (an upstream answer was added to it)."""
        ...
