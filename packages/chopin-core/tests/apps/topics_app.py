"""Topics across workers, for the real-socket tests (serve with WORKERS=2 or 4)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from chopin_core import Context, Response, Router, sleep, to_thread, topics
from chopin_core.types import Handler
from chopin_core.websocket import WebSocket, WebSocketHandler

router = Router()


class Member(WebSocketHandler):
    """Says which worker it is on, then hears topic "t"; what it sends goes to "t" (itself included)."""

    def on_open(self, ws: WebSocket) -> None:
        ws.send(f"pid {os.getpid()}")
        ws.subscribe("t")

    def on_message(self, ws: WebSocket, message: str | bytes) -> None:
        ws.publish("t", message, include_self=True)


router.websocket("/ws", Member)


def announce(ctx: Context, handler: Handler) -> Response:
    """Middleware that publishes its request's ``X-Announce`` header, if any."""
    note = ctx.req.headers.get("x-announce")
    if note:
        topics.publish("t", note)
    return handler(ctx)


announced = Router()
announced.layer(announce)


@announced.get("/announced")
def announced_page(ctx: Context) -> Response:
    return Response.text("announced")


router.merge(announced)


@router.get("/pid")
def pid(ctx: Context) -> Response:
    return Response.text(str(os.getpid()))


@router.post("/say")
def say(ctx: Context) -> Response:
    body = ctx.req.body
    message: str | bytes = body if ctx.req.headers.get("content-type") == "application/octet-stream" else body.decode()
    try:
        topics.publish("t", message)
    except topics.MessageTooLarge as exc:
        return Response.text(str(exc), 413)
    return Response(204)


@router.post("/flood")
def flood(ctx: Context) -> Response:
    """Publish ``n`` messages of ``size`` bytes: "<i>:xxx..."."""
    n = int(ctx.req.query_params().get("n", "100"))
    size = int(ctx.req.query_params().get("size", "16"))
    for i in range(n):
        head = f"{i}:"
        topics.publish("t", head + "x" * max(0, size - len(head)))
    return Response(204)


@router.post("/later")
async def later(ctx: Context) -> Response:
    """An ``async def`` handler that publishes after waiting on the worker's loop."""
    await sleep(0.05)
    topics.publish("t", "later")
    return Response(204)


@router.post("/from-thread")
async def from_thread(ctx: Context) -> Response:
    """Publish from a thread-pool job: the delivery is handed to the worker's loop."""
    await to_thread(topics.publish, "t", "from a thread")
    return Response(204)


@router.get("/events")
def events(ctx: Context) -> Response:
    """Topic "t" as server-sent events; a reader more than ``pending`` messages behind is dropped."""
    subscription = topics.subscribe("t", max_pending=int(ctx.req.query_params().get("pending", "1024")))

    async def feed() -> AsyncIterator[str]:
        with subscription:
            async for message in subscription:
                yield message if isinstance(message, str) else message.hex()

    return Response.sse(feed())


@router.get("/members")
def members(ctx: Context) -> Response:
    return Response.text(str(len(topics.current().members.get("t", ()))))


app = router
