"""AsyncConnection against the real server: pipelining across callers, error isolation, cancellation, big answers.

Driven by tests/pg_waitdriver.py, a select.poll driver of the wait protocol (the worker
loop of chopin-core speaks the same protocol; chopin-pg may not import it).
"""

from __future__ import annotations

import datetime
import decimal
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from chopin_pg import (
    AsyncConnection,
    Connection,
    DataError,
    ErrorClass,
    InterfaceError,
    NoRows,
    PgConfig,
    PgError,
    TooManyRows,
    UniqueViolation,
    connect,
)
from chopin_pg.errors import AdminShutdown
from conftest import LOCAL, local_url
from pg_waitdriver import Loop, gather, run

URL = local_url()


def aconnect(config: PgConfig | str = URL, **kwargs: Any) -> AsyncConnection:
    conn: AsyncConnection = run(AsyncConnection.connect(config, **kwargs))
    return conn


@pytest.fixture
def aconn() -> Iterator[AsyncConnection]:
    conn = aconnect()
    yield conn
    conn.close()


@pytest.fixture
def admin() -> Iterator[Connection]:
    with connect(LOCAL) as conn:
        yield conn


def test_connect_over_tcp_and_unix_socket_and_query_methods() -> None:
    for target in (URL, LOCAL):
        conn = aconnect(target)
        try:
            assert conn.backend_pid > 0 and conn.transaction_status == "I"

            async def main(conn: AsyncConnection = conn) -> None:
                assert await conn.query_scalar("SELECT 40 + $1::int", (2,)) == 42
                row = await conn.query_one("SELECT 1 AS a, 'x' AS b")
                assert (row["a"], row["b"]) == (1, "x")
                assert await conn.query_opt("SELECT 1 WHERE false") is None
                assert await conn.query("SELECT generate_series(1, 3)", None) == [(1,), (2,), (3,)]
                with pytest.raises(NoRows, match="query_one: expected one row, got none"):
                    await conn.query_one("SELECT 1 WHERE false")
                with pytest.raises(TooManyRows, match="query_opt: expected at most one row, got 2"):
                    await conn.query_opt("SELECT generate_series(1, 2)")
                assert await conn.execute("CREATE TEMP TABLE t (id int PRIMARY KEY, name text)") == -1
                assert await conn.executemany("INSERT INTO t VALUES ($1, $2)", [(1, "a"), (2, "b")]) == 2
                assert await conn.executemany("INSERT INTO t VALUES ($1, $2)", [(3, "c"), (4, None)]) == 2
                assert await conn.execute("UPDATE t SET name = $1 WHERE id > $2", ("z", 2)) == 2
                assert await conn.execute("SELECT 1; DELETE FROM t WHERE id = 4") == 1
                assert await conn.query("SELECT id, name FROM t ORDER BY id") == [(1, "a"), (2, "b"), (3, "z")]
                assert await conn.executemany("INSERT INTO t VALUES ($1)", []) == 0

            run(main())
        finally:
            conn.close()
        assert conn.closed


def test_config_from_database_url_and_kwargs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", local_url(application_name="cpg-async-env"))
    conn = aconnect(None, application_name="cpg-async-kw")  # type: ignore[arg-type]
    try:
        assert run(conn.query_scalar("SELECT current_setting('application_name')")) == "cpg-async-kw"
    finally:
        conn.close()


def cluster_config(pg_cluster: Any, user: str, **kw: Any) -> PgConfig:
    return PgConfig(
        host=pg_cluster.host,
        port=pg_cluster.port,
        user=user,
        password=pg_cluster.users.get(user),
        database=pg_cluster.database,
        **kw,
    )


@pytest.mark.parametrize("sslmode", ["disable", "require"])
@pytest.mark.parametrize("user", ["scram_user", "md5_user", "trust_user"])
def test_password_methods_and_tls(pg_cluster: Any, user: str, sslmode: str) -> None:
    conn = aconnect(cluster_config(pg_cluster, user, sslmode=sslmode))
    try:
        # On the embedded fallback (no OpenSSL in the server) the testkit's TLS front ends TLS: the
        # server sees a Unix-socket client, so it offers no -PLUS and its pg_stat_ssl says false.
        tls_at_server = not pg_cluster.tls_front
        expected = {"scram_user": "SCRAM-SHA-256", "md5_user": "md5", "trust_user": "trust"}[user]
        if user == "scram_user" and sslmode != "disable" and tls_at_server:
            expected = "SCRAM-SHA-256-PLUS"  # channel binding to the certificate the TLS channel saw
        assert conn.auth_method == expected
        assert conn.ssl_in_use is (sslmode != "disable")

        async def main() -> list[Any]:
            assert await conn.query_scalar("SELECT current_user") == user
            return await conn.query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")

        assert run(main()) is (sslmode != "disable" and tls_at_server)
        # Pipelined callers, big answers (many TLS records per read) and a big request over TLS.
        big = "z" * (4 * 1024 * 1024)
        calls = [conn.query_scalar("SELECT $1::int", (i,)) for i in range(50)]
        calls.append(conn.query_scalar("SELECT count(*) FROM generate_series(1, 10000) g, repeat('x', 50) r"))
        calls.append(conn.query_scalar("SELECT length($1::text)", (big,)))
        calls.append(conn.query("SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g"))
        results = gather(*calls)
        assert results[:50] == list(range(50)) and results[50] == 10_000 and results[51] == len(big)
        assert len(results[52]) == 10_000
    finally:
        conn.close()


def test_wrong_password_is_the_servers_error(pg_cluster: Any) -> None:
    with pytest.raises(PgError, match="password authentication failed"):
        aconnect(cluster_config(pg_cluster, "scram_user", sslmode="disable").replace(password="nope"))


def test_the_requests_of_one_loop_turn_leave_in_one_write(aconn: AsyncConnection) -> None:
    writes: list[int] = []
    send = aconn._send

    def counted(data: Any) -> int:
        writes.append(len(data))
        return send(data)

    aconn._send = counted  # type: ignore[method-assign]

    async def one(i: int) -> int:
        return await aconn.query_scalar("SELECT $1::int", (i,))  # type: ignore[no-any-return]

    loop = Loop()
    tasks = [loop.spawn(one(i)) for i in range(50)]  # started in the same turn, as a gather or one epoll wake-up
    loop.run_until(lambda: all(t.done for t in tasks))
    assert [t.outcome() for t in tasks] == list(range(50))
    assert len(writes) == 1, writes  # one syscall for 50 requests, not 50
    assert run(aconn.query_scalar("SELECT 7")) == 7 and len(writes) == 2  # a lone caller: written on its next turn


def test_many_callers_pipelined_on_one_connection_each_get_their_rows(aconn: AsyncConnection) -> None:
    sql = "SELECT $1::int * 2, $2::text, pg_backend_pid()"

    async def one(i: int) -> tuple[int, str, int]:
        row = await aconn.query_one(sql, (i, f"n{i}"))
        return row[0], row[1], row[2]

    loop = Loop()
    tasks = [loop.spawn(one(i)) for i in range(300)]
    loop.run_until(lambda: loop.parked(*tasks))
    assert aconn.pending == 300  # every query written before any answer was read
    loop.run_until(lambda: all(t.done for t in tasks))
    results = [t.outcome() for t in tasks]
    assert [r[:2] for r in results] == [(i * 2, f"n{i}") for i in range(300)]
    assert {r[2] for r in results} == {aconn.backend_pid}
    assert aconn.pending == 0
    assert gather(*[one(i) for i in range(300)]) == results  # again, from the statement cache
    # Sent at once by 300 callers: one Parse, one cached statement.
    assert aconn.statement_cache_size == 1
    count = run(aconn.query_scalar("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", (sql,)))
    assert count == 1


def test_one_failing_query_among_fifty_fails_only_its_caller(aconn: AsyncConnection) -> None:
    run(aconn.execute("CREATE TEMP TABLE u (id int PRIMARY KEY)"))
    run(aconn.execute("INSERT INTO u VALUES (7)"))

    async def one(i: int) -> Any:
        if i == 13:
            return await aconn.query("SELEC nonsense")
        if i == 29:
            return await aconn.execute("INSERT INTO u VALUES ($1)", (7,))
        if i == 41:
            return await aconn.query("SELECT 1 / $1::int", (0,))
        return await aconn.query_scalar("SELECT $1::int + 1000", (i,))

    results = gather(*[one(i) for i in range(50)], return_exceptions=True)
    for i, value in enumerate(results):
        if i == 13:
            assert isinstance(value, PgError) and value.sqlstate == "42601", value
        elif i == 29:
            assert isinstance(value, UniqueViolation)
        elif i == 41:
            assert isinstance(value, DataError) and value.sqlstate == "22012"
        else:
            assert value == i + 1000
    assert run(aconn.query_scalar("SELECT count(*) FROM u")) == 1
    assert aconn.transaction_status == "I"


def test_a_failing_parse_drops_the_statement_for_every_caller_that_shared_it(aconn: AsyncConnection) -> None:
    bad = "SELECT x FROM no_such_table_cpg WHERE x = $1"

    async def one(i: int) -> Any:
        return await aconn.query(bad, (i,))

    errors = gather(*[one(i) for i in range(5)], return_exceptions=True)
    # The four that bound the shared name see the Parse's error, not "statement does not exist".
    assert [type(e).__name__ for e in errors] == ["UndefinedTable"] * 5
    assert len({id(e) for e in errors}) == 5
    assert aconn.statement_cache_size == 0
    run(aconn.execute("CREATE TEMP TABLE no_such_table_cpg (x int)"))
    run(aconn.execute("INSERT INTO no_such_table_cpg VALUES (1)"))
    # Prepared afresh now, first in text (parse in flight), then from the cache in binary.
    assert run(aconn.query(bad, (1,))) == [(1,)]
    assert run(aconn.query(bad, (1,))) == [(1,)]
    assert aconn.statement_cache_size == 1


def test_a_parse_that_succeeds_with_a_failing_bind_stays_cached(aconn: AsyncConnection) -> None:
    async def both() -> list[Any]:
        return [await aconn.query("SELECT $1::int", ("oops",)), None]

    with pytest.raises(DataError):
        run(both())
    assert aconn.statement_cache_size == 1
    assert run(aconn.query_scalar("SELECT $1::int", (5,))) == 5


VALUES: list[Any] = [
    1,
    -(2**40),
    1.5,
    "text é",
    True,
    None,
    b"\x00\xffbytes",
    datetime.date(2024, 2, 29),
    datetime.datetime(2024, 1, 2, 3, 4, 5, 600000),
    datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    decimal.Decimal("12.345"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    [1, 2, None],
    {"a": [1, 2]},
]
CASTS = ["int", "bigint", "float8", "text", "bool", "int", "bytea", "date", "timestamp", "timestamptz",
         "numeric", "uuid", "int[]", "jsonb"]  # fmt: skip


def test_params_of_several_types_and_nulls_first_in_text_then_binary(aconn: AsyncConnection, conn: Connection) -> None:
    sql = "SELECT " + ", ".join(f"${i + 1}::{cast}" for i, cast in enumerate(CASTS))
    expected = conn.query_one(sql, VALUES)
    first = run(aconn.query_one(sql, VALUES))  # Parse in flight: text format both ways
    second = run(aconn.query_one(sql, VALUES))  # cached: binary codecs
    assert tuple(first) == tuple(expected) == tuple(second)
    nulls = [None] * len(VALUES)
    assert tuple(run(aconn.query_one(sql, nulls))) == (None,) * len(VALUES)


def test_a_large_result_read_over_many_socket_reads_beside_small_queries(aconn: AsyncConnection) -> None:
    async def big() -> list[Any]:
        return await aconn.query("SELECT g, repeat('x', 100) FROM generate_series(1, $1::int) g", (10_000,))

    async def small(i: int) -> int:
        value: int = await aconn.query_scalar("SELECT $1::int", (i,))
        return value

    results = gather(small(-1), big(), *[small(i) for i in range(20)], big())
    for rows in (results[1], results[-1]):
        assert len(rows) == 10_000 and rows[0] == (1, "x" * 100) and rows[-1][0] == 10_000
    assert results[0] == -1 and results[2:-1] == list(range(20))


def test_a_request_larger_than_the_socket_buffer_is_written_while_answers_are_read(aconn: AsyncConnection) -> None:
    huge = "y" * (8 * 1024 * 1024)

    async def long(i: int) -> int:
        value: int = await aconn.query_scalar("SELECT length($1::text) + $2::int", (huge, i))
        return value

    async def small(i: int) -> int:
        value: int = await aconn.query_scalar("SELECT $1::int", (i,))
        return value

    results = gather(*[small(i) for i in range(10)], long(1), *[small(i) for i in range(10)], long(2))
    assert results == [*range(10), len(huge) + 1, *range(10), len(huge) + 2]
    rows = [(i, "v" * 1000) for i in range(20_000)]
    run(aconn.execute("CREATE TEMP TABLE w (id int, v text)"))
    assert run(aconn.executemany("INSERT INTO w VALUES ($1, $2)", rows)) == 20_000
    assert run(aconn.executemany("INSERT INTO w VALUES ($1, $2)", rows)) == 20_000  # cached: binary Binds


def _sleepers(loop: Loop, conn: AsyncConnection, n: int, seconds: float = 0.2) -> list[Any]:
    async def one(i: int) -> Any:
        return await conn.query("SELECT $1::int, pg_sleep($2::float8)", (i, seconds))

    return [loop.spawn(one(i)) for i in range(n)]


def test_cancelling_a_waiter_hangs_nothing_and_its_reply_is_dropped(aconn: AsyncConnection) -> None:
    loop = Loop()
    tasks = _sleepers(loop, aconn, 3)
    loop.run_until(lambda: loop.parked(*tasks))
    assert tasks[0].waiting is not None and tasks[0].waiting[0] == "fd"  # the reader
    assert tasks[1].waiting is not None and tasks[1].waiting[0] == "future"
    loop.cancel(tasks[1])
    loop.run_until(lambda: tasks[0].done and tasks[2].done)
    assert tasks[0].outcome()[0][0] == 0 and tasks[2].outcome()[0][0] == 2
    assert aconn.pending == 0
    assert run(aconn.query_scalar("SELECT 5")) == 5


def test_cancelling_the_reader_mid_flight_hands_the_role_on(aconn: AsyncConnection) -> None:
    loop = Loop()
    tasks = _sleepers(loop, aconn, 3)
    loop.run_until(lambda: loop.parked(*tasks))
    loop.cancel(tasks[0])  # the reader, waiting on the socket
    loop.run_until(lambda: tasks[1].done and tasks[2].done)
    assert [t.outcome()[0][0] for t in tasks[1:]] == [1, 2]
    assert aconn.pending == 0 and not aconn.closed
    assert run(aconn.query_scalar("SELECT 6")) == 6


def test_a_waiter_cancelled_just_after_being_handed_the_reader_role_passes_it_on(aconn: AsyncConnection) -> None:
    async def one(i: int, seconds: float) -> Any:
        return await aconn.query("SELECT $1::int, pg_sleep($2::float8)", (i, seconds))

    loop = Loop()
    tasks = [loop.spawn(one(0, 0.0)), loop.spawn(one(1, 0.3)), loop.spawn(one(2, 0.0))]
    loop.run_until(lambda: loop.parked(*tasks))
    loop.run_until(lambda: tasks[0].done)  # the reader is done: it handed the role to the next caller...
    assert tasks[1].waiting is None  # ...which is woken but has not run yet
    loop.cancel(tasks[1])
    loop.run_until(lambda: tasks[2].done)  # would hang if the role were lost with the cancelled caller
    assert tasks[2].outcome()[0][0] == 2
    assert run(aconn.query_scalar("SELECT 8")) == 8 and aconn.pending == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_cancellations_among_many_callers_hang_nothing(aconn: AsyncConnection, seed: int) -> None:
    rng = random.Random(seed)

    async def one(i: int) -> Any:
        kind = i % 4
        if kind == 0:
            return await aconn.query_scalar("SELECT $1::int", (i,))
        if kind == 1:
            return await aconn.query_scalar("SELECT $1::int FROM pg_sleep($2::float8)", (i, 0.002))
        if kind == 2:
            return len(await aconn.query("SELECT g FROM generate_series(1, $1::int) g", (i * 10,)))
        return await aconn.query_scalar("SELECT 1 / ($1::int - $1::int)", (i,))

    def expected(i: int) -> Any:
        return [i, i, i * 10, None][i % 4]

    loop = Loop()
    tasks = [loop.spawn(one(i)) for i in range(200)]
    cancelled: set[int] = set()
    readers = 0
    deadline = time.monotonic() + 30
    while not all(t.done for t in tasks):
        assert time.monotonic() < deadline, "hung"
        loop.run_until(lambda: loop.parked(*tasks))  # run what is ready; every live task waits now
        live = [i for i, t in enumerate(tasks) if not t.done]
        budget = 150 - len(cancelled)  # enough callers survive to check their rows, however many turns it takes
        chosen = rng.sample(live, min(len(live), rng.randint(0, 3), max(budget, 0)))
        reader = [i for i in live if tasks[i].waiting is not None and tasks[i].waiting[0] == "fd"]
        if reader and budget > 0 and (readers == 0 or rng.random() < 0.3):  # the first reader always: the case
            chosen = [*set(chosen) | set(reader)]
        for i in chosen:
            waiting = tasks[i].waiting
            readers += waiting is not None and waiting[0] == "fd"
            loop.cancel(tasks[i])  # the reader or a waiter, whichever it is
            cancelled.add(i)
        if not loop.ready and not all(t.done for t in tasks):
            loop.poll_once()  # fails the test if nobody waits on the socket any more
    assert 0 < len(cancelled) <= 151 and readers > 0, (len(cancelled), readers)
    for i, task in enumerate(tasks):
        if i in cancelled:
            continue
        if i % 4 == 3:
            assert isinstance(task.error, DataError), task.error
        else:
            assert task.outcome() == expected(i)
    assert run(aconn.query_scalar("SELECT 9")) == 9 and aconn.pending == 0


def test_cancelling_the_only_caller_leaves_its_reply_for_the_next_one(aconn: AsyncConnection) -> None:
    loop = Loop()
    (task,) = _sleepers(loop, aconn, 1)
    loop.run_until(lambda: loop.parked(task))
    loop.cancel(task)
    assert aconn.pending == 1  # read and dropped by whoever reads next
    assert run(aconn.query_scalar("SELECT 7")) == 7
    assert aconn.pending == 0


def test_cancelling_every_caller_then_reusing_the_connection(aconn: AsyncConnection) -> None:
    loop = Loop()
    tasks = _sleepers(loop, aconn, 5, 0.05)
    loop.run_until(lambda: loop.parked(*tasks))
    for task in reversed(tasks):
        loop.cancel(task)
    results = gather(*[aconn.query_scalar("SELECT $1::int", (i,)) for i in range(5)])
    assert results == list(range(5)) and aconn.pending == 0


def test_a_cancelled_transaction_block_rolls_back_before_the_next_caller(aconn: AsyncConnection) -> None:
    run(aconn.execute("CREATE TEMP TABLE tx (id int)"))

    inserted: list[bool] = []

    async def block() -> None:
        async with aconn.transaction():
            await aconn.execute("INSERT INTO tx VALUES (1)")
            inserted.append(True)
            await aconn.query("SELECT pg_sleep(0.2)")

    loop = Loop()
    task = loop.spawn(block())
    loop.run_until(lambda: loop.parked(task) and inserted == [True] and aconn.pending == 1)
    loop.cancel(task)
    assert run(aconn.query_scalar("SELECT count(*) FROM tx")) == 0
    assert aconn.transaction_status == "I"


def test_transactions_commit_roll_back_and_nest(aconn: AsyncConnection) -> None:
    async def main() -> None:
        await aconn.execute("CREATE TEMP TABLE tr (id int)")
        async with aconn.transaction():
            await aconn.execute("INSERT INTO tr VALUES (1)")
            with pytest.raises(UniqueViolation):
                async with aconn.transaction() as inner:
                    assert aconn.savepoint_depth == 1 and inner is aconn
                    await aconn.execute("INSERT INTO tr VALUES (2)")
                    await aconn.execute("CREATE UNIQUE INDEX ON tr (id)")
                    await aconn.execute("INSERT INTO tr VALUES (2)")
            assert aconn.savepoint_depth == 0 and aconn.transaction_status == "T"
        assert await aconn.query("SELECT id FROM tr") == [(1,)]
        with pytest.raises(ZeroDivisionError):
            async with aconn.transaction("serializable"):
                await aconn.execute("INSERT INTO tr VALUES (3)")
                assert await aconn.query_scalar("SHOW transaction_isolation") == "serializable"
                raise ZeroDivisionError
        assert await aconn.query("SELECT id FROM tr") == [(1,)]
        assert aconn.transaction_status == "I"

    run(main())


def test_terminated_backend_fails_every_pending_caller_clearly(aconn: AsyncConnection, admin: Connection) -> None:
    loop = Loop()
    tasks = _sleepers(loop, aconn, 10, 1.0)
    loop.run_until(lambda: loop.parked(*tasks))
    assert admin.query_scalar("SELECT pg_terminate_backend($1)", (aconn.backend_pid,)) is True
    loop.run_until(lambda: all(t.done for t in tasks))
    errors = [t.error for t in tasks]
    assert all(isinstance(e, AdminShutdown) for e in errors), errors
    assert all(e.classify() is ErrorClass.POOL for e in errors if isinstance(e, PgError))
    assert "terminating connection due to administrator command" in str(errors[0])
    assert aconn.closed and aconn.pending == 0
    with pytest.raises(InterfaceError, match="connection is closed"):
        run(aconn.query("SELECT 1"))


def test_close_with_pending_replies_fails_them_and_wakes_the_reader(aconn: AsyncConnection) -> None:
    loop = Loop()
    tasks = _sleepers(loop, aconn, 3, 1.0)
    loop.run_until(lambda: loop.parked(*tasks))
    aconn.close()
    loop.run_until(lambda: all(t.done for t in tasks))
    assert all(isinstance(t.error, InterfaceError) for t in tasks)
    assert "closed while this query was pending" in str(tasks[0].error)


def test_server_closing_an_idle_connection_is_found_without_a_query(aconn: AsyncConnection, admin: Connection) -> None:
    admin.query("SELECT pg_terminate_backend($1)", (aconn.backend_pid,))
    for _ in range(100):
        if not aconn.check_idle():
            break
        time.sleep(0.01)
    assert aconn.closed
    with pytest.raises(InterfaceError):
        run(aconn.query("SELECT 1"))


def test_stale_plan_is_prepared_again_outside_a_transaction(aconn: AsyncConnection) -> None:
    async def main() -> None:
        await aconn.execute("CREATE TEMP TABLE sp (a int)")
        await aconn.execute("INSERT INTO sp VALUES (1)")
        assert await aconn.query("SELECT * FROM sp", ()) == [(1,)]
        assert await aconn.query("SELECT * FROM sp", ()) == [(1,)]
        await aconn.execute("ALTER TABLE sp ADD COLUMN b text DEFAULT 'x'")
        assert await aconn.query("SELECT * FROM sp", ()) == [(1, "x")]

    run(main())


def test_notices_notifications_and_parameter_changes_between_replies_keep_the_fifo_in_step(
    aconn: AsyncConnection, admin: Connection
) -> None:
    run(aconn.execute("LISTEN cpg_async_chan"))

    async def one(i: int) -> Any:
        if i % 5 == 0:
            return await aconn.execute("DO $$ BEGIN RAISE NOTICE 'notice %', 1; END $$")
        if i % 7 == 0:
            return await aconn.execute(f"SET application_name = 'cpg{i}'")
        return await aconn.query_scalar("SELECT $1::int", (i,))

    loop = Loop()
    tasks = [loop.spawn(one(i)) for i in range(1, 60)]
    loop.run_until(lambda: loop.parked(*tasks))
    admin.execute("NOTIFY cpg_async_chan, 'hello'")  # arrives between replies, unprompted
    loop.run_until(lambda: all(t.done for t in tasks))
    for i, task in zip(range(1, 60), tasks, strict=True):
        assert task.outcome() == (-1 if i % 5 == 0 or i % 7 == 0 else i)
    assert run(aconn.query_scalar("SELECT pg_sleep(0.05)::text || 'x'")) == "x"
    assert [n.payload for n in aconn.session.notifications] == ["hello"]
    assert any("notice 1" in n.get("M", "") for n in aconn.session.notices)
    assert aconn.parameters["application_name"] == "cpg56"


def test_query_many_writes_every_set_at_once_and_answers_each_in_order(aconn: AsyncConnection) -> None:
    writes: list[int] = []
    send = aconn._send

    def counted(data: Any) -> int:
        writes.append(len(data))
        return send(data)

    aconn._send = counted  # type: ignore[method-assign]
    sql = "SELECT g, $1::text FROM generate_series(1, $2::int) AS g"
    sets = [(f"n{i}", i % 4) for i in range(40)]
    expected = [[(g, f"n{i}") for g in range(1, i % 4 + 1)] for i in range(40)]
    assert run(aconn.query_many(sql, sets)) == expected  # parsed in flight: text format
    assert len(writes) == 1, writes  # 40 requests, one write
    assert run(aconn.query_many(sql, sets)) == expected  # from the statement cache: binary
    assert len(writes) == 2 and aconn.statement_cache_size == 1
    assert run(aconn.query_many(sql, [])) == []
    assert run(aconn.query_many("SELECT 1", [None, ()])) == [[(1,)], [(1,)]]
    assert aconn.pending == 0


def test_query_many_one_failing_set_does_not_stop_the_others(aconn: AsyncConnection) -> None:
    run(aconn.execute("CREATE TEMP TABLE qm (id int PRIMARY KEY)"))
    run(aconn.execute("INSERT INTO qm VALUES (3)"))
    sql = "INSERT INTO qm VALUES ($1) RETURNING id"
    with pytest.raises(UniqueViolation):
        run(aconn.query_many(sql, [(1,), (3,), (5,), (3,), (7,)]))
    # Each set is its own request with its own Sync: the failing ones took nothing else with them.
    assert run(aconn.query("SELECT id FROM qm ORDER BY id")) == [(1,), (3,), (5,), (7,)]
    assert aconn.transaction_status == "I" and aconn.pending == 0


def test_query_many_refusing_a_set_before_sending_still_answers_the_queued_ones(aconn: AsyncConnection) -> None:
    sql = "SELECT $1::int + 1"
    assert run(aconn.query_many(sql, [(1,)])) == [[(2,)]]  # cached: Bind checks the count before sending
    with pytest.raises(DataError):
        run(aconn.query_many(sql, [(1,), (2,), (1, 2)]))
    # The two sets queued before the refusal were written and their answers dropped in turn.
    assert run(aconn.query_scalar(sql, (41,))) == 42
    assert aconn.pending == 0


def test_query_many_prepares_a_stale_plan_again_outside_a_transaction(aconn: AsyncConnection) -> None:
    async def main() -> list[list[Any]]:
        await aconn.execute("CREATE TEMP TABLE qs (a int)")
        await aconn.execute("INSERT INTO qs VALUES (1)")
        assert await aconn.query_many("SELECT * FROM qs WHERE a = $1", [(1,)]) == [[(1,)]]
        assert await aconn.query_many("SELECT * FROM qs WHERE a = $1", [(1,)]) == [[(1,)]]
        await aconn.execute("ALTER TABLE qs ADD COLUMN b text DEFAULT 'x'")
        return await aconn.query_many("SELECT * FROM qs WHERE a = $1", [(1,), (2,), (1,)])

    assert run(main()) == [[(1, "x")], [], [(1, "x")]]


def test_query_many_cancelled_midway_hangs_nothing_and_other_callers_get_their_rows(aconn: AsyncConnection) -> None:
    loop = Loop()
    many = loop.spawn(aconn.query_many("SELECT $1::int, pg_sleep($2::float8)", [(i, 0.05) for i in range(4)]))

    async def other() -> Any:
        return await aconn.query_scalar("SELECT $1::int * 3", (7,))

    lone = loop.spawn(other())  # the same loop turn: its request leaves in the same write, after the four
    loop.run_until(lambda: loop.parked(many, lone))
    assert aconn.pending == 5
    loop.cancel(many)  # its four replies are read and dropped in turn
    loop.run_until(lambda: lone.done)
    assert lone.outcome() == 21
    assert aconn.pending == 0 and not aconn.closed
    assert run(aconn.query_many("SELECT $1::int", [(1,), (2,)])) == [[(1,)], [(2,)]]
