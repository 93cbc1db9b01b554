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
from typing import TYPE_CHECKING, Any, Final

from .._wire.h1_writer import END, LAST_CHUNK
from ..connection import Producer, pending_bytes
from ..response import AsyncStream
from ..waiting import Timer
from .tasks import Scheduler, Task, run_blocking

if TYPE_CHECKING:
    from ..connection import Connection
    from .channel import Loop

__all__ = ["JOIN_LIMIT", "STREAM_BATCH", "BlockingStream", "NextChunk", "StreamPump", "end_pump", "pull_pump", "pumped"]

log = logging.getLogger("chopin_core.worker")

# A stream is pulled until this much is pending, then only when the socket drains.
STREAM_BATCH: Final = 64 * 1024
# Output at least this large is written with writev instead of being joined.
JOIN_LIMIT: Final = 64 * 1024


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


class StreamPump(AsyncStream, Producer):
    """An :class:`~chopin_core.response.AsyncStream` being sent: its producer, what it produced, its ticker.

    It replaces that body in ``Response.stream_body`` once started, and it is the
    :class:`~chopin_core.connection.Producer` in ``Connection.stream`` (requests
    pipelined behind it queue, closing the connection closes it): the worker takes
    its chunks with :meth:`take` (:func:`pull_pump`).

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
        "quiet_since",
        "ready",
        "task",
        "tasks",
        "ticker",
        "ticking",
        "wake",
    )

    def __init__(self, body: AsyncStream, tasks: Scheduler) -> None:
        super().__init__(body.source, body.keepalive, body.keepalive_chunk)
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


# -- the worker's side: framing what a pump produced on an HTTP/1.1 connection -------------------


def pull_pump(loop: Loop, conn: Connection, pump: StreamPump) -> None:
    """Frame what an async stream produced; ask for more while the output is under the batch size.

    Below ``min(write_high_water, 64 KiB)`` pending bytes the next chunk is asked
    for at once (a producer that does not wait fills the batch, as a generator
    does); at or past it the producer is left alone until the socket drains and the
    worker's ``flush`` comes back here.  A chunk produced after a wait arrives through
    :func:`pumped`.
    """
    out = conn.out
    chunked = conn.stream_chunked
    pending = pending_bytes(out)
    batch = min(loop.settings.write_high_water, STREAM_BATCH)
    while True:
        chunk = pump.take()
        if chunk is not None:
            if chunked:
                out += (b"%x\r\n" % len(chunk), chunk, END)
            else:
                out.append(chunk)
            pending += len(chunk)
            if pending >= JOIN_LIMIT:
                conn.big = True
            continue
        if pump.error is not None:
            # As for a generator (see streams.pull_iterator): no terminal chunk, close once what is pending is out.
            log.error("worker %d: response stream failed after its head", loop.index, exc_info=pump.error)
            pump.close()
            conn.stream = None
            conn.queued.clear()
            conn.close_after = True
            return
        if pump.ended:
            pump.close()  # its keep-alive ticker
            conn.stream = None
            if chunked:
                out.append(LAST_CHUNK)
            if not conn.stream_keep:
                conn.close_after = True
            return
        if pump.producing or pending >= batch:
            return
        pump.start()


def end_pump(loop: Loop, conn: Connection, pump: StreamPump) -> None:
    """A graceful stop: end an async stream cleanly (server-sent event clients reconnect to another worker)."""
    pump.close()
    conn.stream = None
    if conn.stream_chunked:
        conn.out.append(LAST_CHUNK)
    if not conn.queued:
        conn.close_after = True  # requests queued behind it are answered first, with Connection: close
    loop.flush(conn)


def pumped(loop: Loop, conn: Connection, pump: StreamPump) -> None:
    """An async stream produced (or ended, or failed) after waiting: write it now (the pump's ``wake``)."""
    if conn.closed or conn.stream is not pump:
        return
    try:
        loop.flush(conn)
    except Exception as exc:
        loop.contain(conn.fd, exc)  # called from the scheduler, outside the loop's own containment


class BlockingStream(Iterator["bytes | str"]):
    """An async stream served in process (``Worker.answer``, no loop): each chunk is waited for, blocking."""

    __slots__ = ("_body", "_threads")

    def __init__(self, body: AsyncStream, threads: int) -> None:
        self._body = body
        self._threads = threads

    def __next__(self) -> bytes | str:
        try:
            chunk: bytes | str = run_blocking(NextChunk(self._body.source), threads=self._threads)
        except StopAsyncIteration:
            raise StopIteration from None
        return chunk

    def close(self) -> None:
        """Close the producer (its ``finally`` runs)."""
        self._body.close()
