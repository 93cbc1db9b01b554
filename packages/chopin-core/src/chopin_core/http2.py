"""HTTP/2 connections on the worker loop: the I/O shell around ``_wire/h2_connection.py``.

How it works: an :class:`H2Session` owns one socket (after TLS ALPN chose ``h2``,
or a cleartext connection that opened with the prior-knowledge preface).  Each
readable event feeds the bytes to the sans-IO
:class:`~chopin_core._wire.h2_connection.H2ServerConnection` (framing, stream
states, flow control; HPACK decoding by the ``hpack`` library behind a cache,
encoding by :mod:`chopin_core._wire.hpack`) and acts on its events: a request stream that has ended becomes the same
:class:`~chopin_core.request.Request` the HTTP/1.1 parser builds and goes
through the worker's router, hooks and middleware
(:meth:`~chopin_core.worker.Worker.serve`); the :class:`Response` is sent as
HEADERS and DATA frames.  Bodies go out only as far as the peer's flow-control
windows and ``write_high_water`` allow; the rest waits for a WINDOW_UPDATE or
for the socket to drain.  A bytes body is held by reference and sliced frame by
frame; a streamed or file body is pulled only when its window has room, so a
peer that opens no window makes us hold at most one piece per stream.  Many
streams interleave on one connection; each response is produced as soon as its
request is complete, unless the connection already holds more than
``h2_max_pending_output`` bytes of response bodies: then the next requests wait,
their handlers not yet run, until those bytes drain.

Limits (all :class:`~chopin_core.settings.Settings` fields): concurrent streams,
initial window, frame size and header-list size are advertised in SETTINGS and
enforced (concurrent streams here: REFUSED_STREAM past them; a frame header
announcing more than the frame size is refused before its payload is read); a peer that resets streams faster than
``h2_max_resets_per_second``, or while this worker's connections together reset
faster than ``h2_worker_max_resets_per_second`` (the "rapid reset" attack,
CVE-2023-44487), gets GOAWAY ENHANCE_YOUR_CALM; a stream reset in the read that
completed it is never routed; CONTINUATION floods are bounded by a fragment
count and the header-list size.  A handler error answers 500; a body that
fails after its headers went out resets the stream with INTERNAL_ERROR.  A
graceful stop sends GOAWAY and lets open streams finish.
"""

from __future__ import annotations

import logging
import select
from collections import deque
from collections.abc import Iterator
from functools import partial
from time import monotonic
from typing import TYPE_CHECKING, Final

import hpack
import hpack.exceptions
import hpack.table

from ._engine.stream_pump import StreamPump
from ._engine.streams import being_sent
from ._wire.h1_writer import NO_BODY
from ._wire.h2_connection import (
    ConnectionTerminated,
    DataReceived,
    ErrorCodes,
    H2ConnectionError,
    H2ServerConnection,
    HeaderBlockError,
    RequestReceived,
    StreamClosedError,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from ._wire.h2_fields import request_problem, trailers_problem
from ._wire.hpack import FieldEncoder
from .connection import close_stream
from .files import FileBody, not_modified
from .proxy import ProxyPlan
from .request import H2Request, Request
from .response import Response, send_whole_if_range_fails

if TYPE_CHECKING:
    import socket

    from ._engine.channel import Loop, Pending
    from .forwarded import TrustedProxies

__all__ = ["PREFACE", "H2Session", "ResetBudget", "preface_rest"]

log = logging.getLogger("chopin_core.http2")

# RFC 9113 3.4: the client connection preface.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# The part of it an HTTP/1.1 parser reads as a request head (it answers 505 to it).
_PREFACE_HEAD: Final = b"PRI * HTTP/2.0\r\n\r\n"
_READ_MASK: Final = select.EPOLLIN | select.EPOLLRDHUP
_EPOLLOUT: Final = select.EPOLLOUT
# A streamed or file body is pulled in pieces of at most this size.
_PULL: Final = 64 * 1024
# Received bytes are handed to the connection in pieces of at most this size (see H2Session._receive).
_SLICE: Final = 8 * 1024
# RFC 9113 8.2.2: connection-specific fields must not appear in HTTP/2.
_HOP_BY_HOP: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te"}
)
_NO_BODY: Final = NO_BODY
# RFC 9110 9.1: a method is a token (request_problem lets any field-value byte through in :method).
_METHOD_CHARS: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# RFC 9113 6.5.2 setting identifiers.
_MAX_CONCURRENT_STREAMS: Final = 0x3
_INITIAL_WINDOW_SIZE: Final = 0x4
_MAX_FRAME_SIZE: Final = 0x5
_MAX_HEADER_LIST_SIZE: Final = 0x6
_ENABLE_PUSH: Final = 0x2
# A header block's fragments may run this far past h2_max_header_list_size (HPACK's own bytes).
_BLOCK_SLACK: Final = 16 * 1024
# Per connection: decoded header blocks and checked field sections kept before starting over.
_CACHED_BLOCKS: Final = 64
_CHECKED_SECTIONS: Final = 64


def preface_rest(data: bytes) -> bytes | None:
    """Given the read in which an HTTP/1.1 parser saw the head ``PRI * HTTP/2.0``,
    rebuild the connection's bytes from the preface on (None if ``data`` does not fit).

    The parser may have been handed the first bytes of the head in earlier reads; the
    smallest ``k`` for which ``data`` starts with the head's tail ``[k:]`` is where
    ``data`` joins it (the preface continues with ``SM``, which the head does not hold).
    """
    for k in range(len(_PREFACE_HEAD)):
        if data.startswith(_PREFACE_HEAD[k:]):
            return _PREFACE_HEAD + data[len(_PREFACE_HEAD) - k :]
    return None


class ResetBudget:
    """A token bucket of stream resets: bursts up to ``rate``, refilled at ``rate`` per second.

    Unlike a count per clock second it has no boundary to straddle: at most
    ``rate`` resets pass in any one-second stretch, plus the refill.

    Args:
        rate: resets allowed per second (and the largest burst).
    """

    __slots__ = ("rate", "stamp", "tokens")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.tokens = float(rate)
        self.stamp = monotonic()

    def take(self, now: float) -> bool:
        """Spend one reset at time ``now`` (``time.monotonic``); False when the budget is exhausted."""
        tokens = min(float(self.rate), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True


class _Head:
    """A request's pseudo-header fields and header lines, as :class:`H2Request` takes them.

    Built once per distinct field section on a connection (clients repeat theirs).
    """

    __slots__ = ("lines", "method", "query", "raw_path", "target")

    def __init__(self, method: str, target: str, lines: list[bytes]) -> None:
        self.method = method
        self.target = target
        raw_path, sep, query = target.partition("?")
        self.raw_path = raw_path
        self.query = query if sep else None
        self.lines = lines


# A request the engine answers itself: its status and message (see H2Session._head).
_Refusal = tuple[int, bytes]


class _Stream:
    """One request stream: its head and body as they arrive, then its response body as it leaves."""

    __slots__ = ("body", "file", "head", "pending", "size", "source", "started", "waiting")

    def __init__(self, head: _Head | _Refusal) -> None:
        self.head = head
        self.body: list[bytes] = []
        self.size = 0
        self.pending: deque[bytes | memoryview] = deque()
        self.source: Iterator[bytes | str] | StreamPump | None = None
        self.file: FileBody | None = None
        self.started = False  # response headers sent
        self.waiting: Pending | None = None  # its async def handler, while it waits


class H2Session:
    """One HTTP/2 connection served by a worker.

    Args:
        worker: the worker that owns the socket and routes the requests.
        sock: the socket (plain or TLS); closed by the worker.
        peer: the client's address.
        worker_resets: the reset budget shared by the worker's HTTP/2 connections
            (``h2_worker_max_resets_per_second``); None for none.

    The worker registers the session, then calls :meth:`start`.
    """

    def __init__(
        self, worker: Loop, sock: socket.socket, peer: object, worker_resets: ResetBudget | None = None
    ) -> None:
        settings = worker.settings
        self.worker = worker
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        # Settings.trusted_proxies parsed, for ctx.client (the worker sets it; Origin).
        self.proxies: TrustedProxies | None = None
        self.closed = False
        self._io = worker.io
        self._high_water = settings.write_high_water
        self._max_body = settings.max_body_size
        # Request bodies of every stream are buffered; together they stay under this.
        self._max_buffered = max(settings.h2_max_request_buffer, settings.max_body_size)
        self._buffered = 0
        self._max_header_list = settings.h2_max_header_list_size
        self._max_resets = settings.h2_max_resets_per_second
        self._resets = ResetBudget(self._max_resets)
        self._worker_resets = worker_resets
        self._max_streams = settings.h2_max_concurrent_streams
        self._max_frame = settings.h2_max_frame_size
        self._idle_ticks = worker.keepalive_ticks
        self.last_active = worker.tick
        # Response-body bytes held for streams (waiting for window or high water), and
        # the complete requests not routed yet because that was over h2_max_pending_output.
        self._held = 0
        self._max_held = settings.h2_max_pending_output
        self._deferred: deque[int] = deque()
        self._going_away = False
        self._out = b""  # bytes the connection produced that the socket has not taken yet
        self._mask = _READ_MASK
        self._streams: dict[int, _Stream] = {}
        self._blocked: dict[int, _Stream] = {}  # streams with response bytes left to send
        # The connection's framing, stream states and flow control: _wire/h2_connection.py.
        # Header blocks repeat (a client sends the same indexed fields on every request):
        # decoded ones are cached while hpack's dynamic table stays as it was, and response
        # fields are encoded without a dynamic table, each field's bytes cached.
        self._decoder = _CachingDecoder(self._max_header_list)
        encoder = FieldEncoder()
        conn = self._h2 = H2ServerConnection(
            self._decode,
            encoder.encode,
            {
                _MAX_CONCURRENT_STREAMS: settings.h2_max_concurrent_streams,
                _INITIAL_WINDOW_SIZE: settings.h2_initial_window_size,
                _MAX_FRAME_SIZE: settings.h2_max_frame_size,
                _MAX_HEADER_LIST_SIZE: self._max_header_list,
                _ENABLE_PUSH: 0,
            },
            connection_window=settings.h2_initial_window_size,
            max_header_block=self._max_header_list + _BLOCK_SLACK,
        )
        conn.header_table_size = partial(setattr, encoder, "header_table_size")
        # Field sections already checked and parsed on this connection, and response
        # field lists already built (keyed by status, Date line and Response lines).
        self._heads: dict[tuple[tuple[bytes, bytes], ...], _Head | _Refusal] = {}
        self._fields: dict[tuple[int, bytes, bytes, bytes], list[tuple[bytes, bytes]]] = {}

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """A header block's fields (hpack, cached); HeaderBlockError with the code RFC 9113 asks for."""
        try:
            return self._decoder.decode(block, raw=True)  # type: ignore[return-value]
        except hpack.exceptions.OversizedHeaderListError as exc:
            # Past h2_max_header_list_size: hpack stopped decoding, its state is lost with it.
            raise HeaderBlockError(ErrorCodes.ENHANCE_YOUR_CALM, f"header list over the bound: {exc}") from exc
        except (hpack.exceptions.HPACKError, IndexError, TypeError, UnicodeDecodeError) as exc:
            # RFC 9113 4.3: a block that cannot be decoded is a COMPRESSION_ERROR.
            raise HeaderBlockError(ErrorCodes.COMPRESSION_ERROR, f"header block: {exc}") from exc

    def start(self, initial: bytes = b"") -> None:
        """Send our SETTINGS, then handle ``initial`` (bytes already read: the prior-knowledge preface)."""
        try:
            if initial:
                self._receive(initial)
            else:
                self._flush()
        except Exception as exc:
            self._fail(exc)

    # -- events from the worker loop --------------------------------------------------

    def on_event(self, events: int) -> None:
        """An epoll event for this socket."""
        try:
            if events & select.EPOLLIN:
                self._on_readable()
            if not self.closed and events & _EPOLLOUT:
                self._flush()
                if self._deferred and not self.closed:
                    self._resume_deferred()  # the drained socket let held bodies go on
                    self._flush()
            elif not self.closed and events & (select.EPOLLERR | select.EPOLLHUP) and not events & select.EPOLLIN:
                self._close()
        except Exception as exc:
            self._fail(exc)

    def on_tick(self, tick: int) -> None:
        """Once a second: handler deadlines; close a connection idle past ``keepalive_timeout``."""
        waiting = [stream.waiting for stream in self._streams.values() if stream.waiting is not None]
        for pending in waiting:
            pending.expire(tick)
        if waiting:
            return  # not idle: its handlers wait (each within handler_timeout)
        if tick - self.last_active >= self._idle_ticks:
            try:
                if not self._going_away:
                    self._h2.close_connection(ErrorCodes.NO_ERROR)
                    self._going_away = True
                    self._flush()
            except Exception as exc:
                self._fail(exc)
            self._close()

    def _fail(self, exc: Exception) -> None:
        """Whatever goes wrong on one connection ends that connection, never the worker."""
        if isinstance(exc, StreamClosedError):
            # The connection refused to send: it is already closed in its eyes.
            log.info("worker %d: HTTP/2 connection with %s ended: %s", self.worker.index, self.peer, exc)
        else:
            log.exception("worker %d: HTTP/2 connection with %s failed", self.worker.index, self.peer)
        self._close(exc)

    def abort(self) -> None:
        """The worker is exiting: close now, whatever is in flight."""
        self._close()

    def stop(self) -> None:
        """Graceful stop: GOAWAY now, close once the open streams are answered."""
        if self.closed or self._going_away:
            return
        self._going_away = True
        # close_connection() would also refuse every later frame, WINDOW_UPDATEs
        # included, and the open streams could not finish: so the GOAWAY is built here,
        # after what is queued, and the connection goes on serving the streams it has.
        goaway = self._h2.goaway_frame(ErrorCodes.NO_ERROR)
        for stream_id, stream in list(self._blocked.items()):
            if type(stream.source) is StreamPump:
                # An event stream never ends by itself: end it, before the GOAWAY (clients reconnect elsewhere).
                stream.source.close()
                stream.source = None
                self._pump(stream_id, stream)
        self._out += self._h2.data_to_send() + goaway
        self._flush()

    # -- reading -------------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            data = self._io.read(self.fd, self.worker.recv_size)
        except BlockingIOError:
            return
        except OSError as exc:
            self._close(exc)
            return
        if not data:
            self._close()
            return
        self._receive(data)

    def _receive(self, data: bytes) -> None:
        """Hand a read to the connection in slices of ``_SLICE`` bytes, acting on each slice's events."""
        # The connection parses all it is given before we see an event, so 64 KiB of
        # HEADERS + RST_STREAM pairs is ~2,400 streams opened and reset.  In slices, a
        # connection over its reset budget is cut off after at most one slice (~300 streams).
        if len(data) <= _SLICE:
            self._receive_slice(data)
            return
        for at in range(0, len(data), _SLICE):
            self._receive_slice(data[at : at + _SLICE])
            if self.closed:
                return

    def _receive_slice(self, data: bytes) -> None:
        self.last_active = self.worker.tick
        try:
            events = self._h2.receive_data(data)
        except H2ConnectionError as exc:
            # GOAWAY with the matching error code is queued: send it and close.
            log.info("worker %d: HTTP/2 protocol error from %s: %s", self.worker.index, self.peer, exc)
            self._going_away = True
            self._flush()
            self._close(exc)
            return
        # A stream the peer reset in this same batch is not worth answering.
        reset = {e.stream_id for e in events if type(e) is StreamReset}
        for event in events:
            kind = type(event)
            if kind is RequestReceived:
                self._on_headers(event.stream_id, event.headers)  # type: ignore[attr-defined]
            elif kind is DataReceived:
                self._on_data(event)  # type: ignore[arg-type]
            elif kind is StreamEnded:
                stream_id = event.stream_id
                stream = self._streams.get(stream_id)
                if stream is not None and not stream.started and stream_id not in reset:
                    if self._deferred or self._held > self._max_held:
                        self._deferred.append(stream_id)  # routed once the held bodies drain
                    else:
                        self._dispatch(stream_id, stream)
            elif kind is StreamReset:
                self._forget(event.stream_id)
                if event.remote_reset and self._count_reset():  # type: ignore[attr-defined]
                    return
            elif kind is WindowUpdated:
                self._on_window(event.stream_id)
            elif kind is TrailersReceived:
                self._on_trailers(event.stream_id, event.headers)  # type: ignore[attr-defined]
            elif kind is ConnectionTerminated:
                # The peer's GOAWAY: we send nothing more, so what is left is dropped.
                self._going_away = True
                self._blocked.clear()
                self._deferred.clear()
                self._flush()
                self._close()
                return
            if self.closed:
                return
        if self._deferred:
            self._resume_deferred()  # WINDOW_UPDATEs may have let held bodies go
            if self.closed:
                return
        self._flush()

    def _on_headers(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        # Our MAX_CONCURRENT_STREAMS (RFC 9113 5.1.2: REFUSED_STREAM past it).
        if self._going_away or len(self._streams) >= self._max_streams:
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        key = tuple(headers)
        head = self._heads.get(key)
        if head is None:
            problem = request_problem(headers)
            if problem is not None:
                # RFC 9113 8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR.
                log.info("worker %d: malformed HTTP/2 request from %s: %s", self.worker.index, self.peer, problem)
                self._reset(stream_id, ErrorCodes.PROTOCOL_ERROR)
                return
            if len(self._heads) >= _CHECKED_SECTIONS:
                self._heads.clear()
            head = self._heads[key] = self._head(headers)
        self._streams[stream_id] = _Stream(head)

    def _on_trailers(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        problem = trailers_problem(headers)
        if problem is not None:
            log.info("worker %d: malformed HTTP/2 trailers from %s: %s", self.worker.index, self.peer, problem)
            self._reset(stream_id, ErrorCodes.PROTOCOL_ERROR)

    def _on_data(self, event: DataReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        # The body is buffered (bounded by max_body_size), so the window is given back at once.
        if event.flow_controlled_length:
            self._h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
        stream = self._streams.get(stream_id)
        if stream is None or stream.started or event.data is None:
            return
        size = len(event.data)
        stream.size += size
        self._buffered += size
        if stream.size > self._max_body or self._buffered > self._max_buffered:
            if stream.size > self._max_body:
                msg = f"request body over {self._max_body} bytes"
            else:
                msg = f"request bodies on this connection over {self._max_buffered} bytes"
            self._send_simple(stream_id, stream, 413, msg.encode())
            self._reset(stream_id, ErrorCodes.NO_ERROR)  # RFC 9113 8.1: stop the upload
            return
        stream.body.append(event.data)

    def _take_body(self, stream: _Stream) -> bytes:
        """A stream's request body, no longer counted against ``h2_max_request_buffer``."""
        body = b"".join(stream.body) if stream.body else b""
        self._buffered -= stream.size
        stream.size = 0
        stream.body = []
        return body

    def _count_reset(self) -> bool:
        """Count one peer reset; True when the connection was closed for resetting too fast."""
        now = monotonic()
        if not self._resets.take(now):
            why = f"{self.peer} reset over {self._max_resets} HTTP/2 streams a second"
        elif self._worker_resets is not None and not self._worker_resets.take(now):
            # Many connections, each under its own budget: the one resetting now goes.
            rate = self._worker_resets.rate
            why = f"this worker's HTTP/2 clients reset over {rate} streams a second, {self.peer} among them"
        else:
            return False
        log.warning("worker %d: %s; GOAWAY ENHANCE_YOUR_CALM", self.worker.index, why)
        self._h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
        self._going_away = True
        self._flush()
        self._close()
        return True

    # -- answering -------------------------------------------------------------------

    def _dispatch(self, stream_id: int, stream: _Stream) -> None:
        """Build the request, route it, and start the response."""
        req = self._request(stream_id, stream)
        if req is None:
            return
        resp = self.worker.routing.serve(req, partial(self._answer_later, stream_id, req), self)
        if resp is None:  # the pre-routing hook said DROP
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        if not isinstance(resp, Response):
            stream.waiting = resp  # an async def handler waits: _answer_later answers
            return
        self._answer(stream_id, stream, req, resp)

    def _answer_later(self, stream_id: int, req: Request, resp: Response) -> None:
        """A handler that waited has finished: answer its stream, if it is still open."""
        stream = self._streams.get(stream_id)
        if self.closed or stream is None:
            return
        stream.waiting = None
        self._answer(stream_id, stream, req, resp)
        self._flush()

    def _answer(self, stream_id: int, stream: _Stream, req: Request, resp: Response) -> None:
        try:
            self._start_response(stream_id, stream, req, resp)
        except ValueError as exc:  # a field the connection cannot send
            log.error("worker %d: cannot send the response on stream %d: %s", self.worker.index, stream_id, exc)
            if resp.stream_body is not None and stream.source is not resp.stream_body:
                close_stream(resp.stream_body)  # not attached yet: _reset would not close it (an async one waits)
            self._reset(stream_id, ErrorCodes.INTERNAL_ERROR)

    def _head(self, headers: list[tuple[bytes, bytes]]) -> _Head | _Refusal:
        """A well-formed field section as :class:`H2Request` takes it, or the refusal the engine answers."""
        method = path = b""
        authority: bytes | None = None
        lines: list[bytes] = []
        cookies: list[bytes] = []
        # The header list size was bounded by hpack while decoding (h2_max_header_list_size).
        for name, value in headers:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
                continue
            if name == b"cookie":
                cookies.append(value)
                continue
            lines.append(name + b": " + value)
        if cookies:
            # RFC 9113 8.2.3: cookie pairs may come as separate fields; joined for HTTP/1.1 semantics.
            lines.append(b"cookie: " + b"; ".join(cookies))
        if authority is not None and not any(line.startswith(b"host: ") for line in lines):
            lines.insert(0, b"host: " + authority)
        if not method or method.translate(None, _METHOD_CHARS):
            return 400, b"request :method is not a token"
        if not path or not (path[:1] == b"/" or (path == b"*" and method == b"OPTIONS")):
            return 400, b"request :path must start with /"
        if len(path) > self.worker.settings.max_uri_length:
            return 414, b"request target too long"
        return _Head(method.decode("ascii"), path.decode("latin-1"), lines)

    def _request(self, stream_id: int, stream: _Stream) -> Request | None:
        """The :class:`Request` for a finished request stream, or None after answering an error."""
        head = stream.head
        if type(head) is tuple:
            self._send_simple(stream_id, stream, head[0], head[1])
            return None
        assert isinstance(head, _Head)
        body = self._take_body(stream)
        return H2Request(head.method, head.target, head.raw_path, head.query, True, True, list(head.lines), body)

    def _start_response(self, stream_id: int, stream: _Stream, req: Request, resp: Response) -> None:
        status = resp.status
        stream.started = True
        h2conn = self._h2
        if resp.takeover is not None:
            # A WebSocket upgrade, or the proxy's upstream exchange: both are driven by the HTTP/1.1 path only.
            reason = (
                b"the reverse proxy needs HTTP/1.1"
                if isinstance(resp.takeover, ProxyPlan)
                else b"WebSocket needs HTTP/1.1"
            )
            self._send_simple(stream_id, stream, 501, reason)
            return
        file = resp.file_body
        if status == 206 and send_whole_if_range_fails(req, resp):
            status = 200
        if file is not None and status == 200 and req.method in ("GET", "HEAD") and not_modified(req, file):
            file.close()
            file = None
            status = 304
        head = self._headers(status, resp)
        source = resp.stream_body
        bodiless = req.method == "HEAD" or status in _NO_BODY
        if bodiless or (source is None and file is None and not resp.body):
            h2conn.send_headers(stream_id, head, end_stream=True)
            if source is not None:
                close_stream(source)
            if file is not None:
                file.close()
            self._streams.pop(stream_id, None)
            return
        body = resp.body
        if (
            source is None
            and file is None
            and len(body) <= h2conn.max_outbound_frame_size
            and len(body) <= h2conn.local_flow_control_window(stream_id)
            and len(self._out) <= self._high_water
        ):
            # The common answer: a bytes body within one frame and the window goes out
            # with its HEADERS now, END_STREAM on it (what _pump would do, in two calls).
            h2conn.send_headers(stream_id, head)
            h2conn.send_data(stream_id, body, end_stream=True)
            self._streams.pop(stream_id, None)
            return
        h2conn.send_headers(stream_id, head)
        if file is not None:
            stream.file = file
        elif source is not None:
            stream.source = source = being_sent(source)
            if type(source) is StreamPump:
                source.wake = partial(self._pumped, stream_id, stream)  # an async body: see _pull_pump
        else:
            stream.pending.append(resp.body)  # by reference: sliced frame by frame as windows open
            self._held += len(resp.body)
        self._blocked[stream_id] = stream
        self._pump(stream_id, stream)

    def _headers(self, status: int, resp: Response) -> list[tuple[bytes, bytes]]:
        """The response's fields, :status first; built once per distinct status, Date and lines."""
        date = self.worker.date_line
        key = (status, date, resp.content_lines, resp.extra_lines)
        head = self._fields.get(key)
        if head is not None:
            return head
        block = resp.extra_lines if status in _NO_BODY else resp.content_lines + resp.extra_lines
        head = [(b":status", b"%d" % status)]
        for line in (date + block).split(b"\r\n"):
            if not line:
                continue
            name, _, value = line.partition(b": ")
            name = name.lower()
            if name not in _HOP_BY_HOP:
                head.append((name, value))
        if len(self._fields) >= _CHECKED_SECTIONS:
            self._fields.clear()
        self._fields[key] = head
        return head

    def _send_simple(self, stream_id: int, stream: _Stream, status: int, body: bytes) -> None:
        """Answer a stream with a short text response (errors the engine produces itself)."""
        stream.started = True
        self._take_body(stream)
        head = [
            (b":status", b"%d" % status),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ]
        try:
            self._h2.send_headers(stream_id, head)
        except StreamClosedError:
            self._forget(stream_id)
            return
        stream.pending.append(body)
        self._held += len(body)
        self._blocked[stream_id] = stream
        self._pump(stream_id, stream)

    def _resume_deferred(self) -> None:
        """Route the requests that waited for held response bodies to drain, while they stay under the bound."""
        deferred = self._deferred
        while deferred and self._held <= self._max_held and not self.closed:
            stream_id = deferred.popleft()
            stream = self._streams.get(stream_id)
            if stream is not None and not stream.started:  # not reset meanwhile
                self._dispatch(stream_id, stream)

    # -- sending bodies under flow control ----------------------------------------------

    def _pump(self, stream_id: int, stream: _Stream) -> None:
        """Send as much of a stream's body as its window, the frame size and high water allow."""
        h2conn = self._h2
        pending = stream.pending
        queued = 0
        try:
            while True:
                window = h2conn.local_flow_control_window(stream_id)
                blocked = window <= 0 or len(self._out) > self._high_water
                if not pending:
                    if blocked and (stream.source is not None or stream.file is not None):
                        # Pull a body only once its bytes can leave: a peer that opens
                        # no window makes us produce (and hold) nothing more.
                        return
                    pulled = self._pull(stream)
                    if pulled is None:
                        return  # an async body waits for its producer, which wakes it (_pumped)
                    if not pulled:
                        h2conn.end_stream(stream_id)
                        self._blocked.pop(stream_id, None)
                        self._streams.pop(stream_id, None)
                        return
                if blocked:
                    return  # resumed by a WINDOW_UPDATE or by the socket draining
                chunk = pending[0]
                size = min(len(chunk), window, h2conn.max_outbound_frame_size)
                self._held -= size
                if size == len(chunk):
                    pending.popleft()
                    if not pending and stream.source is None and stream.file is None:
                        # The last bytes of a body held in memory: END_STREAM rides on them.
                        h2conn.send_data(stream_id, chunk, end_stream=True)
                        self._blocked.pop(stream_id, None)
                        self._streams.pop(stream_id, None)
                        return
                    h2conn.send_data(stream_id, chunk)
                else:
                    view = memoryview(chunk)
                    pending[0] = view[size:]
                    h2conn.send_data(stream_id, bytes(view[:size]))
                queued += size
                if queued > _PULL:
                    # Hand the frames to the socket now and then, so the high-water check sees them.
                    queued = 0
                    self._flush()
                    if self.closed:
                        return
        except StreamClosedError:
            self._forget(stream_id)
        except _BodyFailed:
            self._reset(stream_id, ErrorCodes.INTERNAL_ERROR)

    def _pull(self, stream: _Stream) -> bool | None:
        """Refill a stream's pending bytes from its stream or file; False when the body is done.

        None: an async body's producer is still producing (see :meth:`_pull_pump`).

        Raises:
            _BodyFailed: the stream iterator raised, or the file shrank.
        """
        source = stream.source
        if isinstance(source, StreamPump):
            return self._pull_pump(stream, source)
        if source is not None:
            while True:
                try:
                    chunk = next(source)
                except StopIteration:
                    stream.source = None
                    return False
                except Exception as exc:
                    log.exception("worker %d: response stream failed", self.worker.index)
                    stream.source = None
                    raise _BodyFailed from exc
                if isinstance(chunk, str):
                    chunk = chunk.encode()
                if chunk:
                    stream.pending.append(chunk)
                    self._held += len(chunk)
                    return True
        body = stream.file
        if body is not None:
            if body.length <= 0:
                body.close()
                stream.file = None
                return False
            data = body.read(_PULL)
            if not data:
                log.error("worker %d: file ended %d bytes early", self.worker.index, body.length)
                body.close()
                stream.file = None
                raise _BodyFailed
            body.offset += len(data)
            body.length -= len(data)
            stream.pending.append(data)
            self._held += len(data)
            return True
        return False

    def _pull_pump(self, stream: _Stream, pump: StreamPump) -> bool | None:
        """Take what an async body produced; ask its producer for more (called only when the bytes can leave).

        Returns True with a chunk pending, False at the body's end, None while the
        producer waits: it calls :meth:`_pumped` once it has produced.

        Raises:
            _BodyFailed: the producer raised.
        """
        while True:
            chunk = pump.take()
            if chunk is not None:
                stream.pending.append(chunk)
                self._held += len(chunk)
                return True
            if pump.error is not None:
                log.error("worker %d: response stream failed", self.worker.index, exc_info=pump.error)
                pump.close()
                stream.source = None
                raise _BodyFailed from pump.error
            if pump.ended:
                pump.close()  # its keep-alive ticker
                stream.source = None
                return False
            if pump.producing:
                return None
            pump.start()

    def _pumped(self, stream_id: int, stream: _Stream) -> None:
        """An async body's producer produced (or ended, or failed) after waiting: send it now."""
        if self.closed or self._streams.get(stream_id) is not stream:
            return
        try:
            self._pump(stream_id, stream)
            self._flush()
        except Exception as exc:
            self._fail(exc)

    def _on_window(self, stream_id: int) -> None:
        if stream_id:
            stream = self._blocked.get(stream_id)
            if stream is not None:
                self._pump(stream_id, stream)
        else:
            self._pump_all()

    def _pump_all(self) -> bool:
        """Pump every stream with bytes to send; False if the connection closed meanwhile."""
        for stream_id, stream in list(self._blocked.items()):
            if self.closed:
                return False
            if len(self._out) > self._high_water:
                break
            self._pump(stream_id, stream)
        return not self.closed

    def _reset(self, stream_id: int, code: int) -> None:
        try:
            self._h2.reset_stream(stream_id, code)
        except StreamClosedError:
            pass
        self._forget(stream_id)

    def _forget(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        self._blocked.pop(stream_id, None)
        if stream is not None:
            self._take_body(stream)
            self._held -= sum(map(len, stream.pending))
            stream.pending.clear()
            _release(stream)

    # -- writing -----------------------------------------------------------------------

    def _flush(self) -> None:
        """Write what the connection produced; wait for EPOLLOUT if the socket is full."""
        if self.closed:
            return
        data = self._h2.data_to_send()
        if data:
            self._out = self._out + data if self._out else data
        while self._out:
            try:
                written = self._io.write(self.fd, self._out)
            except BlockingIOError:
                break
            except OSError as exc:
                self._close(exc)
                return
            self.last_active = self.worker.tick
            self._out = self._out[written:]
            if not self._out and self._blocked:
                # The socket drained: bodies held back by write_high_water go on.
                if not self._pump_all():
                    return  # pumping closed the connection
                more = self._h2.data_to_send()
                if more:
                    # Pumping may have flushed, and left bytes the socket did not take, first.
                    self._out = self._out + more if self._out else more
        if self._going_away and not self._out and not self._blocked and not self._deferred and not self._waiting():
            self._close()
            return
        # Stop reading while too much output is pending (a client that does not read).
        mask = (_READ_MASK if len(self._out) <= self._high_water else 0) | (_EPOLLOUT if self._out else 0)
        if mask != self._mask:
            self._mask = mask
            self.worker.channels.rewatch(self.fd, mask)

    def _waiting(self) -> bool:
        """Whether a handler of this connection still waits (a graceful stop lets it finish)."""
        return any(stream.waiting is not None for stream in self._streams.values())

    def _close(self, error: BaseException | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        for stream in self._streams.values():
            _release(stream)
        self._streams.clear()
        self._blocked.clear()
        self.worker.channels.release(self, error)


class _CountedTable(hpack.table.HeaderTable):
    """hpack's dynamic table, counting its changes (an entry added, its size changed)."""

    def __init__(self) -> None:
        super().__init__()
        self.generation = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.generation += 1
        super().add(name, value)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.generation += 1
        hpack.table.HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class _CachingDecoder(hpack.Decoder):
    """hpack's decoder, answering a header block it decoded before from a cache.

    A block's fields depend only on its bytes and the dynamic table, so an entry
    is good while the table has not changed since (its generation) and the
    header-list bound is the one it was checked against.
    """

    def __init__(self, max_header_list_size: int) -> None:
        super().__init__(max_header_list_size=max_header_list_size)
        self.header_table = self._table = _CountedTable()
        self._blocks: dict[bytes, tuple[int, int, list[hpack.HeaderTuple]]] = {}

    def decode(self, data: bytes, raw: bool = False) -> list[hpack.HeaderTuple]:
        table = self._table
        hit = self._blocks.get(data) if raw else None
        if hit is not None and hit[0] == table.generation and hit[1] == self.max_header_list_size:
            return hit[2]
        generation = table.generation
        fields = list(super().decode(data, raw))
        if raw and table.generation == generation:
            if len(self._blocks) >= _CACHED_BLOCKS:
                self._blocks.clear()
            self._blocks[bytes(data)] = (generation, self.max_header_list_size, fields)
        return fields


class _BodyFailed(Exception):
    """A response body could not be produced after its headers were sent."""


def _release(stream: _Stream) -> None:
    if stream.waiting is not None:
        stream.waiting.cancel()
        stream.waiting = None
    if stream.source is not None:
        close_stream(stream.source)
        stream.source = None
    if stream.file is not None:
        stream.file.close()
        stream.file = None
