"""What an ``async def`` handler may await: timers, threads, fds and groups.

A worker drives ``async def`` handlers on its own epoll loop (no asyncio
underneath): while one waits, the worker serves its other connections.  What a
handler awaits comes down to one of two things the loop knows how to wait for,
the *wait protocol* every awaitable of the stack keeps to (chopin-pg's
``AsyncPool`` too, without importing this package):

* ``(fd, events)``: a tuple of an fd and a mask of ``select.EPOLLIN`` /
  ``select.EPOLLOUT``; the coroutine is resumed with the mask of what happened
  once the fd is ready.  One coroutine at a time may wait on an fd.
* an object with ``add_done_callback(fn)`` (a ``concurrent.futures.Future``, a
  driver's own future): resumed with ``None`` once ``fn`` was called, from the
  loop's thread or any other; the awaitable then reads its outcome.

The helpers here yield those, or one of three kinds only chopin-core's own
schedulers know (:class:`Timer`, :class:`FdDeadline`, :class:`Offload`, :class:`Gather`).  Awaiting
anything else (an asyncio future) raises ``TypeError`` at the ``await``.  Outside
a worker, :func:`chopin_core.run_blocking` drives the same coroutines (scripts,
tests).
"""

from __future__ import annotations

import select
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Final, Generic, ParamSpec, TypeVar

__all__ = [
    "Defer",
    "FdDeadline",
    "Gather",
    "Offload",
    "Timer",
    "defer",
    "gather",
    "sleep",
    "to_thread",
    "wait_fd",
    "wait_readable",
    "wait_writable",
]

P = ParamSpec("P")
T = TypeVar("T")

READABLE: Final = select.EPOLLIN
WRITABLE: Final = select.EPOLLOUT


class Timer:
    """Resume the awaiting coroutine once ``time.monotonic()`` reaches ``deadline``."""

    __slots__ = ("deadline",)

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __await__(self) -> Generator[Timer, None, None]:
        yield self


class FdDeadline:
    """Wait for ``(fd, events)`` as the wait protocol does, but no later than ``deadline`` (``time.monotonic()``).

    The awaiting coroutine is resumed with the epoll mask, or with ``0`` once the
    deadline passed first (the fd is then no longer awaited).
    """

    __slots__ = ("deadline", "events", "fd")

    def __init__(self, fd: int, events: int, deadline: float) -> None:
        self.fd = fd
        self.events = events
        self.deadline = deadline

    def __await__(self) -> Generator[FdDeadline, int, int]:
        mask: int = yield self
        return mask


class Offload(Generic[T]):
    """Run ``fn(*args, **kwargs)`` on the worker's thread pool; the awaiting coroutine gets its result."""

    __slots__ = ("args", "fn", "kwargs", "outcome")

    def __init__(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        # Set by the scheduler: a finished concurrent.futures.Future (or the value, run in place).
        self.outcome: Any = None

    def __await__(self) -> Generator[Offload[T], None, T]:
        yield self
        outcome = self.outcome
        result: T = outcome.result()
        return result


class Gather:
    """Run coroutines side by side; the awaiting coroutine gets their results in order.

    The first one to raise cancels the others and its exception is raised at the
    ``await`` (the way ``asyncio.TaskGroup`` behaves).
    """

    __slots__ = ("coros", "error", "results")

    def __init__(self, coros: list[Coroutine[Any, Any, Any]]) -> None:
        self.coros = coros
        self.results: list[Any] = []
        self.error: BaseException | None = None

    def __await__(self) -> Generator[Gather, None, list[Any]]:
        yield self
        if self.error is not None:
            raise self.error
        return self.results


class Defer:
    """Run ``coro`` once the awaiting task has finished (its answer written), on the same loop."""

    __slots__ = ("coro",)

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro

    def __await__(self) -> Generator[Defer, None, None]:
        yield self


async def defer(coro: Coroutine[Any, Any, Any]) -> None:
    """Schedule ``coro`` to run after this handler's answer is written: a background task.

    It runs on the same worker once the handler has returned and its response has gone
    to the socket (sending a welcome mail, warming a cache); the client does not wait
    for it. What it raises is logged with its traceback; nothing else sees it. For a
    blocking call, defer ``to_thread(fn, ...)``. A worker that stops does not wait for
    background tasks: keep them short, or make them safe to lose.
    """
    if not isinstance(coro, Coroutine):
        raise TypeError(f"defer: expected a coroutine (call the async function), got {type(coro).__name__}")
    await Defer(coro)


async def sleep(seconds: float) -> None:
    """Wait ``seconds`` without holding the worker (``asyncio.sleep``'s counterpart)."""
    await Timer(time.monotonic() + max(0.0, seconds))


async def to_thread(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``fn`` on the worker's small thread pool and wait for its result.

    For blocking calls that release the GIL (Argon2 hashing, large gzip, a blocking
    client library): the worker serves other connections meanwhile.  The pool belongs
    to the worker process (``Settings.worker_threads`` threads, started on first use).
    """
    return await Offload(fn, args, kwargs)


async def gather(*aws: Awaitable[Any]) -> list[Any]:
    """Await several coroutines at once (say, 20 queries pipelined); their results in order.

    Raises:
        Exception: the first exception one of them raised (the others are cancelled).
    """
    coros = [aw if isinstance(aw, Coroutine) else _await(aw) for aw in aws]
    if not coros:
        return []
    return await Gather(coros)


async def _await(aw: Awaitable[T]) -> T:
    return await aw


class _FdWait:
    __slots__ = ("events", "fd")

    def __init__(self, fd: int, events: int) -> None:
        self.fd = fd
        self.events = events

    def __await__(self) -> Generator[tuple[int, int], int, int]:
        mask: int = yield (self.fd, self.events)
        return mask


async def wait_readable(fd: int) -> int:
    """Wait until ``fd`` can be read (or has an error or hang-up); the epoll mask of what happened."""
    return await _FdWait(fd, READABLE)


async def wait_writable(fd: int) -> int:
    """Wait until ``fd`` can be written (or has an error or hang-up); the epoll mask of what happened."""
    return await _FdWait(fd, WRITABLE)


async def wait_fd(fd: int, events: int, timeout: float) -> int:
    """Wait until ``fd`` is ready for ``events`` (``select.EPOLLIN``/``EPOLLOUT``), at most ``timeout`` seconds.

    For network clients that need a read or connect timeout (``AsyncHttpClient``).

    Returns:
        The epoll mask of what happened (it may include ``EPOLLERR``/``EPOLLHUP``),
        or ``0`` when ``timeout`` passed first.
    """
    return await FdDeadline(fd, events, time.monotonic() + max(0.0, timeout))
