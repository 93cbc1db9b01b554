"""The app the TLS and HTTP/2 tests serve, over TLS when ``TLS_CERT``/``TLS_KEY`` are set.

Routes: ``/`` (hello), ``/echo`` (POST: the body back, with request facts in headers),
``/headers`` (the request's header fields as a JSON list of pairs), ``/big`` (``size``
bytes of a pattern), ``/stream`` (``n`` chunks), ``/file`` (the file named by
``TLS_APP_FILE``), ``/boom`` (the handler raises), ``/stream-boom`` (the body fails after
its first chunk), ``/slow`` (sleeps ``ms`` milliseconds), ``/ws`` (WebSocket echo).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from chopin_core import Chopin, Context, Response, Router
from chopin_core.websocket import WebSocket, WebSocketHandler

router = Router()
_PATTERN = bytes(range(256))


def pattern(size: int) -> bytes:
    """``size`` bytes cycling through 0..255."""
    return (_PATTERN * (size // 256 + 1))[:size]


def hello(ctx: Context) -> Response:
    return Response.text("hello")


def echo(ctx: Context) -> Response:
    req = ctx.req
    return (
        Response.raw(req.body, content_type="application/octet-stream")
        .with_header("X-Method", req.method)
        .with_header("X-Path", req.path)
        .with_header("X-Query", req.query or "")
        .with_header("X-Host", req.header("host") or "")
        .with_header("X-Custom", req.header("x-custom") or "")
        .with_header("X-Version", req.version)
    )


def headers(ctx: Context) -> Response:
    return Response.json([list(pair) for pair in ctx.req.headers.items()])


def big(ctx: Context) -> Response:
    return Response.raw(pattern(int(ctx.req.query_params().get("size", "1000000"))))


def stream(ctx: Context) -> Response:
    count = int(ctx.req.query_params().get("n", "10"))

    def chunks() -> Iterator[bytes]:
        for i in range(count):
            yield b"chunk %06d|" % i

    return Response.stream(chunks(), content_type="text/plain")


def file(ctx: Context) -> Response:
    return Response.file_range(os.environ["TLS_APP_FILE"], ctx.req.header("range"))


def boom(ctx: Context) -> Response:
    raise RuntimeError("handler failed on purpose")


def stream_boom(ctx: Context) -> Response:
    def chunks() -> Iterator[bytes]:
        yield b"first"
        raise RuntimeError("stream failed on purpose")

    return Response.stream(chunks())


def slow(ctx: Context) -> Response:
    time.sleep(int(ctx.req.query_params().get("ms", "100")) / 1000)
    return Response.text("slow")


class Echo(WebSocketHandler):
    def on_message(self, ws: WebSocket, message: str | bytes) -> None:
        ws.send(message)


router.get("/", hello)
router.post("/echo", echo)
router.get("/echo", echo)
router.get("/headers", headers)
router.get("/big", big)
router.get("/stream", stream)
router.get("/file", file)
router.get("/boom", boom)
router.get("/stream-boom", stream_boom)
router.get("/slow", slow)
router.websocket("/ws", Echo)


class TlsApp(Chopin):
    """Serves with TLS from the files named in the environment."""

    def serve(self, addr: str | None = None) -> None:
        self.serve_tls(addr, os.environ["TLS_CERT"], os.environ["TLS_KEY"])


def app() -> Chopin:
    if os.environ.get("TLS_APP_NO_H2"):
        import sys

        sys.modules["hpack"] = None  # type: ignore[assignment]  # as if the http2 extra were not installed
    if os.environ.get("TLS_CERT"):
        return TlsApp(router)
    return Chopin(router)
