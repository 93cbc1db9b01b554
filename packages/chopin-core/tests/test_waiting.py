"""The wait protocol and its scheduler, driven by ``run_blocking`` (no server)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Generator
from concurrent.futures import Future

import pytest
from chopin_core import gather, run_blocking, sleep, to_thread, wait_readable, wait_writable


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
