"""A DB-API 2.0 (PEP 249) interface over chopin-pg, for SQLAlchemy, Alembic, pandas and friends.

::

    from chopin_pg import dbapi

    with dbapi.connect("postgres://app@127.0.0.1/app") as conn:  # commits at the end, or rolls back
        cur = conn.cursor()
        cur.execute("SELECT id, name FROM t WHERE id = %s", (1,))
        print(cur.description[0].name, cur.fetchone())

Built only on the public API of :class:`chopin_pg.Connection`: each ``execute`` is
one pipeline (:meth:`~chopin_pg.Connection.pipeline`) holding the implicit
``BEGIN`` when one is due and the statement, so it costs one round trip and
yields a :class:`~chopin_pg.Result` with the column descriptions; ``executemany``
pipelines every parameter set in one round trip too.  Server-side cursors
(``conn.cursor(name=...)``) are SQL cursors: ``DECLARE`` then ``FETCH FORWARD``.

Errors are translated on the way out: the raised exception is an instance of
both the PEP 249 class (chosen by SQLSTATE, as psycopg does) and the original
chopin-pg class, so ``except dbapi.IntegrityError`` and
``except chopin_pg.UniqueViolation`` both catch a duplicate key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from . import Connection as PgConnection
from . import PgConfig, Result, Row
from ._dbapi_types import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Column,
    DatabaseError,
    DataError,
    Date,
    DateFromTicks,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
    Translated,
    Warning,
    describe,
)
from ._paramstyle import CompiledQuery, compile_query, has_several_statements
from ._statements import is_stale_plan
from .connection import quote_identifier

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "Column",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "apilevel",
    "connect",
    "paramstyle",
    "threadsafety",
]

#: PEP 249 version implemented.
apilevel = "2.0"
#: Threads may share the module, not connections (a connection runs one exchange at a time).
threadsafety = 1
#: ``%(name)s`` and ``%s`` both work (as psycopg); a query without ``%`` is sent as written (``$1``).
paramstyle = "pyformat"

#: How many distinct query texts a connection keeps rewritten (``%s`` to ``$n``).
QUERY_CACHE_SIZE = 512
#: Rows a server-side cursor fetches per round trip unless its ``itersize`` says otherwise.
SERVER_CURSOR_ITERSIZE = 2000

# Re-raises chopin-pg errors as PEP 249 ones (both classes at once) on the way out of a block.
_translated = Translated()


# -- connection ----------------------------------------------------------------


class Connection:
    """A PEP 249 connection wrapping a :class:`chopin_pg.Connection`.

    Outside autocommit the first statement opens a transaction (``BEGIN``, sent in
    the same round trip) that lasts until :meth:`commit` or :meth:`rollback`.

    Args:
        native: The chopin-pg connection to use (this object closes it in :meth:`close`).
        autocommit: Run each statement in its own transaction.
        paramstyle: ``"pyformat"`` (``%s``/``%(name)s``, the default) or ``"native"`` (only
            ``$1``; ``%`` is never markup).

    Attributes:
        native: The wrapped :class:`chopin_pg.Connection` (LISTEN, COPY, pipelines...).
    """

    Warning = Warning
    Error = Error
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError

    def __init__(self, native: PgConnection, *, autocommit: bool = False, paramstyle: str = "pyformat") -> None:
        if paramstyle not in ("pyformat", "format", "native"):
            raise InterfaceError(f"paramstyle: expected 'pyformat', 'format' or 'native', got {paramstyle!r}")
        self.native = native
        self._autocommit = autocommit
        self._rewrite = paramstyle != "native"
        self._queries: dict[str, CompiledQuery] = {}
        self._closed = False
        # Bumped by commit/rollback: a server-side cursor declared in an earlier transaction is gone.
        self.transaction_generation = 0

    def checked_native(self) -> PgConnection:
        """The chopin_pg connection underneath, once it is known to be usable.

        Raises:
            InterfaceError: This connection was closed.
            OperationalError: The server connection was lost.
        """
        if self._closed:
            raise InterfaceError("the connection is closed")
        if self.native.closed:
            raise OperationalError("the connection was lost")
        return self.native

    def compile(self, sql: str) -> CompiledQuery:
        """Return ``sql`` rewritten to ``$n`` placeholders (cached per connection).

        Raises:
            ProgrammingError: A ``%`` that starts no placeholder, or both placeholder styles.
        """
        query = self._queries.get(sql)
        if query is None:
            if self._rewrite:
                try:
                    query = compile_query(sql)
                except ValueError as exc:
                    raise ProgrammingError(str(exc)) from None
            else:
                query = CompiledQuery(sql, None, -1)
            if len(self._queries) >= QUERY_CACHE_SIZE:
                self._queries.pop(next(iter(self._queries)))
            self._queries[sql] = query
        return query

    @property
    def begin_due(self) -> bool:
        """Whether the next statement must open a transaction (not autocommit, none open)."""
        return not self._autocommit and self.native.transaction_status == "I"

    @property
    def autocommit(self) -> bool:
        """Whether each statement commits by itself.

        Raises:
            ProgrammingError: Set while a transaction is open (commit or roll back first).
        """
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        native = self.checked_native()
        if bool(value) != self._autocommit and native.transaction_status != "I":
            raise ProgrammingError("cannot change autocommit inside a transaction: commit or roll back first")
        self._autocommit = bool(value)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called or the connection was lost."""
        return self._closed or self.native.closed

    def cursor(self, name: str | None = None, *, withhold: bool = False, scrollable: bool | None = None) -> Cursor:
        """Return a cursor; with ``name``, a server-side cursor (``DECLARE name CURSOR``).

        Args:
            name: The SQL cursor's name: rows are fetched ``itersize`` at a time.
            withhold: Keep the server-side cursor past ``commit`` (``WITH HOLD``; needed in autocommit).
            scrollable: ``SCROLL`` (True) or ``NO SCROLL`` (False); the server's default when ``None``.
        """
        self.checked_native()
        if name is None:
            return Cursor(self)
        return ServerCursor(self, name, withhold=withhold, scrollable=scrollable)

    def commit(self) -> None:
        """Commit the open transaction (nothing to do when none is open)."""
        native = self.checked_native()
        with _translated:
            if native.transaction_status != "I":
                native.commit()
        self.transaction_generation += 1

    def rollback(self) -> None:
        """Roll back the open transaction (nothing to do when none is open)."""
        native = self.checked_native()
        with _translated:
            if native.transaction_status != "I":
                native.rollback()
        self.transaction_generation += 1

    def close(self) -> None:
        """Close the connection; an open transaction is rolled back by the server.

        Raises:
            InterfaceError: The connection was closed already (PEP 249 asks for an error).
        """
        if self._closed:
            raise InterfaceError("the connection is closed already")
        self._closed = True
        self.native.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        # As psycopg 3: commit if the block succeeded, roll back if it raised, then close.
        if self.closed:
            return
        try:
            if exc_type is None:
                self.commit()
            else:
                self.rollback()
        finally:
            if not self._closed:
                self.close()


def connect(
    dsn: PgConfig | str | None = None,
    *,
    autocommit: bool = False,
    paramstyle: str = "pyformat",
    **kwargs: Any,
) -> Connection:
    """Open a connection (PEP 249 ``connect``).

    Args:
        dsn: A :class:`~chopin_pg.PgConfig`, a ``postgres://`` URL, or ``None`` for the ``PG*`` variables.
        autocommit: Run each statement in its own transaction.
        paramstyle: ``"pyformat"`` (default) or ``"native"`` (see :class:`Connection`).
        **kwargs: :class:`~chopin_pg.PgConfig` fields (``host``, ``port``, ``user``, ``password``,
            ``database``...); ``dbname`` is accepted for ``database``.

    Returns:
        The connection.

    Raises:
        OperationalError: The server cannot be reached or refused the session.
        InterfaceError: The settings cannot be used.
    """
    if "dbname" in kwargs:
        kwargs["database"] = kwargs.pop("dbname")
    with _translated:
        native = PgConnection.connect(dsn, **kwargs)
    return Connection(native, autocommit=autocommit, paramstyle=paramstyle)


# -- cursors -------------------------------------------------------------------


class Cursor:
    """A PEP 249 cursor: the whole result is read at ``execute`` (see :class:`ServerCursor` for big results).

    Attributes:
        arraysize: Rows :meth:`fetchmany` returns by default.
        connection: The :class:`Connection` it belongs to.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.arraysize = 1
        self._closed = False
        self._rows: list[Row] = []
        self._pos = 0
        self._description: list[Column] | None = None
        self._rowcount = -1
        self._tag: str | None = None

    # -- attributes

    @property
    def description(self) -> list[Column] | None:
        """One :class:`Column` per result column, ``None`` when the statement returned no rows."""
        return self._description

    @property
    def rowcount(self) -> int:
        """Rows the last statement returned or affected (the command tag's count), -1 when unknown."""
        return self._rowcount

    @property
    def statusmessage(self) -> str | None:
        """The last statement's command tag (``INSERT 0 1``)."""
        return self._tag

    @property
    def rownumber(self) -> int | None:
        """0-based index of the next row to fetch, ``None`` without a result."""
        return self._pos if self._description is not None else None

    @property
    def lastrowid(self) -> None:
        """Always ``None``: use ``RETURNING``."""
        return None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _check(self) -> PgConnection:
        if self._closed:
            raise InterfaceError("the cursor is closed")
        return self.connection.checked_native()

    def _params(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> tuple[str, Sequence[Any]]:
        if params is None:
            return sql, ()
        query = self.connection.compile(sql)
        try:
            return query.sql, query.values(params)
        except (TypeError, KeyError, ValueError) as exc:
            raise ProgrammingError(f"parameters for {sql[:80]!r}: {exc}") from None

    def _set_result(self, result: Result | None, rowcount: int = -1) -> None:
        self._pos = 0
        if result is None:
            self._rows, self._description, self._rowcount, self._tag = [], None, rowcount, None
            return
        self._rows = result.rows
        self._description = describe(result)
        self._rowcount = result.rowcount
        self._tag = result.tag

    # -- executing

    def execute(self, operation: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None) -> Cursor:
        """Run one statement (``%s``/``%(name)s``/``$1`` placeholders); several only without parameters.

        Returns:
            The cursor, so ``cur.execute(...).fetchall()`` works (as psycopg 3).

        Raises:
            ProgrammingError: Bad SQL, or parameters that do not fit the placeholders.
            DatabaseError: The statement failed (the subclass follows the SQLSTATE).
        """
        native = self._check()
        self._set_result(None)
        if parameters is None and has_several_statements(operation):
            # The extended protocol takes one statement: use the simple protocol (no rows back).
            with _translated:
                if self.connection.begin_due:
                    native.execute("BEGIN")
                self._set_result(None, native.execute(operation))
            return self
        sql, values = self._params(operation, parameters)
        begin = self.connection.begin_due
        try:
            result = self._run_one(native, sql, values, begin)
        except Error as exc:
            # A statement cached on this connection and made stale by another connection's
            # DDL fails at its first use after it (0A000; the pipeline evicted it). When
            # nothing else ran in its transaction (this call opened it, or autocommit), run
            # it again, prepared afresh: what psycopg does not need (it prepares late) and
            # SQLAlchemy users would otherwise see once per pooled connection after a
            # migration. Later in a transaction the block is aborted: the error stands.
            if not (begin or self.connection.autocommit) or not is_stale_plan(exc):
                raise
            if begin:
                with _translated:
                    native.rollback()
            result = self._run_one(native, sql, values, begin)
        self._set_result(result)
        return self

    def _run_one(self, native: PgConnection, sql: str, values: Sequence[Any], begin: bool) -> Result:
        with _translated, native.pipeline() as pl:
            if begin:
                pl.execute("BEGIN")
            handle = pl.query(sql, values)
        return handle.result()

    def executemany(self, operation: str, seq_of_parameters: Iterator[Any] | Sequence[Any]) -> None:
        """Run one statement once per parameter set, all in one pipeline (one round trip).

        :attr:`rowcount` is the total of the affected rows.
        """
        native = self._check()
        self._set_result(None)
        statements = [self._params(operation, params) for params in seq_of_parameters]
        if not statements:
            self._rowcount = 0
            return
        begin = self.connection.begin_due
        with _translated, native.pipeline() as pl:
            if begin:
                pl.execute("BEGIN")
            handles = [pl.execute(sql, values) for sql, values in statements]
        results = [h.result() for h in handles]
        self._rowcount = sum(max(r.rowcount, 0) for r in results)
        last = results[-1]
        if last.columns:  # executemany of a RETURNING statement: the last set's rows, as psycopg 3
            self._rows, self._description = last.rows, describe(last)

    def callproc(self, procname: str, parameters: Sequence[Any] = ()) -> Sequence[Any]:
        """Call a function as ``SELECT * FROM name($1, ...)``; its rows are fetched as usual.

        Returns:
            ``parameters`` unchanged (PostgreSQL functions have no OUT-parameter binding).
        """
        name = ".".join(quote_identifier(part) for part in procname.split("."))
        placeholders = ", ".join(f"${i + 1}" for i in range(len(parameters)))
        native = self._check()
        begin = self.connection.begin_due
        with _translated, native.pipeline() as pl:
            if begin:
                pl.execute("BEGIN")
            handle = pl.query(f"SELECT * FROM {name}({placeholders})", parameters)
        self._set_result(handle.result())
        return parameters

    # -- fetching

    def _need_result(self) -> None:
        self._check()
        if self._description is None:
            raise ProgrammingError("no result to fetch: the last statement returned no rows (or none ran)")

    def fetchone(self) -> tuple[Any, ...] | None:
        """Return the next row as a tuple, or ``None`` when there is none left.

        Raises:
            ProgrammingError: The last statement returned no result set.
        """
        self._need_result()
        if self._pos >= len(self._rows):
            return None
        row = self._rows[self._pos]
        self._pos += 1
        return row[:]

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        """Return up to ``size`` (default :attr:`arraysize`) more rows."""
        self._need_result()
        n = self.arraysize if size is None else size
        rows = self._rows[self._pos : self._pos + n]
        self._pos += len(rows)
        return [row[:] for row in rows]

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Return every remaining row."""
        self._need_result()
        rows = self._rows[self._pos :]
        self._pos = len(self._rows)
        return [row[:] for row in rows]

    def scroll(self, value: int, mode: str = "relative") -> None:
        """Move the position in the result (``relative`` or ``absolute``).

        Raises:
            IndexError: The position would fall outside the result.
        """
        self._need_result()
        pos = self._pos + value if mode == "relative" else value
        if mode not in ("relative", "absolute"):
            raise ProgrammingError(f"scroll mode: expected 'relative' or 'absolute', got {mode!r}")
        if not 0 <= pos <= len(self._rows):
            raise IndexError(f"scroll to {pos}: out of range (the result has {len(self._rows)} rows)")
        self._pos = pos

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    # -- the rest of PEP 249

    def setinputsizes(self, sizes: Any) -> None:
        """Accepted and ignored (parameter types come from the server)."""

    def setoutputsize(self, size: int, column: int | None = None) -> None:
        """Accepted and ignored."""

    def close(self) -> None:
        """Close the cursor; later calls on it raise :class:`InterfaceError`."""
        self._closed = True
        self._rows = []

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ServerCursor(Cursor):
    """A named, server-side cursor: ``DECLARE`` at :meth:`execute`, rows fetched ``itersize`` at a time.

    ``execute`` sends the ``DECLARE`` and the first ``FETCH`` in one round trip (so
    :attr:`description` is known at once).  Outside autocommit the cursor lives until
    the transaction ends; with ``withhold=True`` it survives ``commit`` (and works in
    autocommit) until :meth:`close`.

    Attributes:
        name: The SQL cursor's name.
        itersize: Rows fetched per round trip while iterating.
    """

    def __init__(self, connection: Connection, name: str, *, withhold: bool, scrollable: bool | None) -> None:
        super().__init__(connection)
        self.name = name
        self.itersize = SERVER_CURSOR_ITERSIZE
        self._withhold = withhold
        self._scrollable = scrollable
        self._quoted = quote_identifier(name)
        self._declared_in: int | None = None  # the connection's transaction generation at DECLARE
        self._exhausted = False

    def _alive_on_server(self) -> bool:
        if self._declared_in is None or self.connection.closed:
            return False
        if self.connection.native.transaction_status == "E":
            return False  # a failed transaction: its rollback closes the cursor
        return self._withhold or self._declared_in == self.connection.transaction_generation

    def execute(self, operation: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None) -> Cursor:
        """Declare the cursor for a query and fetch its first rows.

        Returns:
            The cursor.
        """
        native = self._check()
        sql, values = self._params(operation, parameters)
        scroll = {None: "", True: "SCROLL ", False: "NO SCROLL "}[self._scrollable]
        hold = "WITH HOLD " if self._withhold else ""
        close_first = self._alive_on_server()
        begin = self.connection.begin_due
        self._set_result(None)
        self._declared_in = None
        with _translated, native.pipeline() as pl:
            if begin:
                pl.execute("BEGIN")
            if close_first:
                pl.execute(f"CLOSE {self._quoted}")
            pl.execute(f"DECLARE {self._quoted} {scroll}CURSOR {hold}FOR {sql}", values)
            first = pl.query(f"FETCH FORWARD {int(self.itersize)} FROM {self._quoted}")
        self._declared_in = self.connection.transaction_generation
        result = first.result()
        self._rows, self._description, self._tag = result.rows, describe(result), result.tag
        self._rowcount = len(result.rows)
        self._exhausted = len(result.rows) < self.itersize
        return self

    def executemany(self, operation: str, seq_of_parameters: Iterator[Any] | Sequence[Any]) -> None:
        """Not available on a server-side cursor.

        Raises:
            NotSupportedError: Always.
        """
        raise NotSupportedError("executemany() is not available on a server-side cursor")

    def _fetch(self, count: int | None) -> None:
        # Called when the buffer is used up: bring the next rows (all of them if count is None).
        native = self._check()
        what = "ALL" if count is None else f"FORWARD {int(count)}"
        with _translated:
            rows = native.query(f"FETCH {what} FROM {self._quoted}")
        self._rows, self._pos = rows, 0
        self._rowcount += len(rows)
        self._exhausted = count is None or len(rows) < count

    def fetchone(self) -> tuple[Any, ...] | None:
        """Return the next row, fetching ``itersize`` more from the server when the buffer is empty."""
        self._need_result()
        if self._pos >= len(self._rows):
            if self._exhausted:
                return None
            self._fetch(self.itersize)
            if not self._rows:
                return None
        row = self._rows[self._pos]
        self._pos += 1
        return row[:]

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        """Return up to ``size`` (default :attr:`arraysize`) more rows."""
        self._need_result()
        n = self.arraysize if size is None else size
        out = [row[:] for row in self._rows[self._pos : self._pos + n]]
        self._pos += len(out)
        if len(out) < n and not self._exhausted:
            self._fetch(max(n - len(out), self.itersize))
            more = self._rows[: n - len(out)]
            self._pos = len(more)
            out.extend(row[:] for row in more)
        return out

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Return every remaining row (one ``FETCH ALL``)."""
        self._need_result()
        out = [row[:] for row in self._rows[self._pos :]]
        self._pos = len(self._rows)
        if not self._exhausted:
            self._fetch(None)
            out.extend(row[:] for row in self._rows)
            self._pos = len(self._rows)
        return out

    def scroll(self, value: int, mode: str = "relative") -> None:
        """Move the server-side position (``MOVE``); the cursor must be ``scrollable`` to go back.

        Raises:
            ProgrammingError: ``mode`` is neither ``relative`` nor ``absolute``.
        """
        native = self._check()
        self._need_result()
        if mode not in ("relative", "absolute"):
            raise ProgrammingError(f"scroll mode: expected 'relative' or 'absolute', got {mode!r}")
        # The server's position is after the buffered rows; the caller's is self._pos within them.
        if mode == "relative":
            target = f"RELATIVE {int(value - (len(self._rows) - self._pos))}"
        else:
            target = f"ABSOLUTE {int(value)}"
        with _translated:
            native.execute(f"MOVE {target} FROM {self._quoted}")
        self._rows, self._pos, self._exhausted = [], 0, False

    def close(self) -> None:
        """Close the server-side cursor (``CLOSE``, when it still exists) and this object."""
        if self._closed:
            return
        try:
            if self._alive_on_server():
                with _translated:
                    self.connection.native.execute(f"CLOSE {self._quoted}")
        finally:
            self._declared_in = None
            super().close()
