"""``async def`` handlers that wait: their place in line, their deadline, their delivery.

How it works: a handler that returned a coroutine is run to its first wait by
:func:`await_handler`; if it finished there, its answer goes straight back.  Else an
:class:`Awaiting` holds its place.  On an HTTP/1.1 connection it sits in
``Connection.stream``, so requests pipelined behind it queue and closing the
connection cancels it; the timing wheel reaches it through :meth:`Awaiting.on_tick`.
For another protocol it is the :class:`~chopin_core._engine.channel.Pending` the
channel holds.  When the scheduler finishes the coroutine, its response is framed in
line (:meth:`~chopin_core._engine.channel.Loop.respond`) or handed to the
channel's ``later``.  The loop is reached only through
:class:`~chopin_core._engine.channel.Loop`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from ..connection import Producer
from ..error_handlers import not_a_response
from ..errors import HandlerTimeout
from ..response import Response
from .tasks import Scheduler, Task, run_blocking

if TYPE_CHECKING:
    from ..connection import Connection
    from ..forwarded import Origin
    from ..request import Request
    from .channel import Loop

__all__ = ["Awaiting", "await_handler", "checked"]

# The worker's logger: these messages were the worker's before they moved here.
log = logging.getLogger("chopin_core.worker")


def await_handler(
    loop: Loop,
    conn: Connection | None,
    req: Request,
    handler: object,
    result: object,
    started: int,
    later: Callable[[Response], None] | None = None,
    origin: Origin | None = None,
) -> Response | Awaiting | None:
    """A handler returned something other than a Response: a coroutine waits, anything else is an error.

    The coroutine runs to its first wait now; if it finishes there its answer is
    returned.  Else, on an HTTP/1.1 connection, None (its answer is framed in line
    once it has finished); for another protocol (``later``), the waiting handler,
    whose response goes to ``later``.  With no running loop (the in-process
    ``Worker.answer``) or neither, it runs to its end here.

    Args:
        loop: the worker.
        conn: the HTTP/1.1 connection the request came on, or None.
        req: the request.
        handler: the handler (for messages).
        result: what the handler returned.
        started: when the request's clock started (durations run from it).
        later: where the response of another protocol's request goes.
        origin: the connection of another protocol (``ctx.client``).

    Returns:
        The response, the waiting handler (``later``), or None (in line on ``conn``).

    Raises:
        TypeError: ``result`` is neither a Response nor a coroutine.
    """
    if type(result) is not CoroutineType:
        raise not_a_response(handler, result)
    coro: CoroutineType[Any, Any, Any] = result
    settings = loop.settings
    if (conn is None and later is None) or not loop.running:
        return checked(handler, run_blocking(coro, threads=settings.worker_threads))
    if loop.waiting >= settings.max_waiting_handlers:
        coro.close()
        log.warning("worker %d: %d handlers waiting, answering 503", loop.index, loop.waiting)
        return Response.text("Service Unavailable: too many requests waiting", 503).with_header("Retry-After", "1")
    tasks = loop.scheduler()
    if conn is None:
        assert later is not None
        deliver = _deliver_later(loop, req, started, later, origin)
    else:
        deliver = _deliver
    waiting = Awaiting(loop, conn, req, handler, started, Task(coro, None), tasks, deliver)
    task = waiting.task
    task.on_done = waiting.done
    tasks.start(task)
    if task.finished:
        return waiting.answer()
    loop.waiting += 1
    waiting.counted = True
    timeout = settings.handler_timeout
    if conn is None:
        waiting.deadline = loop.tick + math.ceil(timeout) + 1 if timeout > 0 else 0
        waiting.timeout = timeout
        return waiting
    if timeout > 0:
        # Checked by the timing wheel, at its one-second grain, never early (see Awaiting.on_tick).
        waiting.deadline = loop.tick + math.ceil(timeout) + 1
        loop.schedule(conn, waiting.deadline)
    conn.stream = waiting
    return None


def checked(handler: object, resp: object) -> Response:
    """``resp`` if it is a Response.

    Raises:
        TypeError: it is not (the message names the handler).
    """
    if type(resp) is not Response:
        raise not_a_response(handler, resp)
    return resp


def _deliver(waiting: Awaiting) -> None:
    """A waiting handler of an HTTP/1.1 connection finished: frame its answer in line, then what queued behind it."""
    conn = waiting.conn
    if conn is None or conn.closed or conn.stream is not waiting:
        return
    loop = waiting.loop
    conn.last_active = loop.tick
    conn.stream = None
    # Framed in line on conn, timed from when its request was read; what queued behind it is answered next.
    woke, loop.woke = loop.woke, waiting.started
    try:
        loop.respond(conn, waiting.req, conn.out, waiting.answer())
    finally:
        loop.woke = woke
    loop.flush(conn)


def _deliver_later(
    loop: Loop, req: Request, started: int, later: Callable[[Response], None], origin: Origin | None
) -> Callable[[Awaiting], None]:
    def deliver(waiting: Awaiting) -> None:
        later(loop.routing.served(req, waiting.answer(), started, origin))

    return deliver


class Awaiting(Producer):
    """An ``async def`` handler that waits, holding its connection's place in line.

    It is the :class:`~chopin_core.connection.Producer` in ``Connection.stream``, so
    that requests pipelined behind it queue (as behind a stream), and closing the
    connection (the client left, the worker stops) cancels it.  It produces no bytes
    while it waits (:meth:`drained` does nothing): its answer is framed once it has finished.
    """

    __slots__ = (
        "conn",
        "counted",
        "deadline",
        "deliver",
        "handler",
        "loop",
        "req",
        "started",
        "task",
        "tasks",
        "timeout",
    )

    def __init__(
        self,
        loop: Loop,
        conn: Connection | None,
        req: Request,
        handler: object,
        started: int,
        task: Task,
        tasks: Scheduler,
        deliver: Callable[[Awaiting], None],
    ) -> None:
        self.loop = loop
        self.conn = conn
        self.req = req
        self.handler = handler
        self.started = started
        self.task = task
        self.tasks = tasks
        self.deliver = deliver
        self.counted = False
        self.deadline = 0  # the tick past which HandlerTimeout is thrown (0: none, or thrown already)
        self.timeout = 0.0

    def answer(self) -> Response:
        """The finished handler's response, or the answer to what it raised."""
        task = self.task
        if task.error is None:
            try:
                return checked(self.handler, task.result)
            except TypeError as exc:
                return self.loop.routing.handler_failed(self.req, exc)
        error = task.error
        if not isinstance(error, Exception):
            raise error
        return self.loop.routing.handler_failed(self.req, error)

    def done(self, task: Task) -> None:
        """The scheduler's callback: the handler finished."""
        waited = self.counted  # else it finished in its first step, and await_handler answers it
        self._uncount()
        if waited and (self.conn is None or self.conn.stream is self):
            self.deliver(self)

    def close(self) -> None:
        """The connection closes: cancel the handler where it waits."""
        self._uncount()
        self.tasks.cancel(self.task)

    cancel = close

    def on_tick(self, tick: int) -> None:
        """The timing wheel reached this handler's HTTP/1.1 connection: past its deadline, interrupt it."""
        conn = self.conn
        assert conn is not None
        loop = self.loop
        if self.deadline and tick >= self.deadline:
            self.deadline = 0  # once: a handler that catches it gets until the keep-alive timeout
            late = HandlerTimeout(f"handler deadline of {loop.settings.handler_timeout:g} s passed")
            self.tasks.interrupt(self.task, late)
            loop.schedule(conn, tick + loop.keepalive_ticks)
            return
        if not self.deadline and tick - conn.last_active >= loop.keepalive_ticks:
            loop.close(conn)  # it ignored its deadline, or has none: it may not hold the connection forever
            return
        loop.schedule(conn, self.deadline or tick + loop.keepalive_ticks)

    def expire(self, tick: int) -> None:
        """Once a second (a protocol other than HTTP/1.1): past the deadline, interrupt the handler."""
        if self.deadline and tick >= self.deadline:
            self.deadline = 0
            self.tasks.interrupt(self.task, HandlerTimeout(f"handler deadline of {self.timeout:g} s passed"))

    def _uncount(self) -> None:
        if self.counted:
            self.counted = False
            self.loop.waiting -= 1
