"""Serving HTTP/1.1 bytes in process, with no socket and no loop (what the test client drives).

How it works: the bytes go to a fresh connection's parser with the worker's limits;
each request is answered by the worker's own inlined path
(:meth:`~chopin_core._engine.channel.Loop.respond`), a stream is pulled to its end
(:meth:`~chopin_core._engine.channel.Loop.pull_stream`) and a file read whole, where the
loop would have waited for the socket and used sendfile.
"""

from __future__ import annotations

from time import monotonic_ns
from typing import TYPE_CHECKING

from .._wire.h1_request import CONTINUE, RequestParser
from .._wire.h1_writer import error_answer
from ..connection import Connection
from ..errors import ProtocolError
from ..request import Request

if TYPE_CHECKING:
    from .channel import Loop

__all__ = ["answer"]


def answer(worker: Loop, data: bytes, peer: tuple[str, int]) -> bytes:
    """Serve ``data`` with ``worker``'s routes in this process; the bytes a client would read.

    Answering stops after a ``Connection: close`` or a protocol error, as on a
    socket; a ``100 Continue`` is not written.

    Args:
        worker: the worker whose routes, limits and inlined HTTP/1.1 path answer.
        data: one or more HTTP/1.1 requests (pipelined, or malformed).
        peer: the client address the requests come from (``ctx.client``).

    Returns:
        Every response's bytes, in order.
    """
    conn = Connection(None, RequestParser(worker.limits), 0)
    conn.peer = peer
    conn.proxies = worker.proxies
    out = conn.out
    answered: list[bytes | memoryview] = []
    for event in conn.parser.feed(data):
        if isinstance(event, Request):
            if conn.close_after:
                break
            worker.woke = monotonic_ns()  # the loop's wake-up clock, which durations start from
            worker.respond(conn, event, out)
            while conn.stream is not None:
                answered += out  # "written": a stream is pulled once what is pending is out
                out.clear()
                worker.pull_stream(conn)
            if conn.file is not None:
                out.append(conn.file.read_all())
                conn.file.close()
                conn.file = None
        elif event is not CONTINUE:
            assert isinstance(event, ProtocolError)
            out.append(error_answer(event.status, event.message.encode("utf-8", "replace"), worker.date_line))
            break
    return b"".join(answered + out)
