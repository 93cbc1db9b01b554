"""Server-side cursors: the blocking generator behind ``iter`` and the async stream behind ``astream``.

Both declare a ``NO SCROLL CURSOR`` for the query's statement and ``FETCH FORWARD batch_size``
from it. Outside a transaction they open one for the cursor and end it with the stream
(committed when exhausted, rolled back when left early or on error: it only read); inside
the caller's transaction the cursor lives in it and is closed at the end.

The async form is an ``async with`` block, not an async generator: the worker loop has no
async-generator hooks, so an ``async for`` abandoned over a generator would keep its cursor,
its transaction and a pinned pool connection until garbage collection. The block ends them
when it is left: by the end, a ``break``, an error or a cancellation. A cancelled handler
(the worker closes its coroutine) can await nothing, so the rollback or ``CLOSE`` is then
written without waiting, ahead of whatever the connection carries next, as chopin-pg's
transaction blocks do; the pool reads the answers before it shares the connection again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from chopin_pg import AsyncConnection, Connection, PgError
from chopin_pg.async_transaction import inside_transaction

from .errors import OrmError
from .executor import AsyncExecutor, Executor, acquire, async_executor
from .expr import quote_identifier
from .transaction import AsyncTransaction, atransaction

__all__ = ["RowStream", "check_stream", "cursor_name", "free_cursor_name", "iterate"]

R = TypeVar("R")

#: Cursors already open in a transaction under a name (nested loops over the same query).
_TAKEN = "SELECT name FROM pg_cursors WHERE name LIKE $1"


def check_stream(call: str, batch_size: int, prefetch: bool, load_all: str) -> None:
    """Refuse what a cursor cannot do.

    Raises:
        OrmError: ``batch_size`` below 1, or a query with ``prefetch`` (``load_all`` names the call to use).
    """
    if batch_size < 1:
        raise OrmError(f"{call}: batch_size must be >= 1, got {batch_size}")
    if prefetch:
        raise OrmError(f"{call}: prefetch loads whole result sets; use {load_all} or page with limit/offset")


def cursor_name(sql: str) -> str:
    """The cursor's name: after the statement, so the same query reuses its cached (same-shaped) ``FETCH``."""
    return "chopin_orm_" + hashlib.blake2s(sql.encode(), digest_size=8).hexdigest()


def free_cursor_name(name: str, taken: set[str]) -> str:
    """``name``, else ``name_1``, ``name_2``...: the first not ``taken`` by a cursor open in the transaction.

    Inside a caller's transaction the same query may already be iterating (nested loops):
    the next free name, rather than a failed transaction.
    """
    suffix = 0
    while (name if not suffix else f"{name}_{suffix}") in taken:
        suffix += 1
    return name if not suffix else f"{name}_{suffix}"


def iterate(
    executor: Executor, sql: str, params: list[Any], batch_size: int, finish: Callable[[list[Any]], list[Any]]
) -> Iterator[Any]:
    """``sql``'s rows through a cursor, ``batch_size`` per ``FETCH``, each batch passed through ``finish``."""
    conn, guard = acquire(executor)
    own = False
    declared = False
    name = cursor_name(sql)
    cursor = quote_identifier(name)
    try:
        if conn.transaction_status == "I":
            conn.begin()
            own = True
        else:
            taken = {r[0] for r in conn.query(_TAKEN, (name + "%",))}
            cursor = quote_identifier(free_cursor_name(name, taken))
        conn.execute(f"DECLARE {cursor} NO SCROLL CURSOR FOR {sql}", params)
        declared = True
        fetch = f"FETCH FORWARD {int(batch_size)} FROM {cursor}"
        while True:
            rows = conn.query(fetch, ())
            if not rows:
                break
            yield from finish(rows)
            if len(rows) < batch_size:
                break
    except BaseException:
        if own and not conn.closed:
            conn.rollback()
            own = False
        raise
    finally:
        _finish_cursor(conn, cursor, declared, own)
        if guard is not None:
            guard.release()


def _finish_cursor(conn: Connection, cursor: str, declared: bool, own: bool) -> None:
    if conn.closed:
        return
    if own:
        conn.commit()  # also closes the cursor
    elif declared and conn.transaction_status == "T":
        conn.execute(f"CLOSE {cursor}")


class RowStream(Generic[R]):
    """Rows through a server-side cursor from ``async def`` code: ``query.astream(ex)``.

    ::

        async with Item.query().order_by(Item.id).astream(pool, batch_size=500) as rows:
            async for item in rows:
                ...

    The block owns the cursor, its transaction and (given an ``AsyncPool``) a connection
    pinned for the block: leaving it (the end, ``break``, an error, a cancellation) closes
    the cursor, ends the transaction it opened (commit when every row was read, rollback
    otherwise: it only read) and gives the connection back with neither open. Given an
    ``AsyncConnection`` inside a transaction, the cursor lives in that transaction and is
    closed at the end. Rows are fetched ``batch_size`` per round trip, when the previous
    batch is used up. A stream is entered once; iterating it outside its block raises
    :class:`OrmError`.
    """

    __slots__ = (
        "_batch",
        "_batch_size",
        "_block",
        "_conn",
        "_cursor",
        "_executor",
        "_fetch",
        "_finish",
        "_index",
        "_sql",
        "_state",
    )

    def __init__(
        self,
        executor: AsyncExecutor,
        sql: tuple[str, list[Any]],
        batch_size: int,
        finish: Callable[[list[Any]], list[R]],
    ) -> None:
        self._executor = async_executor(executor, "astream()", "use iter()")
        self._sql = sql
        self._batch_size = int(batch_size)
        self._fetch = f"FETCH FORWARD {self._batch_size} FROM "
        self._finish = finish
        self._batch: list[R] = []
        self._index = 0
        self._block: AsyncTransaction | None = None  # the transaction the stream opened, if it did
        self._conn: AsyncConnection | None = None
        self._cursor = ""
        # new -> open -> (exhausted) -> closed; "entering" while the cursor is being declared
        self._state = "new"

    async def __aenter__(self) -> RowStream[R]:
        if self._state != "new":
            raise OrmError(f"astream(): a stream is entered once, this one is {self._state} (call astream() again)")
        self._state = "entering"
        sql, params = self._sql
        name = cursor_name(sql)
        executor = self._executor
        block: AsyncTransaction | None = None
        try:
            if isinstance(executor, AsyncConnection) and inside_transaction(executor):
                conn = executor
                taken = {r[0] for r in await conn.query(_TAKEN, (name + "%",))}
                self._cursor = quote_identifier(free_cursor_name(name, taken))
            else:
                self._cursor = quote_identifier(name)
                block = atransaction(executor)  # on a pool: one connection pinned until the block ends
                conn = await block.__aenter__()
            self._conn = conn
            await conn.execute(f"DECLARE {self._cursor} NO SCROLL CURSOR FOR {sql}", params)
        except BaseException as exc:
            self._state = "closed"
            if block is not None and self._conn is not None:
                await block.__aexit__(type(exc), exc, exc.__traceback__)
            elif self._conn is not None:
                await _close_cursor(self._conn, self._cursor, type(exc))  # the DECLARE may have run (a cancelled wait)
            self._conn = None
            raise
        self._block = block
        self._fetch += self._cursor
        self._state = "open"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._state not in ("open", "exhausted"):
            return
        exhausted = self._state == "exhausted"
        self._state = "closed"
        self._batch = []
        block, conn = self._block, self._conn
        self._block = self._conn = None
        if conn is None:
            return
        if block is None:
            await _close_cursor(conn, self._cursor, exc_type)
        elif exc_type is None and not exhausted:
            # Left early (break, return): roll back, as for an error: the stream only read.
            left = OrmError("astream(): the block ended before the last row")
            await block.__aexit__(OrmError, left, None)
        else:
            await block.__aexit__(exc_type, exc, tb)  # COMMIT (closes the cursor) or ROLLBACK

    def __aiter__(self) -> RowStream[R]:
        self._check_open()
        return self

    def _check_open(self) -> None:
        if self._state in ("open", "exhausted"):
            return
        if self._state == "new":
            raise OrmError(
                "astream(): iterate inside its block, `async with query.astream(ex) as rows: async for row in rows:`"
                " (the block owns the cursor and its transaction)"
            )
        raise OrmError(f"astream(): the stream is {self._state}: its `async with` block ended")

    async def __anext__(self) -> R:
        batch = self._batch
        index = self._index
        if index < len(batch):
            self._index = index + 1
            return batch[index]
        self._check_open()
        conn = self._conn
        if self._state == "exhausted" or conn is None:
            raise StopAsyncIteration
        rows = await conn.query(self._fetch, ())
        # A short batch is the last: no FETCH to learn that nothing follows.
        if len(rows) < self._batch_size:
            self._state = "exhausted"
        if not rows:
            self._batch = []
            raise StopAsyncIteration
        self._batch = batch = self._finish(rows)
        self._index = 1
        return batch[0]


async def _close_cursor(conn: AsyncConnection, cursor: str, exc_type: type[BaseException] | None) -> None:
    """Close a cursor declared in the caller's transaction (which stays open)."""
    if conn.closed:
        return
    if exc_type is not None and not issubclass(exc_type, Exception):
        conn.execute_nowait(f"CLOSE {cursor}")  # cancelled: nothing may be awaited; its answer is read in turn
        return
    if conn.pending == 0 and conn.transaction_status != "T":
        return  # a failed transaction: the cursor goes with it
    try:
        await conn.execute(f"CLOSE {cursor}")
    except PgError:
        if exc_type is None:
            raise
        # The error already leaving the block says what went wrong (the transaction failed with it).
