"""Response streams on the worker: the first chunk before the head, then one chunk per pull.

How it works: a streamed response's first non-empty chunk is pulled before its head
is framed (:func:`first_chunk`), so a stream that fails at once is answered with a
500 like a failing handler, not cut after a 200.  An ``async`` stream is started
there instead (:func:`first_async`): on the loop it becomes a
:class:`~chopin_core._engine.stream_pump.StreamPump`, in process a
:class:`~chopin_core._engine.stream_pump.BlockingStream`.  After the head, the
worker's ``flush`` pulls a synchronous stream one chunk at a time
(:func:`pull_iterator`), each written before the next is asked for.  The worker is
reached only through :class:`~chopin_core._engine.channel.Loop`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Final

from .._wire.h1_writer import END, LAST_CHUNK, NO_BODY
from ..connection import close_stream
from ..response import AsyncStream
from .stream_pump import JOIN_LIMIT, BlockingStream, StreamPump, pumped

if TYPE_CHECKING:
    from ..connection import Connection
    from ..request import Request
    from ..response import Response
    from .channel import Loop

__all__ = ["Primed", "being_sent", "first_async", "first_chunk", "pull_iterator"]

# The worker's logger: these messages were the worker's before they moved here.
log = logging.getLogger("chopin_core.worker")

_JOIN_LIMIT: Final = JOIN_LIMIT


def first_chunk(
    loop: Loop,
    req: Request,
    resp: Response,
    stream: Iterator[bytes | str] | AsyncStream,
    conn: Connection | None = None,
) -> tuple[Response, bytes]:
    """Pull a stream's first non-empty chunk (``b""`` if it has none); a 500 instead if the stream fails.

    Nothing of the response is written yet, so a failure here is answered like a
    handler's.  HEAD and bodiless statuses pull nothing (their stream is closed by
    the framing).  An async stream is started by :func:`first_async` (``conn``: the
    connection it is for; None for HTTP/2).
    """
    if req.method == "HEAD" or resp.status in NO_BODY:
        return resp, b""
    if isinstance(stream, AsyncStream):
        return first_async(loop, req, resp, stream, conn)
    try:
        for chunk in stream:
            if chunk:
                return resp, chunk.encode() if isinstance(chunk, str) else chunk
        return resp, b""
    except Exception as exc:
        close_stream(stream)
        return loop.routing.handler_failed(req, exc), b""


def first_async(
    loop: Loop, req: Request, resp: Response, body: AsyncStream, conn: Connection | None
) -> tuple[Response, bytes]:
    """Start an async stream: what it produces before it first waits goes out with the head.

    On the loop it becomes a :class:`StreamPump` (``resp.stream_body``), pulled by
    :func:`~chopin_core._engine.stream_pump.pull_pump`, or for HTTP/2 (no ``conn``)
    by the session; in process (``Worker.answer``, no loop) each step runs to its
    end, blocking.
    """
    if not loop.running:
        blocking = BlockingStream(body, loop.settings.worker_threads)
        resp.stream_body = blocking
        return first_chunk(loop, req, resp, blocking)
    pump = StreamPump(body, loop.scheduler())
    pump.start()
    if pump.error is not None:
        pump.close()
        return loop.routing.handler_failed(req, pump.error), b""
    resp.stream_body = pump
    if conn is None:
        return resp, b""  # HTTP/2: the session sets the pump's wake and takes its chunks
    pump.wake = partial(pumped, loop, conn, pump)
    return resp, pump.take() or b""


def being_sent(stream: Iterator[bytes | str] | AsyncStream) -> Iterator[bytes | str] | StreamPump:
    """A response's stream as its sender drives it: an iterator, or the pump :func:`first_chunk` made of an async one.

    Raises:
        TypeError: an async stream that was never started (not through :func:`first_chunk`).
    """
    if isinstance(stream, StreamPump) or not isinstance(stream, AsyncStream):
        return stream
    raise TypeError("an async response stream is sent only once first_chunk() has started it")


def pull_iterator(loop: Loop, conn: Connection, stream: Iterator[bytes | str]) -> None:
    """Pull one chunk of a synchronous stream into ``conn``'s empty output, framed; or its end.

    One chunk per pull: the worker's ``flush`` writes it before the producer is
    asked for the next, so a chunk is on the wire as soon as it is produced, however
    long the next one takes, and a socket that stops taking bytes stops the pulling
    (back-pressure).
    """
    out = conn.out
    chunked = conn.stream_chunked
    while True:
        try:
            chunk = next(stream)
        except StopIteration:
            conn.stream = None
            if chunked:
                out.append(LAST_CHUNK)
            if not conn.stream_keep:
                conn.close_after = True
            return
        except Exception:
            # Part of the body may be out already: the client must see an incomplete
            # message, so no terminal chunk, and the connection is closed once what is
            # pending (earlier pipelined answers included) has been written.
            log.exception("worker %d: response stream failed after its head", loop.index)
            close_stream(stream)
            conn.stream = None
            conn.queued.clear()
            conn.close_after = True
            return
        if isinstance(chunk, str):
            chunk = chunk.encode()
        if not chunk:
            continue
        if len(chunk) >= _JOIN_LIMIT:
            out += (b"%x\r\n" % len(chunk), chunk, END) if chunked else (chunk,)
            conn.big = True  # written with writev, not copied
        else:
            out.append(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
        return


class Primed(Iterator["bytes | str"]):
    """A response stream whose first chunk was pulled before its head was sent (see :func:`first_chunk`)."""

    __slots__ = ("_first", "_rest")

    def __init__(self, first: bytes, rest: Iterator[bytes | str]) -> None:
        self._first: bytes | None = first
        self._rest = rest

    def __next__(self) -> bytes | str:
        first = self._first
        if first is not None:
            self._first = None
            return first
        return next(self._rest)

    def close(self) -> None:
        """Close the underlying stream (a generator's ``finally`` runs)."""
        close_stream(self._rest)
