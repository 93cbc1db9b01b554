"""Handlers that wait (``async def``), for test_worker_waiting.py."""

from __future__ import annotations

import asyncio
import time

from chopin_core import (
    Chopin,
    Context,
    HandlerTimeout,
    Response,
    Router,
    cors,
    gather,
    sleep,
    to_thread,
    with_async_form,
)
from chopin_core.types import AsyncHandler, Handler

router = Router()
# What this worker process saw; read back through /stats (one worker per test server).
stats = {"cancelled": 0, "finished": 0}


@router.get("/plaintext")
def plaintext(ctx: Context) -> Response:
    return Response.text("Hello, World!")


@router.get("/at-once")
async def at_once(ctx: Context) -> Response:
    return Response.text("answered without waiting")


@router.get("/sleep")
async def nap(ctx: Context) -> Response:
    ms = int(ctx.req.query_params().get("ms", "100"))
    try:
        await sleep(ms / 1000)
    except BaseException:
        stats["cancelled"] += 1
        raise
    stats["finished"] += 1
    return Response.text(f"slept {ms}")


@router.get("/patient")
async def patient(ctx: Context) -> Response:
    try:
        await sleep(60)
    except HandlerTimeout:
        return Response.text("gave up politely", 503)
    return Response.text("never")


@router.get("/thread")
async def thread(ctx: Context) -> Response:
    seconds = float(ctx.req.query_params().get("s", "0.3"))
    value = await to_thread(lambda: (time.sleep(seconds), 42)[1])
    return Response.text(f"thread {value}")


@router.get("/gather")
async def together(ctx: Context) -> Response:
    async def one(i: int) -> int:
        await sleep(0.2)
        return i * i

    results = await gather(*(one(i) for i in range(10)))
    return Response.json(results)


@router.get("/raise")
async def fails(ctx: Context) -> Response:
    await sleep(0.01)
    raise ValueError("failed after waiting")


@router.get("/not-a-response")
async def wrong(ctx: Context) -> Response:
    await sleep(0.01)
    return "a string"  # type: ignore[return-value]


@router.get("/asyncio")
async def foreign(ctx: Context) -> Response:
    loop = asyncio.new_event_loop()
    try:
        await loop.create_future()  # an asyncio future: only asyncio's loop can wait for it
    finally:
        loop.close()
    return Response.text("never")


@router.get("/stats")
def read_stats(ctx: Context) -> Response:
    return Response.json(stats)


def tagging(ctx: Context, nxt: Handler) -> Response:
    return nxt(ctx).with_header("X-Tag", "sync")


async def tagging_waiting(ctx: Context, nxt: AsyncHandler) -> Response:
    resp = await nxt(ctx)
    return resp.with_header("X-Tag", "waited")


async def timing(ctx: Context, nxt: AsyncHandler) -> Response:
    started = time.monotonic()
    resp = await nxt(ctx)
    return resp.with_header("X-Waited-Ms", str(round((time.monotonic() - started) * 1000)))


layered = Router()


@layered.get("/layered/sleep")
async def layered_sleep(ctx: Context) -> Response:
    await sleep(0.05)
    return Response.text("layered")


@layered.get("/layered/sync")
def layered_sync(ctx: Context) -> Response:
    return Response.text("sync under async middleware")


layered.layer(cors(["https://app.example"]))
layered.layer(with_async_form(tagging, tagging_waiting))
layered.layer(timing)
router.merge(layered)

app = Chopin(router).with_metrics()


deferred: list[str] = []


@router.get("/defer")
async def with_background(ctx: Context) -> Response:
    from chopin_core import defer

    async def slow_mail() -> None:
        await sleep(0.5)
        deferred.append("mail sent")

    await defer(slow_mail())
    return Response.text("accepted")


@router.get("/deferred")
def deferred_done(ctx: Context) -> Response:
    return Response.json(deferred)
