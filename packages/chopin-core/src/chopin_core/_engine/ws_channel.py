"""Upgraded WebSockets as channels of the worker's loop.

How it works: when a handler answers an upgrade (:class:`~chopin_core.websocket.Upgrade`),
:meth:`WebSocketService.upgrade` takes the connection out of the HTTP/1.1 table
(:meth:`~chopin_core._engine.channel.Loop.disown`) and puts a :class:`WebSocketChannel`
in the loop's channel table under the same fd, with the 101 head (and anything
answered before it) as its first output.  From then on the loop drives it like any
other channel: ``on_event`` reads frames into the sans-IO codec
(:mod:`chopin_core._wire.ws_frames`), answers what the protocol requires and hands
whole messages to the handler; ``on_tick`` closes it when idle or when the peer does
not answer our close; ``stop`` closes it with 1001; ``abort`` drops it.  Frames sent
while a batch is handled (one read of the socket, one read of the topic inbox) are
held and leave in one write per connection (:meth:`WebSocketService.cork`).  The
channel is the :class:`~chopin_core.websocket.Outbound` of its
:class:`~chopin_core.websocket.WebSocket`, so the app layer never names the engine.
"""

from __future__ import annotations

import logging
import math
import select
from typing import TYPE_CHECKING, Final

from .._wire.ws_deflate import PerMessageDeflate
from .._wire.ws_frames import (
    BinaryMessage,
    CloseReceived,
    ProtocolFailure,
    TextMessage,
    WebSocketConnection,
    handshake_response,
)
from ..connection import consume, pending_bytes
from ..websocket import Upgrade, WebSocket

if TYPE_CHECKING:
    import socket

    from ..connection import Connection
    from ..response import Response
    from ..topics import Subscriber
    from .channel import Loop

__all__ = ["WebSocketChannel", "WebSocketService"]

# The worker's logger: these messages were the worker's before they moved here.
log = logging.getLogger("chopin_core.worker")

_READ_MASK: Final = select.EPOLLIN | select.EPOLLRDHUP
_EPOLLIN: Final = select.EPOLLIN
_EPOLLOUT: Final = select.EPOLLOUT
_ERR_HUP: Final = select.EPOLLERR | select.EPOLLHUP


class WebSocketService:
    """One worker's WebSockets: the upgrade, and the batch of frames held while messages are handled.

    Args:
        loop: the worker.
    """

    __slots__ = ("close_ticks", "corked", "dispatching", "idle_ticks", "loop")

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        settings = loop.settings
        # Ticks are whole seconds of a clock read at an unknown fraction: n seconds is n + 1 ticks.
        self.idle_ticks = math.ceil(settings.websocket_idle_timeout) + 1
        self.close_ticks = math.ceil(settings.header_timeout) + 1
        # Channels with frames held until the batch is handled (see cork), or None.
        self.corked: set[WebSocketChannel] | None = None
        # The channel whose frames are being handled: its sends are written once the read is.
        self.dispatching: WebSocketChannel | None = None

    def upgrade(self, conn: Connection, resp: Response, out: list[bytes | memoryview]) -> None:
        """Switch ``conn`` to WebSocket: the 101 head, the handler's ``on_open``, then any early frames.

        ``out`` is ``conn``'s output.  Once the handler is made the connection leaves
        the HTTP/1.1 table: what is in ``out`` goes to the channel, which writes it.
        """
        up = resp.takeover
        assert isinstance(up, Upgrade)
        loop = self.loop
        if up.deflate is None:
            out.append(handshake_response(up.key, up.subprotocol))
            proto = WebSocketConnection(up.max_message_size)
        else:
            # RFC 7692 5: the accepted offer's parameters go back in the 101 head.
            extensions = (("Sec-WebSocket-Extensions", up.deflate.response_value()),)
            out.append(handshake_response(up.key, up.subprotocol, extensions))
            proto = WebSocketConnection(up.max_message_size, deflate=PerMessageDeflate(up.deflate))
        if not loop.running:
            conn.close_after = True  # in process (no socket): the handshake's answer, and no session
            return
        try:
            handler = up.factory()
        except Exception:
            log.exception("worker %d: WebSocket handler factory failed", loop.index)
            out.append(proto.send_close(1011, "internal error"))
            conn.close_after = True
            return
        early = conn.parser.take_remaining()
        close_after = conn.close_after
        peer = conn.peer
        last_active = conn.last_active
        channel = WebSocketChannel(self, loop.disown(conn), peer, list(out))
        out.clear()
        # The caller goes on with the HTTP/1.1 connection, now closed and empty: its
        # flush (not its one-write fast path) is then a no-op.
        conn.big = True
        channel.close_after = close_after
        channel.last_active = last_active
        loop.channels[channel.fd] = channel
        ws = channel.ws = WebSocket(channel, proto, handler, up.ctx, up.subprotocol)
        previous, self.dispatching = self.dispatching, channel
        try:
            handler.on_open(ws)
        except Exception:
            log.exception("worker %d: WebSocket on_open failed", loop.index)
            ws.close(1011, "internal error")
        finally:
            self.dispatching = previous
        if early:
            channel.receive(early, flush=False)
        if not channel.closed:
            channel.flush()

    def cork(self) -> bool:
        """Hold WebSocket frames until :meth:`uncork`; False if already held (the outer holder uncorks).

        A batch of messages (one read of a WebSocket, one read of the topic inbox)
        then leaves in one write per connection instead of one per frame.
        """
        if self.corked is not None:
            return False
        self.corked = set()
        return True

    def uncork(self, skip: WebSocketChannel | None = None) -> None:
        """Write what was held since :meth:`cork` (``skip``: a channel its caller flushes itself)."""
        corked, self.corked = self.corked, None
        if corked:
            for channel in corked:
                if channel is not skip and not channel.closed:
                    channel.flush()


class WebSocketChannel:
    """One upgraded connection: a channel of the loop, and its :class:`~chopin_core.websocket.WebSocket`'s way out.

    Args:
        service: the worker's WebSockets.
        sock: the connection's socket (its fd already in the loop's epoll, for reading).
        peer: the client's address.
        out: what is owed to the client already (the 101 head).

    Attributes:
        out: buffers waiting to be written, in order.
        last_active: tick of the last read or write progress.
        closing_since: tick our close frame was sent, or -1.
        close_after: close once ``out`` is written.
    """

    __slots__ = (
        "close_after",
        "closed",
        "closing_since",
        "fd",
        "last_active",
        "loop",
        "out",
        "peer",
        "reading",
        "service",
        "sock",
        "waiting_write",
        "ws",
    )

    def __init__(
        self, service: WebSocketService, sock: socket.socket, peer: object, out: list[bytes | memoryview]
    ) -> None:
        self.service = service
        self.loop = service.loop
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.out = out
        self.ws: WebSocket | None = None
        self.last_active = self.loop.tick
        self.closing_since = -1
        self.close_after = False
        self.closed = False
        self.reading = True
        self.waiting_write = False

    # -- the Outbound of the WebSocket ------------------------------------------------

    @property
    def topics(self) -> dict[str, set[Subscriber]]:
        """The worker's topics and their subscribers."""
        return self.loop.topics

    def send_frame(self, frame: bytes) -> bool:
        """Queue a frame; written now unless this connection's own read is being handled."""
        if self.closed:
            return False
        out = self.out
        out.append(frame)
        if self.waiting_write:
            # The socket is full: EPOLLOUT writes what is queued (flushing here would copy it
            # all again for every frame).  A consumer that does not read would make the worker
            # hold everything sent to it, so the pending total is checked every 64 frames and
            # on large ones (summing a long list on every frame would cost as much).
            if (len(out) & 63 == 0 or len(frame) > 16384) and pending_bytes(
                out
            ) > 8 * self.loop.settings.write_high_water:
                self._drop_slow()
                return False
            return True
        service = self.service
        corked = service.corked
        if corked is not None:
            corked.add(self)  # written once the batch is handled (see WebSocketService.cork)
        elif service.dispatching is not self:
            self.flush()
        return True

    def start_closing(self) -> None:
        """We sent a close: the peer must answer within ``header_timeout``."""
        self.closing_since = self.loop.tick

    def _drop_slow(self) -> None:
        """Close a WebSocket whose unsent output passed ``8 * write_high_water``: 1008, nothing more queued.

        The close frame goes after what is queued (a slow reader still gets it); one
        that reads nothing is cut after ``header_timeout`` like any unanswered close.
        """
        ws = self.ws
        log.warning(
            "worker %d: WebSocket client too slow (%d bytes unsent), closing it with 1008",
            self.loop.index,
            pending_bytes(self.out),
        )
        if ws is None or ws.proto.close_sent:
            self.close()
            return
        self.out.append(ws.proto.send_close(1008, "too slow: messages not read"))  # RFC 6455 7.4.1
        self.close_after = True
        self._stop_reading()
        self.start_closing()
        ws.notify_close(1008, "too slow")
        if self.service.dispatching is not self:
            self.flush()

    # -- the Channel ------------------------------------------------------------------

    def on_event(self, events: int) -> None:
        """Read frames when readable, write when writable; an error or hang-up alone closes."""
        if events & _EPOLLIN:
            self._on_readable()
        if events & _EPOLLOUT and not self.closed:
            self.flush()
        elif events & _ERR_HUP and not events & _EPOLLIN and not self.closed:
            self.close()

    def on_tick(self, tick: int) -> None:
        """Close when the peer has not answered our close within ``header_timeout``, or when idle."""
        unanswered = self.closing_since >= 0 and tick - self.closing_since >= self.service.close_ticks
        if unanswered or tick - self.last_active >= self.service.idle_ticks:
            self.close()

    def stop(self) -> None:
        """A graceful stop: close with 1001 (the connection ends when the peer answers)."""
        if self.ws is not None:
            self.ws.close(1001, "server shutting down")

    def abort(self) -> None:
        """The worker exits: close now."""
        self.close()

    def close(self, error: BaseException | None = None) -> None:
        """Close the connection now (the handler hears 1006 unless a close was exchanged)."""
        if self.closed:
            return
        self.closed = True
        self.out.clear()
        if self.ws is not None:
            self.ws.notify_close(1006, "connection lost")
        self.loop.channels.release(self, error)

    # -- reading and writing ----------------------------------------------------------

    def _on_readable(self) -> None:
        loop = self.loop
        try:
            data = loop.io.read(self.fd, loop.recv_size)
        except BlockingIOError:
            return
        except OSError as exc:
            self.close(exc)
            return
        if not data:
            # The peer closed its side: finish what is owed, then close.
            if self.out:
                self.close_after = True
                self._stop_reading()
            else:
                self.close()
            return
        self.last_active = loop.tick
        self.receive(data)

    def receive(self, data: bytes, flush: bool = True) -> None:
        """Feed frames to the codec, answer what the protocol requires, hand messages to the handler."""
        ws = self.ws
        assert ws is not None
        proto = ws.proto
        out = self.out
        service = self.service
        previous, service.dispatching = service.dispatching, self
        corked = service.cork()  # what its messages send to other connections leaves once, at the end
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
                        log.exception("worker %d: WebSocket on_message failed", self.loop.index)
                        ws.close(1011, "internal error")
                        break
                elif kind is CloseReceived or kind is ProtocolFailure:
                    # The handshake is complete (or failed): close once our frames are out.
                    self.close_after = True
                    self._stop_reading()
                    ws.notify_close(event.code, event.reason)  # type: ignore[union-attr]
                    break
        finally:
            service.dispatching = previous
            if corked:
                service.uncork(None if flush else self)
        if flush and not self.closed:
            self.flush()

    def flush(self) -> None:
        """Write what is pending; wait for ``EPOLLOUT`` when the socket is full; close once done if asked."""
        out = self.out
        loop = self.loop
        while out:
            try:
                if len(out) == 1:
                    data = out[0]
                else:
                    data = b"".join(out)
                    out[:] = (data,)
                written = loop.io.write(self.fd, data)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                self.close(exc)
                return
            if not written:
                self._wait_writable()
                return
            self.last_active = loop.tick
            loop.count_sent(written)
            consume(out, written)
        if self.close_after:
            self.close()
        elif self.waiting_write or not self.reading:
            # Drained: stop waiting for EPOLLOUT, and read again after back-pressure.
            self.waiting_write = False
            self.reading = True
            self._set_mask()

    def _wait_writable(self) -> None:
        self.waiting_write = True
        if self.reading and pending_bytes(self.out) > self.loop.settings.write_high_water:
            self.reading = False  # back-pressure: stop reading until the output drains
        self._set_mask()

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self._set_mask()

    def _set_mask(self) -> None:
        if not self.closed:
            mask = (_READ_MASK if self.reading else 0) | (_EPOLLOUT if self.waiting_write else 0)
            self.loop.channels.rewatch(self.fd, mask)
