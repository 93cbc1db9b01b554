"""A worker-local pool of shared non-blocking connections: :class:`AsyncPool` and :class:`AsyncPoolTransaction`.

::

    pool = AsyncPool("postgres://app@127.0.0.1/app", size=4)

    async def handler() -> list[Row]:
        return await pool.query("SELECT id, name FROM users WHERE team = $1", (7,))

Unlike :class:`~chopin_pg.PgPool`, a connection is not checked out for a
request: the pool's own query methods send each query on the open connection
with the fewest replies pending, where it is pipelined with the other callers'
(:class:`~chopin_pg.AsyncConnection`).  A handful of connections (``size``,
default 4) keeps a database busy for a whole worker.  Connections are opened
when needed, up to ``size``; while all of them are busy a new query still goes
to the least loaded one rather than waiting for it.

Transactions pin: ``async with pool.transaction() as conn:`` takes a connection
for the block alone (no other caller is given it until the block ends; the
replies other callers had pending on it are read first, as usual), runs
``BEGIN``, and commits or rolls back at the end.  Session state set with
``pool.execute("SET ...")`` reaches every caller that shares the connection:
set it per transaction (``SET LOCAL``) instead.

Failure: a connection the server ends (restart, ``pg_terminate_backend``) fails
the replies pending on it (:class:`~chopin_pg.errors.AdminShutdown`, or
:class:`~chopin_pg.errors.ConnectionLost` when the server said nothing), is
dropped, and the next query opens a new one.  An idle connection is checked
with one non-blocking ``recv`` before it is chosen, so one the server ended while
it was idle is replaced without failing a query.

Fork: the pool remembers its pid; used in another process it forgets the
connections it inherited (closing only this process's descriptors, never sending
Terminate on the parent's sessions) and opens its own.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from ._nonblocking import Signal
from .async_connection import AsyncConnection, resolve_config
from .async_transaction import AsyncTransaction
from .config import PgConfig
from .errors import ConfigError, InterfaceError
from .row import Row

__all__ = ["AsyncPool", "AsyncPoolTransaction"]


class AsyncPool:
    """Up to ``size`` shared :class:`AsyncConnection`\\ s of one worker, queries spread over them.

    Args:
        config: How to connect: a :class:`PgConfig`, a ``postgres://`` URL, or ``None`` for the
            environment (``DATABASE_URL``, then the libpq variables), as :class:`~chopin_pg.PgPool` takes.
        size: At most this many connections (>= 1).

    Raises:
        ConfigError: ``size`` is below 1, or the URL is malformed.
        InterfaceError: The URL names several hosts (not supported by the non-blocking shell yet).
    """

    def __init__(self, config: PgConfig | str | None = None, *, size: int = 4) -> None:
        if size < 1:
            raise ConfigError(f"size: expected >= 1, got {size}")
        self.config = resolve_config(config, {})
        self.size = size
        self._closed = False
        self._reset_state()

    def _reset_state(self) -> None:
        self._pid = os.getpid()
        self._conns: list[AsyncConnection] = []
        self._pinned: set[AsyncConnection] = set()
        # Given back by a cancelled transaction block with its query still running on the
        # server (and the ROLLBACK queued behind it): not shared until those answers are read.
        self._draining: set[AsyncConnection] = set()
        self._connecting = 0
        self._waiters: list[Signal] = []
        self.opened = 0  # connections opened (since the pool was made, or since fork)
        self.lost = 0  # connections found dead and dropped

    # -- choosing a connection -------------------------------------------------------

    def _check_fork(self) -> None:
        if self._pid == os.getpid():
            return
        # A child process: the sessions belong to the parent.  Close only our copies of the descriptors.
        for conn in self._conns:
            conn.close_inherited()
        self._reset_state()

    async def _acquire(self, pin: bool) -> AsyncConnection:
        """The open connection with the fewest pending replies, opening one while fewer than ``size`` exist.

        With ``pin`` the connection is the caller's until :meth:`_release`.
        """
        self._check_fork()
        while True:
            if self._closed:
                raise InterfaceError("pool is closed")
            best: AsyncConnection | None = None
            least = 0
            dead: list[AsyncConnection] = []
            busy: AsyncConnection | None = None  # a draining one, if nothing else will do
            for conn in list(self._draining):
                # Read, without waiting, what came back for it; done: shared again.
                if not conn.check_idle():
                    dead.append(conn)
                elif not conn.pending:
                    self._draining.discard(conn)
            for conn in self._conns:
                if conn in self._pinned or conn in dead:
                    continue
                if conn in self._draining:
                    busy = conn
                    continue  # still busy with the cancelled block's query
                pending = conn.pending
                if pending == 0:
                    # Idle: nobody reads it, so a session the server ended meanwhile is found
                    # here (one non-blocking recv).  A busy one is being read anyway.
                    if conn.check_idle():
                        best = conn
                        least = 0
                        break
                    dead.append(conn)
                elif conn.closed:
                    dead.append(conn)
                elif best is None or pending < least:
                    best, least = conn, pending
            for conn in dead:
                self._drop(conn)
            room = len(self._conns) + self._connecting < self.size
            if best is None and not room and busy is not None:
                best, least = busy, busy.pending  # queue behind its query rather than wait for a free one
            if best is not None and (least == 0 or not room):
                if pin:
                    self._pinned.add(best)
                return best
            if room:
                conn = await self._open()
                if pin:
                    self._pinned.add(conn)
                return conn
            # Every connection is pinned or still being opened: wait for one to come back.
            signal = Signal()
            self._waiters.append(signal)
            try:
                await signal
            finally:
                if signal in self._waiters:
                    self._waiters.remove(signal)

    async def _open(self) -> AsyncConnection:
        self._connecting += 1
        try:
            conn = await AsyncConnection.connect(self.config)
        finally:
            self._connecting -= 1
            self._wake()
        if self._closed or self._pid != os.getpid():
            conn.close()
            raise InterfaceError("pool is closed")
        self._conns.append(conn)
        self.opened += 1
        return conn

    def _release(self, conn: AsyncConnection) -> None:
        if self._pid != os.getpid():
            return  # pinned before fork: the child's pool has forgotten it
        self._pinned.discard(conn)
        if conn.closed:
            self._drop(conn)
        elif conn.pending:
            self._draining.add(conn)

        self._wake()

    def _drop(self, conn: AsyncConnection) -> None:
        if conn in self._conns:
            self._conns.remove(conn)
            self.lost += 1
        self._pinned.discard(conn)
        self._draining.discard(conn)
        conn.close()
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for signal in waiters:
            signal.set_result()

    # -- queries --------------------------------------------------------------------

    async def query(self, sql: str, params: Sequence[Any] | None = ()) -> list[Row]:
        """Run a statement on the least loaded connection (see :meth:`AsyncConnection.query`).

        Returns:
            The rows.
        """
        conn = await self._acquire(False)
        return await conn.query(sql, params)

    async def query_one(self, sql: str, params: Sequence[Any] | None = ()) -> Row:
        """Return the only row (see :meth:`AsyncConnection.query_one`).

        Raises:
            NoRows: There is no row.
            TooManyRows: There is more than one row.
        """
        conn = await self._acquire(False)
        return await conn.query_one(sql, params)

    async def query_opt(self, sql: str, params: Sequence[Any] | None = ()) -> Row | None:
        """Return the only row, or ``None`` (see :meth:`AsyncConnection.query_opt`)."""
        conn = await self._acquire(False)
        return await conn.query_opt(sql, params)

    async def query_scalar(self, sql: str, params: Sequence[Any] | None = ()) -> Any:
        """Return the first column of the only row (see :meth:`AsyncConnection.query_scalar`)."""
        conn = await self._acquire(False)
        return await conn.query_scalar(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run a statement and return the number of rows it affected (see :meth:`AsyncConnection.execute`).

        Do not open a transaction with it (``BEGIN``): the connection is shared; use :meth:`transaction`.
        """
        conn = await self._acquire(False)
        return await conn.execute(sql, params)

    async def executemany(self, sql: str, param_sets: Iterable[Sequence[Any] | None] | None) -> int:
        """Run a statement once per parameter set in one request (see :meth:`AsyncConnection.executemany`)."""
        conn = await self._acquire(False)
        return await conn.executemany(sql, param_sets)

    async def query_many(self, sql: str, param_sets: Iterable[Sequence[Any] | None]) -> list[list[Row]]:
        """Run a statement once per parameter set, on one connection in one write.

        See :meth:`AsyncConnection.query_many`.

        Returns:
            One list of rows per parameter set.
        """
        sets = list(param_sets)
        if not sets:
            return []  # no connection opened for nothing
        conn = await self._acquire(False)
        return await conn.query_many(sql, sets)

    def transaction(self, isolation: str | None = None) -> AsyncPoolTransaction:
        """Return ``async with pool.transaction() as conn:``: a connection pinned to the block, in a transaction.

        Args:
            isolation: The isolation level (``SERIALIZABLE``...), or ``None`` for the server's default.
        """
        return AsyncPoolTransaction(self._acquire, self._release, isolation)

    # -- state ----------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Open connections (shared and pinned)."""
        self._check_fork()
        return len(self._conns)

    @property
    def pending(self) -> int:
        """Replies pending over every connection."""
        self._check_fork()
        return sum(conn.pending for conn in self._conns)

    @property
    def pinned(self) -> int:
        """Connections pinned by a transaction."""
        self._check_fork()
        return len(self._pinned)

    def close(self) -> None:
        """Close every connection (pending replies fail with :class:`InterfaceError`); later use raises it too."""
        if self._pid != os.getpid():
            self._check_fork()
        self._closed = True
        conns, self._conns = self._conns, []
        self._pinned.clear()
        for conn in conns:
            conn.close()
        self._wake()


class AsyncPoolTransaction:
    """``async with pool.transaction() as conn:``: a pinned connection and a transaction on it.

    On success the block commits; on an exception it rolls back; when the block
    is cancelled (nothing can be awaited) the rollback is written without
    waiting, before the connection goes back to the pool, so the next caller's
    queries run after it.

    Args:
        acquire: The pool's way to take a connection (``acquire(pin)``).
        release: The pool's way to give it back.
        isolation: The isolation level, or ``None``.
    """

    __slots__ = ("_acquire", "_conn", "_isolation", "_release", "_tx")

    def __init__(
        self,
        acquire: Callable[[bool], Awaitable[AsyncConnection]],
        release: Callable[[AsyncConnection], None],
        isolation: str | None,
    ) -> None:
        self._acquire = acquire
        self._release = release
        self._isolation = isolation
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None

    async def __aenter__(self) -> AsyncConnection:
        if self._conn is not None:
            raise InterfaceError("pool transaction: already entered")
        conn = await self._acquire(True)
        tx = conn.transaction(self._isolation)
        try:
            await tx.begin()
        except BaseException:
            if not conn.closed:
                conn.execute_nowait("ROLLBACK")  # BEGIN may have run (a cancelled wait): end it before others share
            self._release(conn)
            raise
        self._conn, self._tx = conn, tx
        return conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        conn, tx = self._conn, self._tx
        if conn is None or tx is None:
            return
        self._conn = self._tx = None
        try:
            # COMMIT / ROLLBACK is written before it is awaited: if this wait is cancelled it
            # still runs ahead of whatever the next caller sends on the connection.
            await tx.__aexit__(exc_type, exc, tb)
        finally:
            self._release(conn)
