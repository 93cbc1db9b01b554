"""Driving an async response body on the worker's scheduler: one chunk at a time, as it is produced.

How it works: :meth:`StreamPump.start` runs the producer's ``__anext__()`` as a
:class:`~chopin_core._engine.tasks.Task`.  Once it finishes, the chunk (or the end,
or the error) is kept for the worker, and ``wake()`` tells the worker to take it
(not when it finished at once, inside :meth:`start`: the caller looks then).  The
worker frames what it takes, writes it, and starts the next ``__anext__()`` only
while the connection's output is under its high water, so a slow reader stops the
producer instead of growing the worker's memory.  While a ``__anext__()`` waits
longer than ``keepalive`` seconds, a ticker task adds the keep-alive chunk and
wakes the worker.  Closing the pump (the connection closes) closes the producer
where it waits.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from time import monotonic
from typing import Any

from ..response import AsyncStream
from ..waiting import Timer
from .tasks import Scheduler, Task

__all__ = ["StreamPump"]

log = logging.getLogger("chopin_core.worker")


class NextChunk(Coroutine[Any, Any, Any]):
    """``source.__anext__()`` as a task's coroutine; closing it closes the producer where it waits.

    Python 3.11's async-generator ``asend`` object, when closed, leaves its
    generator marked as running and its ``finally`` unrun (until garbage
    collection), so ``close`` throws ``GeneratorExit`` in instead, as asyncio's
    cancellation throws ``CancelledError``.
    """

    __slots__ = ("_step",)

    def __init__(self, source: AsyncIterator[bytes | str]) -> None:
        self._step: Generator[Any, Any, Any] = source.__anext__().__await__()

    def send(self, value: Any) -> Any:
        """Resume the producer with ``value`` (what its wait returned)."""
        return self._step.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """Raise ``typ`` in the producer where it waits."""
        return self._step.throw(typ) if val is None else self._step.throw(val)

    def close(self) -> None:
        """Close the producer where it waits (``GeneratorExit`` there: its ``finally`` runs).

        Raises:
            RuntimeError: the producer waited again instead of ending (it may not wait
                in a ``finally`` run by a close).
        """
        try:
            self._step.throw(GeneratorExit)
        except (GeneratorExit, StopIteration, StopAsyncIteration):
            return
        self._step.close()
        raise RuntimeError("an async response stream waited while it was being closed")

    def __await__(self) -> Generator[Any, Any, Any]:
        return self._step


async def _aclose(source: AsyncIterator[bytes | str]) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()


class StreamPump(Iterator["bytes | str"]):
    """An :class:`~chopin_core.response.AsyncStream` being sent: its producer, what it produced, its ticker.

    It sits in ``Connection.stream`` (requests pipelined behind it queue, closing the
    connection closes it) but is not iterated: the worker calls :meth:`take`.

    Args:
        body: the response's async body.
        tasks: the worker's scheduler.

    Attributes:
        wake: called once the producer has produced (or ended, or failed) after waiting;
            set by the worker.
        ready: chunks produced and not yet taken.
        ended: the producer is exhausted.
        error: what the producer raised.
    """

    __slots__ = (
        "closed",
        "ended",
        "error",
        "inline",
        "keepalive",
        "keepalive_chunk",
        "quiet_since",
        "ready",
        "source",
        "task",
        "tasks",
        "ticker",
        "ticking",
        "wake",
    )

    def __init__(self, body: AsyncStream, tasks: Scheduler) -> None:
        self.source = body.source
        self.keepalive = body.keepalive
        self.keepalive_chunk = body.keepalive_chunk
        self.tasks = tasks
        self.wake: Callable[[], None] | None = None
        self.ready: deque[bytes] = deque()
        self.task: Task | None = None
        self.ticker: Task | None = None
        self.ended = False
        self.error: Exception | None = None
        self.closed = False
        self.inline = False
        self.ticking = False
        self.quiet_since = monotonic()

    def __next__(self) -> bytes | str:
        raise TypeError("a StreamPump is not iterated: the worker takes its chunks with take()")

    @property
    def producing(self) -> bool:
        """Whether a ``__anext__()`` is in flight."""
        return self.task is not None

    def start(self) -> None:
        """Ask the producer for its next chunk, running it to its first wait (a chunk made at once is in ``ready``)."""
        if self.task is not None or self.ended or self.error is not None or self.closed:
            return
        try:
            step = NextChunk(self.source)
        except Exception as exc:  # a hand-written __anext__ that fails before returning its awaitable
            self.error = exc
            return
        task = self.task = Task(step, self._produced)
        self.inline = True
        try:
            self.tasks.start(task)
        finally:
            self.inline = False
        if self.task is not None and self.keepalive > 0 and self.ticker is None:
            self.ticker = self.tasks.spawn(self._tick())

    def _produced(self, task: Task) -> None:
        self.task = None
        if self.closed:
            return
        error = task.error
        if error is None:
            chunk = task.result
            if type(chunk) is str:
                chunk = chunk.encode()
            if isinstance(chunk, bytes | bytearray | memoryview):
                if chunk:
                    self.ready.append(bytes(chunk))
                    self.quiet_since = monotonic()
            else:
                what = type(chunk).__name__
                self.error = TypeError(f"an async response stream yielded {what}, expected bytes or str")
        elif type(error) is StopAsyncIteration:
            self.ended = True
        else:
            self.error = error if isinstance(error, Exception) else RuntimeError(repr(error))
        if not self.inline and self.wake is not None:
            self.wake()

    async def _tick(self) -> None:
        """While the producer waits, a keep-alive chunk every ``keepalive`` seconds of silence."""
        period = self.keepalive
        while not self.closed:
            due = self.quiet_since + period
            now = monotonic()
            if now < due:
                await Timer(due)
                continue
            self.quiet_since = now
            if self.task is not None and not self.ready and self.wake is not None:
                self.ticking = True  # the wake may close the connection, and this pump: see close()
                try:
                    self.ready.append(self.keepalive_chunk)
                    self.wake()
                finally:
                    self.ticking = False

    def take(self) -> bytes | None:
        """The oldest chunk produced and not yet taken, or None."""
        return self.ready.popleft() if self.ready else None

    def close(self) -> None:
        """Stop: close the producer where it waits or rests (its ``finally`` runs), and the ticker."""
        if self.closed:
            return
        self.closed = True
        self.ready.clear()
        self.wake = None  # the worker's callback holds this pump: no cycle left behind
        tasks = self.tasks
        task, self.task = self.task, None
        if task is not None:
            tasks.cancel(task)  # NextChunk.close: GeneratorExit where the producer waits
        elif not self.ended and self.error is None:
            tasks.spawn(_aclose(self.source))  # between chunks: aclose, whose finally may wait
        ticker = self.ticker
        if ticker is not None and not self.ticking:
            tasks.cancel(ticker)  # (a ticker closing us from inside its own step ends on `closed`)
