"""A chat room over WebSocket, server-sent events and plain POSTs, on every worker and every server.

Run it from the repository root (chopin-core installed)::

    PORT=8000 WORKERS=4 python examples/chat.py
    CHAT_BACKPLANE=redis://127.0.0.1:6379 PORT=8001 python examples/chat.py       # several servers
    CHAT_BACKPLANE=postgres://postgres@127.0.0.1:5432/postgres PORT=8002 python examples/chat.py

- ``GET /ws``: a WebSocket; every text message a client sends goes to every client
  (WebSocket and SSE), the sender included.
- ``GET /events``: the same messages as server-sent events, one ``data:`` event each.
- ``POST /say`` with a text body: published like a WebSocket message; 204.

Without ``CHAT_BACKPLANE`` the room spans the workers of one server (no outside
service); with it (a ``postgres://`` or ``redis://`` URL), every server started with
the same URL shares the room.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from chopin_core import Chopin, Context, Response, Router, topics
from chopin_core.topics import BackplaneUnavailable, MessageTooLarge
from chopin_core.websocket import WebSocket, WebSocketHandler

ROOM = "chat"

router = Router()


class ChatSocket(WebSocketHandler):
    """One chat client: it hears the room, and what it says goes to the room."""

    def on_open(self, ws: WebSocket) -> None:
        ws.subscribe(ROOM)

    def on_message(self, ws: WebSocket, message: str | bytes) -> None:
        if not isinstance(message, str):
            return  # the room is text only
        try:
            ws.publish(ROOM, message, include_self=True)
        except MessageTooLarge as exc:
            ws.close(1009, str(exc)[:120])
        except BackplaneUnavailable:
            pass  # this server's clients got it; the other servers will not


router.websocket("/ws", ChatSocket)


@router.get("/events")
def events(ctx: Context) -> Response:
    """The room as a server-sent event stream."""
    subscription = topics.subscribe(ROOM)  # now, so nothing said after this request is missed

    async def feed() -> AsyncIterator[str]:
        with subscription:
            async for message in subscription:
                yield message if isinstance(message, str) else message.decode("utf-8", "replace")

    return Response.sse(feed())


@router.post("/say")
def say(ctx: Context) -> Response:
    """Publish the body (text) to the room."""
    try:
        text = ctx.req.body.decode()
    except UnicodeDecodeError:
        return Response.text("expected a UTF-8 text body", 400)
    try:
        topics.publish(ROOM, text)
    except MessageTooLarge as exc:
        return Response.text(str(exc), 413)
    except BackplaneUnavailable as exc:
        return Response.text(str(exc), 503)
    return Response(204)


app = Chopin(router).with_backplane(os.environ.get("CHAT_BACKPLANE"))

if __name__ == "__main__":
    app.serve(f"0.0.0.0:{os.environ.get('PORT', '8000')}")
