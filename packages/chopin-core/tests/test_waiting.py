"""The wait protocol and its scheduler, driven by ``run_blocking`` (no server)."""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Generator
from concurrent.futures import Future

import pytest
from chopin_core import gather, run_blocking, sleep, to_thread, wait_fd, wait_readable, wait_writable
from chopin_core._engine.tasks import Scheduler


async def _double_later(n: int, seconds: float = 0.05) -> int:
    await sleep(seconds)
    return n * 2


def test_run_blocking_returns_what_the_coroutine_returns() -> None:
    async def main() -> str:
        return "done"

    assert run_blocking(main()) == "done"


def test_sleep_waits_about_as_long_as_asked() -> None:
    before = time.monotonic()
    run_blocking(sleep(0.1))
    assert 0.09 <= time.monotonic() - before < 1.0


def test_gather_runs_side_by_side_and_keeps_the_order() -> None:
    async def main() -> list[int]:
        return await gather(_double_later(3, 0.15), _double_later(1, 0.05), _double_later(2, 0.1))

    before = time.monotonic()
    assert run_blocking(main()) == [6, 2, 4]
    assert time.monotonic() - before < 0.35  # not 0.3 s one after the other


def test_gather_of_nothing_is_an_empty_list() -> None:
    async def main() -> list[int]:
        return await gather()

    assert run_blocking(main()) == []


def test_the_first_failure_in_gather_is_raised_and_the_others_are_cancelled() -> None:
    cancelled = []

    async def slow() -> None:
        try:
            await sleep(5)
        finally:
            cancelled.append("slow")

    async def fails() -> None:
        await sleep(0.01)
        raise ValueError("second one failed")

    async def main() -> None:
        await gather(slow(), fails())

    before = time.monotonic()
    with pytest.raises(ValueError, match="second one failed"):
        run_blocking(main())
    assert cancelled == ["slow"]
    assert time.monotonic() - before < 1.0


def test_to_thread_runs_off_the_loop_and_returns_its_result() -> None:
    loop_thread = threading.get_ident()

    async def main() -> tuple[int, bool]:
        ident = await to_thread(threading.get_ident)
        value = await to_thread(sum, range(10))
        return value, ident != loop_thread

    assert run_blocking(main()) == (45, True)


def test_to_thread_raises_what_the_call_raised() -> None:
    def broken() -> None:
        raise KeyError("from the thread")

    async def main() -> None:
        await to_thread(broken)

    with pytest.raises(KeyError, match="from the thread"):
        run_blocking(main())


def test_threads_finish_together_while_the_loop_waits() -> None:
    async def main() -> list[None]:
        return await gather(*(to_thread(time.sleep, 0.2) for _ in range(4)))

    before = time.monotonic()
    run_blocking(main(), threads=4)
    assert time.monotonic() - before < 0.6


def test_wait_readable_and_writable_on_a_socket_pair() -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        threading.Timer(0.05, b.send, (b"ping",)).start()

        async def main() -> tuple[int, int, bytes]:
            writable = await wait_writable(a.fileno())
            readable = await wait_readable(a.fileno())
            return writable, readable, a.recv(10)

        writable, readable, data = run_blocking(main())
        assert writable & 4 and readable & 1
        assert data == b"ping"
    finally:
        a.close()
        b.close()


def test_a_future_completed_on_another_thread_wakes_the_waiter() -> None:
    future: Future[str] = Future()

    class Waits:
        def __await__(self) -> Generator[Future[str], None, str]:
            yield future
            return future.result()

    threading.Timer(0.05, future.set_result, ("from elsewhere",)).start()

    async def main() -> str:
        return await Waits()

    assert run_blocking(main()) == "from elsewhere"


def test_awaiting_an_asyncio_future_is_refused_with_a_reason() -> None:
    loop = asyncio.new_event_loop()

    async def main() -> None:
        await loop.create_future()

    try:
        with pytest.raises(TypeError, match="chopin runs handlers on its own loop"):
            run_blocking(main())
    finally:
        loop.close()


def test_a_malformed_fd_wait_is_refused() -> None:
    class Odd:
        def __await__(self) -> Generator[tuple[int, int], int, int]:
            return (yield (3, 0))

    async def main() -> None:
        await Odd()

    with pytest.raises(TypeError, match="events non-zero"):
        run_blocking(main())


def test_two_waiters_on_one_fd_is_an_error_for_the_second() -> None:
    a, b = socket.socketpair()
    try:

        async def main() -> None:
            await gather(wait_readable(a.fileno()), wait_readable(a.fileno()))

        with pytest.raises(RuntimeError, match="already awaited"):
            run_blocking(main())
    finally:
        a.close()
        b.close()


# -- wait_fd: a wait on an fd with a timeout ----------------------------------------------


def test_wait_fd_gives_the_mask_when_ready_and_0_once_its_timeout_passed() -> None:
    a, b = socket.socketpair()

    async def main() -> tuple[int, float, int]:
        before = time.monotonic()
        timed_out = await wait_fd(a.fileno(), select.EPOLLIN, 0.1)
        waited = time.monotonic() - before
        b.send(b"x")
        return timed_out, waited, await wait_fd(a.fileno(), select.EPOLLIN, 5.0)

    try:
        timed_out, waited, ready = run_blocking(main())
    finally:
        a.close()
        b.close()
    assert timed_out == 0
    assert 0.09 <= waited < 1.0
    assert ready & select.EPOLLIN


def test_a_timed_out_wait_fd_releases_the_fd_for_the_next_waiter() -> None:
    a, b = socket.socketpair()

    async def gives_up() -> int:
        return await wait_fd(a.fileno(), select.EPOLLIN, 0.05)

    async def waits_after() -> int:
        await sleep(0.1)
        b.send(b"x")
        return await wait_readable(a.fileno())  # refused ("already awaited") if the first still held it

    async def main() -> list[int]:
        return await gather(gives_up(), waits_after())

    try:
        first, second = run_blocking(main())
    finally:
        a.close()
        b.close()
    assert first == 0
    assert second & select.EPOLLIN


def test_a_wait_fd_that_came_ready_is_not_woken_again_by_its_deadline() -> None:
    a, b = socket.socketpair()
    b.send(b"x")

    async def main() -> tuple[int, float]:
        mask = await wait_fd(a.fileno(), select.EPOLLIN, 0.05)  # ready at once; its deadline stays on the heap
        before = time.monotonic()
        await sleep(0.2)  # the stale deadline passes meanwhile and must not cut this short
        return mask, time.monotonic() - before

    try:
        mask, slept = run_blocking(main())
    finally:
        a.close()
        b.close()
    assert mask & select.EPOLLIN
    assert slept >= 0.19


def test_stale_deadlines_do_not_pile_up_on_the_timer_heap() -> None:
    ep = select.epoll()
    scheduler = Scheduler(ep, lambda: None)
    a, b = socket.socketpair()
    b.send(b"x")  # a stays readable: every wait ends at once, long before its 60 s deadline

    async def one() -> int:
        return await wait_fd(a.fileno(), select.EPOLLIN, 60.0)

    try:
        for _ in range(5000):
            task = scheduler.spawn(one())
            for fd, events in ep.poll(1.0):
                scheduler.on_event(fd, events)
            assert task.finished and task.result & select.EPOLLIN
        assert len(scheduler.timers) <= 2048  # compacted, not 5000
        assert scheduler.wait_time(10.0) == 10.0  # and none of them shortens the loop's sleep
        assert scheduler.timers == []
    finally:
        ep.close()
        a.close()
        b.close()


def test_interrupting_a_task_in_gather_cancels_its_children() -> None:
    import select

    from chopin_core._engine.tasks import Scheduler, Task

    closed: list[int] = []

    async def child(i: int) -> None:
        try:
            await sleep(30)
        finally:
            closed.append(i)

    async def parent() -> str:
        try:
            await gather(child(1), child(2))
        except TimeoutError:
            return "interrupted"
        return "finished"

    ep = select.epoll()
    try:
        scheduler = Scheduler(ep, lambda: None)
        task = Task(parent(), None)
        scheduler.start(task)
        scheduler.interrupt(task, TimeoutError("deadline"))
        scheduler.run_ready()
        assert (task.finished, task.result, sorted(closed)) == (True, "interrupted", [1, 2])
    finally:
        ep.close()


def test_deferred_work_runs_after_the_task_and_its_errors_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    from chopin_core import defer

    order: list[str] = []

    async def later(name: str) -> None:
        await sleep(0.01)
        order.append(name)

    async def broken() -> None:
        raise RuntimeError("background failure")

    async def handler() -> str:
        await defer(later("mail"))
        await defer(broken())
        order.append("answered")
        return "response"

    assert run_blocking(handler()) == "response"  # run_blocking waits for the background work too
    assert order == ["answered", "mail"]
    assert "a background task (defer) failed" in caplog.text
    assert "background failure" in caplog.text
