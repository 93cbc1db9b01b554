"""An app whose handlers and streams fail in every way the worker must contain (issue 15)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from chopin_core import Chopin, Context, ExtractError, Response, Router

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


@router.get("/status/999")
def status_999(ctx: Context) -> Response:
    return Response.text("never sent").with_status(999)


@router.get("/extract-500")
def extract_500(ctx: Context) -> Response:
    # What an extension's extractor raises when it is misconfigured (chopin-auth without its manager).
    raise ExtractError("extension not configured: secret detail", 500)


app = Chopin(router)
