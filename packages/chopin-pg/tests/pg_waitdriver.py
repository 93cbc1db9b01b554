"""A small blocking driver of chopin's wait protocol (/work/WAITPROTO.md) for chopin-pg's tests.

chopin-pg may not import chopin-core, whose worker loop drives these coroutines in
production; this loop speaks the same protocol with ``select.poll``: a coroutine yields
``(fd, events)`` (resumed with the mask that happened) or an object with
``add_done_callback`` (resumed with ``None`` once it fired).  It is strict where the
real loop is: a second waiter on an fd fails the test, and so does a hang (nothing ready,
nothing to poll, or past the deadline) instead of blocking the run.
"""

from __future__ import annotations

import select
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any


class Task:
    """One coroutine driven by :class:`Loop`."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.done = False
        self.cancelled = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.waiting: tuple[str, object] | None = None  # ("fd", fd) or ("future", token)

    def outcome(self) -> Any:
        assert self.done, "task not finished"
        if self.error is not None:
            raise self.error
        return self.result


class Loop:
    """Runs tasks until a condition holds; :meth:`cancel` closes a task's coroutine as the worker does."""

    def __init__(self) -> None:
        self.ready: deque[tuple[Task, Any]] = deque()
        self.fd_waits: dict[int, tuple[Task, int]] = {}

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Task:
        task = Task(coro)
        self.ready.append((task, None))
        return task

    def _step(self, task: Task, value: Any, exc: BaseException | None = None) -> None:
        try:
            awaited = task.coro.send(value) if exc is None else task.coro.throw(exc)
        except StopIteration as stop:
            task.done, task.result = True, stop.value
            return
        except BaseException as exc:
            task.done, task.error = True, exc
            return
        if isinstance(awaited, tuple):
            fd, events = awaited
            assert fd not in self.fd_waits, f"two coroutines wait on fd {fd}"
            assert events and not events & ~5, f"bad events {events}"
            self.fd_waits[fd] = (task, events)
            task.waiting = ("fd", fd)
        elif hasattr(awaited, "add_done_callback"):
            token = object()
            task.waiting = ("future", token)
            awaited.add_done_callback(lambda _f: self._wake(task, token))
        else:
            self._step(task, None, TypeError(f"awaited {awaited!r}: not an fd wait nor a future"))

    def _wake(self, task: Task, token: object) -> None:
        if task.waiting == ("future", token):  # a callback after a cancel is ignored
            task.waiting = None
            self.ready.append((task, None))

    def cancel(self, task: Task) -> None:
        if task.waiting is not None and task.waiting[0] == "fd":
            del self.fd_waits[task.waiting[1]]  # type: ignore[arg-type]
        task.waiting = None
        self.ready = deque((t, v) for t, v in self.ready if t is not task)
        task.coro.close()
        task.done, task.cancelled = True, True

    def run_until(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"hung: condition not met within {timeout} s")
            if self.ready:
                task, value = self.ready.popleft()
                self._step(task, value)
                continue
            self.poll_once()

    def poll_once(self, timeout_ms: int = 100) -> None:
        """Wait (up to ``timeout_ms``) for the fds the tasks wait on; make the ready ones ready."""
        if not self.fd_waits:
            raise AssertionError("hung: every task waits on a future nobody will set")
        poller = select.poll()
        for fd, (_, events) in self.fd_waits.items():
            poller.register(fd, events)
        for fd, mask in poller.poll(timeout_ms):
            task, _ = self.fd_waits.pop(fd)
            task.waiting = None
            self.ready.append((task, mask))

    def parked(self, *tasks: Task) -> bool:
        """Whether every task waits (on an fd or a future) and none is ready to run."""
        return not self.ready and all(t.waiting is not None or t.done for t in tasks)


def gather(*coros: Coroutine[Any, Any, Any], return_exceptions: bool = False, timeout: float = 60.0) -> list[Any]:
    """Run the coroutines together; their results (or exceptions, with ``return_exceptions``) in order."""
    loop = Loop()
    tasks = [loop.spawn(c) for c in coros]
    loop.run_until(lambda: all(t.done for t in tasks), timeout)
    if return_exceptions:
        return [t.error if t.error is not None else t.result for t in tasks]
    return [t.outcome() for t in tasks]


def run(coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
    """Run one coroutine to its end and return its result."""
    return gather(coro, timeout=timeout)[0]
