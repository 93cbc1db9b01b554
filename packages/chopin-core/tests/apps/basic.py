"""The app the real-socket tests serve: one route per behaviour under test.

Every body is deterministic so a test can rebuild what it expects: ``pattern(n)``
for large bodies, ``stream_chunk(i)`` for streamed ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from chopin_core import Chopin, Context, Response, Router

router = Router()

_PATTERN = bytes(range(256))
# /endless stops after this many 64 KiB chunks (4 GiB) so nothing here is unbounded.
_ENDLESS_CHUNKS = 65536


def pattern(size: int) -> bytes:
    """``size`` bytes cycling through 0..255 (the body of ``GET /big?size=...``)."""
    return (_PATTERN * (size // 256 + 1))[:size]


def stream_chunk(index: int) -> bytes:
    """Chunk ``index`` of ``GET /stream``."""
    return b"%06d|" % index


def _int_query(ctx: Context, name: str, default: int) -> int:
    raw = ctx.req.query_params().get(name)
    return default if raw is None else int(raw)


@router.get("/")
def index(ctx: Context) -> Response:
    return Response.text("hello")


@router.get("/pid")
def pid(ctx: Context) -> Response:
    return Response.text(str(os.getpid()))


@router.get("/target")
def target(ctx: Context) -> Response:
    req = ctx.req
    return ctx.json(
        {
            "method": req.method,
            "target": req.target,
            "path": req.path,
            "query": req.query,
            "version": req.version,
            "host": ctx.header("host"),
        }
    )


@router.get("/user/:id")
def user(ctx: Context) -> Response:
    return ctx.json({"id": ctx.param("id")})


@router.post("/echo")
def echo(ctx: Context) -> Response:
    body = ctx.req.body
    return Response.raw(body).with_header("X-Body-Length", str(len(body)))


@router.get("/boom")
def boom(ctx: Context) -> Response:
    raise RuntimeError("boom: secret detail")


@router.get("/big")
def big(ctx: Context) -> Response:
    return Response.raw(pattern(_int_query(ctx, "size", 8 * 1024 * 1024)))


@router.get("/stream")
def stream(ctx: Context) -> Response:
    count = _int_query(ctx, "n", 100)
    return Response.stream((stream_chunk(i) for i in range(count)), "text/plain; charset=utf-8")


def _endless() -> Iterator[bytes]:
    for i in range(_ENDLESS_CHUNKS):
        # A fresh 64 KiB object per chunk, so buffering them would really cost memory.
        yield (b"%015d\n" % i) * 4096


@router.get("/endless")
def endless(ctx: Context) -> Response:
    return Response.stream(_endless())


@router.get("/sleep")
def sleep(ctx: Context) -> Response:
    seconds = min(float(ctx.req.query_params().get("s", "1")), 5.0)
    time.sleep(seconds)
    return Response.text("slept")


@router.get("/nocontent")
def nocontent(ctx: Context) -> Response:
    return Response.new(204)


app = Chopin(router)

if __name__ == "__main__":
    app.serve("127.0.0.1:8080")
