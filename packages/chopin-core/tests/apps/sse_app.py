"""Async response streams and server-sent events, for test_sse.py and test_stream_pump.py.

Served by one worker; ``/stats`` reports what the producers of this process saw
(how many chunks were asked for, how many generators were closed).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator

from chopin_core import Chopin, Context, Response, Router, sleep
from chopin_core.compress import compression
from chopin_core.sse import ServerSentEvent, last_event_id

router = Router()
# Every route is layered with compression: event streams must still go out uncompressed.
router.layer(compression(min_size=16))
stats = {"closed": 0, "big_pulled": 0, "forever_started": 0}


def _number(ctx: Context, name: str, default: float) -> float:
    return float(ctx.req.query_params().get(name, str(default)))


@router.get("/")
def index(ctx: Context) -> Response:
    return Response.text("hello")


@router.get("/stats")
def show_stats(ctx: Context) -> Response:
    return Response.json(stats)


@router.get("/ticks")
async def ticks(ctx: Context) -> Response:
    """``n`` events ``every`` seconds apart, ids 0..n-1, resuming after ``Last-Event-ID``."""
    count = int(_number(ctx, "n", 5))
    every = _number(ctx, "every", 0.3)
    last = last_event_id(ctx.req)
    start = int(last) + 1 if last is not None else 0

    async def produce() -> AsyncIterator[ServerSentEvent]:
        for i in range(start, count):
            await sleep(every)
            yield ServerSentEvent(f"tick {i}", event="tick", id=str(i))

    return Response.sse(produce(), retry=1500)


@router.get("/quiet")
def quiet(ctx: Context) -> Response:
    """One event after ``wait`` seconds of silence, with keep-alives every ``keepalive`` seconds."""
    wait = _number(ctx, "wait", 1.2)

    async def produce() -> AsyncIterator[str]:
        await sleep(wait)
        yield "after the silence"

    return Response.sse(produce(), keepalive=_number(ctx, "keepalive", 0.3))


@router.get("/forever")
def forever(ctx: Context) -> Response:
    """An event every 0.1 s until the client leaves; counts the generators closed."""

    async def produce() -> AsyncIterator[str]:
        stats["forever_started"] += 1
        try:
            i = 0
            while True:
                yield f"event {i} " + "x" * 200
                i += 1
                await sleep(0.1)
        finally:
            stats["closed"] += 1

    return Response.sse(produce())


@router.get("/big")
def big(ctx: Context) -> Response:
    """64 KiB chunks without end, produced without waiting: only back-pressure stops it."""

    async def produce() -> AsyncIterator[bytes]:
        try:
            while True:
                stats["big_pulled"] += 1
                yield b"b" * 65536
        finally:
            stats["closed"] += 1

    return Response.stream(produce())


@router.get("/async-text")
async def async_text(ctx: Context) -> Response:
    """Three text lines 0.3 s apart (compressed when the client accepts gzip)."""

    async def produce() -> AsyncIterator[str]:
        for i in range(3):
            await sleep(0.3)
            yield f"line {i}\n"

    return Response.stream(produce(), "text/plain; charset=utf-8")


@router.get("/sync-text")
def sync_text(ctx: Context) -> Response:
    """Three text lines 0.3 s apart from a plain (sync) generator.

    Its sleep blocks this one-worker server between lines, as any sync producer's work does.
    """

    def produce() -> Iterator[str]:
        for i in range(3):
            if i:
                time.sleep(0.3)
            yield f"line {i}\n"

    return Response.stream(produce(), "text/plain; charset=utf-8")


async def _fails_at_once() -> AsyncIterator[bytes]:
    raise RuntimeError("async stream failed before its first chunk")
    yield b"never"  # an async generator: the error comes with the first pull


async def _fails_later() -> AsyncIterator[bytes]:
    yield b"part one|"
    await sleep(0.05)
    raise RuntimeError("async stream failed after waiting")


async def _yields_a_number() -> AsyncIterator[object]:
    yield b"ok|"
    await sleep(0.01)
    yield 42


@router.get("/async-fails-at-once")
def async_fails_at_once(ctx: Context) -> Response:
    return Response.stream(_fails_at_once())


@router.get("/async-fails-later")
def async_fails_later(ctx: Context) -> Response:
    return Response.stream(_fails_later())


@router.get("/async-bad-chunk")
def async_bad_chunk(ctx: Context) -> Response:
    return Response.stream(_yields_a_number())  # type: ignore[arg-type]


class _Tls(Chopin):
    def serve(self, addr: str | None = None) -> None:
        self.serve_tls(addr, os.environ["TLS_CERT"], os.environ["TLS_KEY"])


# Over TLS (HTTP/1.1 and h2 by ALPN) when TLS_CERT/TLS_KEY are set.
app = _Tls(router) if os.environ.get("TLS_CERT") else Chopin(router)
