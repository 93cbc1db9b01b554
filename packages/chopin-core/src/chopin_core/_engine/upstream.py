"""The worker side of the reverse proxy: upstream exchanges driven by the worker's epoll loop.

How it works: when a handler returns a proxied response (its ``takeover`` is a
:class:`~chopin_core.proxy.ProxyPlan`) the worker's takeover table calls
:meth:`UpstreamTable.start`.  The exchange takes an idle keep-alive socket from
this worker's pool or starts a non-blocking ``connect``, joins the loop's channel
table with that socket (:meth:`~chopin_core._engine.channel.ChannelTable.attach`) and
becomes the :class:`~chopin_core.connection.Producer` in the client connection's
``stream`` slot, so the worker treats the connection as
busy (later pipelined requests wait; reading stops while output is pending) without
ever blocking on the upstream.  Events on the upstream socket come to
:meth:`UpstreamExchange.on_event` like any channel's: the request is written as the
socket takes it, the answer is fed to a sans-IO
:class:`~chopin_core._wire.h1_response.ResponseParser`, and its head and body go to
the client's output as they arrive (re-chunked when the upstream body is not
length-delimited).  Past ``write_high_water`` of pending client output the
upstream is not read until the client drains.  Deadlines are kept to the
millisecond in a heap: the worker waits in ``epoll`` no longer than the nearest
one (:meth:`UpstreamTable.wait_time`) and ends the exchanges whose deadline has
passed (:meth:`UpstreamTable.expire`): no connection within ``connect_timeout``
or no byte for ``read_timeout`` ends the exchange with 504 before the head
(after it, the client connection is closed); an upstream still taking a large
request (bytes sent, or leaving our socket's send queue) is not silent.  A reused socket
that turns out closed before any answer is replaced once for idempotent methods.
"""

from __future__ import annotations

import errno
import fcntl
import heapq
import logging
import os
import select
import socket
import struct
import termios
from time import monotonic_ns
from typing import TYPE_CHECKING, Final

from .._client_base import IDEMPOTENT
from .._client_errors import ClientError, ConnectError, ConnectTimeout, ReadTimeout, UpstreamClosed
from .._client_pool import ConnectionPool
from .._wire.h1_response import END, HOP_BY_HOP, BodyKind, Event, ResponseHead, ResponseParser, build_request
from .._wire.h1_writer import END as _END
from .._wire.h1_writer import END_CLOSE as _END_CLOSE
from .._wire.h1_writer import END_KEEPALIVE as _END_KEEPALIVE
from .._wire.h1_writer import LAST_CHUNK as _LAST_CHUNK
from .._wire.h1_writer import VIA as _VIA
from ..connection import Producer, pending_bytes
from ..proxy import ProxyPlan
from ..response import Response, status_line

if TYPE_CHECKING:
    from ..connection import Connection
    from ..proxy import Upstream
    from ..request import Request
    from .channel import Loop

__all__ = ["UpstreamExchange", "UpstreamTable"]

log = logging.getLogger("chopin_core.proxy")

_READ: Final = select.EPOLLIN | select.EPOLLRDHUP
_WRITE: Final = select.EPOLLOUT
# Response fields the proxy recomputes for the client.
_FRAMING: Final = frozenset({"content-length"})

# Exchange states.
_CONNECTING: Final = 0
_SENDING: Final = 1
_AWAITING: Final = 2  # the request is out (or going), no head yet
_BODY: Final = 3
_FINISHED: Final = 4

_NS: Final = 1_000_000_000
_NEVER: Final = 1 << 62  # a deadline later than any monotonic_ns() reading
# A request up to this size leaves in one send, into the socket buffer: no progress to watch.
_SMALL_REQUEST: Final = 64 * 1024
_QUEUE_SIZE: Final = struct.Struct("i")


def _send_queue(fd: int) -> int:
    """Bytes in ``fd``'s send queue that the peer has not acknowledged yet (Linux ``SIOCOUTQ``); 0 if unknown."""
    try:
        queued: int = _QUEUE_SIZE.unpack(fcntl.ioctl(fd, termios.TIOCOUTQ, bytes(_QUEUE_SIZE.size)))[0]
    except OSError:
        return 0
    return queued


class UpstreamTable:
    """One worker's upstream exchanges (by socket fd) and its idle-connection pools.

    Args:
        worker: the worker whose loop, connections and clock these exchanges use.
    """

    def __init__(self, worker: Loop) -> None:
        self.worker = worker
        self.live: set[UpstreamExchange] = set()
        # (deadline_ns, sequence, exchange): at least one entry per live exchange, never
        # later than its deadline.  A deadline that moves later (bytes arrived) leaves its
        # entry in place, re-pushed when it comes up; one that moves earlier pushes a new
        # entry.  Entries of finished exchanges are dropped when they come up.
        self.deadlines: list[tuple[int, int, UpstreamExchange]] = []
        self._sequence = 0
        self._pools: dict[Upstream, ConnectionPool] = {}

    def pool(self, upstream: Upstream) -> ConnectionPool:
        """This worker's idle connections to ``upstream``."""
        pool = self._pools.get(upstream)
        if pool is None:
            settings = upstream.settings
            pool = self._pools[upstream] = ConnectionPool(settings.max_idle_per_host, settings.idle_timeout)
        return pool

    def start(self, conn: Connection, req: Request, resp: Response, keep: bool, started: int) -> None:
        """Begin forwarding ``req`` for ``conn``; the connection waits with the exchange as its stream."""
        plan = resp.takeover
        assert isinstance(plan, ProxyPlan)
        exchange = UpstreamExchange(self, conn, req, resp, plan, keep, started)
        conn.stream = exchange
        self.live.add(exchange)
        exchange.begin()

    def schedule(self, exchange: UpstreamExchange, deadline: int) -> None:
        """Set ``exchange``'s deadline (monotonic ns); an earlier one than its heap entry gets a new entry."""
        exchange.deadline = deadline
        if deadline < exchange.scheduled:
            exchange.scheduled = deadline
            self._sequence += 1
            heapq.heappush(self.deadlines, (deadline, self._sequence, exchange))

    def retire(self, exchange: UpstreamExchange) -> None:
        """``exchange`` is over: forget it, and drop the heap's dead entries once they outnumber the live ones."""
        self.live.discard(exchange)
        if len(self.deadlines) > 2 * len(self.live) + 64:
            # Finished exchanges would otherwise stay referenced until their deadline came up.
            self.deadlines = []
            for ex in self.live:
                ex.scheduled = _NEVER
                self.schedule(ex, ex.deadline)

    def wait_time(self, timeout: float) -> float:
        """How long the worker may wait in ``epoll`` (seconds): ``timeout``, or less if a deadline is nearer."""
        if not self.deadlines:
            return timeout
        left = (self.deadlines[0][0] - monotonic_ns()) / _NS
        return min(timeout, left) if left > 0 else 0.0

    def expire(self) -> None:
        """End the exchanges whose deadline has passed (the worker calls this when the nearest is due)."""
        now = monotonic_ns()
        # self.deadlines, not a local: time_out() -> retire() may rebuild the list.
        while self.deadlines and self.deadlines[0][0] <= now:
            _, _, exchange = heapq.heappop(self.deadlines)
            if exchange.state == _FINISHED:
                continue
            exchange.scheduled = _NEVER
            if exchange.paused:
                # We stopped reading the upstream (the client is slow): its silence is ours,
                # and the client's own keep-alive clock decides how long it may stall.
                self.schedule(exchange, now + exchange.read_ns)
            elif exchange.deadline <= now:
                if exchange.progressed():
                    self.schedule(exchange, now + exchange.read_ns)  # still taking a large request
                else:
                    exchange.time_out()
            else:
                self.schedule(exchange, exchange.deadline)  # bytes came since this entry was made

    def prune(self, tick: int) -> None:
        """Once a second: close the idle upstream connections past their idle timeout."""
        for pool in self._pools.values():
            pool.prune(float(tick))

    def close(self) -> None:
        """Close every exchange's socket and every idle connection (the worker is exiting)."""
        for exchange in list(self.live):
            exchange.close()
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


class UpstreamExchange(Producer):
    """One forwarded request and its streamed answer.

    While its upstream socket is open it is a channel of the loop (``on_event``,
    ``on_tick``, ``stop``, ``abort``).  It is also the :class:`~chopin_core.connection.Producer`
    of the client connection's output (its ``stream`` slot), so the worker holds the
    connection's later requests, tells it when the output drained (:meth:`drained`)
    and closes it with the connection (:meth:`close`).
    """

    def __init__(
        self,
        table: UpstreamTable,
        conn: Connection,
        req: Request,
        resp: Response,
        plan: ProxyPlan,
        keep: bool,
        started: int,
    ) -> None:
        self.table = table
        self.worker = table.worker
        self.conn = conn
        self.req = req
        self.resp = resp
        self.upstream = plan.upstream
        self.settings = plan.upstream.settings
        self.keep = keep
        self.started = started
        scheme = "https" if self.worker.secure else "http"
        self.data = build_request(req.method, plan.target, plan.request_headers(conn.peer, scheme), req.body or None)
        self.sent = 0
        self.sending = True  # request bytes left to write (also after the answer has begun)
        self._sock: socket.socket | None = None
        self.peer = conn.peer  # whose request this is (for a log line of the loop)
        self.fd = -1
        self.reused = False
        self.address = 0  # which of the upstream's addresses is being tried
        self.state = _CONNECTING
        self.parser = ResponseParser(req.method, self.settings.limits())
        self.chunked = False  # re-chunk the body for the client
        self.paused = False
        self.mask = 0
        self._connect_ns = int(self.settings.connect_timeout * _NS)
        self.read_ns = int(self.settings.read_timeout * _NS)
        self.scheduled = _NEVER  # the earliest deadline this exchange has in the table's heap
        self.deadline = _NEVER
        self.unsent = 0  # request bytes in our socket's send queue when last looked (large requests only)

    @property
    def sock(self) -> socket.socket:
        """The upstream socket (while the exchange is one of the loop's channels)."""
        assert self._sock is not None
        return self._sock

    # -- connecting and sending --------------------------------------------------------

    def begin(self) -> None:
        """Take a pooled socket or start connecting; failures here answer at once (no flush: the caller flushes)."""
        self.table.schedule(self, monotonic_ns() + self._connect_ns)
        sock = self.table.pool(self.upstream).checkout(self.upstream.key, float(self.worker.tick))
        if sock is not None:
            self.reused = True
            self._attach(sock, _READ)  # the mask the request will need once written
            self._connected(flush=False)
            return
        self._connect(flush=False)

    def _connect(self, flush: bool) -> None:
        family, sockaddr = self.upstream.addresses[self.address]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex(sockaddr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self._refused(err, flush)
            return
        self.state = _CONNECTING
        self.table.schedule(self, monotonic_ns() + self._connect_ns)
        self._attach(sock, _READ if err == 0 else _WRITE)
        if err == 0:
            self._connected(flush)

    def _refused(self, err: int, flush: bool) -> None:
        """Connecting to the current address failed: try the next one, or answer 502."""
        up = self.upstream
        self.address += 1
        if self.address < len(up.addresses):
            self._connect(flush)
            return
        self.fail(ConnectError(f"cannot connect to upstream {up.host}:{up.port}: {os.strerror(err)}"), flush)

    def _attach(self, sock: socket.socket, mask: int) -> None:
        self._sock = sock
        self.fd = sock.fileno()
        self.mask = mask
        self.worker.channels.attach(self, mask)

    def _detach(self) -> socket.socket | None:
        sock, self._sock = self._sock, None
        if sock is None:
            return None
        self.worker.channels.detach(self)
        self.fd = -1
        return sock

    def _connected(self, flush: bool) -> None:
        self.state = _SENDING
        self.table.schedule(self, monotonic_ns() + self.read_ns)
        self._send(flush)

    def _send(self, flush: bool) -> None:
        sock = self._sock
        assert sock is not None
        data = self.data
        before = self.sent
        while self.sent < len(data):
            try:
                self.sent += sock.send(memoryview(data)[self.sent :])
            except BlockingIOError:
                self._sent_more(before)
                self._set_mask(self._wanted())
                return
            except OSError as exc:
                self.sending = False
                self._set_mask(self._wanted())
                if self.state == _BODY:
                    # The answer has begun and the upstream stopped taking the request (it
                    # had what it needed, or closed): its answer is read to its end as usual.
                    return
                if flush:
                    # It may have answered before it stopped (an early 413, then a close
                    # with our body unread: a reset): that answer is read first.
                    self._receive(exc)
                else:
                    self._lost(exc, flush)  # begin(): a pooled socket that was closed
                return
        self._sent_more(before)
        self.sending = False
        if self.state == _SENDING:
            self.state = _AWAITING
        self._set_mask(self._wanted())

    def _sent_more(self, before: int) -> None:
        """After a send: if the upstream took request bytes, ``read_timeout`` counts from now."""
        if self.sent > before and self.sent > _SMALL_REQUEST:
            self.deadline = max(self.deadline, monotonic_ns() + self.read_ns)
            self.unsent = _send_queue(self.fd)

    def progressed(self) -> bool:
        """Whether the upstream took request bytes out of our socket's send queue since we last looked.

        A request larger than the socket buffers goes out as the upstream reads it, and
        its last megabytes wait in the kernel, unseen by :meth:`_send`: while that queue
        shrinks, the upstream is not silent (the deadline then moves, see
        :meth:`UpstreamTable.expire`).
        """
        if self._sock is None or not self.unsent:
            return False
        queued = _send_queue(self.fd)
        took = queued < self.unsent
        self.unsent = queued
        return took

    def _wanted(self) -> int:
        """The epoll mask now: the answer unless the client is behind, the request while bytes are left."""
        return (0 if self.paused else _READ) | (_WRITE if self.sending else 0)

    def _set_mask(self, mask: int) -> None:
        if mask != self.mask and self._sock is not None:
            self.mask = mask
            self.worker.channels.rewatch(self.fd, mask)

    # -- events -------------------------------------------------------------------------

    def on_event(self, ev: int) -> None:
        """Readable/writable/error on the upstream socket."""
        if self.state == _CONNECTING:
            sock = self._sock
            assert sock is not None
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._detach()
                sock.close()
                self._refused(err, True)
                return
            self._connected(flush=True)
            return
        if self.sending and ev & select.EPOLLOUT:
            # Also once the answer has begun: an upstream may answer (a 2xx streamed as
            # the body comes in) before it has read the whole request; RFC 9112 9.5.
            self._send(flush=True)
            if self.state in (_FINISHED, _CONNECTING) or self._sock is None:
                return  # ended, or started over on a fresh connection
        if ev & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
            self._receive()

    def _receive(self, send_error: OSError | None = None) -> None:
        sock = self._sock
        assert sock is not None
        try:
            data = sock.recv(self.settings.recv_size)
        except BlockingIOError:
            if send_error is not None:
                self._lost(send_error, True)  # nothing came before the send failed
            return
        except OSError as exc:
            self._lost(exc, True)
            return
        if not data:
            self._lost(None, True)
            return
        # Later than before: the heap entry stays, and is re-pushed when it comes up.
        self.deadline = monotonic_ns() + self.read_ns
        try:
            events = self.parser.feed(data)
        except ClientError as exc:
            self.fail(exc, True)
            return
        self._deliver(events)

    def _lost(self, exc: OSError | None, flush: bool) -> None:
        """The upstream closed (or reset) its side."""
        if self.reused and not self.parser.received and self.req.method in IDEMPOTENT:
            # A pooled connection the upstream had closed meanwhile: once more on a fresh one.
            sock = self._detach()
            if sock is not None:
                sock.close()
            self.reused = False
            self.sent = 0
            self.sending = True
            self.address = 0
            self._connect(flush)
            return
        try:
            events = self.parser.feed_eof()
        except ClientError as error:
            if exc is not None:
                error = UpstreamClosed(f"{error} ({exc.strerror or exc})")
            self.fail(error, flush)
            return
        self._deliver(events)

    def _deliver(self, events: list[Event]) -> None:
        conn = self.conn
        out = conn.out
        for event in events:
            if type(event) is bytes:
                if not event:
                    continue
                if self.chunked:
                    out += (b"%x\r\n" % len(event), event, _END)
                else:
                    out.append(event)
                conn.big = True
            elif event is END:
                self._finish()
                return
            else:
                assert isinstance(event, ResponseHead)
                self._write_head(event)
        if not conn.closed:
            self.worker.flush(conn)
        if not conn.closed and pending_bytes(conn.out) > self.worker.settings.write_high_water:
            self.paused = True
            self._set_mask(self._wanted())

    def drained(self, pending: int) -> None:
        """The worker flushed the client's output; read the upstream again once it is low."""
        if self.paused and pending <= self.worker.settings.write_high_water:
            self.paused = False
            self._set_mask(self._wanted())
            # The upstream's silence counts from now, not from before the pause.
            self.table.schedule(self, monotonic_ns() + self.read_ns)

    # -- the client's side -------------------------------------------------------------

    def _write_head(self, head: ResponseHead) -> None:
        """The upstream's head, as the client gets it: hop-by-hop fields out, our framing in."""
        # An early answer (before the whole request went out) does not stop the sending:
        # see on_event.  The connection is reused only if the request was all taken (_finish).
        self.state = _BODY
        req = self.req
        resp = self.resp
        resp.status = head.status
        named = set(HOP_BY_HOP)
        for name, value in head.headers:
            if name.lower() == "connection":
                named.update(t.strip().lower() for t in value.split(",") if t.strip())
        has_body = head.body_kind != BodyKind.NONE
        lines: list[str] = []
        has_date = False
        via = None
        for name, value in head.headers:
            lname = name.lower()
            if lname in named or (has_body and lname in _FRAMING):
                continue
            if lname == "via":
                via = f"{via}, {value}" if via else value
                continue
            if lname == "date":
                has_date = True
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"Via: {via}, {_VIA}\r\n" if via else f"Via: {_VIA}\r\n")
        block = "".join(lines).encode("latin-1")
        keep = self.keep
        if has_body:
            if head.body_kind == BodyKind.LENGTH:
                block += b"Content-Length: %d\r\n" % head.length
            elif req.http11:
                block += b"Transfer-Encoding: chunked\r\n"
                self.chunked = True
            else:
                keep = False  # HTTP/1.0 client: the body ends when the connection does
        self.keep = keep
        # RFC 9110 6.6.1: a forwarded response without Date gets one.
        date = self.worker.date_line if not has_date else b""
        if date:
            date = date[date.find(b"Date:") :]
        end = (_END if req.http11 else _END_KEEPALIVE) if keep and not self.worker.stopping else _END_CLOSE
        self.conn.out += (status_line(head.status), date, block, resp.extra_lines, end)

    def _finish(self) -> None:
        """The upstream's answer is complete: pool its socket, end the client's message, answer what waits."""
        self.state = _FINISHED
        self.table.retire(self)
        head = self.parser.head
        sock = self._detach()
        if sock is not None:
            if head is not None and head.keep_alive and self.sent == len(self.data):
                # (An answer that ended before the whole request went out leaves the
                # connection mid-request: never reused.)
                self.table.pool(self.upstream).checkin(self.upstream.key, sock, float(self.worker.tick))
            else:
                sock.close()
        conn = self.conn
        if self.chunked:
            conn.out.append(_LAST_CHUNK)
        if not self.keep or self.worker.stopping:
            conn.close_after = True
        conn.stream = None
        self.worker.routing.account(self.req, self.resp, self.started, conn)
        if not conn.closed:
            self.worker.flush(conn)

    def fail(self, exc: ClientError, flush: bool) -> None:
        """End the exchange with ``exc``: a 502/504 answer before the head, a closed connection after it."""
        if self.state == _FINISHED:
            return
        before_head = self.state != _BODY
        self.state = _FINISHED
        self.table.retire(self)
        sock = self._detach()
        if sock is not None:
            sock.close()
        conn = self.conn
        conn.stream = None
        req = self.req
        log.warning(
            "worker %d: proxy %s %s -> %s:%d failed: %s",
            self.worker.index,
            req.method,
            req.path,
            self.upstream.host,
            self.upstream.port,
            exc,
        )
        if before_head:
            answer = Response.text(_REASON.get(exc.status, "Bad Gateway"), exc.status)
            self.resp.status = exc.status
            keep = self.keep and not self.worker.stopping
            end = (_END if req.http11 else _END_KEEPALIVE) if keep else _END_CLOSE
            if not keep:
                conn.close_after = True
            conn.out += (status_line(exc.status), self.worker.date_line, answer.content_lines, end)
            if req.method != "HEAD":
                conn.out.append(answer.body)
        else:
            # Part of the answer is out: the client must see an incomplete message, not a wrong one.
            conn.close_after = True
        self.worker.routing.account(req, self.resp, self.started, conn)
        if flush and not conn.closed:
            self.worker.flush(conn)

    def on_tick(self, tick: int) -> None:
        """Once a second: keep the waiting client from idling out (its deadlines are :meth:`time_out`'s)."""
        if not self.paused:
            # The client is waiting on us, not idle: its keep-alive clock must not run.
            # (A paused exchange waits on the client, whose own clock decides.)
            self.conn.last_active = tick

    def stop(self) -> None:
        """A graceful stop: the answer is finished (the client's connection then closes)."""

    def abort(self) -> None:
        """The worker exits, or serving this exchange failed: close the client's connection, then this."""
        self.worker.close(self.conn)  # closes the exchange too: it is the connection's stream
        self.close()

    def time_out(self) -> None:
        """The deadline passed: connecting or the upstream's silence took too long."""
        if self.state == _CONNECTING:
            error: ClientError = ConnectTimeout(
                f"connecting to upstream took longer than {self.settings.connect_timeout} s"
            )
        else:
            error = ReadTimeout(f"upstream sent nothing for {self.settings.read_timeout} s")
        self.fail(error, flush=True)

    def close(self) -> None:
        """The client connection closed (or the worker exits): drop the upstream socket."""
        if self.state != _FINISHED:
            self.state = _FINISHED
            self.table.retire(self)
        sock = self._detach()
        if sock is not None:
            sock.close()


_REASON: Final = {502: "Bad Gateway", 504: "Gateway Timeout"}
