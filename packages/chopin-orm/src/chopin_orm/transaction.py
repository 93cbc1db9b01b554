"""Transactions usable wherever an executor is: ``with transaction(conn) as tx: item.insert(tx)``.

A transaction begun while its connection is already inside one is a savepoint: its
commit releases the savepoint, its rollback rolls back to it. Given a pool, a
transaction checks a connection out for its whole duration.  The SQL side (BEGIN,
savepoint names, COMMIT/ROLLBACK) is the driver's :class:`chopin_pg.Transaction`;
this class adds executors, the state machine and the refusal to commit a failed block.

From ``async def`` code, ``async with atransaction(pool) as conn:`` pins one of an
``AsyncPool``'s connections for the block (chopin-pg's ``pool.transaction()``); given an
``AsyncConnection`` (the ``conn`` of an outer block) it nests as a savepoint.  It refuses
to commit a failed block the same way.
"""

from __future__ import annotations

from types import TracebackType

from chopin_pg import AsyncConnection, AsyncPoolTransaction, Connection, PooledConnection
from chopin_pg import AsyncTransaction as PgAsyncTransaction
from chopin_pg import Transaction as PgTransaction

from .errors import OrmError
from .executor import AsyncExecutor, Executor, acquire, async_executor

__all__ = ["AsyncTransaction", "Transaction", "atransaction", "transaction"]

_ISOLATION = ("SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED")


class Transaction:
    """A transaction (or savepoint) on one connection.

    States: ``new`` (not begun), ``active``, then ``committed`` or ``rolled back``; a
    finished transaction refuses further use.

    Use ``Transaction.begin(executor)`` to begin at once, or ``with transaction(executor) as tx:``
    (commit on success, rollback when the block raises).
    """

    __slots__ = ("_conn", "_executor", "_guard", "_isolation", "_tx", "state")

    def __init__(self, executor: Executor, isolation: str | None = None) -> None:
        if isolation is not None and isolation.upper() not in _ISOLATION:
            raise OrmError(f"isolation: expected one of {_ISOLATION}, got {isolation!r}")
        self._executor = executor
        self._isolation = isolation.upper() if isolation else None
        self._conn: Connection | None = None
        self._guard: PooledConnection | None = None
        self._tx: PgTransaction | None = None
        self.state = "new"

    @classmethod
    def begin(cls, executor: Executor, isolation: str | None = None) -> Transaction:
        """Begin a transaction (a savepoint when ``executor`` is already in one) and return it.

        Args:
            executor: A connection, pool guard, pool or transaction.
            isolation: ``SERIALIZABLE``, ``REPEATABLE READ`` or ``READ COMMITTED`` (top level only).
        """
        tx = cls(executor, isolation)
        tx._begin()
        return tx

    def _begin(self) -> None:
        if self.state != "new":
            raise OrmError(f"transaction: cannot begin, it is {self.state}")
        conn, guard = acquire(self._executor)
        self._conn, self._guard = conn, guard
        try:
            if conn.transaction_status != "I" and self._isolation is not None:
                raise OrmError("transaction: isolation can only be set on an outermost transaction")
            tx = PgTransaction(conn, self._isolation)
            tx.begin()
            self._tx = tx
        except BaseException:
            self._release()
            raise
        self.state = "active"

    def _orm_connection(self) -> Connection:
        if self.state != "active" or self._conn is None:
            raise OrmError(f"transaction is {self.state}: it cannot run statements")
        return self._conn

    @property
    def connection(self) -> Connection:
        """The connection the transaction runs on (while active)."""
        return self._orm_connection()

    @property
    def is_savepoint(self) -> bool:
        """Whether this transaction is a savepoint inside an outer one."""
        return self._tx is not None and self._tx.savepoint is not None

    def transaction(self) -> Transaction:
        """A nested transaction (a savepoint), not begun yet: ``with tx.transaction():``."""
        return Transaction(self)

    def commit(self) -> None:
        """Commit (or release the savepoint).

        Raises:
            OrmError: The transaction is not active, or the server had already aborted it
                (an earlier statement failed): it is rolled back instead.
        """
        conn = self._orm_connection()
        try:
            if conn.transaction_status == "E":
                self._rollback(conn)
                raise OrmError("transaction: a statement failed inside it, so it was rolled back, not committed")
            assert self._tx is not None  # set whenever the state is active
            self._tx.commit()
            self.state = "committed"
        finally:
            if self.state == "active":
                self.state = "rolled back"
            self._release()

    def rollback(self) -> None:
        """Roll back (to the savepoint, for a nested transaction)."""
        conn = self._orm_connection()
        try:
            self._rollback(conn)
        finally:
            self.state = "rolled back"
            self._release()

    def _rollback(self, conn: Connection) -> None:
        if self._tx is not None and self._tx.active:
            self._tx.rollback()  # on a closed connection it only forgets the savepoint

    def _release(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.release()

    def __enter__(self) -> Transaction:
        if self.state == "new":
            self._begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.state != "active":
            return
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def __repr__(self) -> str:
        kind = "savepoint" if self.is_savepoint else "transaction"
        return f"<Transaction {kind} {self.state}>"


def transaction(executor: Executor, isolation: str | None = None) -> Transaction:
    """A transaction to use as ``with transaction(conn) as tx:`` (begun on entering).

    Nested (``executor`` already in a transaction, or a ``Transaction``) it is a savepoint.
    """
    return Transaction(executor, isolation)


class AsyncTransaction:
    """``async with atransaction(executor) as conn:``: a transaction (or savepoint) from ``async def`` code.

    On an ``AsyncPool`` it pins one connection for the block and begins a transaction
    there; on an ``AsyncConnection`` it begins one, or a savepoint when the connection
    is already in a transaction (the ``conn`` of an outer block).  The block commits on
    success and rolls back when it raises; a cancelled block's rollback is written
    before the connection is shared again (chopin-pg's transaction blocks do that).

    A block whose statement failed while the block went on (the error was caught) is
    rolled back, not committed, and :class:`OrmError` says so, as :class:`Transaction` does.
    """

    __slots__ = ("_block", "_conn", "_executor", "_isolation")

    def __init__(self, executor: AsyncExecutor, isolation: str | None = None) -> None:
        if isolation is not None and isolation.upper() not in _ISOLATION:
            raise OrmError(f"isolation: expected one of {_ISOLATION}, got {isolation!r}")
        self._executor = async_executor(executor, "atransaction", "use transaction()")
        self._isolation = isolation
        self._block: AsyncPoolTransaction | PgAsyncTransaction | None = None
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> AsyncConnection:
        if self._block is not None:
            raise OrmError("atransaction: already entered (make a new one per block)")
        block = self._executor.transaction(self._isolation)
        self._block = block
        try:
            self._conn = await block.__aenter__()
        except BaseException:
            self._block = None
            raise
        return self._conn

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        block, conn = self._block, self._conn
        self._block = self._conn = None
        if block is None or conn is None:
            return
        if exc_type is None and not conn.closed and conn.pending == 0 and conn.transaction_status == "E":
            failed = OrmError("transaction: a statement failed inside it, so it was rolled back, not committed")
            await block.__aexit__(OrmError, failed, None)
            raise failed
        await block.__aexit__(exc_type, exc, tb)


def atransaction(executor: AsyncExecutor, isolation: str | None = None) -> AsyncTransaction:
    """A transaction for ``async def`` code: ``async with atransaction(pool) as conn: await item.ainsert(conn)``.

    Args:
        executor: An ``AsyncPool`` (a connection is pinned for the block) or an
            ``AsyncConnection`` (nested inside a transaction: a savepoint).
        isolation: ``SERIALIZABLE``, ``REPEATABLE READ`` or ``READ COMMITTED`` (outermost only).

    Raises:
        OrmError: ``executor`` is a blocking connection or pool, or ``isolation`` is unknown.
    """
    return AsyncTransaction(executor, isolation)
