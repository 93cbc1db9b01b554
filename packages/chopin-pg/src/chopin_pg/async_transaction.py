"""Transaction blocks on a non-blocking connection: :class:`AsyncTransaction`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .connection import quote_identifier
from .errors import InterfaceError

if TYPE_CHECKING:
    from .async_connection import AsyncConnection

__all__ = ["AsyncTransaction", "inside_transaction"]

_LEVELS = ("SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED", "READ UNCOMMITTED")


def inside_transaction(conn: AsyncConnection) -> bool:
    """Whether ``conn`` is inside a transaction block, so that a new one there is a savepoint.

    The status the last ReadyForQuery reported lags behind what is written (a rollback
    written without waiting, other callers' requests): it is trusted only with nothing
    pending; the open :class:`AsyncTransaction` blocks count in any case.
    """
    return conn.transaction_depth > 0 or (conn.pending == 0 and conn.transaction_status != "I")


class AsyncTransaction:
    """A transaction block on an :class:`AsyncConnection`, or a savepoint when one is open already.

    The asynchronous twin of :class:`chopin_pg.Transaction`: ``async with`` commits
    on success and rolls back on error.  If the block is cancelled (``GeneratorExit``,
    where nothing can be awaited) the rollback is written without waiting for its
    answer, so whatever is sent next on the connection runs after it.

    Args:
        conn: The connection.
        isolation: The isolation level of an outermost transaction.
    """

    __slots__ = ("_conn", "_isolation", "_savepoint", "_state")

    def __init__(self, conn: AsyncConnection, isolation: str | None = None) -> None:
        if isolation is not None and isolation.upper() not in _LEVELS:
            raise InterfaceError(f"isolation: expected one of {_LEVELS}, got {isolation!r}")
        self._conn = conn
        self._isolation = isolation
        self._savepoint: str | None = None
        self._state = "new"

    @property
    def active(self) -> bool:
        """Whether it was begun and not committed or rolled back yet."""
        return self._state == "active"

    @property
    def savepoint(self) -> str | None:
        """The savepoint's name when this is a nested transaction, else ``None``."""
        return self._savepoint

    async def begin(self) -> None:
        """``BEGIN`` when the connection is idle, else ``SAVEPOINT``.

        Raises:
            InterfaceError: It was begun already, or ``isolation`` was given inside a transaction.
        """
        if self._state != "new":
            raise InterfaceError(f"transaction: cannot begin, it is {self._state}")
        conn = self._conn
        if not inside_transaction(conn):
            level = "" if self._isolation is None else f" ISOLATION LEVEL {self._isolation.upper()}"
            await conn.execute("BEGIN" + level)
            conn.transaction_depth += 1
        else:
            if self._isolation is not None:
                raise InterfaceError("transaction: isolation can only be set on an outermost transaction")
            conn.savepoint_depth += 1
            name = f"_cpg_sp{conn.savepoint_depth}"
            try:
                await conn.execute(f"SAVEPOINT {quote_identifier(name)}")
            except BaseException:
                conn.savepoint_depth -= 1
                raise
            conn.transaction_depth += 1
            self._savepoint = name
        self._state = "active"

    def _finish(self) -> str | None:
        if self._state != "active":
            raise InterfaceError(f"transaction: cannot end, it is {self._state}")
        self._state = "ended"
        self._conn.transaction_depth -= 1
        if self._savepoint is not None:
            self._conn.savepoint_depth -= 1
        return self._savepoint

    def _rollback_sql(self, savepoint: str | None) -> str:
        if savepoint is None:
            return "ROLLBACK"
        name = quote_identifier(savepoint)
        return f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"

    async def commit(self) -> None:
        """``COMMIT`` (a failed block is rolled back by the server), or release the savepoint."""
        sp = self._finish()
        await self._conn.execute("COMMIT" if sp is None else f"RELEASE SAVEPOINT {quote_identifier(sp)}")

    async def rollback(self) -> None:
        """``ROLLBACK``, or roll back to the savepoint and release it; nothing to send on a closed connection."""
        sp = self._finish()
        if not self._conn.closed:
            await self._conn.execute(self._rollback_sql(sp))

    def rollback_nowait(self) -> None:
        """Write the rollback without waiting for its answer (for a cancelled block)."""
        sp = self._finish()
        if not self._conn.closed:
            self._conn.execute_nowait(self._rollback_sql(sp))

    async def __aenter__(self) -> AsyncConnection:
        await self.begin()
        return self._conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._state != "active":
            return
        if self._conn.closed:
            self._finish()  # lost inside the block: nothing to send, the block's error says why
        elif exc_type is None:
            await self.commit()
        elif issubclass(exc_type, Exception):
            await self.rollback()
        else:
            self.rollback_nowait()  # GeneratorExit (cancelled) or an interrupt: nothing may be awaited
