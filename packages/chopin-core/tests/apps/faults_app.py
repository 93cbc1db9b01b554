"""An app whose handlers and streams fail in every way the worker must contain (issue 15).

``app`` is a factory: over TLS (HTTP/1.1 and h2 by ALPN) when ``TLS_CERT``/``TLS_KEY``
are set, and with ``/upstream`` proxied to ``FAULTS_UPSTREAM`` when that is set.
``/ws`` is a WebSocket echo.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from chopin_core import Chopin, Context, ExtractError, Response, Router
from chopin_core.proxy import proxy
from chopin_core.websocket import WebSocket, WebSocketHandler

router = Router()


@router.get("/")
def index(ctx: Context) -> Response:
    return Response.text("hello")


@router.get("/pid")
def pid(ctx: Context) -> Response:
    return Response.text(str(os.getpid()))


def _fails_at_once() -> Iterator[bytes]:
    raise RuntimeError("stream failed before its first chunk")
    yield b"never"  # a generator: the error comes with the first pull


def _fails_later() -> Iterator[bytes]:
    yield b"part one|"
    raise RuntimeError("stream failed after its first chunk")


def _yields_a_number() -> Iterator[object]:
    yield b"ok|"
    yield 42  # not bytes: the worker itself fails on it, outside any handler


@router.get("/stream/fails-at-once")
def stream_fails_at_once(ctx: Context) -> Response:
    return Response.stream(_fails_at_once())


@router.get("/stream/fails-later")
def stream_fails_later(ctx: Context) -> Response:
    return Response.stream(_fails_later())


@router.get("/stream/bad-chunk")
def stream_bad_chunk(ctx: Context) -> Response:
    return Response.stream(_yields_a_number())  # type: ignore[arg-type]


@router.get("/file")
def file(ctx: Context) -> Response:
    return Response.file(__file__, "text/plain")


@router.get("/status/999")
def status_999(ctx: Context) -> Response:
    return Response.text("never sent").with_status(999)


@router.get("/extract-500")
def extract_500(ctx: Context) -> Response:
    # What an extension's extractor raises when it is misconfigured (chopin-auth without its manager).
    raise ExtractError("extension not configured: secret detail", 500)


class Echo(WebSocketHandler):
    def on_message(self, ws: WebSocket, message: str | bytes) -> None:
        ws.send(message)


router.websocket("/ws", Echo)


class _Tls(Chopin):
    def serve(self, addr: str | None = None) -> None:
        self.serve_tls(addr, os.environ["TLS_CERT"], os.environ["TLS_KEY"])


def app() -> Chopin:
    upstream = os.environ.get("FAULTS_UPSTREAM")
    if upstream:
        router.get("/upstream", proxy(upstream))
    return _Tls(router) if os.environ.get("TLS_CERT") else Chopin(router)
