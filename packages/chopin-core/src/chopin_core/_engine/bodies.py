"""Request bodies that take more than one read: memory budget, spooling, idle timeout.

How it works: when a read leaves an HTTP/1.1 request's body in progress, the worker
calls :meth:`RequestBodies.progress`.  A body past ``body_spool_threshold`` goes to a
temporary file; a smaller one reserves its size in the worker's
:class:`~chopin_core._body.BodyBudget`, and when that is spent its connection is left
unread (the rest waits in the socket) until an earlier body gives memory back
(:meth:`RequestBodies.done`).  The timing wheel reaches a connection with a body in
progress through :meth:`RequestBodies.on_tick`: a client that stops sending gets a 408.
The loop is reached only through :class:`~chopin_core._engine.channel.Loop`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .._body import BodyBudget, BodyIntake, BodySpool
from ..errors import ProtocolError
from .deadlines import time_out

if TYPE_CHECKING:
    from ..connection import Connection
    from ..request import Request
    from .channel import Loop

__all__ = ["RequestBodies"]

# The worker's logger: these messages were the worker's before they moved here.
log = logging.getLogger("chopin_core.worker")


class RequestBodies:
    """The request bodies in progress on one worker's HTTP/1.1 connections.

    Args:
        loop: the worker.
        budget: its memory for bodies in progress, and the connections waiting for it.
    """

    __slots__ = ("budget", "loop")

    def __init__(self, loop: Loop, budget: BodyBudget) -> None:
        self.loop = loop
        self.budget = budget

    def progress(self, conn: Connection) -> None:
        """A read left a body in progress: account it, spool it, or make it wait."""
        parser = conn.parser
        req = parser.body_pending
        assert req is not None
        body = conn.body
        if body is not None and body.request is not req:
            self.done(conn)  # the previous body ended in this read and the next began
            body = None
        if body is None:
            self._begin(conn, req)
        elif body.spool is None and not body.waiting and parser.body_received > self.budget.threshold:
            self._spool(conn, body)  # a chunked body passed the threshold

    def _begin(self, conn: Connection, req: Request) -> None:
        # The head is in: from here the body's idle timeout applies, not the head's.
        conn.head_since = -1
        bodies = self.budget
        loop = self.loop
        loop.schedule(conn, loop.tick + bodies.ticks)
        parser = conn.parser
        length = parser.body_expected
        if length > bodies.threshold or parser.body_received > bodies.threshold:
            body = conn.body = BodyIntake(req, 0)
            self._spool(conn, body)
            return
        body = conn.body = BodyIntake(req, length if length >= 0 else bodies.threshold)
        if not bodies.admit(body):
            # No room in this worker's body memory: leave the rest in the socket until there is.
            body.waiting = True
            bodies.waiting.append(conn)
            loop.stop_reading(conn)

    def _spool(self, conn: Connection, body: BodyIntake) -> None:
        """Send the rest of ``conn``'s body to a temporary file; its memory reservation is given back."""
        try:
            spool = body.spool = BodySpool()
            conn.parser.divert_body(spool)
        except (OSError, ProtocolError) as exc:
            if isinstance(exc, OSError):
                log.error("worker %d: no temporary file for a request body: %s", self.loop.index, exc)
            self.loop.refuse(conn, ProtocolError("request body could not be stored", 503))
            return
        if body.reserved:
            self._admit(self.budget.release(body))

    def done(self, conn: Connection) -> None:
        """``conn``'s body is complete, or the connection is gone: give back its memory and file."""
        body = conn.body
        assert body is not None
        conn.body = None
        if body.spool is not None:
            body.spool.discard()  # a no-op once the request has taken the file
        if body.waiting:
            self.budget.waiting.remove(conn)  # those behind it may fit now
        self._admit(self.budget.release(body))

    def _admit(self, admitted: list[Connection]) -> None:
        """Read again the connections whose bodies now fit."""
        loop = self.loop
        for conn in admitted:
            # The wait was ours, not the client's; its wheel entry (see on_tick) times the body from here.
            conn.last_active = loop.tick
            if not conn.reading and not conn.close_after and not conn.queued:
                conn.reading = True
                loop.set_mask(conn)

    def on_tick(self, conn: Connection, tick: int) -> None:
        """The timing wheel reached a connection whose body is in progress."""
        body = conn.body
        assert body is not None
        loop = self.loop
        ticks = self.budget.ticks
        if not body.waiting and tick - conn.last_active >= ticks:
            time_out(loop, conn)  # the client stopped sending its body
            return
        loop.schedule(conn, (tick if body.waiting else conn.last_active) + ticks)
