"""The HTTP/1.1 connections' deadlines, checked as the worker's timing wheel brings each one up.

How it works: the worker schedules every connection on its timing wheel (at accept,
when a request head begins, when a handler starts waiting) and, once a second, hands
:func:`expire` the connections whose tick has come.  Each is then closed (a head not
complete within ``header_timeout``: 408 first; idle past ``keepalive_timeout``),
handed to what owns its deadline now (a request body in progress, a waiting handler),
or scheduled again for its next deadline.  The worker is reached only through
:class:`~chopin_core._engine.channel.Loop`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .._wire.h1_writer import timeout_answer
from .awaiting import Awaiting
from .stream_pump import StreamPump

if TYPE_CHECKING:
    from ..connection import Connection
    from .bodies import RequestBodies
    from .channel import Loop

__all__ = ["expire", "time_out"]


def expire(loop: Loop, due: Iterable[Connection], tick: int, header_ticks: int, bodies: RequestBodies) -> None:
    """Close, hand on or reschedule each connection of ``due`` (the wheel's connections for ``tick``).

    Args:
        loop: the worker.
        due: the connections the timing wheel brought up at ``tick``.
        tick: the loop's clock in seconds.
        header_ticks: ticks a request head may take (``header_timeout``).
        bodies: the worker's request bodies in progress (their own idle timeout).
    """
    keepalive = loop.keepalive_ticks
    for conn in due:
        if conn.closed:
            continue
        if conn.head_since >= 0 and tick - conn.head_since >= header_ticks:
            time_out(loop, conn)  # slowloris
            continue
        if conn.body is not None:
            bodies.on_tick(conn, tick)
            continue
        if type(conn.stream) is Awaiting:
            conn.stream.on_tick(tick)
            continue
        if type(conn.stream) is StreamPump and not conn.out:
            # Its producer waits (events to come): not idle.  Keep-alives notice a client that left.
            loop.schedule(conn, tick + keepalive)
            continue
        if tick - conn.last_active >= keepalive:
            loop.close(conn)
            continue
        due_tick = conn.last_active + keepalive
        if conn.head_since >= 0:
            due_tick = min(due_tick, conn.head_since + header_ticks)
        loop.schedule(conn, due_tick)


def time_out(loop: Loop, conn: Connection) -> None:
    """A client too slow with its request head or body: 408 (unless an answer is under way), then close."""
    if not conn.out and conn.stream is None:
        try:
            loop.io.write(conn.fd, timeout_answer(loop.date_line))
        except OSError:
            pass
    loop.close(conn)
