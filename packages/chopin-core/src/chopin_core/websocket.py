"""WebSocket endpoints that live in the worker's epoll loop.

``router.websocket("/chat", ChatHandler)`` answers the upgrade (RFC 6455 4.2) and
then keeps the connection in the same loop as HTTP connections: each read goes
through the sans-IO codec (:mod:`chopin_core._wire.ws_frames`) and whole messages
are handed to the handler; permessage-deflate (RFC 7692,
:mod:`chopin_core._wire.ws_deflate`) is negotiated when the client offers it, unless the
endpoint says ``compression=False``.  Handlers run synchronously in the worker, so they must
not block; ``ws.send`` only queues bytes, which the loop writes as the socket takes
them.  Topics (:mod:`chopin_core.topics`) reach every subscriber of every worker of
the server, and of every server sharing a backplane.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from ._wire.ws_deflate import DeflateParams, negotiate
from ._wire.ws_frames import check_upgrade, select_subprotocol
from .response import Response

if TYPE_CHECKING:
    from ._wire.ws_frames import WebSocketConnection
    from .context import Context
    from .topics import Subscriber
    from .types import Handler

__all__ = ["DEFAULT_MAX_MESSAGE", "Outbound", "Upgrade", "WebSocket", "WebSocketHandler", "websocket_endpoint"]

log = logging.getLogger("chopin_core.websocket")

DEFAULT_MAX_MESSAGE: Final = 16 * 1024 * 1024


class WebSocketHandler:
    """Override what you need; the factory given to ``router.websocket`` makes one per connection."""

    def on_open(self, ws: WebSocket) -> None:
        """The handshake is done; ``ws`` can send."""

    def on_message(self, ws: WebSocket, message: str | bytes) -> None:
        """A whole message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_close(self, ws: WebSocket, code: int, reason: str) -> None:
        """The connection ended: the peer's close code, ours, or 1006 if it just dropped."""


class Upgrade:
    """What an upgrade response carries to the worker."""

    __slots__ = ("ctx", "deflate", "factory", "key", "max_message_size", "subprotocol")

    def __init__(
        self,
        ctx: Context,
        factory: Callable[[], WebSocketHandler],
        key: str,
        subprotocol: str | None,
        max_message_size: int,
        deflate: DeflateParams | None = None,
    ) -> None:
        self.ctx = ctx
        self.deflate = deflate
        self.factory = factory
        self.key = key
        self.subprotocol = subprotocol
        self.max_message_size = max_message_size


class Outbound(Protocol):
    """What a :class:`WebSocket` needs of the engine serving its connection.

    Implemented by :class:`chopin_core._engine.ws_channel.WebSocketChannel`, so the
    app layer never names the worker or its connections.
    """

    @property
    def closed(self) -> bool:
        """Whether the connection is gone."""
        ...

    @property
    def topics(self) -> dict[str, set[Subscriber]]:
        """This worker's topics and their subscribers."""
        ...

    def send_frame(self, frame: bytes) -> bool:
        """Queue ``frame``; False if the connection is closed."""
        ...

    def start_closing(self) -> None:
        """A close frame was sent: the peer has ``header_timeout`` to answer."""
        ...


class WebSocket:
    """One open WebSocket, as handlers see it.

    Attributes:
        ctx: the context of the upgrade request (path parameters, headers).
        subprotocol: the subprotocol chosen in the handshake, if any.
        state: a dict for the handler's per-connection data.
    """

    __slots__ = ("_notified", "_out", "_topics", "ctx", "handler", "proto", "state", "subprotocol")

    def __init__(
        self,
        out: Outbound,
        proto: WebSocketConnection,
        handler: WebSocketHandler,
        ctx: Context,
        subprotocol: str | None,
    ) -> None:
        self._out = out
        self.proto = proto
        self.handler = handler
        self.ctx = ctx
        self.subprotocol = subprotocol
        self.state: dict[str, Any] = {}
        self._topics: set[str] = set()
        self._notified = False

    @property
    def closed(self) -> bool:
        """Whether the connection is gone or closing (nothing more can be sent)."""
        # A broken codec still takes answers to the messages before the failure; the
        # failing close frame follows them, and close_sent is True from then on.
        return self._out.closed or self.proto.close_sent

    def send(self, message: str | bytes) -> bool:
        """Queue a text (``str``) or binary (``bytes``) message; False if the socket is closing."""
        if self.closed:
            return False
        frame = self.proto.send_text(message) if isinstance(message, str) else self.proto.send_binary(message)
        return self._out.send_frame(frame)

    def ping(self, payload: bytes = b"") -> bool:
        """Send a ping (the client answers with a pong)."""
        if self.closed:
            return False
        return self._out.send_frame(self.proto.send_ping(payload))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the TCP connection ends when the peer answers."""
        if self.closed:
            return
        self._out.send_frame(self.proto.send_close(code, reason))
        self._out.start_closing()
        self.notify_close(code, reason)

    def subscribe(self, topic: str) -> None:
        """Receive what is published to ``topic`` (:meth:`publish`, :func:`chopin_core.topics.publish`).

        Each message arrives as a frame (text or binary, as published).  If this
        client's unsent output passes ``8 * write_high_water`` it is closed with 1008.
        """
        self._topics.add(topic)
        self._out.topics.setdefault(topic, set()).add(self)

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic``."""
        self._topics.discard(topic)
        members = self._out.topics.get(topic)
        if members is not None:
            members.discard(self)
            if not members:
                del self._out.topics[topic]

    def publish(self, topic: str, message: str | bytes, *, include_self: bool = False) -> int:
        """Send ``message`` to every subscriber of ``topic``, on every worker (see :func:`chopin_core.topics.publish`).

        Returns:
            How many subscribers of this worker got it.

        Raises:
            MessageTooLarge: the message is too large for a path it must take; nobody got it.
            BackplaneUnavailable: the backplane is down and its queue is full (this server's subscribers got it).
        """
        from .topics import current

        return current().publish(topic, message, skip=None if include_self else self)

    def notify_close(self, code: int, reason: str) -> None:
        """Tell the handler once, and leave every topic."""
        if self._notified:
            return
        self._notified = True
        for topic in list(self._topics):
            self.unsubscribe(topic)
        try:
            self.handler.on_close(self, code, reason)
        except Exception:
            log.exception("websocket on_close failed")

    def __repr__(self) -> str:
        return f"<WebSocket {self.ctx.req.path} {'closed' if self.closed else 'open'}>"


def websocket_endpoint(
    factory: Callable[[], WebSocketHandler],
    *,
    subprotocols: Sequence[str] = (),
    max_message_size: int = DEFAULT_MAX_MESSAGE,
    compression: bool = True,
) -> Handler:
    """A route handler that validates the upgrade and hands the connection to ``factory()``'s handler.

    A request that is not a valid upgrade gets 400 (426 with ``Sec-WebSocket-Version: 13``
    for another protocol version).

    Args:
        factory: called once per connection for its handler.
        subprotocols: the subprotocols offered, in order of preference.
        max_message_size: a bigger message (inflated size, when compressed) closes with 1009.
        compression: accept a client's permessage-deflate offer (RFC 7692).
    """

    def upgrade(ctx: Context) -> Response:
        req = ctx.req
        rejection = check_upgrade(req.method, req.http11, req.headers)
        if rejection is not None:
            resp = Response.text(rejection.message, rejection.status)
            for name, value in rejection.headers:
                resp.with_header(name, value)
            return resp.with_header("Connection", "close")
        key = req.headers.get("sec-websocket-key") or ""
        chosen = select_subprotocol(req.headers.get("sec-websocket-protocol"), subprotocols)
        resp = Response(101)
        deflate = negotiate(req.headers.get("sec-websocket-extensions")) if compression else None
        resp.takeover = Upgrade(ctx, factory, key, chosen, max_message_size, deflate)
        return resp

    upgrade.__doc__ = getattr(factory, "__doc__", None) or "WebSocket endpoint."
    return upgrade
