"""A real chopin server with async def handlers on chopin_pg.AsyncPool (issue 17's faults).

A client that goes away cancels its handler and the pinned connection goes back to the
pool (its transaction rolled back); one request's query error does not touch the others
that share its connections.
"""

from __future__ import annotations

import concurrent.futures
import socket
import time

import httpx
import pytest


@pytest.fixture(scope="module")
def base_url(local_pg, serve_script) -> str:  # type: ignore[no-untyped-def]
    return serve_script(
        "tests/integration/scripts/waiting_db_app.py", workers=1, extra_env={"DATABASE_URL": local_pg.dsn()}
    )


def _pool(base_url: str) -> dict[str, int]:
    state: dict[str, int] = httpx.get(f"{base_url}/pool", timeout=5).json()
    return state


def test_a_client_that_leaves_releases_its_pinned_connection(base_url: str) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(b"GET /hold?s=30 HTTP/1.1\r\nHost: t\r\n\r\n")
    deadline = time.monotonic() + 5
    while _pool(base_url)["pinned"] != 1:
        assert time.monotonic() < deadline, "the transaction never pinned a connection"
        time.sleep(0.05)
    sock.close()  # the client gives up: its handler is cancelled where it waits
    deadline = time.monotonic() + 5
    while _pool(base_url)["pinned"] != 0:
        assert time.monotonic() < deadline, "the cancelled handler kept its connection"
        time.sleep(0.05)
    # Its pg_sleep(30) still runs on the server, the ROLLBACK queued behind it: until that is
    # done the connection is not shared, so these do not wait behind it (two connections).
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: httpx.get(f"{base_url}/ok", timeout=5).json(), range(20)))
    assert answers == [42] * 20


def test_a_query_error_stays_with_its_request(base_url: str) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        paths = ["/fail" if i % 5 == 0 else "/ok" for i in range(100)]
        answers = list(pool.map(lambda p: httpx.get(f"{base_url}{p}", timeout=10), paths))
    for path, answer in zip(paths, answers, strict=True):
        if path == "/ok":
            assert (answer.status_code, answer.json()) == (200, 42)
        else:
            assert (answer.status_code, answer.text) == (422, "DataError: ERROR 22012: division by zero")
    assert _pool(base_url)["connections"] <= 2


def test_a_block_cancelled_mid_query_is_not_shared_until_its_query_ends(local_pg) -> None:  # type: ignore[no-untyped-def]
    """chopin-core's scheduler cancels a handler inside ``pool.transaction()`` during a 5 s query."""
    import select

    import chopin_pg
    from chopin_core import gather, run_blocking
    from chopin_core._engine.tasks import Scheduler, Task

    pool = chopin_pg.AsyncPool(local_pg.dsn(), size=2)

    async def hold() -> None:
        async with pool.transaction() as conn:
            await conn.execute("SELECT pg_sleep(5)")

    ep = select.epoll()
    try:
        scheduler = Scheduler(ep, lambda: None)
        holder = Task(hold(), None)
        scheduler.start(holder)
        until = time.monotonic() + 0.5  # BEGIN answered, the sleep sent and running
        while time.monotonic() < until:
            for fd, events in ep.poll(0.01):
                scheduler.on_event(fd, events)
            scheduler.run_ready()
        assert (pool.pinned, pool.pending) == (1, 1)
        assert run_blocking(pool.query_scalar("SELECT 1")) == 1  # opens the second connection
        scheduler.cancel(holder)  # the client left; the sleep runs on, the ROLLBACK queued behind it
        assert pool.pinned == 0
        started = time.monotonic()
        assert run_blocking(gather(*(pool.query_scalar("SELECT $1::int", (i,)) for i in range(10)))) == list(range(10))
        assert time.monotonic() - started < 2.0  # none queued behind the sleep (4 s when they were)
    finally:
        pool.close()
        ep.close()
