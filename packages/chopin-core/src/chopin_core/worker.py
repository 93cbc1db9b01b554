"""One worker process: its own ``SO_REUSEPORT`` socket, ``epoll`` loop and connection table.

How it works: the loop waits in ``epoll``; a readable listening socket accepts
connections into the table (503 past ``slab_capacity``); a readable connection
is read once, the bytes go to its sans-IO :class:`~chopin_core._wire.h1_request.RequestParser`,
every complete request is routed and answered in order, and all the answers of
that read leave in one ``write`` (or ``writev`` when a body is large).  Output
that does not fit in the socket waits for ``EPOLLOUT``; past ``write_high_water``
the connection stops being read until it drains.  Once a second (one clock read
per loop turn) the ``Date`` line is rebuilt and the timing wheel closes idle and
slow connections.  Nothing here is shared with another worker.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Iterator
from functools import partial
from time import monotonic_ns
from typing import TYPE_CHECKING, Final, Literal

from ._body import BodyBudget
from ._engine.awaiting import Awaiting, await_handler
from ._engine.bodies import RequestBodies
from ._engine.channel import Channel, Pending, SocketIO
from ._engine.fanout import TopicService, TopicWiring
from ._engine.protocols import Protocols
from ._engine.stream_pump import JOIN_LIMIT, BlockingStream, StreamPump, end_pump, pull_pump, pumped
from ._engine.tasks import Scheduler
from ._engine.ws_channel import WebSocketOutbound
from ._proxy_loop import UpstreamExchange, UpstreamTable
from ._wire.h1_request import CONTINUE, Continue, ParserLimits, RequestParser
from ._wire.h1_writer import (
    BUSY,
    CHUNKED,
    CONTINUE_LINE,
    END,
    END_CLOSE,
    END_KEEPALIVE,
    LAST_CHUNK,
    NO_BODY,
    STATUS_LINES,
    error_answer,
    timeout_answer,
)
from ._wire.ws_deflate import PerMessageDeflate
from ._wire.ws_frames import (
    BinaryMessage,
    CloseReceived,
    ProtocolFailure,
    TextMessage,
    WebSocketConnection,
    handshake_response,
)
from .connection import Connection, close_stream, consume, open_listener, pending_bytes
from .context import Context
from .error_handlers import exception_response, failure_to_log
from .errors import ProtocolError, UnsupportedVersion
from .files import not_modified
from .forwarded import Origin, TrustedProxies
from .hooks import DROP, PROCEED, Hooks, Verdict
from .logs import worker_access_log
from .metrics import ACTIVE, FOLD_AT, SENT, WAITING, MetricsBlock
from .proxy import ProxyPlan, forward_blocking
from .request import Request
from .response import AsyncStream, Response, http_date, send_whole_if_range_fails, status_line
from .router import RouteTable
from .settings import Settings
from .timer import TimingWheel
from .topics import Subscriber
from .websocket import Upgrade, WebSocket

if TYPE_CHECKING:
    import ssl


__all__ = ["Worker"]

log = logging.getLogger("chopin_core.worker")

EPOLLIN: Final = select.EPOLLIN
EPOLLOUT: Final = select.EPOLLOUT
EPOLLRDHUP: Final = select.EPOLLRDHUP
EPOLLERR: Final = select.EPOLLERR
EPOLLHUP: Final = select.EPOLLHUP
_READ_MASK: Final = EPOLLIN | EPOLLRDHUP
_IOV_MAX: Final = 1024
_NS: Final = 1_000_000_000  # the loop's clock is monotonic_ns
# Bodies at least this large are written with writev instead of being joined.
_JOIN_LIMIT: Final = JOIN_LIMIT
# A stream is pulled until this much is pending, then only when the socket drains.

# sendfile is asked for at most this much at a time, so one big file cannot
# keep the loop from the other connections for long.
_SENDFILE_CHUNK: Final = 1 << 20
# Files up to this size are read and written with their head instead (see _respond_file).
_INLINE_FILE: Final = 64 * 1024
_TCP: Final = socket.IPPROTO_TCP
_CORK: Final = socket.TCP_CORK
# The framing constants of _wire/h1_writer under module-global names: a global is one
# LOAD_GLOBAL either way, and _respond below is the inlined twin of frame_response.
_CONTINUE_LINE: Final = CONTINUE_LINE
_END: Final = END
_END_CLOSE: Final = END_CLOSE
_END_KEEPALIVE: Final = END_KEEPALIVE
_CHUNKED: Final = CHUNKED
_LAST_CHUNK: Final = LAST_CHUNK
_BUSY: Final = BUSY
_NO_BODY: Final = NO_BODY
# Context(req, params, conn) on the hot path without the class call (see _respond).
_new_object: Final = object.__new__


class _Extensions:
    """A worker's state off the plain HTTP/1.1 hot path, in one attribute (see ``Worker.__init__``).

    Attributes:
        tls: the server context, or None for plain HTTP.
        tls_io: the TLS sockets' I/O once TLS is on.
        http2: whether HTTP/2 is served (``Settings.http2`` and ``h2`` importable).
        side: TLS handshakes and HTTP/2 sessions, by fd (see :class:`Channel`).
        upstreams: reverse-proxy exchanges in flight and idle upstream connections
            (:mod:`chopin_core._proxy_loop`), made on first use.
        supervisor: the pid of the supervisor that forked this worker, or 0.
        bodies: request bodies that take more than one read: memory budget, spooling,
            idle timeout (see :mod:`chopin_core._engine.bodies`).
        tasks: the scheduler of ``async def`` handlers that wait, made on first use.
        waiting: handlers waiting now (capped by ``Settings.max_waiting_handlers``).
        wake_fd: the write end of the loop's wake-up pipe (threads finishing work for a task).
        wiring: how this worker's topics reach its siblings and the backplane.
        corked: connections with WebSocket frames held until a batch is handled (see ``Worker.cork``).
        topics: the running topic service (:mod:`chopin_core._engine.fanout`), while the loop runs.
        proxies: ``Settings.trusted_proxies`` parsed, or None when there are none;
            each connection gets it (``Connection.proxies``) for ``ctx.client``.
        protocols: TLS handshakes, HTTP/2 sessions and TLS file copies
            (:mod:`chopin_core._engine.protocols`).
        turns: connections that used up ``Settings.max_pipeline_depth`` in one turn,
            waiting (with their requests queued, unread) for the loop's next pass.
    """

    __slots__ = (
        "bodies",
        "corked",
        "http2",
        "protocols",
        "proxies",
        "side",
        "supervisor",
        "tasks",
        "tls",
        "tls_io",
        "topics",
        "turns",
        "upstreams",
        "waiting",
        "wake_fd",
        "wiring",
    )

    def __init__(self, loop: Worker, settings: Settings, tls: ssl.SSLContext | None) -> None:
        from .tls import TlsIO, h2_available

        self.tls = tls
        self.tls_io = TlsIO() if tls is not None else None
        self.http2 = settings.http2 and h2_available()
        self.side: dict[int, Channel] = {}
        self.upstreams: UpstreamTable | None = None
        self.supervisor = 0
        budget = BodyBudget(
            settings.max_buffered_body_bytes, settings.body_spool_threshold, math.ceil(settings.body_timeout) + 1
        )
        self.bodies = RequestBodies(loop, budget)
        self.tasks: Scheduler | None = None
        self.waiting = 0
        self.wake_fd = -1
        self.wiring: TopicWiring | None = None
        self.corked: set[Connection] | None = None
        self.topics: TopicService | None = None
        self.turns: dict[Connection, None] = {}
        self.proxies = (
            TrustedProxies(settings.trusted_proxies, settings.forwarded_header) if settings.trusted_proxies else None
        )
        self.protocols = Protocols(
            loop, tls, self.tls_io, self.http2, self.proxies, math.ceil(settings.tls_handshake_timeout) + 1
        )


class Worker:
    """An epoll loop serving one route table on its own listening socket.

    Args:
        table: the compiled routes.
        settings: limits and timeouts.
        index: this worker's number (for logs and CPU pinning).
        listener: a listening socket; opened from ``settings`` when omitted.
        metrics: the shared :class:`~chopin_core.metrics.MetricsBlock` (its slot ``index`` is this worker's).
        hooks: the app's lifecycle hooks (:mod:`chopin_core.hooks`).
        tls: serve TLS with this context (:func:`chopin_core.tls.server_context`).
        topics: how this worker's topics reach its sibling workers and the backplane
            (made by the supervisor; None: this worker alone, no backplane).
    """

    def __init__(
        self,
        table: RouteTable,
        settings: Settings,
        index: int = 0,
        listener: socket.socket | None = None,
        metrics: MetricsBlock | None = None,
        hooks: Hooks | None = None,
        tls: ssl.SSLContext | None = None,
        topics: TopicWiring | None = None,
    ) -> None:
        self.table = table
        hooks = hooks or Hooks()
        self._setup_hook = hooks.setup
        self._pre_routing = hooks.pre_routing
        self._teardown_hook = hooks.teardown
        # This worker's counters in the shared metrics block (None: metrics off), and
        # the hot path's view of them: _tally[status](started_ns) counts a request,
        # _tally[SENT](n) a write (see WorkerMetrics).
        self._metrics = metrics.attach(index) if metrics is not None else None
        self._tally = self._metrics.tally if self._metrics is not None else None
        # When metrics or the access log are on, a request's duration runs from the
        # loop's wake-up clock read (once per wake-up, needed for the tick anyway).
        self._woke = monotonic_ns()
        self.settings = settings
        self.index = index
        self.listener = listener
        self.conns: dict[int, Connection] = {}
        self._limits = ParserLimits(
            settings.max_request_head_size,
            settings.max_header_count,
            settings.max_uri_length,
            settings.max_body_size,
        )
        self.tick = int(time.monotonic())
        self._wheel: TimingWheel[Connection] = TimingWheel(256, self.tick)
        # Ticks are whole seconds of a clock read at an unknown fraction, so a
        # deadline of n seconds is checked after n + 1 ticks: never early.
        self._header_ticks = math.ceil(settings.header_timeout) + 1
        self.recv_size = settings.recv_size
        self._ws_ticks = math.ceil(settings.websocket_idle_timeout) + 1
        # WebSocket topics of this worker, and the connection whose frames are being
        # dispatched (its sends are written once the read is handled).
        self.topics: dict[str, set[Subscriber]] = {}
        self._dispatching: Connection | None = None
        self._lookup = table.lookup
        self.keepalive_ticks = math.ceil(settings.keepalive_timeout) + 1
        self.date_line = b""
        self._refresh_date()
        self.stopping = False
        self._accept_paused = False
        self._stop_deadline = 0.0
        self._ep: select.epoll | None = None
        # emit(request, response, handler_ns) per response, or None: access log off
        # (with_logging(access_log=True) switches it on in each worker process).
        self.access_log: Callable[[Request, Response, int, Origin | None], None] | None = worker_access_log()
        # CPython 3.11 keeps up to 29 instance attributes in the shared-key layout
        # that makes every `self.x` on the hot path fast; past it all of them slow
        # down (measured: 3-6 % more CPU per plaintext request).  So TLS and HTTP/2 add two attributes:
        # the socket I/O of the HTTP/1.1 path (the os module itself, or its TLS
        # look-alike), and one object holding the rest.
        self.io: SocketIO = os
        self._ext = _Extensions(self, self.settings, tls)
        if self._ext.tls_io is not None:
            self.io = self._ext.tls_io
        self._ext.wiring = topics

    # -- lifecycle ---------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop accepting; finish in-flight requests within ``shutdown_grace``."""
        if not self.stopping:
            self.stopping = True
            self._stop_deadline = time.monotonic() + self.settings.shutdown_grace

    def run(self, supervisor: int = 0) -> None:
        """Serve until :meth:`request_stop` (or SIGTERM/SIGINT) and the connections drain.

        Args:
            supervisor: the pid of the process that forked this worker: once it is no
                longer the parent (it died), the worker stops as on SIGTERM.  0: no check.
        """
        self._ext.supervisor = supervisor
        settings = self.settings
        if self.listener is None:
            self.listener = open_listener(settings.host, settings.port, settings.backlog)
        lsock = self.listener
        lfd = lsock.fileno()
        ep = self._ep = select.epoll()
        ep.register(lfd, EPOLLIN)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        ep.register(wake_r, EPOLLIN)
        self._ext.wake_fd = wake_w
        # Topics: the sibling inbox (and a backplane's) join the epoll as channels.
        self._ext.topics = TopicService(self, self.topics, self._ext.wiring or TopicWiring())
        previous = self._install_signals(wake_w)
        conns = self.conns
        timeout = settings.epoll_timeout_ms / 1000.0
        next_tick = (self.tick + 1) * _NS
        on_readable = self._on_readable
        on_writable = self._on_writable
        clock = monotonic_ns
        timed = self._metrics is not None or self.access_log is not None
        metrics = self._metrics
        # Pure-Python metrics log durations; the loop folds them once the 2xx log is long.
        folding = metrics is not None and not metrics.accelerated
        pending = metrics.pending if metrics is not None else []
        ext = self._ext
        try:
            while True:
                upstreams = ext.upstreams
                tasks = ext.tasks
                if tasks is not None:
                    # Handlers that wait: wake for the nearest timer, or at once when one is ready.
                    wait = tasks.wait_time(timeout)
                    if upstreams is not None and upstreams.deadlines:
                        wait = min(wait, upstreams.wait_time(timeout))
                    ready = ep.poll(wait)
                elif upstreams is not None and upstreams.deadlines:
                    # Proxy deadlines are kept to the millisecond: wake for the nearest one.
                    ready = ep.poll(upstreams.wait_time(timeout))
                else:
                    ready = ep.poll(timeout)
                # One clock read per wake-up: the tick below, and (timed) where the
                # durations of the requests answered in this pass start.
                now = clock()
                if timed:
                    self._woke = now
                    if folding and len(pending) >= FOLD_AT and metrics is not None:
                        metrics.fold()
                for fd, ev in ready:
                    # The one place an unexpected exception of any connection (HTTP/1.1,
                    # WebSocket, TLS, HTTP/2, an upstream) is caught: it ends that
                    # connection, never the worker.  (A try costs nothing until it catches.)
                    try:
                        conn = conns.get(fd)
                        if conn is not None:
                            if ev & EPOLLIN:
                                on_readable(conn)
                            if ev & EPOLLOUT and not conn.closed:
                                on_writable(conn)
                            elif ev & (EPOLLERR | EPOLLHUP) and not ev & EPOLLIN and not conn.closed:
                                self.close(conn)
                        elif fd == lfd:
                            if not self.stopping:
                                self._accept(lsock)
                        elif fd == wake_r:
                            try:
                                os.read(wake_r, 512)
                            except OSError:
                                pass
                            if ext.turns:
                                self._take_turns()
                        elif tasks is not None and fd in tasks.fds:
                            tasks.on_event_later(fd, ev)  # after this wake-up's requests are answered
                        else:
                            side = self._ext.side.get(fd)
                            if side is not None:
                                side.on_event(ev)
                            elif self._ext.upstreams is not None:
                                self._ext.upstreams.on_event(fd, ev)
                    except Exception as exc:
                        self.contain(fd, exc)
                if tasks is not None:
                    try:
                        tasks.run_ready()
                    except Exception:
                        log.exception("worker %d: resuming waiting handlers failed", self.index)
                if upstreams is not None and upstreams.deadlines and upstreams.deadlines[0][0] <= now:
                    try:
                        upstreams.expire()
                    except Exception:
                        log.exception("worker %d: proxy deadline handling failed", self.index)
                if now >= next_tick:
                    second = now // _NS
                    try:
                        self._on_tick(second)
                    except Exception:
                        log.exception("worker %d: timer tick failed", self.index)
                    next_tick = (second + 1) * _NS
                if self.stopping and self._stop_step(lfd, now / _NS):
                    break
        finally:
            for conn in list(conns.values()):
                self.close(conn)
            for side in list(self._ext.side.values()):
                side.abort()
            if self._ext.upstreams is not None:
                self._ext.upstreams.close()
            if self._ext.tasks is not None:
                self._ext.tasks.close()
                self._ext.tasks = None
            if self._ext.topics is not None:
                self._ext.topics.close()
                self._ext.topics = None
            self._restore_signals(previous)
            ep.close()
            os.close(wake_r)
            os.close(wake_w)
            if self.listener is not None:
                self.listener.close()
            if self._metrics is not None:
                self._metrics.publish()  # what was answered since the last tick

    def contain(self, fd: int, exc: Exception) -> None:
        """An unexpected exception while serving ``fd``: log it, close that connection, carry on."""
        log.error("worker %d: unexpected error on fd %d; closing that connection", self.index, fd, exc_info=exc)
        try:
            conn = self.conns.get(fd)
            if conn is not None:
                self.close(conn, exc)
                return
            side = self._ext.side.get(fd)
            if side is not None:
                side.abort()
                return
            upstreams = self._ext.upstreams
            exchange = upstreams.by_fd.get(fd) if upstreams is not None else None
            if exchange is not None:
                self.close(exchange.conn, exc)  # closes the exchange too: it is the connection's stream
                exchange.close()
        except Exception:
            # Closing failed as well: at least forget the fd, so it cannot fail again on every turn.
            log.exception("worker %d: closing fd %d after an error failed", self.index, fd)
            self.conns.pop(fd, None)
            self._ext.side.pop(fd, None)
            self.unwatch(fd)

    def _install_signals(self, wake_w: int) -> dict[int, object] | None:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return None
        previous: dict[int, object] = {}

        def on_signal(signum: int, frame: object) -> None:
            self.request_stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
        previous[-1] = signal.set_wakeup_fd(wake_w)
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, object] | None) -> None:
        if previous is None:
            return
        signal.set_wakeup_fd(previous.pop(-1))  # type: ignore[arg-type]
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _stop_step(self, lfd: int, now: float) -> bool:
        """One step of a graceful stop; True once the loop may exit."""
        if self.listener is not None and self.listener.fileno() >= 0:
            assert self._ep is not None
            if not self._accept_paused:
                # Closing a listener resets the connections in its accept queue: the
                # kernel completed them and their clients may have sent a request,
                # so take them all first (bounded, should clients keep coming).
                self._accept(self.listener, self.settings.backlog + 64)
            if not self._accept_paused:
                self._ep.unregister(lfd)
            self.listener.close()
            for conn in list(self.conns.values()):
                if conn.ws is not None:
                    conn.ws.close(1001, "server shutting down")
                elif type(conn.stream) is StreamPump:
                    end_pump(self, conn, conn.stream)
            self._close_idle()
            for side in list(self._ext.side.values()):
                side.stop()  # HTTP/2: GOAWAY, then finish the open streams
        return (not self.conns and not self._ext.side) or now >= self._stop_deadline

    def _close_idle(self) -> None:
        """While stopping (at its start, then once a second): close the idle connections.

        Idle: nothing in flight and nothing read or written for a second or more.  A
        connection active in the last second is kept a little (a client that has just
        connected is about to send its request), and so is one whose next request is
        already in its socket (sent while a handler was busy): these are read and
        answered, with ``Connection: close``, like the requests in flight.
        """
        recent = self.tick - 1
        idle = [
            conn
            for conn in self.conns.values()
            if conn.last_active < recent
            and conn.ws is None
            and not conn.out
            and conn.stream is None
            and conn.file is None
            and not conn.parser.in_request
        ]
        unread = _readable([conn.fd for conn in idle])
        for conn in idle:
            if conn.fd not in unread:
                self.close(conn)

    # -- accepting -----------------------------------------------------------------

    def _accept(self, lsock: socket.socket, batch: int = 64) -> None:
        conns = self.conns
        capacity = self.settings.slab_capacity
        assert self._ep is not None
        register = self._ep.register
        for _ in range(batch):
            try:
                sock, _addr = lsock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors or memory: the listener would stay readable
                    # and spin the loop, so stop watching it until the next tick.
                    log.error("worker %d: accept failed: %s; pausing accepts for a second", self.index, exc)
                    self._ep.unregister(lsock.fileno())
                    self._accept_paused = True
                return
            if len(conns) >= capacity:
                try:
                    sock.send(_BUSY)
                except OSError:
                    pass
                sock.close()
                continue
            if self._setup_hook is not None:
                try:
                    verdict = self._setup_hook(sock, _addr)
                except Exception:
                    log.exception("worker %d: connection_setup_hook failed; dropping %s", self.index, _addr)
                    verdict = DROP
                if verdict is not PROCEED:
                    sock.close()
                    continue
            sock.setblocking(False)
            if self._metrics is not None:
                self._metrics.counts[ACTIVE] += 1
            if self._ext.tls is not None:
                self._ext.protocols.start_tls(sock, _addr)
                continue
            conn = Connection(sock, RequestParser(self._limits), self.tick)
            conn.peer = _addr
            conn.proxies = self._ext.proxies
            conns[conn.fd] = conn
            register(conn.fd, _READ_MASK)
            self._wheel.schedule(conn, self.tick + self.keepalive_ticks)

    # -- reading and answering ------------------------------------------------------

    def _on_readable(self, conn: Connection) -> None:
        try:
            data = self.io.read(conn.fd, self.recv_size)
        except BlockingIOError:
            return
        except OSError as exc:
            self.close(conn, exc)
            return
        if not data:
            # The peer closed its side: finish what is owed, then close.  A handler
            # still waiting is cancelled: its client is gone (uvicorn's disconnect).
            if type(conn.stream) is Awaiting or type(conn.stream) is StreamPump:
                self.close(conn)
            elif conn.out or conn.stream is not None:
                conn.close_after = True
                self.stop_reading(conn)
            else:
                self.close(conn)
            return
        conn.last_active = self.tick
        if conn.ws is not None:
            self._ws_receive(conn, data)
            return
        parser = conn.parser
        events = parser.feed(data)
        if events:
            out = conn.out
            if (
                len(events) == 1
                and not out
                and conn.stream is None
                and conn.file is None
                and not conn.queued
                and type(events[0]) is Request
            ):
                # Fast path (most reads without pipelining): one request and
                # nothing pending, so answer it and write it straight away.
                self._respond(conn, events[0], out)
                if conn.stream is None and not conn.big:
                    self._write_small(conn, out)
                else:
                    self.flush(conn)
            else:
                self._answer(conn, events, data)
        # Reading the parser's fields directly: this runs once per read (a property would be a call).
        if parser._buf or parser._state:  # noqa: SLF001  hot path, see above
            if conn.ws is not None or conn.closed:
                return
            if parser.paused:
                # An upgrade request was not upgraded: go on with HTTP.
                self._answer(conn, parser.resume())
                if conn.closed or not (parser._buf or parser._state):  # noqa: SLF001  hot path, see above
                    conn.head_since = -1
                    return
            if parser.body_pending is not None:
                self._ext.bodies.progress(conn)
                return
            if conn.body is not None:
                self._ext.bodies.done(conn)
            if conn.head_since < 0:
                # A request has begun: its head must be complete within header_timeout.
                conn.head_since = self.tick
                self._wheel.schedule(conn, self.tick + self._header_ticks)
        else:
            conn.head_since = -1
            if conn.body is not None:
                self._ext.bodies.done(conn)

    def _answer(self, conn: Connection, events: list[Request | Continue | ProtocolError], data: bytes = b"") -> None:
        out = conn.out
        queued = conn.queued
        respond = self._respond
        high_water = self.settings.write_high_water
        # Pipelined requests answered in this turn (no limit without a loop: answer()).
        depth = self.settings.max_pipeline_depth if self._ep is not None else 0
        answered = 0
        for event in events:
            if conn.close_after:
                break  # nothing after "Connection: close" or an error is answered
            if (
                conn.stream is not None
                or conn.file is not None
                or queued
                or (conn.big and pending_bytes(out) > high_water)
                or (depth and answered >= depth)
            ):
                # A stream is being sent, too much output is pending or this connection's
                # turn is over (max_pipeline_depth): later requests wait their turn, and
                # the connection is not read meanwhile.
                if event is not CONTINUE:
                    queued.append(event)  # type: ignore[arg-type]
                self.stop_reading(conn)
                continue
            if type(event) is Request:
                respond(conn, event, out)
                answered += 1
            elif event is CONTINUE:
                out.append(_CONTINUE_LINE)
            elif isinstance(event, Request):  # a SpooledRequest: its body is in a temporary file
                respond(conn, event, out)
                answered += 1
            else:
                assert isinstance(event, ProtocolError)
                if (
                    type(event) is UnsupportedVersion
                    and self._ext.http2
                    and self._ext.protocols.h2_prior_knowledge(conn, data)
                ):
                    return
                self._error_response(event, out)
                conn.close_after = True
                self.stop_reading(conn)
        if depth and answered >= depth and queued and not conn.close_after:
            self._end_turn(conn)  # the rest wait until the other connections ready now are served
        self.flush(conn)

    def _respond(
        self, conn: Connection, req: Request, out: list[bytes | memoryview], resp: Response | None = None
    ) -> None:
        """Route ``req``, run its handler and append the serialised response to ``out``.

        ``resp``: the answer of a handler that waited (see :meth:`respond_with`): only framed.
        """
        tally = self._tally
        access = self.access_log
        started = self._woke  # when the loop woke for these bytes (kept only when metrics or the log are on)
        if resp is None:
            if self._pre_routing is not None:
                early = self._run_pre_routing(req)
                if early is Verdict.DROP:
                    conn.close_after = True  # what was answered before still goes out
                    return
                resp = early
            if resp is None:
                handler, params = self._lookup(req.method, req.path)
                try:
                    # Context(req, params, conn), built without the class call: object.__new__
                    # and the three slot stores of Context.__init__ cost ~400 instructions less
                    # per request than type.__call__ + __init__ (benchmarks/metrics_cost.py).
                    # tests/test_context.py pins this twin to Context.__init__.
                    ctx = _new_object(Context)
                    ctx.req = req
                    ctx.params = params
                    ctx._origin = conn  # noqa: SLF001  the twin of Context.__init__, see above
                    resp = handler(ctx)
                    if type(resp) is not Response:
                        # An async def handler: it waits off this path (None) or answered at once.
                        answered = await_handler(self, conn, req, handler, resp, started)
                        if type(answered) is not Response:
                            return
                        resp = answered
                except Exception as exc:
                    resp = self.handler_failed(req, exc)
        if resp.proxy is not None:
            if self._ep is not None:
                self._start_proxy(conn, req, resp, started)
                return
            plan = resp.proxy
            assert isinstance(plan, ProxyPlan)
            resp = forward_blocking(plan, req, conn.peer)  # no loop: the in-process TestClient
        stream = resp.stream_body
        if stream is not None:
            # The first chunk is pulled before the head is written, so a stream that fails at once is a 500.
            resp, first = self._first_chunk(req, resp, stream, conn)
            stream = resp.stream_body
        status = resp.status
        # Truth tests, not "is not None": the fewest bytecodes on the path every request takes.
        if tally:
            tally[status](started)  # reads the clock itself: see WorkerMetrics
        if access:
            access(req, resp, monotonic_ns() - started, conn)
        line = STATUS_LINES.get(status) or status_line(status)
        keep = req.keep_alive and not resp.close and not self.stopping
        if keep:
            end = _END if req.http11 else _END_KEEPALIVE
        else:
            end = _END_CLOSE
            conn.close_after = True
        if resp.file_body is not None:
            self._respond_file(conn, req, resp, line, end, out)
            return
        if resp.upgrade is not None:
            self._upgrade(conn, resp, out)
            return
        if status in _NO_BODY:
            out += (line, self.date_line, resp.extra_lines, end)
            if stream is not None:
                close_stream(stream)
        elif stream is not None:
            if req.http11:
                out += (line, self.date_line, resp.content_lines, _CHUNKED, resp.extra_lines, end)
                if first:
                    out += (b"%x\r\n" % len(first), first, _END)
            else:
                # HTTP/1.0 has no chunked coding: the body ends when the connection does.
                out += (line, self.date_line, resp.content_lines, resp.extra_lines, _END_CLOSE)
                if first:
                    out.append(first)
                keep = False
                conn.close_after = True
            if len(first) >= _JOIN_LIMIT:
                conn.big = True
            if req.method == "HEAD":
                close_stream(stream)
            else:
                conn.stream = stream
                conn.stream_chunked = req.http11
                conn.stream_keep = keep
        elif req.method == "HEAD":
            out += (line, self.date_line, resp.content_lines, resp.extra_lines, end)
        else:
            body = resp.body
            out += (line, self.date_line, resp.content_lines, resp.extra_lines, end, body)
            if len(body) >= _JOIN_LIMIT:
                conn.big = True

    def _wake(self) -> None:
        """Wake the loop from another thread (a thread-pool job of a waiting handler finished)."""
        try:
            os.write(self._ext.wake_fd, b"\0")
        except OSError:
            pass  # the pipe is full: the loop is awake anyway

    def handler_failed(self, req: Request, exc: Exception) -> Response:
        """The response for a handler's exception; every 5xx one is logged with its traceback.

        An :class:`~chopin_core.ExtractError` answers with its own response or status
        (a 4xx is the client's fault and is not logged); anything else is a 500.  Only
        routes served bare (no middleware, no error handlers) and failing streams come
        here: the others are answered inside their middleware chain.
        """
        resp = exception_response(req, exc)  # the same answer a guarded route gives (error_handlers.py)
        if resp.status < 500:
            return resp
        log.error("worker %d: handler for %s %s failed", self.index, req.method, req.path, exc_info=failure_to_log(exc))
        return resp

    def _first_chunk(
        self, req: Request, resp: Response, stream: Iterator[bytes | str], conn: Connection | None = None
    ) -> tuple[Response, bytes]:
        """Pull a stream's first non-empty chunk (``b""`` if it has none); a 500 instead if the stream fails.

        Nothing of the response is written yet, so a failure here is answered like a
        handler's.  HEAD and bodiless statuses pull nothing (their stream is closed).
        An async stream is started by :meth:`_first_async` (``conn``: the connection it is for).
        """
        if req.method == "HEAD" or resp.status in _NO_BODY:
            return resp, b""
        if type(stream) is AsyncStream:
            return self._first_async(req, resp, stream, conn)
        try:
            for chunk in stream:
                if chunk:
                    return resp, chunk.encode() if isinstance(chunk, str) else chunk
            return resp, b""
        except Exception as exc:
            close_stream(stream)
            return self.handler_failed(req, exc), b""

    def _first_async(
        self, req: Request, resp: Response, body: AsyncStream, conn: Connection | None
    ) -> tuple[Response, bytes]:
        """Start an async stream: what it produces before it first waits goes out with the head.

        On this loop it becomes a :class:`StreamPump` (``resp.stream_body``), pulled by
        :func:`~chopin_core._engine.stream_pump.pull_pump`, or for HTTP/2 (no ``conn``) by ``H2Session._pull_pump``;
        in process (:meth:`answer`, no loop) each step runs to its end, blocking.
        """
        if self._ep is None:
            blocking = BlockingStream(body, self.settings.worker_threads)
            resp.stream_body = blocking
            return self._first_chunk(req, resp, blocking)
        pump = StreamPump(body, self.scheduler())
        pump.start()
        if pump.error is not None:
            pump.close()
            return self.handler_failed(req, pump.error), b""
        resp.stream_body = pump
        if conn is None:
            return resp, b""  # HTTP/2: the session sets the pump's wake and takes its chunks
        pump.wake = partial(pumped, self, conn, pump)
        return resp, pump.take() or b""

    def scheduler(self) -> Scheduler:
        """The scheduler of this worker's waiting coroutines, made on first use."""
        ext = self._ext
        tasks = ext.tasks
        if tasks is None:
            assert self._ep is not None
            tasks = ext.tasks = Scheduler(self._ep, self._wake, self.settings.worker_threads, f"chopin-w{self.index}")
        return tasks

    def _start_proxy(self, conn: Connection, req: Request, resp: Response, started: int) -> None:
        """Hand ``req`` to an upstream exchange driven by this loop (:mod:`chopin_core._proxy_loop`)."""
        keep = req.keep_alive and not resp.close and not self.stopping
        if not keep:
            conn.close_after = True
        table = self._ext.upstreams
        if table is None:
            table = self._ext.upstreams = UpstreamTable(self)
        table.start(conn, req, resp, keep, started)

    def account(self, req: Request, resp: Response, started: int, origin: Origin | None = None) -> None:
        """Metrics and access log for a response finished outside :meth:`_respond` (proxied, HTTP/2)."""
        if self._tally is not None:
            self._tally[resp.status](started)
        if self.access_log is not None:
            self.access_log(req, resp, monotonic_ns() - started, origin)

    def _run_pre_routing(self, req: Request) -> Response | Literal[Verdict.DROP] | None:
        """The pre-routing hook's answer: a response, DROP, or None to route as usual."""
        assert self._pre_routing is not None
        try:
            verdict = self._pre_routing(req)
        except Exception:
            log.exception("worker %d: pre_routing_hook failed for %s %s", self.index, req.method, req.path)
            return Response.server_error()
        if verdict is PROCEED:
            return None
        if verdict is Verdict.DROP:
            return Verdict.DROP
        if isinstance(verdict, Response):
            return verdict
        log.error("worker %d: pre_routing_hook returned %r, expected PROCEED, DROP or a Response", self.index, verdict)
        return Response.server_error()

    def _respond_file(
        self, conn: Connection, req: Request, resp: Response, line: bytes, end: bytes, out: list[bytes | memoryview]
    ) -> None:
        """Answer with a file: 304 when the validators match, else the head now and the bytes by sendfile."""
        body = resp.file_body
        assert body is not None
        if resp.status == 206 and send_whole_if_range_fails(req, resp):
            line = status_line(200)
        if resp.status == 200 and req.method in ("GET", "HEAD") and not_modified(req, body):
            body.close()
            out += (status_line(304), self.date_line, resp.extra_lines, end)
            return
        out += (line, self.date_line, resp.content_lines, resp.extra_lines, end)
        if req.method == "HEAD" or body.length == 0:
            body.close()
        elif body.content is not None:
            # A cached file (chopin_core.filecache): its bytes go out like an in-memory body
            # (the whole of it without the read_all() call, as read_all() would return it).
            data = body.content if body.length == body.size else body.read_all()
            out.append(data)
            if len(data) >= _JOIN_LIMIT:
                conn.big = True  # written with writev, not copied into one buffer
        elif body.length <= _INLINE_FILE:
            # A small file costs less as one pread and one write with its head
            # than as a writev followed by a sendfile.
            data = body.read_all()
            body.close()
            out.append(data)
            if len(data) != body.length:
                log.error("worker %d: file ended %d bytes early", self.index, body.length - len(data))
                conn.close_after = True  # the promised Content-Length cannot be met
        else:
            conn.file = body
            conn.big = True
            if conn.sock is not None and self._ext.tls is None:
                # Corked until the file is out (_send_file): the head leaves with the first
                # bytes of the body, and every sendfile ends on full segments, not a short one.
                conn.sock.setsockopt(_TCP, _CORK, 1)

    # -- WebSocket ---------------------------------------------------------------------

    def _upgrade(self, conn: Connection, resp: Response, out: list[bytes | memoryview]) -> None:
        """Switch ``conn`` to WebSocket: the 101 head, the handler's on_open, then any early frames."""
        up = resp.upgrade
        assert isinstance(up, Upgrade)
        if up.deflate is None:
            out.append(handshake_response(up.key, up.subprotocol))
            proto = WebSocketConnection(up.max_message_size)
        else:
            # RFC 7692 5: the accepted offer's parameters go back in the 101 head.
            extensions = (("Sec-WebSocket-Extensions", up.deflate.response_value()),)
            out.append(handshake_response(up.key, up.subprotocol, extensions))
            proto = WebSocketConnection(up.max_message_size, deflate=PerMessageDeflate(up.deflate))
        try:
            handler = up.factory()
        except Exception:
            log.exception("worker %d: WebSocket handler factory failed", self.index)
            out.append(proto.send_close(1011, "internal error"))
            conn.close_after = True
            return
        ws = conn.ws = WebSocket(WebSocketOutbound(self, conn), proto, handler, up.ctx, up.subprotocol)
        conn.head_since = -1
        if conn.body is not None:
            self._ext.bodies.done(conn)
        conn.queued.clear()
        previous, self._dispatching = self._dispatching, conn
        try:
            handler.on_open(ws)
        except Exception:
            log.exception("worker %d: WebSocket on_open failed", self.index)
            ws.close(1011, "internal error")
        finally:
            self._dispatching = previous
        early = conn.parser.take_remaining()
        if early:
            self._ws_receive(conn, early, flush=False)

    def _ws_receive(self, conn: Connection, data: bytes, flush: bool = True) -> None:
        """Feed frames to the codec, answer what the protocol requires, hand messages to the handler."""
        ws = conn.ws
        assert ws is not None
        proto = ws.proto
        out = conn.out
        previous, self._dispatching = self._dispatching, conn
        corked = self.cork()  # what its messages send to other connections leaves once, at the end
        try:
            for event in proto.receive_data(data):
                reply = proto.reply_to(event)
                if reply is not None:
                    out.append(reply)
                kind = type(event)
                if kind is TextMessage or kind is BinaryMessage:
                    try:
                        ws.handler.on_message(ws, event.data)  # type: ignore[union-attr]
                    except Exception:
                        log.exception("worker %d: WebSocket on_message failed", self.index)
                        ws.close(1011, "internal error")
                        break
                elif kind is CloseReceived or kind is ProtocolFailure:
                    # The handshake is complete (or failed): close once our frames are out.
                    conn.close_after = True
                    self.stop_reading(conn)
                    ws.notify_close(event.code, event.reason)  # type: ignore[union-attr]
                    break
        finally:
            self._dispatching = previous
            if corked:
                self.uncork(None if flush else conn)
        if flush:
            self.flush(conn)

    def cork(self) -> bool:
        """Hold WebSocket frames until :meth:`uncork`; False if already held (the outer holder uncorks).

        A batch of messages (one read of a WebSocket, one read of the topic inbox)
        then leaves in one write per connection instead of one per frame.
        """
        if self._ext.corked is not None:
            return False
        self._ext.corked = set()
        return True

    def uncork(self, skip: Connection | None = None) -> None:
        """Write what was held since :meth:`cork` (``skip``: a connection its caller flushes itself)."""
        corked, self._ext.corked = self._ext.corked, None
        if corked:
            for conn in corked:
                if conn is not skip and not conn.closed:
                    self.flush(conn)

    def send_frame(self, conn: Connection, frame: bytes) -> bool:
        """Queue a frame; written now unless the connection's own read is being handled."""
        if conn.closed:
            return False
        out = conn.out
        out.append(frame)
        if conn.waiting_write:
            # The socket is full: EPOLLOUT writes what is queued (flushing here would copy it
            # all again for every frame).  A consumer that does not read would make the worker
            # hold everything sent to it, so the pending total is checked every 64 frames and
            # on large ones (summing a long list on every frame would cost as much).
            if (len(out) & 63 == 0 or len(frame) > 16384) and pending_bytes(out) > 8 * self.settings.write_high_water:
                self._drop_slow(conn)
                return False
            return True
        corked = self._ext.corked
        if corked is not None:
            corked.add(conn)  # written once the batch is handled (see cork)
        elif self._dispatching is not conn:
            self.flush(conn)
        return True

    def _drop_slow(self, conn: Connection) -> None:
        """Close a WebSocket whose unsent output passed ``8 * write_high_water``: 1008, nothing more queued.

        The close frame goes after what is queued (a slow reader still gets it); one
        that reads nothing is cut after ``header_timeout`` like any unanswered close.
        """
        ws = conn.ws
        log.warning(
            "worker %d: WebSocket client too slow (%d bytes unsent), closing it with 1008",
            self.index,
            pending_bytes(conn.out),
        )
        if ws is None or ws.proto.close_sent:
            self.close(conn)
            return
        conn.out.append(ws.proto.send_close(1008, "too slow: messages not read"))  # RFC 6455 7.4.1
        conn.close_after = True
        self.stop_reading(conn)
        self.start_closing(conn)
        ws.notify_close(1008, "too slow")
        if self._dispatching is not conn:
            self.flush(conn)

    def start_closing(self, conn: Connection) -> None:
        """We sent a close: the peer must answer within header_timeout."""
        conn.head_since = self.tick
        self._wheel.schedule(conn, self.tick + self._header_ticks)

    def _send_file(self, conn: Connection) -> bool | None:
        """Send the current file region; True when done, False when the socket is full, None if closed."""
        body = conn.file
        assert body is not None
        if self._ext.tls is not None:
            return self._ext.protocols.copy_file(conn, body)
        while body.length > 0:
            try:
                sent = os.sendfile(conn.fd, body.fd, body.offset, min(body.length, _SENDFILE_CHUNK))
            except BlockingIOError:
                return False
            except OSError as exc:
                self.close(conn, exc)
                return None
            if sent == 0:
                # The file shrank under us: the promised length cannot be sent.
                log.error("worker %d: file ended %d bytes early", self.index, body.length)
                self.close(conn)
                return None
            body.offset += sent
            body.length -= sent
            if self._tally is not None:
                self._tally[SENT](sent)
            conn.last_active = self.tick
        body.close()
        conn.file = None
        if conn.sock is not None:
            conn.sock.setsockopt(_TCP, _CORK, 0)  # out with what is held (see _respond_file)
        return True

    def _error_response(self, exc: ProtocolError, out: list[bytes | memoryview]) -> None:
        out.append(error_answer(exc.status, exc.message.encode("utf-8", "replace"), self.date_line))

    # -- writing -------------------------------------------------------------------

    def flush(self, conn: Connection) -> None:
        """Write what is pending, pulling stream chunks while the socket takes them."""
        out = conn.out
        while True:
            if conn.stream is not None:
                self._pull_stream(conn)
            elif conn.queued and conn.file is None:
                self._resume_queued(conn)
            if not out:
                if conn.file is None:
                    break
                done = self._send_file(conn)
                if done:
                    continue  # the file is out: answer what waited behind it
                if done is False:
                    self._wait_writable(conn)
                return
            try:
                if len(out) == 1:
                    data = out[0]
                    written = self.io.write(conn.fd, data)
                    total = len(data)
                elif conn.big:
                    written = self.io.writev(conn.fd, out[:_IOV_MAX])
                    total = sum(len(b) for b in out[:_IOV_MAX]) if len(out) > _IOV_MAX else sum(map(len, out))
                else:
                    data = b"".join(out)
                    out[:] = (data,)
                    written = self.io.write(conn.fd, data)
                    total = len(data)
            except BlockingIOError:
                written, total = 0, 1
            except OSError as exc:
                self.close(conn, exc)
                return
            if written:
                conn.last_active = self.tick
                if self._tally is not None:
                    self._tally[SENT](written)
            if written == total and len(out) <= _IOV_MAX:
                out.clear()
                conn.big = False
                if conn.stream is None and conn.file is None and not conn.queued:
                    break
                continue
            consume(out, written)
            if written and out:
                continue  # the socket took something; try again until it would block
            self._wait_writable(conn)
            return
        # Everything is written.
        if conn.waiting_write:
            conn.waiting_write = False
            self.set_mask(conn)
        if conn.close_after and conn.stream is None:
            self.close(conn)
        elif not conn.reading and not conn.close_after and not conn.queued and not _body_waits(conn):
            conn.reading = True
            self.set_mask(conn)

    def _write_small(self, conn: Connection, out: list[bytes | memoryview]) -> None:
        """Write one small response that nothing else is waiting behind."""
        data = b"".join(out)
        try:
            written = self.io.write(conn.fd, data)
        except BlockingIOError:
            written = 0
        except OSError:
            self.close(conn)
            return
        if written and self._tally:
            self._tally[SENT](written)
        if written == len(data):
            out.clear()
            if conn.close_after:
                self.close(conn)
            return
        out[:] = (memoryview(data)[written:],)
        self._wait_writable(conn)

    def _on_writable(self, conn: Connection) -> None:
        self.flush(conn)

    def _pull_stream(self, conn: Connection) -> None:
        stream = conn.stream
        assert stream is not None
        out = conn.out
        if type(stream) is Awaiting:
            return  # its handler still waits: the answer and what queued behind it come later
        if type(stream) is StreamPump:
            pull_pump(self, conn, stream)
            return
        if type(stream) is UpstreamExchange:
            # The upstream socket feeds the output itself; let it read again once this drains.
            stream.drained(sum(map(len, out)))
            return
        if out:
            return  # written first: the head and earlier chunks go out before the producer runs again
        # One chunk per pull: flush() writes it before the producer is asked for the next, so a
        # chunk is on the wire as soon as it is produced, however long the next one takes, and a
        # socket that stops taking bytes stops the pulling (back-pressure).
        chunked = conn.stream_chunked
        while True:
            try:
                chunk = next(stream)
            except StopIteration:
                conn.stream = None
                if chunked:
                    out.append(_LAST_CHUNK)
                if not conn.stream_keep:
                    conn.close_after = True
                return
            except Exception:
                # Part of the body may be out already: the client must see an incomplete
                # message, so no terminal chunk, and the connection is closed once what is
                # pending (earlier pipelined answers included) has been written.
                log.exception("worker %d: response stream failed after its head", self.index)
                close_stream(stream)
                conn.stream = None
                conn.queued.clear()
                conn.close_after = True
                return
            if isinstance(chunk, str):
                chunk = chunk.encode()
            if not chunk:
                continue
            if len(chunk) >= _JOIN_LIMIT:
                out += (b"%x\r\n" % len(chunk), chunk, _END) if chunked else (chunk,)
                conn.big = True  # written with writev, not copied
            else:
                out.append(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            return

    def _resume_queued(self, conn: Connection) -> None:
        """Answer waiting requests until one starts a stream, the output is over high water or the turn ends."""
        turns = self._ext.turns
        if conn in turns:
            return  # waiting for the loop's next pass (max_pipeline_depth)
        queued = conn.queued
        out = conn.out
        high_water = self.settings.write_high_water
        depth = self.settings.max_pipeline_depth if self._ep is not None else 0
        answered = 0
        while queued and conn.stream is None and not conn.close_after:
            if conn.big and pending_bytes(out) > high_water:
                return
            if depth and answered >= depth:
                self._end_turn(conn)
                return
            answered += 1
            event = queued.pop(0)
            if isinstance(event, Request):
                self._respond(conn, event, out)
            else:
                assert isinstance(event, ProtocolError)
                self._error_response(event, out)
                conn.close_after = True
        if conn.close_after:
            queued.clear()

    def _end_turn(self, conn: Connection) -> None:
        """``conn`` had ``max_pipeline_depth`` requests answered: the rest wait for the loop's next pass.

        The wake-up pipe makes that pass come at once, after the connections that are
        ready now; meanwhile ``conn`` is not read (its queued requests are answered first).
        """
        turns = self._ext.turns
        if not turns:
            self._wake()
        turns[conn] = None
        self.stop_reading(conn)

    def _take_turns(self) -> None:
        """The loop's next pass: answer the next turn of each connection that waited (see :meth:`_end_turn`)."""
        ext = self._ext
        waiting, ext.turns = ext.turns, {}
        for conn in waiting:
            if conn.closed:
                continue
            try:
                self.flush(conn)  # answers up to max_pipeline_depth more, then writes
            except Exception as exc:
                self.contain(conn.fd, exc)

    def _wait_writable(self, conn: Connection) -> None:
        changed = not conn.waiting_write
        conn.waiting_write = True
        if conn.reading and (conn.stream is not None or pending_bytes(conn.out) > self.settings.write_high_water):
            conn.reading = False  # back-pressure: stop reading until the output drains
            changed = True
        if changed:
            # Only then: a file sent over many EPOLLOUT turns would make one epoll_ctl per
            # turn asking for the mask it already has (the epoll mask follows these two flags).
            self.set_mask(conn)

    def stop_reading(self, conn: Connection) -> None:
        """Leave ``conn`` unread until something reads it again."""
        if conn.reading:
            conn.reading = False
            self.set_mask(conn)

    def set_mask(self, conn: Connection) -> None:
        """Make the epoll wait for what ``conn`` wants now (its ``reading`` and ``waiting_write``)."""
        if conn.closed:
            return
        mask = (_READ_MASK if conn.reading else 0) | (EPOLLOUT if conn.waiting_write else 0)
        assert self._ep is not None
        self._ep.modify(conn.fd, mask)

    def close(self, conn: Connection, error: BaseException | None = None) -> None:
        """Close an HTTP/1.1 connection now (``error``: why, for the teardown hook)."""
        if conn.closed:
            return
        conn.closed = True
        if self._teardown_hook is not None:
            try:
                self._teardown_hook(conn.peer, error)
            except Exception:
                log.exception("worker %d: connection_teardown_hook failed", self.index)
        if self._metrics is not None and self._metrics.counts[ACTIVE]:
            self._metrics.counts[ACTIVE] -= 1
        self.conns.pop(conn.fd, None)
        if conn.body is not None:
            self._ext.bodies.done(conn)
        if conn.stream is not None:
            close_stream(conn.stream)
            conn.stream = None
        if conn.file is not None:
            conn.file.close()
            conn.file = None
        if conn.ws is not None:
            conn.ws.notify_close(1006, "connection lost")
        try:
            if self._ep is not None:
                self._ep.unregister(conn.fd)
        except (OSError, ValueError):
            pass
        if conn.sock is not None:
            tls_io = self._ext.tls_io
            if tls_io is not None:
                tls_io.socks.pop(conn.fd, None)
                _close_notify(conn.sock)
            conn.sock.close()
        conn.out.clear()

    # -- in process, no socket ---------------------------------------------------------

    def answer(self, data: bytes, peer: tuple[str, int] = ("testclient", 50000)) -> bytes:
        """Serve ``data`` in this process, with no socket, and return the bytes a client would read.

        ``data`` is one or more HTTP/1.1 requests (pipelined, or malformed): each is
        parsed by this worker's parser limits and answered by the same inlined code
        the loop runs (:meth:`_respond`), streams are pulled to their end and files
        read whole (what sendfile would have sent).  Answering stops after a
        ``Connection: close`` or a protocol error, as on a socket; a ``100 Continue``
        is not written.  The loop is not involved, so a proxied request is forwarded
        with a blocking client.  :class:`~chopin_core.testclient.TestClient` drives this.

        Args:
            data: the bytes a client sends.
            peer: the client address the requests come from (``ctx.client``).

        Returns:
            Every response's bytes, in order.
        """
        conn = Connection(None, RequestParser(self._limits), 0)
        conn.peer = peer
        conn.proxies = self._ext.proxies
        out = conn.out
        answered: list[bytes | memoryview] = []
        for event in conn.parser.feed(data):
            if isinstance(event, Request):
                if conn.close_after:
                    break
                self._woke = monotonic_ns()  # the loop's wake-up clock, which durations start from
                self._respond(conn, event, out)
                while conn.stream is not None:
                    answered += out  # "written": a stream is pulled once what is pending is out
                    out.clear()
                    self._pull_stream(conn)
                if conn.file is not None:
                    out.append(conn.file.read_all())
                    conn.file.close()
                    conn.file = None
            elif event is not CONTINUE:
                assert isinstance(event, ProtocolError)
                self._error_response(event, out)
                break
        return b"".join(answered + out)

    # -- requests of other protocols (HTTP/2): Loop.serve ------------------------------------

    def serve(
        self, req: Request, later: Callable[[Response], None] | None = None, origin: Origin | None = None
    ) -> Response | Pending | None:
        """Route one request the way :meth:`_respond` does, for protocols other than HTTP/1.1.

        Runs the pre-routing hook, the handler and its middleware, and records
        metrics and the access log; returns the response, or None when the
        pre-routing hook said DROP.  (:meth:`_respond` inlines these steps: it
        is the plain-HTTP hot path.)  An ``async def`` handler that waits returns
        a :class:`Pending` (cancel it if the stream goes away; its ``expire`` once a
        second enforces ``handler_timeout``) and its response goes to ``later``;
        without ``later`` it runs to its end here.  ``origin`` (the HTTP/2 session)
        is what ``ctx.client`` and ``ctx.peer_cert`` read.
        """
        access = self.access_log
        started = monotonic_ns() if self._tally is not None or access is not None else 0
        resp: Response | None = None
        if self._pre_routing is not None:
            early = self._run_pre_routing(req)
            if early is Verdict.DROP:
                return None
            resp = early
        if resp is None:
            handler, params = self._lookup(req.method, req.path)
            try:
                resp = handler(Context(req, params, origin))
                if type(resp) is not Response:
                    waited = await_handler(self, None, req, handler, resp, started, later, origin)
                    if type(waited) is Awaiting:
                        return waited
                    assert isinstance(waited, Response)
                    resp = waited
            except Exception as exc:
                resp = self.handler_failed(req, exc)
        return self.served(req, resp, started, origin)

    def served(self, req: Request, resp: Response, started: int, origin: Origin | None = None) -> Response:
        """The end of :meth:`serve`: a stream's first chunk pulled (a 500 if it fails), metrics and the log."""
        stream = resp.stream_body
        if stream is not None:
            # As on HTTP/1.1: a stream that fails before its first chunk is a 500, not a reset.
            resp, first = self._first_chunk(req, resp, stream)
            if first:
                resp.stream_body = _Primed(first, stream)
        if self._tally is not None or self.access_log is not None:
            self.account(req, resp, started, origin)
        return resp

    # -- the Loop interface (chopin_core._engine.channel.Loop) that channels use ----------------

    @property
    def secure(self) -> bool:
        """Whether this worker serves TLS."""
        return self._ext.tls is not None

    def watch(self, fd: int, mask: int) -> None:
        """Add ``fd`` to this loop's epoll with event ``mask``."""
        assert self._ep is not None
        self._ep.register(fd, mask)

    def rewatch(self, fd: int, mask: int) -> None:
        """Change the events this loop waits for on ``fd``."""
        assert self._ep is not None
        self._ep.modify(fd, mask)

    def attach(self, channel: Channel, mask: int) -> None:
        """Serve ``channel`` from this loop: its fd joins the epoll with ``mask`` (not a client connection)."""
        self._ext.side[channel.fd] = channel
        self.watch(channel.fd, mask)

    def detach(self, channel: Channel) -> None:
        """Stop serving ``channel`` (its socket stays open: it belongs to whoever attached it)."""
        if self._ext.side.get(channel.fd) is channel:
            del self._ext.side[channel.fd]
            self.unwatch(channel.fd)

    def release(self, side: Channel, error: BaseException | None = None) -> None:
        """Close an HTTP/2 connection's socket (the session calls this once it has let go of its streams)."""
        self._ext.side.pop(side.fd, None)
        self.unwatch(side.fd)
        tls_io = self._ext.tls_io
        if tls_io is not None and tls_io.socks.pop(side.fd, None) is not None:
            _close_notify(side.sock)
        side.sock.close()
        self.teardown(side.peer, error)

    def teardown(self, peer: object, error: BaseException | None) -> None:
        """A connection closed outside :meth:`close` (a channel's): the teardown hook, and one active fewer."""
        if self._teardown_hook is not None:
            try:
                self._teardown_hook(peer, error)
            except Exception:
                log.exception("worker %d: connection_teardown_hook failed", self.index)
        if self._metrics is not None and self._metrics.counts[ACTIVE]:
            self._metrics.counts[ACTIVE] -= 1

    def unwatch(self, fd: int) -> None:
        """Take ``fd`` out of this loop's epoll (a closed or unknown fd is no error)."""
        try:
            if self._ep is not None:
                self._ep.unregister(fd)
        except (OSError, ValueError):
            pass

    @property
    def running(self) -> bool:
        """Whether the loop runs (False: serving in process, :meth:`answer`)."""
        return self._ep is not None

    @property
    def waiting(self) -> int:
        """``async def`` handlers waiting now (capped by ``Settings.max_waiting_handlers``)."""
        return self._ext.waiting

    @waiting.setter
    def waiting(self, count: int) -> None:
        self._ext.waiting = count

    def schedule(self, conn: Connection, tick: int) -> None:
        """Have the timing wheel look at ``conn`` at ``tick`` (see :meth:`_on_tick`)."""
        self._wheel.schedule(conn, tick)

    def respond_with(self, conn: Connection, req: Request, resp: Response, started: int) -> None:
        """Frame ``resp``, a waiting handler's answer to ``req``, in line on ``conn``, and write it.

        Durations run from ``started``, when its request was read; what queued behind
        it is answered next.
        """
        woke, self._woke = self._woke, started
        try:
            self._respond(conn, req, conn.out, resp)
        finally:
            self._woke = woke
        self.flush(conn)

    def refuse(self, conn: Connection, error: ProtocolError) -> None:
        """Answer ``error`` on ``conn`` after what is owed, then close it (nothing more is read)."""
        self._answer(conn, [error])

    @property
    def channels(self) -> dict[int, Channel]:
        """The loop's channels by fd (TLS handshakes, HTTP/2 sessions): see :meth:`attach`."""
        return self._ext.side

    def adopt(self, sock: ssl.SSLSocket, peer: object) -> None:
        """Serve ``sock``, whose TLS handshake just finished, as an HTTP/1.1 connection (its fd is watched already)."""
        conn = Connection(sock, RequestParser(self._limits), self.tick)
        conn.peer = peer
        conn.proxies = self._ext.proxies
        self.conns[conn.fd] = conn
        self._wheel.schedule(conn, self.tick + self.keepalive_ticks)
        if sock.pending():
            self._on_readable(conn)  # a request that came with the handshake's last flight

    def disown(self, conn: Connection) -> socket.socket:
        """Give up HTTP/1.1 on ``conn``: its socket, still watched for reading, goes to another protocol."""
        sock = conn.sock
        assert sock is not None and self._ep is not None
        # The Connection object is done; the socket and its epoll entry move on.
        conn.closed = True
        conn.sock = None
        del self.conns[conn.fd]
        self._ep.modify(conn.fd, _READ_MASK)
        return sock

    def count_sent(self, nbytes: int) -> None:
        """Count ``nbytes`` written (metrics; nothing when they are off)."""
        if self._tally is not None:
            self._tally[SENT](nbytes)

    # -- time ------------------------------------------------------------------------

    def _refresh_date(self) -> None:
        self.date_line = b"Server: chopin\r\nDate: " + http_date() + b"\r\n"

    def _on_tick(self, tick: int) -> None:
        """Once a second: a new Date line, and idle or slow connections closed."""
        self.tick = tick
        self._refresh_date()
        if self._ext.upstreams is not None:
            self._ext.upstreams.on_tick(tick)
        if self._metrics is not None:
            self._metrics.counts[WAITING] = self._ext.waiting
            self._metrics.publish()
        if self._accept_paused and not self.stopping and self.listener is not None and self._ep is not None:
            self._accept_paused = False
            self._ep.register(self.listener.fileno(), EPOLLIN)
        if self._ext.supervisor and not self.stopping and os.getppid() != self._ext.supervisor:
            # The supervisor died: PR_SET_PDEATHSIG stops the worker at once on Linux;
            # this check covers other systems and a prctl that failed.
            log.warning("worker %d: supervisor %d is gone; stopping", self.index, self._ext.supervisor)
            self.request_stop()
        elif self.stopping:
            self._close_idle()
        if self._ext.side:
            for side in list(self._ext.side.values()):
                try:
                    side.on_tick(tick)
                except Exception as exc:
                    self.contain(side.fd, exc)
        keepalive = self.keepalive_ticks
        header_timeout = self._header_ticks
        for conn in self._wheel.advance(tick):
            if conn.closed:
                continue
            if conn.head_since >= 0 and tick - conn.head_since >= header_timeout:
                # Slowloris (or a WebSocket peer that never answers our close):
                # answer an HTTP client 408, then close.
                if not conn.out and conn.stream is None and conn.ws is None:
                    try:
                        self.io.write(conn.fd, timeout_answer(self.date_line))
                    except OSError:
                        pass
                self.close(conn)
                continue
            if conn.body is not None:
                self._ext.bodies.on_tick(conn, tick)
                continue
            if type(conn.stream) is Awaiting:
                conn.stream.on_tick(tick)
                continue
            if type(conn.stream) is StreamPump and not conn.out:
                # Its producer waits (events to come): not idle.  Keep-alives notice a client that left.
                self._wheel.schedule(conn, tick + keepalive)
                continue
            idle = keepalive if conn.ws is None else self._ws_ticks
            if tick - conn.last_active >= idle:
                self.close(conn)
                continue
            due = conn.last_active + idle
            if conn.head_since >= 0:
                due = min(due, conn.head_since + header_timeout)
            self._wheel.schedule(conn, due)


def _body_waits(conn: Connection) -> bool:
    """Whether ``conn`` is left unread until its body fits in the worker's budget."""
    return conn.body is not None and conn.body.waiting


def _readable(fds: list[int]) -> set[int]:
    """Those of ``fds`` with bytes (or an end of stream) waiting to be read, without waiting."""
    if not fds:
        return set()
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return {fd for fd, _ in poller.poll(0)}


class _Primed(Iterator["bytes | str"]):
    """A response stream whose first chunk was pulled before its head was sent (see ``Worker._first_chunk``)."""

    __slots__ = ("_first", "_rest")

    def __init__(self, first: bytes, rest: Iterator[bytes | str]) -> None:
        self._first: bytes | None = first
        self._rest = rest

    def __next__(self) -> bytes | str:
        first = self._first
        if first is not None:
            self._first = None
            return first
        return next(self._rest)

    def close(self) -> None:
        """Close the underlying stream (a generator's ``finally`` runs)."""
        close_stream(self._rest)


def _close_notify(sock: socket.socket) -> None:
    from .tls import send_close_notify

    send_close_notify(sock)  # type: ignore[arg-type]
