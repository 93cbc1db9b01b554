"""Server-side cursors from ``async def`` code (``astream``), and ``ValuesQuery.iter``, on the real server.

Driven by chopin-core's ``run_blocking`` (the scheduler a worker runs ``async def``
handlers on); a cancellation is ``gather`` closing a sibling's coroutine, as the worker
closes a handler's. The stream's own transaction is watched through a function in its
query that logs every row it reads: committed, the log keeps the rows; rolled back, it
does not. "Healthy" is checked from outside: no cursor, no pinned connection, and the
backend ``idle`` (not ``idle in transaction``) in ``pg_stat_activity``.
"""
# ruff: noqa: N806  (models are classes made per test, for unique table names)

from __future__ import annotations

import select
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import chopin_pg
import pytest
from chopin_core import HandlerTimeout, gather, run_blocking, sleep
from chopin_orm import OrmError, atransaction, column, model
from chopin_orm.expr import quote_identifier
from orm_testing import DSN, create_table

ROWS = 2500
#: Named cursors: DECLARE's (the statement asking has an unnamed portal, listed too).
OPEN_CURSORS = "SELECT count(*) FROM pg_cursors WHERE name <> ''"


@dataclass
class Nums:
    model: Any
    log: str
    mark: str  # mark(n, pause=0): logs n, sleeps pause seconds, true

    def logged(self, conn: chopin_pg.Connection) -> int:
        return int(conn.query_scalar(f"SELECT count(*) FROM {quote_identifier(self.log)}"))

    def marked(self, pause: float = 0.0) -> str:
        return f"{quote_identifier(self.mark)}(n, {pause}::float8)"


@pytest.fixture
def nums(conn: chopin_pg.Connection, names: Callable[[str], str]) -> Iterator[Nums]:
    @model(table=names("nums"))
    @dataclass
    class Num:
        n: int = column(primary_key=True)

    create_table(conn, Num)
    Num.insert_many(conn, [Num(i) for i in range(1, ROWS + 1)])
    log = names("log")
    mark = log + "_mark"
    conn.execute(f"CREATE TABLE {quote_identifier(log)} (n int)")
    conn.execute(
        f"CREATE FUNCTION {quote_identifier(mark)}(n int, pause float8) RETURNS boolean LANGUAGE sql AS "
        f"$$ INSERT INTO {quote_identifier(log)} VALUES (n); SELECT pg_sleep(pause); SELECT true $$"
    )
    yield Nums(Num, log, mark)
    conn.execute(f"DROP FUNCTION {quote_identifier(mark)}")


@pytest.fixture
def pool() -> Iterator[chopin_pg.AsyncPool]:
    p = chopin_pg.AsyncPool(DSN, size=1)  # one connection: the next user gets the stream's
    yield p
    p.close()


def assert_healthy(conn: chopin_pg.Connection, pool: chopin_pg.AsyncPool) -> None:
    """The pool's connection is back, with no transaction and no cursor open on it."""
    assert pool.pinned == 0
    pid, cursors = run_blocking(pool.query_one("SELECT pg_backend_pid(), (" + OPEN_CURSORS + ")"))
    assert cursors == 0
    state = conn.query_one("SELECT state, xact_start FROM pg_stat_activity WHERE pid = $1", (pid,))
    assert tuple(state) == ("idle", None)
    assert pool.pending == 0 and pool.connections == 1


def test_an_exhausted_stream_commits_and_gives_the_connection_back(
    conn: chopin_pg.Connection, nums: Nums, pool: chopin_pg.AsyncPool
) -> None:
    Num = nums.model

    async def main() -> tuple[list[int], int]:
        seen: list[int] = []
        query = Num.query().filter(nums.marked()).filter(Num.n > 500).order_by(Num.n)
        async with query.astream(pool, batch_size=300) as rows:
            pinned = pool.pinned
            async for x in rows:
                seen.append(x.n)
        return seen, pinned

    seen, pinned = run_blocking(main())
    assert seen == list(range(501, ROWS + 1))
    assert pinned == 1  # the stream held the connection
    assert nums.logged(conn) > 0  # committed
    assert_healthy(conn, pool)
    # the same query again (the cached DECLARE/FETCH, the same cursor name) on the same connection
    assert run_blocking(count(Num.query().filter(Num.n > 500).order_by(Num.n).astream(pool, batch_size=300))) == 2000
    assert_healthy(conn, pool)


async def count(stream: Any) -> int:
    n = 0
    async with stream as rows:
        async for _ in rows:
            n += 1
    return n


def test_leaving_early_rolls_back_and_the_next_user_sees_no_transaction_or_cursor(
    conn: chopin_pg.Connection, nums: Nums, pool: chopin_pg.AsyncPool
) -> None:
    Num = nums.model

    async def first(n: int) -> list[int]:
        got: list[int] = []
        async with Num.query().filter(nums.marked()).order_by(Num.n).astream(pool, batch_size=100) as rows:
            async for x in rows:
                got.append(x.n)
                if len(got) == n:
                    break
        return got

    assert run_blocking(first(3)) == [1, 2, 3]
    assert nums.logged(conn) == 0  # rolled back: the stream only read (the log is the test's witness)
    assert_healthy(conn, pool)
    # left after a whole batch, and on the last row but before the end was seen: still early
    assert run_blocking(first(100)) == list(range(1, 101))
    assert run_blocking(first(ROWS))[-1] == ROWS
    assert nums.logged(conn) == 0
    assert_healthy(conn, pool)


def test_an_error_inside_the_loop_propagates_and_cleans_up(
    conn: chopin_pg.Connection, nums: Nums, pool: chopin_pg.AsyncPool
) -> None:
    Num = nums.model

    async def main() -> None:
        async with Num.query().filter(nums.marked()).astream(pool, batch_size=10) as rows:
            async for x in rows:
                if x.n == 15:
                    raise KeyError("in the loop")

    with pytest.raises(KeyError, match="in the loop"):
        run_blocking(main())
    assert nums.logged(conn) == 0
    assert_healthy(conn, pool)

    async def failing_fetch() -> None:  # the server's error, in a later FETCH (rows computed as fetched)
        async with Num.query().filter("10 / (20 - n) > -1").astream(pool, batch_size=1) as rows:
            async for _ in rows:
                pass

    with pytest.raises(chopin_pg.DataError, match="division by zero"):
        run_blocking(failing_fetch())
    assert_healthy(conn, pool)


def test_inside_a_callers_transaction_the_cursor_is_closed_and_the_transaction_stays_open(
    conn: chopin_pg.Connection, nums: Nums, pool: chopin_pg.AsyncPool
) -> None:
    Num = nums.model

    async def main() -> list[Any]:
        seen = []
        async with atransaction(pool) as tx:
            async with Num.query().filter(nums.marked()).astream(tx, batch_size=1000) as rows:
                seen.append(sum(1 for _ in [x async for x in rows]))
            seen.append(tx.transaction_status)
            seen.append(await tx.query_scalar(OPEN_CURSORS))
            async with Num.query().order_by(Num.n).astream(tx, batch_size=7) as rows:
                async for x in rows:
                    if x.n == 3:
                        break  # early: the caller's transaction goes on
            seen.append(await tx.query_scalar(OPEN_CURSORS))
            with pytest.raises(KeyError):
                async with Num.query().astream(tx, batch_size=7) as rows:
                    async for x in rows:
                        raise KeyError(x.n)
            seen.append(await tx.query_scalar(OPEN_CURSORS))
            seen.append(tx.transaction_status)
        return seen

    assert run_blocking(main()) == [ROWS, "T", 0, 0, 0, "T"]
    assert nums.logged(conn) == ROWS  # the caller's transaction committed what the stream's query logged
    assert_healthy(conn, pool)


def test_nested_streams_of_the_same_query_inside_a_transaction(
    conn: chopin_pg.Connection, nums: Nums, pool: chopin_pg.AsyncPool
) -> None:
    Num = nums.model
    q = Num.query().filter(Num.n <= 5).order_by(Num.n)

    async def main() -> tuple[list[tuple[int, int]], list[str], int]:
        pairs: list[tuple[int, int]] = []
        open_names: list[str] = []
        async with atransaction(pool) as tx:
            async with q.astream(tx, batch_size=2) as outer:
                async for a in outer:
                    async with q.astream(tx, batch_size=2) as inner:
                        async for b in inner:
                            pairs.append((a.n, b.n))
                        if not open_names:
                            found = await tx.query("SELECT name FROM pg_cursors WHERE name <> '' ORDER BY name")
                            open_names = [r[0] for r in found]
            left = await tx.query_scalar(OPEN_CURSORS)
        return pairs, open_names, left

    pairs, open_names, left = run_blocking(main())
    assert pairs == [(a, b) for a in range(1, 6) for b in range(1, 6)]
    assert len(open_names) == 2 and open_names[1] == open_names[0] + "_1"  # the blocking iter's naming rule
    assert left == 0
    assert_healthy(conn, pool)


def test_on_an_async_connection_outside_a_transaction(conn: chopin_pg.Connection, nums: Nums) -> None:
    Num = nums.model

    async def main() -> list[Any]:
        out: list[Any] = []
        async with await chopin_pg.AsyncConnection.connect(DSN) as aconn:
            async with Num.query().filter(nums.marked()).filter(Num.n <= 4).astream(aconn, batch_size=3) as rows:
                out.append([x.n async for x in rows])
            out.append(aconn.transaction_status)
            async with Num.query().filter(Num.n <= 4).order_by(Num.n.desc()).astream(aconn) as rows:
                async for x in rows:
                    out.append(x.n)
                    break
            out.append(aconn.transaction_status)
            out.append(await aconn.query_scalar(OPEN_CURSORS))
        return out

    assert run_blocking(main()) == [[1, 2, 3, 4], "I", 4, "I", 0]
    assert nums.logged(conn) > 0


def test_batch_sizes_and_what_is_refused(
    conn: chopin_pg.Connection, nums: Nums, pool: chopin_pg.AsyncPool, names: Callable[[str], str]
) -> None:
    Num = nums.model

    @model(table=names("child"))  # never created: prefetch is refused before any statement
    @dataclass
    class Child:
        num: int = column(references=Num)
        id: int = column(primary_key=True, default=0)

    five = Num.query().filter(Num.n <= 5).order_by(Num.n)

    async def ns(query: Any, batch_size: int) -> list[int]:
        async with query.astream(pool, batch_size=batch_size) as rows:
            got = [x.n async for x in rows]
            assert [x async for x in rows] == []  # exhausted stays exhausted
        return got

    for size in (1, 2, 4, 5, 6, 1000):  # one by one, uneven, exact (an empty FETCH ends it), larger
        assert run_blocking(ns(five, size)) == [1, 2, 3, 4, 5]
    assert run_blocking(ns(Num.query().filter(Num.n < 0), 3)) == []
    assert_healthy(conn, pool)
    for bad in (0, -1):
        with pytest.raises(OrmError, match=f"astream\\(\\): batch_size must be >= 1, got {bad}"):
            five.astream(pool, batch_size=bad)
        with pytest.raises(OrmError, match=f"iter\\(\\): batch_size must be >= 1, got {bad}"):
            five.select(Num.n).iter(conn, batch_size=bad)
    with pytest.raises(OrmError, match="astream\\(\\): prefetch loads whole result sets; use aall\\(\\)"):
        Num.query().prefetch(Child).astream(pool)
    with pytest.raises(OrmError, match="expected a chopin_pg AsyncPool or AsyncConnection, got Connection"):
        five.astream(conn)  # type: ignore[arg-type]
    assert pool.connections == 1 and pool.pinned == 0


def test_a_stream_is_used_inside_its_block_only(
    conn: chopin_pg.Connection, nums: Nums, pool: chopin_pg.AsyncPool
) -> None:
    Num = nums.model
    stream = Num.query().filter(Num.n <= 3).astream(pool)

    async def unentered() -> None:
        async for _ in stream:
            pass

    with pytest.raises(OrmError, match="iterate inside its block"):
        run_blocking(unentered())
    assert pool.connections == 0  # refused before anything was opened

    async def after() -> None:
        async with stream as rows:
            assert rows is stream
            async for _ in rows:
                break
        with pytest.raises(OrmError, match="the stream is closed: its `async with` block ended"):
            await rows.__anext__()
        with pytest.raises(OrmError, match="the stream is closed"):
            async for _ in rows:
                pass
        with pytest.raises(OrmError, match="entered once"):
            async with stream:
                pass

    run_blocking(after())
    assert_healthy(conn, pool)


def test_a_stream_cancelled_while_it_waits_for_a_fetch_leaves_the_pool_healthy(
    conn: chopin_pg.Connection, nums: Nums, pool: chopin_pg.AsyncPool
) -> None:
    Num = nums.model
    # No ORDER BY: rows are computed as they are fetched; past the first two each sleeps.
    slow = Num.query().filter(f"(n <= 2 OR {nums.marked(0.15)})").filter(Num.n <= 6)
    seen: list[int] = []

    async def stream(query: Any, executor: Any) -> None:
        async with query.astream(executor, batch_size=2) as rows:
            async for x in rows:
                seen.append(x.n)

    async def cancel_it(when: Callable[[], bool]) -> None:
        while not when():
            await sleep(0.005)
        await sleep(0.05)  # parked in the FETCH of the second batch (0.3 s of sleeps on the server)
        raise TimeoutError("handler cancelled")

    with pytest.raises(TimeoutError):
        run_blocking(gather(stream(slow, pool), cancel_it(lambda: len(seen) == 2)))
    assert seen == [1, 2]
    assert pool.pinned == 0  # given back at once; the ROLLBACK was written behind the FETCH
    assert_healthy(conn, pool)  # queued behind them: the answers were read before sharing
    assert nums.logged(conn) == 0

    # Cancelled inside the caller's transaction: the CLOSE, then the caller's ROLLBACK, are written unawaited.
    async def in_transaction() -> None:
        async with atransaction(pool) as tx:
            await stream(slow, tx)

    seen.clear()
    with pytest.raises(TimeoutError):
        run_blocking(gather(in_transaction(), cancel_it(lambda: len(seen) == 2)))
    assert seen == [1, 2]
    assert_healthy(conn, pool)
    assert nums.logged(conn) == 0


def test_a_stream_interrupted_at_its_deadline_while_it_waits_for_a_fetch_leaves_the_pool_healthy(
    conn: chopin_pg.Connection, nums: Nums, pool: chopin_pg.AsyncPool
) -> None:
    # The worker's other cancellation: past Settings.handler_timeout it throws HandlerTimeout
    # where the handler waits (Scheduler.interrupt), and the handler may still await.
    from chopin_core._engine.tasks import Scheduler, Task

    Num = nums.model
    slow = Num.query().filter(f"(n <= 2 OR {nums.marked(0.15)})").filter(Num.n <= 6)
    seen: list[int] = []

    async def handler() -> None:
        async with slow.astream(pool, batch_size=2) as rows:
            async for x in rows:
                seen.append(x.n)

    ep = select.epoll()
    try:
        scheduler = Scheduler(ep, lambda: None)
        task = Task(handler(), None)

        def turn() -> None:
            for fd, events in ep.poll(0.01):
                scheduler.on_event(fd, events)
            scheduler.run_ready()

        scheduler.start(task)
        while len(seen) < 2:
            turn()
        turn()  # the second FETCH is written; its rows take 0.3 s
        assert not task.finished and pool.pending == 1
        scheduler.interrupt(task, HandlerTimeout("handler deadline of 0.1 s passed"))
        while not task.finished:
            turn()
    finally:
        ep.close()
    assert isinstance(task.error, HandlerTimeout)
    assert seen == [1, 2]
    assert_healthy(conn, pool)  # the ROLLBACK was awaited behind the FETCH
    assert nums.logged(conn) == 0


def test_values_query_iter_and_astream(conn: chopin_pg.Connection, nums: Nums, pool: chopin_pg.AsyncPool) -> None:
    Num = nums.model

    @dataclass
    class Box:
        n: int

    values = Num.query().filter(Num.n <= 5).order_by(Num.n.desc()).select(Num.n)
    assert list(values.iter(conn, batch_size=2)) == [(5,), (4,), (3,), (2,), (1,)]
    assert conn.transaction_status == "I"
    boxes = values.into(Box)

    async def main() -> list[Box]:
        async with boxes.astream(pool, batch_size=2) as rows:
            return [b async for b in rows]

    assert run_blocking(main()) == [Box(5), Box(4), Box(3), Box(2), Box(1)]
    assert_healthy(conn, pool)
