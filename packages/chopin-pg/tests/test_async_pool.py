"""AsyncPool against the real server: spreading, pinned transactions, dead connections, restart, fork."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from chopin_pg import AsyncPool, ConfigError, ErrorClass, InterfaceError, PgConfig, PgError, connect
from conftest import LOCAL, local_url
from pg_waitdriver import Loop, gather, run

URL = local_url()


@pytest.fixture
def pool() -> Iterator[AsyncPool]:
    p = AsyncPool(URL, size=4)
    yield p
    p.close()


@pytest.fixture
def table() -> Iterator[str]:
    name = f"cpg_async_{uuid.uuid4().hex[:10]}"
    with connect(LOCAL) as conn:
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY)")
        yield name
        conn.execute(f"DROP TABLE {name}")


def test_size_is_checked_and_a_url_or_the_environment_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="size: expected >= 1, got 0"):
        AsyncPool(URL, size=0)
    with pytest.raises(InterfaceError, match="several hosts"):
        AsyncPool("postgres://u@h1:5432,h2:5433/db")
    monkeypatch.setenv("DATABASE_URL", local_url(application_name="cpg-async-pool"))
    pool = AsyncPool()
    try:
        assert pool.size == 4
        assert run(pool.query_scalar("SELECT current_setting('application_name')")) == "cpg-async-pool"
    finally:
        pool.close()
    with pytest.raises(InterfaceError, match="pool is closed"):
        run(pool.query("SELECT 1"))


def test_concurrent_queries_are_spread_over_a_handful_of_shared_connections(pool: AsyncPool) -> None:
    async def one(i: int) -> tuple[int, int]:
        row = await pool.query_one("SELECT $1::int, pg_backend_pid()", (i,))
        return row[0], row[1]

    results = gather(*[one(i) for i in range(400)])
    assert [r[0] for r in results] == list(range(400))
    pids = {r[1] for r in results}
    assert 2 <= len(pids) <= 4 and pool.connections == len(pids) and pool.opened == len(pids)
    assert pool.pending == 0
    # Methods straight on the pool.
    assert run(pool.query_opt("SELECT 1 WHERE false")) is None
    assert run(pool.execute("SELECT 1")) == 1
    assert run(pool.query("SELECT 2")) == [(2,)]


def test_a_failing_query_among_many_on_the_pool_fails_only_its_caller(pool: AsyncPool, table: str) -> None:
    run(pool.execute(f"INSERT INTO {table} VALUES (1)"))

    async def one(i: int) -> Any:
        if i % 10 == 3:
            return await pool.execute(f"INSERT INTO {table} VALUES ($1)", (1,))
        return await pool.query_scalar("SELECT $1::int", (i,))

    results = gather(*[one(i) for i in range(50)], return_exceptions=True)
    for i, value in enumerate(results):
        if i % 10 == 3:
            assert isinstance(value, PgError) and value.sqlstate == "23505"
        else:
            assert value == i


def test_a_transaction_pins_its_connection_and_rolls_back_on_error(pool: AsyncPool, table: str) -> None:
    pinned_pid = 0
    seen: set[int] = set()

    async def block() -> None:
        nonlocal pinned_pid
        async with pool.transaction() as conn:
            pinned_pid = conn.backend_pid
            assert conn.transaction_status == "T" and pool.pinned == 1
            await conn.execute(f"INSERT INTO {table} VALUES ($1)", (5,))
            await conn.query("SELECT pg_sleep(0.1)")
            raise KeyError("boom")

    async def shared(i: int) -> None:
        seen.add(await pool.query_scalar("SELECT pg_backend_pid() + $1::int * 0", (i,)))

    loop = Loop()
    tx = loop.spawn(block())
    loop.run_until(lambda: pinned_pid != 0)
    others = [loop.spawn(shared(i)) for i in range(40)]
    loop.run_until(lambda: tx.done and all(t.done for t in others))
    assert isinstance(tx.error, KeyError)
    assert pinned_pid not in seen
    assert pool.pinned == 0
    assert run(pool.query_scalar(f"SELECT count(*) FROM {table}")) == 0

    # Committed on success.
    async def ok() -> None:
        async with pool.transaction() as conn:
            await conn.execute(f"INSERT INTO {table} VALUES (6)", ())

    run(ok())
    assert run(pool.query(f"SELECT id FROM {table}")) == [(6,)]


def test_shared_queries_wait_while_the_only_connection_is_pinned() -> None:
    pool = AsyncPool(URL, size=1)
    order: list[str] = []

    async def block() -> None:
        async with pool.transaction() as conn:
            order.append("begin")
            await conn.query("SELECT pg_sleep(0.1)")
            order.append("commit")

    async def shared() -> None:
        await pool.query("SELECT 1")
        order.append("shared")

    try:
        loop = Loop()
        tx = loop.spawn(block())
        loop.run_until(lambda: order == ["begin"])
        other = loop.spawn(shared())
        loop.run_until(lambda: tx.done and other.done)
        assert order == ["begin", "commit", "shared"]
        assert pool.connections == 1
    finally:
        pool.close()


def test_a_cancelled_transaction_block_is_rolled_back_and_unpinned(pool: AsyncPool, table: str) -> None:
    inserted: list[bool] = []

    async def block() -> None:
        async with pool.transaction() as conn:
            await conn.execute(f"INSERT INTO {table} VALUES (9)", ())
            inserted.append(True)
            await conn.query("SELECT pg_sleep(5)")

    loop = Loop()
    task = loop.spawn(block())
    loop.run_until(lambda: loop.parked(task) and inserted == [True] and pool.pinned == 1 and pool.pending == 1)
    loop.cancel(task)  # the worker closes the coroutine: nothing may be awaited any more
    assert pool.pinned == 0
    # The rollback is queued behind the sleep; the next users of that connection come after it.
    results = gather(*[pool.query_scalar(f"SELECT count(*) FROM {table}") for _ in range(8)])
    assert results == [0] * 8


def test_a_transaction_right_after_a_cancelled_one_on_the_same_connection_begins_afresh(table: str) -> None:
    pool = AsyncPool(URL, size=1)

    inserted: list[str] = []

    async def block(seconds: float) -> None:
        async with pool.transaction() as conn:
            await conn.execute(f"INSERT INTO {table} VALUES (1)", ())
            inserted.append(conn.transaction_status)
            await conn.query("SELECT pg_sleep($1::float8)", (seconds,))

    try:
        loop = Loop()
        task = loop.spawn(block(0.2))
        loop.run_until(lambda: loop.parked(task) and inserted == ["T"] and pool.pending == 1)
        loop.cancel(task)
        # The ROLLBACK is still unanswered (the status read last says "T"): this must BEGIN, not SAVEPOINT.
        run(block(0))
        assert run(pool.query(f"SELECT id FROM {table}")) == [(1,)]
    finally:
        pool.close()


def _admin_terminate(pids: set[int]) -> None:
    with connect(LOCAL) as admin:
        for pid in pids:
            assert admin.query_scalar("SELECT pg_terminate_backend($1)", (pid,)) is True


def test_terminated_connections_fail_their_pending_callers_and_the_pool_reconnects(pool: AsyncPool) -> None:
    async def sleeper(i: int) -> Any:
        return await pool.query("SELECT $1::int, pg_sleep(1)", (i,))

    loop = Loop()
    tasks = [loop.spawn(sleeper(i)) for i in range(20)]
    loop.run_until(lambda: loop.parked(*tasks) and pool.connections == 4)
    conns_pids = _pool_pids(pool)
    _admin_terminate(conns_pids)
    loop.run_until(lambda: all(t.done for t in tasks))
    errors = [t.error for t in tasks]
    assert all(isinstance(e, PgError) and e.classify() is ErrorClass.POOL for e in errors), errors
    assert "terminating connection due to administrator command" in str(errors[0])
    # The next queries open new connections.
    assert gather(*[pool.query_scalar("SELECT $1::int", (i,)) for i in range(10)]) == list(range(10))
    assert pool.lost == 4 and not (_pool_pids(pool) & conns_pids)


def _pool_pids(pool: AsyncPool) -> set[int]:
    return {conn.backend_pid for conn in pool._conns}  # the test reads the pool's connections


def test_server_restart_mid_load_fails_pending_callers_and_the_pool_reconnects(pg_cluster: Any) -> None:
    config = PgConfig(
        host=pg_cluster.host, port=pg_cluster.port, user=pg_cluster.superuser, database=pg_cluster.database,
        sslmode="disable",
    )  # fmt: skip
    pool = AsyncPool(config, size=2)
    try:
        assert gather(*[pool.query_scalar("SELECT $1::int", (i,)) for i in range(10)]) == list(range(10))
        loop = Loop()
        tasks = [loop.spawn(pool.query("SELECT pg_sleep(2)")) for _ in range(10)]
        loop.run_until(lambda: loop.parked(*tasks))
        pg_cluster.restart()
        loop.run_until(lambda: all(t.done for t in tasks))
        errors = [t.error for t in tasks]
        assert all(isinstance(e, PgError) and e.classify() is ErrorClass.POOL for e in errors), errors
        assert gather(*[pool.query_scalar("SELECT $1::int", (i,)) for i in range(10)]) == list(range(10))
        assert pool.connections <= 2
    finally:
        pool.close()


def test_fork_child_opens_its_own_connections_and_the_parent_keeps_its_own(pool: AsyncPool) -> None:
    parent_pid = run(pool.query_scalar("SELECT pg_backend_pid()"))
    assert pool.connections == 1
    child = os.fork()
    if child == 0:
        status = 1
        try:
            mine = run(pool.query_scalar("SELECT pg_backend_pid()"))
            ok = mine != parent_pid and pool.opened == 1 and pool.connections == 1
            pool.close()
            status = 0 if ok else 2
        finally:
            os._exit(status)
    _, code = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(code) == 0
    # The parent's session is untouched (no Terminate was sent on it by the child).
    assert run(pool.query_scalar("SELECT pg_backend_pid()")) == parent_pid
    assert pool.lost == 0


def test_an_idle_connection_the_server_ended_is_replaced_without_failing_a_query(pool: AsyncPool) -> None:
    first = run(pool.query_scalar("SELECT pg_backend_pid()"))
    with connect(LOCAL) as admin:
        admin.query("SELECT pg_terminate_backend($1)", (first,))
        admin.query("SELECT pg_sleep(0.1)")
    second = run(pool.query_scalar("SELECT pg_backend_pid()"))
    assert second != first and pool.lost == 1


@pytest.mark.parametrize("seed", [1, 2])
def test_random_cancellations_of_queries_and_transactions_on_the_pool(table: str, seed: int) -> None:
    rng = random.Random(seed)
    pool = AsyncPool(URL, size=2)

    async def one(i: int) -> Any:
        if i % 3 == 0:
            async with pool.transaction() as conn:
                await conn.execute(f"INSERT INTO {table} VALUES ($1)", (i,))
                await conn.query("SELECT pg_sleep(0.002)")
            return "committed"
        return await pool.query_scalar("SELECT $1::int", (i,))

    try:
        loop = Loop()
        tasks = [loop.spawn(one(i)) for i in range(120)]
        cancelled: set[int] = set()
        deadline = time.monotonic() + 30
        while not all(t.done for t in tasks):
            assert time.monotonic() < deadline, "hung"
            loop.run_until(lambda: loop.parked(*tasks))
            live = [i for i, t in enumerate(tasks) if not t.done]
            for i in rng.sample(live, min(len(live), rng.randint(0, 2))):
                loop.cancel(tasks[i])
                cancelled.add(i)
            if not loop.ready and not all(t.done for t in tasks):
                loop.poll_once()
        committed = {i for i, t in enumerate(tasks) if i % 3 == 0 and i not in cancelled and t.outcome() == "committed"}
        for i, t in enumerate(tasks):
            if i % 3 and i not in cancelled:
                assert t.outcome() == i
        rows = {row[0] for row in run(pool.query(f"SELECT id FROM {table}"))}
        assert committed <= rows <= {i for i in range(120) if i % 3 == 0}
        assert pool.pinned == 0
        # Every connection is back outside a transaction once its queued rollbacks ran.
        assert gather(*[pool.query_scalar("SELECT $1::int", (i,)) for i in range(20)]) == list(range(20))
        # A block given back mid-query is not shared until its answers are in; each choice of a
        # connection reads what came back for it, so a later query finds it done (the answers
        # may still be on their way on a loaded machine: a bounded wait).
        deadline = time.monotonic() + 10
        while True:
            assert run(pool.query_scalar("SELECT 1")) == 1
            states = [(c.pending, c.transaction_status) for c in pool._conns]
            if states == [(0, "I")] * pool.connections or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert states == [(0, "I")] * pool.connections
    finally:
        pool.close()


def test_query_many_runs_every_set_on_one_connection(pool: AsyncPool) -> None:
    rows = run(pool.query_many("SELECT $1::int, pg_backend_pid()", [(i,) for i in range(30)]))
    assert [r[0][0] for r in rows] == list(range(30))
    assert len({r[0][1] for r in rows}) == 1 and pool.connections == 1 and pool.pending == 0
