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

import logging
import math
import os
import select
import socket
import time
from collections.abc import Callable
from time import monotonic_ns
from typing import TYPE_CHECKING, Final

from ._engine.accepting import Acceptor
from ._engine.awaiting import Awaiting, await_handler
from ._engine.channel import ChannelTable, SocketIO
from ._engine.deadlines import expire
from ._engine.fanout import TopicWiring
from ._engine.file_sending import respond_file, send_file
from ._engine.in_process import answer
from ._engine.services import Services
from ._engine.serving import Routing
from ._engine.stopping import begin_stop, close_idle, install_signals, restore_signals
from ._engine.stream_pump import JOIN_LIMIT, StreamPump, pull_pump
from ._engine.streams import being_sent, first_chunk, pull_iterator
from ._engine.tasks import Scheduler
from ._engine.ws_channel import WebSocketService
from ._wire.h1_request import CONTINUE, Continue, ParserLimits
from ._wire.h1_writer import (
    CHUNKED,
    CONTINUE_LINE,
    END,
    END_CLOSE,
    END_KEEPALIVE,
    NO_BODY,
    STATUS_LINES,
    error_answer,
)
from .connection import Connection, Producer, close_stream, consume, open_listener, pending_bytes
from .context import Context
from .errors import ProtocolError, UnsupportedVersion
from .forwarded import Origin, TrustedProxies
from .hooks import Hooks, Verdict
from .logs import worker_access_log
from .metrics import ACTIVE, FOLD_AT, SENT, WAITING, MetricsBlock
from .request import Request
from .response import Response, http_date, status_line
from .router import RouteTable
from .settings import Settings
from .timer import TimingWheel
from .topics import Subscriber

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
# The framing constants of _wire/h1_writer under module-global names: a global is one
# LOAD_GLOBAL either way, and respond below is the inlined twin of frame_response.
_CONTINUE_LINE: Final = CONTINUE_LINE
_END: Final = END
_END_CLOSE: Final = END_CLOSE
_END_KEEPALIVE: Final = END_KEEPALIVE
_CHUNKED: Final = CHUNKED
_NO_BODY: Final = NO_BODY
# Context(req, params, conn) on the hot path without the class call (see respond).
_new_object: Final = object.__new__


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
        self._pre_routing = hooks.pre_routing
        self._teardown_hook = hooks.teardown
        # This worker's counters in the shared metrics block (None: metrics off), and
        # the hot path's view of them: _tally[status](started_ns) counts a request,
        # _tally[SENT](n) a write (see WorkerMetrics).
        self._metrics = metrics.attach(index) if metrics is not None else None
        self._tally = self._metrics.tally if self._metrics is not None else None
        # When metrics or the access log are on, a request's duration runs from the
        # loop's wake-up clock read (once per wake-up, needed for the tick anyway).
        self.woke = monotonic_ns()
        self.settings = settings
        self.index = index
        self.listener = listener
        self.conns: dict[int, Connection] = {}
        self.limits = ParserLimits(
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
        # WebSocket topics of this worker.
        self.topics: dict[str, set[Subscriber]] = {}
        self._lookup = table.lookup
        self.keepalive_ticks = math.ceil(settings.keepalive_timeout) + 1
        self.date_line = b""
        self._refresh_date()
        self.stopping = False
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
        self._ext = Services(self, self.settings, tls, Routing(self, self._lookup, self._pre_routing, self._tally))
        if self._ext.protocols.tls_io is not None:
            self.io = self._ext.protocols.tls_io
        self._ext.wiring = topics
        start_tls = self._ext.protocols.start_tls if tls is not None else None
        self._ext.acceptor = Acceptor(self, self.conns, hooks.setup, self._metrics, start_tls)

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
        ep = self._ep = self._ext.channels.ep = select.epoll()
        ep.register(lfd, EPOLLIN)
        wake_r = self._ext.start()  # the wake-up pipe and the topics join the epoll
        wake_w = self._ext.wake_fd
        previous = install_signals(self.request_stop, wake_w)
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
                tasks = ext.tasks
                # Handlers that wait, proxy deadlines (kept to the millisecond): wake for the nearest.
                off_path = tasks is not None or ext.protocols.upstreams is not None
                ready = ep.poll(ext.wait_time(timeout) if off_path else timeout)
                # One clock read per wake-up: the tick below, and (timed) where the
                # durations of the requests answered in this pass start.
                now = clock()
                if timed:
                    self.woke = now
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
                                ext.acceptor.accept(lsock)
                        elif fd == wake_r:
                            try:
                                os.read(wake_r, 512)
                            except OSError:
                                pass
                            if ext.turns:
                                ext.take_turns()
                        elif tasks is not None and fd in tasks.fds:
                            tasks.on_event_later(fd, ev)  # after this wake-up's requests are answered
                        else:
                            channel = ext.channels.get(fd)
                            if channel is not None:
                                channel.on_event(ev)
                    except Exception as exc:
                        self.contain(fd, exc)
                if off_path:
                    ext.after_events(tasks, now)
                if now >= next_tick:
                    second = now // _NS
                    try:
                        self._on_tick(second)
                    except Exception:
                        log.exception("worker %d: timer tick failed", self.index)
                    next_tick = (second + 1) * _NS
                if self.stopping and self._stop_step(now / _NS):
                    break
        finally:
            for conn in list(conns.values()):
                self.close(conn)
            self._ext.close()
            restore_signals(previous)
            self._ext.channels.ep = None
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
            channel = self._ext.channels.get(fd)
            if channel is not None:
                channel.abort()
        except Exception:
            # Closing failed as well: at least forget the fd, so it cannot fail again on every turn.
            log.exception("worker %d: closing fd %d after an error failed", self.index, fd)
            self.conns.pop(fd, None)
            self._ext.channels.pop(fd, None)
            self._ext.channels.unwatch(fd)

    def _stop_step(self, now: float) -> bool:
        """One step of a graceful stop; True once the loop may exit."""
        if self.listener is not None and self.listener.fileno() >= 0:
            self._ext.acceptor.close_listener(self.listener)
            begin_stop(self, self.conns, self._ext.channels)
        return (not self.conns and not self._ext.channels) or now >= self._stop_deadline

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
                self.respond(conn, events[0], out)
                if conn.stream is None and not conn.big:
                    self._write_small(conn, out)
                else:
                    self.flush(conn)
            else:
                self._answer(conn, events, data)
        # Reading the parser's fields directly: this runs once per read (a property would be a call).
        if parser._buf or parser._state:  # noqa: SLF001  hot path, see above
            if conn.closed:
                return  # upgraded (a WebSocket channel now) or closed
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
        respond = self.respond
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
            self._ext.end_turn(conn)  # the rest wait until the other connections ready now are served
        self.flush(conn)

    def respond(
        self, conn: Connection, req: Request, out: list[bytes | memoryview], resp: Response | None = None
    ) -> None:
        """Route ``req``, run its handler and append the serialised response to ``out``.

        ``resp``: the answer of a handler that waited (:func:`chopin_core._engine.awaiting.await_handler`): only framed.
        """
        tally = self._tally
        access = self.access_log
        started = self.woke  # when the loop woke for these bytes (kept only when metrics or the log are on)
        if resp is None:
            if self._pre_routing is not None:
                early = self._ext.routing.pre_route(req)
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
                    resp = self._ext.routing.handler_failed(req, exc)
        if resp.takeover is not None:
            self._ext.protocols.take_over(conn, req, resp, started)  # a WebSocket upgrade, a proxied exchange
            return
        stream = resp.stream_body
        if stream is not None:
            # The first chunk is pulled before the head is written, so a stream that fails at once is a 500.
            resp, first = first_chunk(self, req, resp, stream, conn)
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
            respond_file(self, conn, req, resp, line, end, out)
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
                conn.stream = being_sent(stream)
                conn.stream_chunked = req.http11
                conn.stream_keep = keep
        elif req.method == "HEAD":
            out += (line, self.date_line, resp.content_lines, resp.extra_lines, end)
        else:
            body = resp.body
            out += (line, self.date_line, resp.content_lines, resp.extra_lines, end, body)
            if len(body) >= _JOIN_LIMIT:
                conn.big = True

    def scheduler(self) -> Scheduler:
        """The scheduler of this worker's waiting coroutines, made on first use."""
        return self._ext.scheduler()

    def _error_response(self, exc: ProtocolError, out: list[bytes | memoryview]) -> None:
        out.append(error_answer(exc.status, exc.message.encode("utf-8", "replace"), self.date_line))

    # -- writing -------------------------------------------------------------------

    def flush(self, conn: Connection) -> None:
        """Write what is pending, pulling stream chunks while the socket takes them."""
        out = conn.out
        while True:
            if conn.stream is not None:
                self.pull_stream(conn)
            elif conn.queued and conn.file is None:
                self._resume_queued(conn)
            if not out:
                if conn.file is None:
                    break
                done = send_file(self, conn)
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

    def pull_stream(self, conn: Connection) -> None:
        """Have ``conn``'s response stream produce more output (into ``conn.out``)."""
        stream = conn.stream
        assert stream is not None
        if type(stream) is StreamPump:
            pull_pump(self, conn, stream)
            return
        if isinstance(stream, Producer):
            # It feeds the output itself (the proxy's upstream socket), or a handler still
            # waits (Awaiting: nothing until it answers); it may go on once this drains.
            stream.drained(pending_bytes(conn.out))
            return
        if not conn.out:  # else written first: the head and earlier chunks go out before the producer runs again
            pull_iterator(self, conn, stream)

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
                self._ext.end_turn(conn)
                return
            answered += 1
            event = queued.pop(0)
            if isinstance(event, Request):
                self.respond(conn, event, out)
            else:
                assert isinstance(event, ProtocolError)
                self._error_response(event, out)
                conn.close_after = True
        if conn.close_after:
            queued.clear()

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
        self.teardown(conn.peer, error)
        self.conns.pop(conn.fd, None)
        if conn.body is not None:
            self._ext.bodies.done(conn)
        if conn.stream is not None:
            close_stream(conn.stream)
            conn.stream = None
        if conn.file is not None:
            conn.file.close()
            conn.file = None
        try:
            if self._ep is not None:
                self._ep.unregister(conn.fd)
        except (OSError, ValueError):
            pass
        if conn.sock is not None:
            self._ext.protocols.close_socket(conn.fd, conn.sock)
        conn.out.clear()

    # -- in process, no socket ---------------------------------------------------------

    def answer(self, data: bytes, peer: tuple[str, int] = ("testclient", 50000)) -> bytes:
        """Serve ``data`` (HTTP/1.1 requests) in this process, with no socket: the bytes a client would read.

        :class:`~chopin_core.testclient.TestClient` drives this; see
        :func:`chopin_core._engine.in_process.answer`.
        """
        return answer(self, data, peer)

    @property
    def proxies(self) -> TrustedProxies | None:
        """``Settings.trusted_proxies`` parsed (each connection gets it for ``ctx.client``), or None."""
        return self._ext.proxies

    @property
    def routing(self) -> Routing:
        """How this worker answers a request off the HTTP/1.1 path (:mod:`chopin_core._engine.serving`)."""
        return self._ext.routing

    # -- the Loop interface (chopin_core._engine.channel.Loop) that channels use ----------------

    @property
    def secure(self) -> bool:
        """Whether this worker serves TLS."""
        return self._ext.tls is not None

    def teardown(self, peer: object, error: BaseException | None) -> None:
        """A connection closed outside :meth:`close` (a channel's): the teardown hook, and one active fewer."""
        if self._teardown_hook is not None:
            try:
                self._teardown_hook(peer, error)
            except Exception:
                log.exception("worker %d: connection_teardown_hook failed", self.index)
        if self._metrics is not None and self._metrics.counts[ACTIVE]:
            self._metrics.counts[ACTIVE] -= 1

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

    def refuse(self, conn: Connection, error: ProtocolError) -> None:
        """Answer ``error`` on ``conn`` after what is owed, then close it (nothing more is read)."""
        self._answer(conn, [error])

    @property
    def websockets(self) -> WebSocketService:
        """This worker's WebSockets (:mod:`chopin_core._engine.ws_channel`)."""
        return self._ext.websockets

    @property
    def channels(self) -> ChannelTable:
        """The loop's channels by fd (TLS, HTTP/2, WebSockets, upstream exchanges) and their epoll entries."""
        return self._ext.channels

    def adopt(self, sock: ssl.SSLSocket, peer: object) -> None:
        """Serve ``sock``, whose TLS handshake just finished, as an HTTP/1.1 connection (its fd is watched already)."""
        conn = self._ext.acceptor.serve(sock, peer)
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
        if conn.body is not None:
            self._ext.bodies.done(conn)
        conn.queued.clear()
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
        if self._metrics is not None:
            self._metrics.counts[WAITING] = self._ext.waiting
            self._metrics.publish()
        if not self.stopping and self.listener is not None:
            self._ext.acceptor.resume(self.listener)
        if self._ext.supervisor and not self.stopping and os.getppid() != self._ext.supervisor:
            # The supervisor died: PR_SET_PDEATHSIG stops the worker at once on Linux;
            # this check covers other systems and a prctl that failed.
            log.warning("worker %d: supervisor %d is gone; stopping", self.index, self._ext.supervisor)
            self.request_stop()
        elif self.stopping:
            close_idle(self, list(self.conns.values()))
        self._ext.on_tick(tick)
        expire(self, self._wheel.advance(tick), tick, self._header_ticks, self._ext.bodies)


def _body_waits(conn: Connection) -> bool:
    """Whether ``conn`` is left unread until its body fits in the worker's budget."""
    return conn.body is not None and conn.body.waiting
