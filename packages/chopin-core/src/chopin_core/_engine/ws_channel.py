"""How an upgraded WebSocket sends: through its connection and worker (:class:`chopin_core.websocket.Outbound`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..connection import Connection
    from ..topics import Subscriber
    from .channel import Loop

__all__ = ["WebSocketOutbound"]


class WebSocketOutbound:
    """One upgraded connection's way out: frames are written by the worker's loop.

    Args:
        loop: the worker serving the connection.
        conn: the upgraded connection.
    """

    __slots__ = ("conn", "loop")

    def __init__(self, loop: Loop, conn: Connection) -> None:
        self.loop = loop
        self.conn = conn

    @property
    def closed(self) -> bool:
        """Whether the connection is gone."""
        return self.conn.closed

    @property
    def topics(self) -> dict[str, set[Subscriber]]:
        """The worker's topics and their subscribers."""
        return self.loop.topics

    def send_frame(self, frame: bytes) -> bool:
        """Queue ``frame``; False if the connection is closed."""
        return self.loop.send_frame(self.conn, frame)

    def start_closing(self) -> None:
        """A close frame was sent: wait for the peer's answer within ``header_timeout``."""
        self.loop.start_closing(self.conn)
