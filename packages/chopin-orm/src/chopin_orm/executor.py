"""What the ORM runs statements on: a connection, a pool guard, a pool, or a transaction.

``acquire(executor)`` returns the connection plus the pool guard to release afterwards
(only when the executor is a pool: one checkout per operation); ``checked_out(executor)``
does both around a ``with`` block.  From ``async def`` code the ORM's ``a``-prefixed calls
(``await query.aall(pool)``, ``await obj.ainsert(pool)``) run on an :data:`AsyncExecutor`:
chopin-pg's ``AsyncPool`` (queries of concurrent requests pipelined over a few shared
connections) or one ``AsyncConnection`` (``async with pool.transaction() as conn``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Union

from chopin_pg import AsyncConnection, AsyncPool, Connection, PgPool, PooledConnection

from .errors import OrmError

if TYPE_CHECKING:
    from .transaction import Transaction

__all__ = [
    "AsyncExecutor",
    "Executor",
    "acquire",
    "arun_execute",
    "arun_executemany",
    "arun_query",
    "arun_query_many",
    "async_executor",
    "checked_out",
    "run_execute",
    "run_query",
]

#: Anything the ORM can run a statement on.
Executor = Union[Connection, PooledConnection, PgPool, "Transaction"]

#: What the ORM's ``a``-prefixed calls run on, from ``async def`` code.
AsyncExecutor = AsyncConnection | AsyncPool


def acquire(executor: Executor) -> tuple[Connection, PooledConnection | None]:
    """The connection behind ``executor``, and the pool guard to release when done (or ``None``).

    Raises:
        OrmError: ``executor`` is none of the accepted kinds, or a finished transaction.
    """
    if type(executor) is Connection:
        return executor, None
    if isinstance(executor, PooledConnection):
        return executor.conn, None
    if isinstance(executor, PgPool):
        guard = executor.get()
        return guard.conn, guard
    if isinstance(executor, Connection):
        return executor, None
    from .transaction import Transaction  # here, not at the top: transaction.py imports this module

    if isinstance(executor, Transaction):
        return executor.connection, None
    raise OrmError(
        "executor: expected a chopin_pg Connection, a pool guard (pool.get()), a PgPool or a Transaction, "
        f"got {type(executor).__name__}"
    )


@contextmanager
def checked_out(executor: Executor) -> Iterator[Connection]:
    """The connection behind ``executor`` for a ``with`` block; a pool checkout is released after it."""
    conn, guard = acquire(executor)
    try:
        yield conn
    finally:
        if guard is not None:
            guard.release()


def run_query(executor: Executor, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
    """``sql``'s rows, run on ``executor`` (a pool checkout is released afterwards); ``params=None``: no parameters."""
    with checked_out(executor) as conn:
        return conn.query(sql, params)


def run_execute(executor: Executor, sql: str, params: Sequence[Any] | None = None) -> int:
    """``sql``'s affected row count, run on ``executor`` (a pool checkout is released afterwards).

    ``params=None`` means no parameters (the simple protocol: ``sql`` may hold several statements).
    """
    with checked_out(executor) as conn:
        return conn.execute(sql, params)


def async_executor(
    executor: object, call: str, instead: str = "call the method without the 'a' prefix"
) -> AsyncConnection | AsyncPool:
    """``executor`` if it is an async one, for ``call``.

    Raises:
        OrmError: a blocking connection or pool (or anything else); ``instead`` says what to use then.
    """
    if isinstance(executor, AsyncConnection | AsyncPool):
        return executor
    raise OrmError(
        f"{call}: expected a chopin_pg AsyncPool or AsyncConnection, got {type(executor).__name__} "
        f"(with a blocking connection or pool, {instead})"
    )


async def arun_query(executor: AsyncExecutor, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
    """``sql``'s rows, run on an async executor (see :func:`run_query`)."""
    return await async_executor(executor, "query").query(sql, params)


async def arun_execute(executor: AsyncExecutor, sql: str, params: Sequence[Any] | None = None) -> int:
    """``sql``'s affected row count, run on an async executor (see :func:`run_execute`)."""
    return await async_executor(executor, "execute").execute(sql, params)


async def arun_query_many(executor: AsyncExecutor, sql: str, param_sets: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Each parameter set's rows: one query per set, all written at once (``query_many``: one round trip)."""
    return await async_executor(executor, "query_many").query_many(sql, param_sets)


async def arun_executemany(executor: AsyncExecutor, sql: str, param_sets: Sequence[Sequence[Any]]) -> int:
    """``sql`` once per parameter set in one request (one implicit transaction); the affected row count."""
    return await async_executor(executor, "executemany").executemany(sql, param_sets)
