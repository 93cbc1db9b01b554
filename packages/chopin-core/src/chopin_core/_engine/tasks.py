"""The scheduler that drives coroutines on an epoll loop: a worker's waiting handlers.

How it works: a :class:`Task` wraps a coroutine.  :meth:`Scheduler.spawn` runs it
to its first ``await``; what it yields says what it waits for (the wait protocol of
:mod:`chopin_core.waiting`): an ``(fd, events)`` pair arms that fd in the epoll
(one-shot), a future gets a done-callback, a :class:`~chopin_core.waiting.Timer`
goes on a heap, a :class:`~chopin_core.waiting.FdDeadline` does both (whichever
comes first resumes the task; a deadline resumes it with mask 0), an
:class:`~chopin_core.waiting.Offload` goes to the thread pool,
a :class:`~chopin_core.waiting.Gather` spawns child tasks.  The loop that owns the
epoll hands ready fds to :meth:`Scheduler.on_event` and calls
:meth:`Scheduler.run_ready` once per turn: due timers, futures completed on other
threads (they wake the loop through its wake fd) and futures completed in the loop
resume their tasks there, never from inside another task's step.  Every wait bumps
the task's generation, so a stale wake-up (a cancelled wait's callback) is ignored.
The worker runs one; :func:`run_blocking` runs one on a private epoll for scripts
and tests.
"""

from __future__ import annotations

import heapq
import logging
import os
import select
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from time import monotonic_ns
from typing import Any, Final, TypeVar

from ..waiting import Defer, FdDeadline, Gather, Offload, Timer

__all__ = ["Scheduler", "Task", "run_blocking"]

log = logging.getLogger("chopin_core.worker")

T = TypeVar("T")

_ONESHOT: Final = select.EPOLLONESHOT
_NS: Final = 1_000_000_000
_TIMERS_MIN: Final = 1024


class Task:
    """One coroutine driven by a :class:`Scheduler`.

    Attributes:
        coro: the coroutine.
        finished: it returned, raised or was cancelled.
        result: what it returned.
        error: what it raised (None: it returned, or was cancelled).
        cancelled: it was cancelled (closed) before it finished.
    """

    __slots__ = ("afterwards", "cancelled", "children", "coro", "error", "fd", "finished", "gen", "on_done", "result")

    def __init__(self, coro: Coroutine[Any, Any, Any], on_done: Callable[[Task], None] | None) -> None:
        self.coro = coro
        self.on_done = on_done
        self.gen = 0
        self.fd = -1
        self.finished = False
        self.cancelled = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.children: list[Task] | None = None
        self.afterwards: list[Coroutine[Any, Any, Any]] | None = None  # defer(): run once this one finished


class Scheduler:
    """Coroutines waiting on one epoll: fds, futures, timers, a thread pool and groups.

    Args:
        ep: the epoll the owner polls; fds awaited by tasks are armed in it one-shot.
        wake: wakes the owner's ``epoll.poll`` from another thread (a pipe write).
        threads: size of the thread pool :func:`~chopin_core.waiting.to_thread` uses,
            started on first use.
        name: a prefix for the pool's thread names.
    """

    def __init__(self, ep: select.epoll, wake: Callable[[], None], threads: int = 4, name: str = "chopin") -> None:
        self.ep = ep
        self.wake = wake
        self.threads = threads
        self.name = name
        self.fds: dict[int, Task] = {}
        self.ready: deque[tuple[Task, int, Any, BaseException | None]] = deque()
        self.timers: list[tuple[int, int, Task, int]] = []
        self.remote: list[tuple[Task, int]] = []
        self._seq = 0
        self.detached = 0  # background tasks (defer) still running
        # The timer heap is compacted when it grows past this (see _push_timer).
        self._timers_cap = _TIMERS_MIN
        self._lock = threading.Lock()
        self._thread = threading.get_ident()
        self._pool: ThreadPoolExecutor | None = None

    # -- starting and stopping --------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], on_done: Callable[[Task], None] | None = None) -> Task:
        """Run ``coro`` to its first wait; ``on_done(task)`` is called once it finishes (not when cancelled)."""
        task = Task(coro, on_done)
        self._step(task, None, None)
        return task

    def start(self, task: Task) -> None:
        """Run a task made by the caller to its first wait (see :meth:`spawn`)."""
        self._step(task, None, None)

    def interrupt(self, task: Task, error: BaseException) -> None:
        """Throw ``error`` into ``task`` at whatever it awaits (on the next :meth:`run_ready`).

        A task waiting in a ``gather`` has its children cancelled first (their
        ``finally`` blocks run), as ``asyncio`` cancels a gather's tasks.
        """
        if not task.finished:
            self._detach(task)
            children = task.children
            task.children = None
            if children:
                for child in children:
                    self.cancel(child)
            self.ready.append((task, task.gen, None, error))

    def cancel(self, task: Task) -> None:
        """Close ``task``'s coroutine where it waits (its ``finally`` blocks run); no ``on_done``."""
        if task.finished:
            return
        self._detach(task)
        task.finished = task.cancelled = True
        children = task.children
        task.children = None
        if children:
            for child in children:
                self.cancel(child)
        try:
            task.coro.close()
        except Exception:
            log.exception("a cancelled handler raised while it was being closed")

    def close(self) -> None:
        """Stop the thread pool (work already running finishes in the background)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # -- the owner's loop -----------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether there is something to run without waiting for an fd."""
        return bool(self.ready or self.remote)

    def wait_time(self, timeout: float) -> float:
        """How long the owner may block in ``epoll.poll`` (seconds), at most ``timeout``."""
        if self.ready or self.remote:
            return 0.0
        timers = self.timers
        # Entries of waits that ended otherwise (an fd came ready before its deadline)
        # must not wake the loop: drop them from the top.
        while timers and timers[0][2].gen != timers[0][3]:
            heapq.heappop(timers)
        if timers:
            due = (timers[0][0] - monotonic_ns()) / _NS
            return max(0.0, min(timeout, due + 0.0005))
        return timeout

    def on_event_later(self, fd: int, events: int) -> None:
        """``fd`` is ready: resume its task in :meth:`run_ready`, after the rest of this wake-up's events.

        The worker's loop uses it so that new requests of the same wake-up are answered
        before a wave of waiting handlers resumes (a burst of upstream answers would
        otherwise hold a cheap request behind all of them).
        """
        task = self.fds.pop(fd, None)
        if task is None:
            return
        task.fd = -1
        self.ready.append((task, task.gen, events, None))

    def on_event(self, fd: int, events: int) -> None:
        """``fd`` is ready: resume the task waiting on it with ``events``."""
        task = self.fds.pop(fd, None)
        if task is None:
            return
        task.fd = -1
        self._step(task, events, None)

    def run_ready(self) -> None:
        """Resume what is due: timers, futures completed here or on other threads."""
        if self.remote:
            with self._lock:
                woken, self.remote = self.remote, []
            for task, gen in woken:
                self.ready.append((task, gen, None, None))
        timers = self.timers
        if timers and timers[0][0] <= monotonic_ns():
            now = monotonic_ns()
            while timers and timers[0][0] <= now:
                _, _, task, gen = heapq.heappop(timers)
                if task.fd >= 0 and gen == task.gen:
                    # An FdDeadline whose deadline came first: stop waiting on the fd, resume with 0.
                    self._detach(task)
                    self.ready.append((task, task.gen, 0, None))
                else:
                    self.ready.append((task, gen, None, None))
        ready = self.ready
        # Only what is ready now: a task that re-queues itself runs on the next turn.
        for _ in range(len(ready)):
            task, gen, value, error = ready.popleft()
            if not task.finished and (gen == task.gen):
                self._step(task, value, error)

    # -- driving ------------------------------------------------------------------------

    def _step(self, task: Task, value: Any, error: BaseException | None) -> None:
        coro = task.coro
        try:
            yielded = coro.send(value) if error is None else coro.throw(error)
        except StopIteration as stop:
            self._finish(task, stop.value, None)
            return
        except Exception as exc:
            self._finish(task, None, exc)
            return
        self._park(task, yielded)

    def _finish(self, task: Task, result: Any, error: BaseException | None) -> None:
        task.finished = True
        task.result = result
        task.error = error
        task.gen += 1
        if task.on_done is not None:
            task.on_done(task)  # a handler's answer is framed and written here
        afterwards = task.afterwards
        if afterwards:
            task.afterwards = None
            for coro in afterwards:
                self.background(coro)

    def background(self, coro: Coroutine[Any, Any, Any]) -> Task:
        """Run ``coro`` detached, from the loop's next pass: what it raises is logged, nobody waits for it.

        Started from the ready queue, not here: a handler that finished in its first step
        has its answer framed and written by the worker before this runs.
        """
        self.detached += 1
        task = Task(coro, self._background_done)
        self.ready.append((task, task.gen, None, None))
        return task

    def _background_done(self, task: Task) -> None:
        self.detached -= 1
        if task.error is not None:
            log.error("a background task (defer) failed", exc_info=task.error)

    def _park(self, task: Task, yielded: object) -> None:
        """Wait for what ``task`` yielded (see the module docstring)."""
        task.gen += 1
        gen = task.gen
        kind = type(yielded)
        if kind is tuple:
            pair: tuple[Any, ...] = yielded  # type: ignore[assignment]
            fd: int = pair[0] if len(pair) == 2 else -1
            events: int = pair[1] if len(pair) == 2 else 0
            self._arm(task, gen, fd, events, yielded)
        elif kind is Timer:
            self._push_timer(int(yielded.deadline * _NS), task, gen)  # type: ignore[attr-defined]
        elif kind is FdDeadline:
            wait: FdDeadline = yielded  # type: ignore[assignment]
            if self._arm(task, gen, wait.fd, wait.events, yielded):
                self._push_timer(int(wait.deadline * _NS), task, gen)
        elif kind is Offload:
            self._offload(task, gen, yielded)  # type: ignore[arg-type]
        elif kind is Gather:
            self._gather(task, gen, yielded)  # type: ignore[arg-type]
        elif kind is Defer:
            if task.afterwards is None:
                task.afterwards = []
            task.afterwards.append(yielded.coro)  # type: ignore[attr-defined]
            self.ready.append((task, gen, None, None))  # the caller goes on at once
        elif callable(getattr(yielded, "add_done_callback", None)) and "asyncio" not in kind.__module__:
            yielded.add_done_callback(partial(self._resolved, task, gen))  # type: ignore[attr-defined]
        else:
            what = "bare yield (asyncio.sleep(0)?)" if yielded is None else f"{kind.__module__}.{kind.__qualname__}"
            hint = " (asyncio objects cannot be awaited here: chopin runs handlers on its own loop)"
            self._refuse(task, f"awaited a {what}, which chopin's loop cannot wait for{hint}")

    def _arm(self, task: Task, gen: int, fd: object, events: object, yielded: object) -> bool:
        """Arm ``fd`` one-shot for ``task``; False (and the task gets an error) if it cannot be."""
        if type(fd) is not int or type(events) is not int or not events or fd < 0:
            self._refuse(task, f"awaited {yielded!r}: a wait on an fd is (fd, events) with events non-zero")
            return False
        owner = self.fds.get(fd)
        if owner is not None and owner is not task:
            self._refuse(task, f"fd {fd} is already awaited by another task", RuntimeError)
            return False
        try:
            try:
                self.ep.modify(fd, events | _ONESHOT)
            except FileNotFoundError:
                self.ep.register(fd, events | _ONESHOT)
        except OSError as exc:
            self.ready.append((task, gen, None, exc))
            return False
        self.fds[fd] = task
        task.fd = fd
        return True

    def _push_timer(self, when: int, task: Task, gen: int) -> None:
        """Put a deadline (monotonic ns) on the heap for ``task``'s wait number ``gen``."""
        self._seq += 1
        timers = self.timers
        heapq.heappush(timers, (when, self._seq, task, gen))
        if len(timers) > self._timers_cap:
            # An FdDeadline's entry stays on the heap when its fd comes ready first (most
            # do): drop the stale ones now and then so a busy client does not grow it.
            timers[:] = [entry for entry in timers if entry[2].gen == entry[3]]
            heapq.heapify(timers)
            self._timers_cap = max(_TIMERS_MIN, 2 * len(timers))

    def _refuse(self, task: Task, message: str, kind: type[Exception] = TypeError) -> None:
        self.ready.append((task, task.gen, None, kind(message)))

    def _resolved(self, task: Task, gen: int, _future: object) -> None:
        if threading.get_ident() == self._thread:
            self.ready.append((task, gen, None, None))
            return
        with self._lock:
            self.remote.append((task, gen))
        self.wake()

    def _detach(self, task: Task) -> None:
        """Forget what ``task`` waits for: later wake-ups of that wait are ignored."""
        task.gen += 1
        fd = task.fd
        if fd >= 0:
            task.fd = -1
            if self.fds.get(fd) is task:
                del self.fds[fd]
                try:
                    self.ep.modify(fd, 0)
                except OSError:
                    pass

    def _offload(self, task: Task, gen: int, job: Offload[Any]) -> None:
        pool = self._pool
        if pool is None:
            pool = self._pool = ThreadPoolExecutor(max(1, self.threads), thread_name_prefix=self.name)
        try:
            future = pool.submit(job.fn, *job.args, **job.kwargs)
        except RuntimeError as exc:  # the pool is shut down: the worker is exiting
            self.ready.append((task, gen, None, exc))
            return
        job.outcome = future
        future.add_done_callback(partial(self._resolved, task, gen))

    def _gather(self, task: Task, gen: int, group: Gather) -> None:
        left = len(group.coros)
        results: list[Any] = [None] * left
        group.results = results
        children: list[Task] = []
        task.children = children

        def child_done(index: int, child: Task) -> None:
            nonlocal left
            if task.finished or task.gen != gen or group.error is not None:
                return
            if child.error is not None:
                group.error = child.error
                task.children = None
                for other in children:
                    if other is not child:
                        self.cancel(other)
                self.ready.append((task, gen, None, None))
                return
            results[index] = child.result
            left -= 1
            if left == 0:
                task.children = None
                self.ready.append((task, gen, None, None))

        for index, coro in enumerate(group.coros):
            if group.error is not None:
                coro.close()  # an earlier one failed at once: never started
                continue
            children.append(self.spawn(coro, partial(child_done, index)))


def run_blocking(coro: Coroutine[Any, Any, T], *, threads: int = 4) -> T:
    """Run ``coro`` to its end on a private loop, blocking the caller; its result.

    For scripts and tests: the same waits as a worker's handlers (fds, futures,
    ``sleep``, ``to_thread``, ``gather``), with nothing else being served.

    Raises:
        Exception: whatever ``coro`` raised.
    """
    ep = select.epoll()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    ep.register(wake_r, select.EPOLLIN)

    def wake() -> None:
        try:
            os.write(wake_w, b"\0")
        except OSError:
            pass

    scheduler = Scheduler(ep, wake, threads, "chopin-run")
    root = Task(coro, None)
    try:
        scheduler.start(root)
        while not root.finished or scheduler.detached:
            for fd, events in ep.poll(scheduler.wait_time(3600.0)):
                if fd == wake_r:
                    try:
                        os.read(wake_r, 512)
                    except OSError:
                        pass
                else:
                    scheduler.on_event(fd, events)
            scheduler.run_ready()
        if root.error is not None:
            raise root.error
        result: T = root.result
        return result
    finally:
        if not root.finished:
            scheduler.cancel(root)
        scheduler.close()
        ep.close()
        os.close(wake_r)
        os.close(wake_w)
