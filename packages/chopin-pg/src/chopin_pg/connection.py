"""The blocking connection: :class:`Connection` and :func:`connect`.

The connection owns a socket (TCP, TLS or unix) and a sans-IO
:class:`~chopin_pg._session.Session`; every method builds one operation
generator and hands it to :func:`~chopin_pg._waiting.run`.  A server error
never leaves the connection unusable (each operation reads to ReadyForQuery);
a socket error or timeout closes it and raises :class:`ConnectionLost` /
:class:`IoTimeout`.
"""

from __future__ import annotations

import io
import re
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, NoReturn, TypeVar, cast, overload

from . import protocol as p
from ._bind import bind_one, execute, take_reply
from ._copy_binary import field_codec
from ._result import Gen, Result
from ._session import Notification, Session
from ._session_view import SessionView
from ._statements import PreparedStatement, is_stale_plan
from ._waiting import DUPLEX_THRESHOLD, RECV_SIZE, exchange, run
from .config import PgConfig
from .copy import CopyReader, CopyWriter
from .errors import (
    ConnectionLost,
    InterfaceError,
    IoTimeout,
    NoRows,
    PgError,
    TooManyRows,
)
from .pipeline import Pipeline
from .row import Row
from .types import DEFAULT_TYPES, Decoder, ParamEncoder

__all__ = ["Connection", "Transaction", "connect", "quote_identifier", "ssl_context"]

T = TypeVar("T")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")

# DISCARD ALL as PostgreSQL 15 documents it (sql-discard.html), less DEALLOCATE ALL: the
# driver's statements stay, and DISCARD PLANS makes the server analyze each again, under
# the clean session, at its next use.  The last statement lists the SQL-level PREPAREs
# (from_sql), which are deallocated by name.  One simple Query: one round trip.
_RESET_KEEPING_STATEMENTS = (
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; SELECT pg_advisory_unlock_all();"
    " DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES; SELECT name FROM pg_prepared_statements WHERE from_sql"
)


def quote_identifier(name: str) -> str:
    """Quote ``name`` as an SQL identifier (``"a""b"``); chopin-orm quotes with it too.

    Raises:
        InterfaceError: ``name`` contains NUL (no identifier can).
    """
    if "\x00" in name:
        raise InterfaceError(f"identifier may not contain NUL: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def ssl_context(config: PgConfig) -> ssl.SSLContext:
    """The TLS context ``config.sslmode`` asks for (libpq: ``require`` with a root certificate is ``verify-ca``)."""
    mode = config.sslmode
    ctx = ssl.create_default_context(cafile=config.sslrootcert)
    if mode == "verify-full":
        return ctx
    ctx.check_hostname = False
    if mode == "verify-ca" or (mode == "require" and config.sslrootcert):
        # libpq: "require" with a root certificate given behaves as verify-ca.
        return ctx
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _open_socket(config: PgConfig, timeout: float | None) -> socket.socket:
    if config.is_unix_socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(config.socket_path)
        except BaseException:
            sock.close()
            raise
        return sock
    sock = socket.create_connection((config.host, config.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _negotiate_tls(sock: socket.socket, config: PgConfig) -> socket.socket | ssl.SSLSocket:
    """Send SSLRequest and wrap the socket if the server agrees (§55.2.10)."""
    if config.is_unix_socket or config.sslmode in ("disable", "allow"):
        return sock
    sock.sendall(p.ssl_request())
    answer = sock.recv(1)
    if answer == b"S":
        ctx = ssl_context(config)
        return ctx.wrap_socket(sock, server_hostname=config.host)
    if answer == b"N":
        if config.sslmode == "prefer":
            return sock
        raise ConnectionLost(f"sslmode={config.sslmode}: server at {config.host}:{config.port} does not support TLS")
    raise ConnectionLost(f"SSLRequest: expected 'S' or 'N', got {answer!r}")


class Transaction:
    """A transaction block on one connection, or a savepoint when the connection is already in one.

    :meth:`Connection.transaction` returns it as a context manager (commit on success,
    roll back on error); :meth:`begin`, :meth:`commit` and :meth:`rollback` are the same
    steps for callers that hold it longer (chopin-orm's transactions wrap it).  Nested
    ones are savepoints named ``_cpg_sp<depth>``; a rollback rolls back to the savepoint
    and releases it.

    Args:
        conn: The connection.
        isolation: ``BEGIN ISOLATION LEVEL ...`` for an outermost transaction (see
            :meth:`Connection.begin`); refused for a savepoint.
    """

    __slots__ = ("_conn", "_isolation", "_savepoint", "_state")

    def __init__(self, conn: Connection, isolation: str | None = None) -> None:
        self._conn = conn
        self._isolation = isolation
        self._savepoint: str | None = None
        self._state = "new"  # then "active", then "ended"

    @property
    def savepoint(self) -> str | None:
        """The savepoint's name when this is a nested transaction, else ``None``."""
        return self._savepoint

    @property
    def active(self) -> bool:
        """Whether it was begun and not committed or rolled back yet."""
        return self._state == "active"

    def begin(self) -> None:
        """``BEGIN`` when the connection is idle, else ``SAVEPOINT``.

        Raises:
            InterfaceError: It was begun already, or ``isolation`` was given inside a transaction.
        """
        if self._state != "new":
            raise InterfaceError(f"transaction: cannot begin, it is {self._state}")
        conn = self._conn
        if conn.transaction_status == "I":
            conn.begin(self._isolation)
        else:
            if self._isolation is not None:
                raise InterfaceError("transaction: isolation can only be set on an outermost transaction")
            conn.savepoint_depth += 1
            try:
                conn.savepoint(f"_cpg_sp{conn.savepoint_depth}")
            except BaseException:
                conn.savepoint_depth -= 1
                raise
            self._savepoint = f"_cpg_sp{conn.savepoint_depth}"
        self._state = "active"

    def commit(self) -> None:
        """``COMMIT`` (a failed block is rolled back by the server), or release the savepoint.

        Raises:
            InterfaceError: It is not active, or the connection is closed.
        """
        sp = self._finish()
        if sp is None:
            self._conn.commit()
        else:
            self._conn.release_savepoint(sp)

    def rollback(self) -> None:
        """``ROLLBACK``, or roll back to the savepoint and release it; nothing to send on a closed connection.

        Raises:
            InterfaceError: It is not active.
        """
        sp = self._finish()
        conn = self._conn
        if conn.closed:
            return
        if sp is None:
            conn.rollback()
        else:
            conn.rollback_to(sp)
            conn.release_savepoint(sp)

    def _finish(self) -> str | None:
        if self._state != "active":
            raise InterfaceError(f"transaction: cannot end, it is {self._state}")
        self._state = "ended"
        if self._savepoint is not None:
            self._conn.savepoint_depth -= 1
        return self._savepoint

    def __enter__(self) -> Connection:
        self.begin()
        return self._conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._state != "active":
            return
        if self._conn.closed:
            self._finish()  # lost inside the block: nothing to send, the block's error says why
        elif exc_type is None:
            self.commit()
        else:
            self.rollback()


class Connection(SessionView):
    """One PostgreSQL session over a blocking socket.

    Open it with :func:`connect` or :meth:`Connection.connect`; use it as a
    context manager to close it.

    Attributes:
        config: The settings it was opened with.
        types: This connection's type registry (a copy of the default).
        savepoint_depth: How many savepoints :meth:`transaction` has open (it names them ``_cpg_sp<n>``).
        target_session_attrs: What the session was chosen for when the conninfo named several
            hosts or ``target_session_attrs`` (``"read-write"``...); ``"any"`` otherwise.  A
            :class:`~chopin_pg.PgPool` re-checks it at each checkout.
    """

    def __init__(self, config: PgConfig, sock: socket.socket | ssl.SSLSocket, session: Session) -> None:
        self.config = config
        self.types = session.types
        self._sock = sock
        self._session = session
        self._closed = False
        self._cache = session.cache  # the statement cache, one load on the per-query path
        self.savepoint_depth = 0
        self.target_session_attrs = "any"
        self._busy: str | None = None  # "a pipeline" / "COPY FROM STDIN"... while one is open
        self._commands = 0  # exchanges with the server, so a pool can tell an unused checkout

    # -- lifecycle ----------------------------------------------------------------

    @classmethod
    def connect(cls, config: PgConfig | str | None = None, **kwargs: Any) -> Connection:
        """Open a connection.

        Args:
            config: A :class:`PgConfig`, a ``postgres://`` URL, or ``None`` for the environment.
            **kwargs: :class:`PgConfig` fields overriding ``config``.

        Returns:
            The connection, authenticated and ready.

        Raises:
            ConnectionLost: The server cannot be reached or closed the connection.
            IoTimeout: Connecting took longer than ``connect_timeout``.
            ServerError: The server refused the session (authentication, unknown database...).
            AuthenticationFailed: The client could not complete authentication.
        """
        if config is None:
            config = PgConfig.from_env(**kwargs)
        else:
            if isinstance(config, str):
                # Several hosts or target_session_attrs: _multihost tries each (it imports this module).
                from ._multihost import connect_any, split_hosts

                if (hosts := split_hosts(config)) is not None:
                    return connect_any(*hosts, **kwargs)
                config = PgConfig.from_url(config)
            if kwargs:
                config = config.replace(**kwargs)
        session = Session(config, DEFAULT_TYPES.copy())
        try:
            raw = _open_socket(config, config.connect_timeout)
        except TimeoutError as exc:
            raise IoTimeout(f"connecting to {config.host}:{config.port}: timed out") from exc
        except OSError as exc:
            raise ConnectionLost(f"connecting to {config.host}:{config.port}: {exc}") from exc
        try:
            sock = _negotiate_tls(raw, config)
            cert = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
            conn = cls(config, sock, session)
        except BaseException as exc:
            raw.close()
            if isinstance(exc, ssl.SSLError | OSError) and not isinstance(exc, PgError):
                raise ConnectionLost(f"TLS with {config.host}:{config.port}: {exc}") from exc
            raise
        try:
            conn.wait(session.startup(cert))
        except BaseException:
            conn._lose()
            raise
        sock.settimeout(config.io_timeout)
        return conn

    def close(self) -> None:
        """Send Terminate and close the socket; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.sendall(p.terminate())
        except OSError:
            pass
        self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A connection dropped without close() must not leak its socket.
        if not getattr(self, "_closed", True):
            self._closed = True
            self._sock.close()

    @property
    def command_count(self) -> int:
        """How many exchanges with the server this connection has had (queries, COPY steps, pipeline batches...).

        A pool compares it before and after a checkout to tell whether the session was used at all.
        """
        return self._commands

    @property
    def ssl_in_use(self) -> bool:
        """Whether the connection runs over TLS (libpq's ``PQsslInUse``): the client's own view."""
        return isinstance(self._sock, ssl.SSLSocket)

    def fileno(self) -> int:
        """The socket's file descriptor, to wait for notifications with ``select``."""
        return self._sock.fileno()

    @property
    def busy(self) -> str | None:
        """What holds the connection (``"a pipeline"``, ``"COPY FROM STDIN"``...), or ``None``."""
        return self._busy

    def enter_busy(self, what: str) -> None:
        """Mark the connection as held by ``what`` (a COPY, a pipeline) until :meth:`leave_busy`.

        While it is held, the connection's own commands refuse to run (their answers would
        interleave with the holder's); the holder talks to the server through :meth:`wait`.

        Raises:
            InterfaceError: The connection is closed, or already held.
        """
        if self._closed:
            raise InterfaceError("connection is closed")
        if self._busy is not None:
            raise InterfaceError(f"connection is busy with {self._busy}: cannot start {what}")
        self._busy = what

    def leave_busy(self) -> None:
        """End what :meth:`enter_busy` started."""
        self._busy = None

    def _run(self, gen: Gen) -> Any:
        if self._busy is not None:
            gen.close()
            raise InterfaceError(f"connection is busy with {self._busy}: finish it before running other commands")
        return self.wait(gen)

    def wait(self, gen: Gen) -> Any:
        """Drive an operation generator to its end over this connection's socket and return its result.

        The one entry the rest of the driver uses to talk to the server (psycopg's
        ``Connection.wait``): ``gen`` yields the bytes to send and ``None`` when it
        needs input (see :mod:`chopin_pg._session`).  It runs whether or not the
        connection is :attr:`busy`: the holder of a COPY or a pipeline calls it.

        Args:
            gen: An operation generator over :attr:`session` (closed if it cannot run).

        Returns:
            The generator's return value.

        Raises:
            InterfaceError: The connection is closed.
            ConnectionLost: The socket failed (the connection is closed; a FATAL server error that
                explains it is raised instead).
            IoTimeout: A read or write took longer than the I/O timeout (the connection is closed).
            PgError: What the operation raised, after ReadyForQuery.
        """
        if self._closed:
            gen.close()
            raise InterfaceError("connection is closed")
        self._commands += 1
        try:
            return run(gen, self._sock, self._session.parser.feed)
        except BaseException as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> NoReturn:
        """Raise what an operation that raised ``exc`` must raise, closing the connection when it is out of step."""
        if isinstance(exc, ConnectionLost):
            self._lose()
            fatal = self._session.fatal
            if fatal is not None:
                raise fatal from exc
            raise exc
        if isinstance(exc, PgError):
            if self._session.fatal is not None:
                self._lose()
            raise exc
        if isinstance(exc, Exception):
            # Operations raise other exceptions (a COPY source failing, a decoder
            # error) only after ReadyForQuery: the connection is still in step.
            raise exc
        # Interrupted mid-protocol (KeyboardInterrupt): the stream position is
        # unknown, so the connection cannot be trusted any more.
        self._lose()
        raise exc

    def _bind_execute(self, stmt: PreparedStatement, params: Sequence[Any]) -> Result:
        """Execute a prepared statement once: Bind + Execute + Sync, one send and (usually) one recv.

        The fast path for one query (``query``, ``execute`` with parameters):
        no operation generator, and when the first read holds the whole answer
        it is decoded in place (:func:`~chopin_pg._bind.take_reply`).  Anything
        else (a busy or closed connection, a big request, a partial or unusual
        answer) goes through the general generator path, which handles every case.
        """
        session = self._session
        if self._busy is None and not self._closed and not session.parser.buffered:
            request = bind_one(self._cache, stmt, params)
            if len(request) <= DUPLEX_THRESHOLD:
                self._commands += 1
                try:
                    data = exchange(self._sock, request)
                except BaseException as exc:
                    self._failed(exc)
                result = take_reply(session, data, stmt)
                if result is not None:
                    return result
                results: list[Result] = self.wait(session.send_then(b"", session.read_execute(stmt), data))
            else:
                results = self.wait(session.send_then(request, session.read_execute(stmt)))
            return results[0]
        return self._run(execute(session, stmt, [params]))[0]  # type: ignore[no-any-return]

    def close_inherited(self) -> None:
        """Drop a connection inherited across fork: close this process's descriptor, send nothing (no Terminate)."""
        self._closed = True
        self._sock.close()

    def drain_pending(self) -> None:
        """Read what an idle connection has waiting (notifications, notices, a FATAL before EOF), without blocking.

        Raises:
            ConnectionLost: The server closed the connection (or the FATAL error that explains it).
        """
        if self._closed:
            raise InterfaceError("connection is closed")
        sock = self._sock
        while (isinstance(sock, ssl.SSLSocket) and sock.pending()) or select.select([sock], [], [], 0)[0]:
            self._read_idle()

    def _lose(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.close()

    # -- settings -----------------------------------------------------------------

    def set_io_timeout(self, seconds: float | None) -> None:
        """Limit every socket read and write to ``seconds`` (``None``: wait forever).

        A timeout closes the connection (the protocol position is lost) and raises :class:`IoTimeout`.
        """
        self._sock.settimeout(seconds)

    def set_notice_handler(self, handler: Callable[[dict[str, str]], None] | None) -> None:
        """Call ``handler(fields)`` for every NoticeResponse (fields by one-letter code, ``M`` the message)."""
        self._session.notice_handler = handler

    @property
    def notices(self) -> list[dict[str, str]]:
        """The last 100 notices received."""
        return list(self._session.notices)

    def set_statement_cache_capacity(self, capacity: int) -> None:
        """Keep at most ``capacity`` prepared statements (0 disables the cache)."""
        self._cache.set_capacity(capacity)

    def clear_statement_cache(self) -> None:
        """Forget every prepared statement (they are closed on the server with the next command)."""
        self._cache.clear()

    @property
    def statement_cache_size(self) -> int:
        """How many prepared statements are cached."""
        return len(self._cache.statements)

    def reset_session(self, *, keep_statements: bool = False) -> None:
        """Return the session to its state after connect, with the driver's own state cleared in step.

        By default ``DISCARD ALL`` (after a rollback if a transaction is open): it
        resets every setting (``SET``, ``set_config``, ``SET ROLE``), drops
        temporary tables, stops every ``LISTEN``, releases advisory locks, closes
        cursors and deallocates every prepared statement, so the driver's statement
        cache is emptied with it (it would otherwise name statements that no longer
        exist).  Notifications and notices already received are dropped, and the
        client side returns to the connection's settings too: the I/O timeout of
        its config and no notice handler (the type registry and the statement
        cache capacity stay as they are).

        Args:
            keep_statements: Keep the driver's prepared statements: the same reset
                without ``DEALLOCATE ALL`` (``DISCARD PLANS`` has each analyzed again
                under the clean session at its next use; SQL ``PREPARE`` statements
                are deallocated by name).  Saves preparing statements again; a
                statement first prepared under another ``search_path`` may then fail
                with "cached plan must not change result type" inside a transaction.

        Raises:
            PgError: The reset failed; the session state is unknown, so close the connection.
        """
        # The client side first: the reset's own commands run under the config's I/O
        # timeout, not a short one the last user set.
        self._sock.settimeout(self.config.io_timeout)
        self._session.notice_handler = None
        if self.in_transaction:
            self.rollback()
        if keep_statements:
            prepared = self.query_simple(_RESET_KEEPING_STATEMENTS)
            if prepared:
                self.execute("; ".join(f"DEALLOCATE {quote_identifier(row[0])}" for row in prepared))
            self._session.forget_received()
        else:
            self.execute("DISCARD ALL")
            # After the command: a notification delivered before UNLISTEN took effect is dropped too.
            self._session.forget_session_state()
        self.savepoint_depth = 0

    def register_type(
        self,
        name: str,
        *,
        text: Decoder | None = None,
        binary: Decoder | None = None,
        param: ParamEncoder | None = None,
    ) -> int:
        """Register codecs for a user type (and its array type) looked up by name in ``pg_type``.

        Returns:
            The type's OID.

        Raises:
            NoRows: No type has that name.
        """
        row = self.query_one("SELECT $1::regtype::oid, typarray FROM pg_type WHERE oid = $1::regtype::oid", (name,))
        oid, array_oid = row[0], row[1]
        self.types.register(oid, text=text, binary=binary, param=param, array_oid=array_oid or None)
        self._cache.clear()  # cached decoders were chosen with the old registry
        return int(oid)

    # -- queries ------------------------------------------------------------------

    def query_simple(self, sql: str) -> list[Row]:
        """Run SQL text (several statements allowed) with the simple protocol; values decode from text.

        Returns:
            The rows of the last statement that returned rows.
        """
        results: list[Result] = self._run(self._session.simple_query(sql))
        for result in reversed(results):
            if result.columns:
                return result.rows
        return []

    def _statement(self, sql: str) -> PreparedStatement:
        stmt = self._cache.lookup(sql)
        if stmt is None:
            stmt = self._run(self._session.prepare(sql))
        return stmt

    def _execute(self, sql: str, param_sets: list[Sequence[Any]]) -> list[Result]:
        session = self._session
        stmt = self._statement(sql)
        try:
            return self._run(execute(session, stmt, param_sets))  # type: ignore[no-any-return]
        except PgError as exc:
            if not is_stale_plan(exc):
                raise
            self._cache.evict(sql)
            if session.status != "I" or self._closed:
                raise  # inside a transaction the block is aborted: the caller must roll back
        # Outside a transaction: re-prepare against the new table shape and retry once.
        stmt = self._run(session.prepare(sql))
        return self._run(execute(session, stmt, param_sets))  # type: ignore[no-any-return]

    def _execute_one(self, sql: str, params: Sequence[Any]) -> Result:
        """:meth:`_execute` for one parameter set, on the fast path."""
        session = self._session
        stmt = self._cache.lookup(sql)
        if stmt is None:
            stmt = self._run(session.prepare(sql))
        try:
            return self._bind_execute(stmt, params)
        except PgError as exc:
            if not is_stale_plan(exc):
                raise
            self._cache.evict(sql)
            if session.status != "I" or self._closed:
                raise  # inside a transaction the block is aborted: the caller must roll back
        # Outside a transaction: re-prepare against the new table shape and retry once.
        stmt = self._run(session.prepare(sql))
        return self._bind_execute(stmt, params)

    def query(self, sql: str, params: Sequence[Any] | None = ()) -> list[Row]:
        """Run a statement with parameters sent out of band; values decode from binary where possible.

        Args:
            sql: One statement with ``$1..$n`` placeholders.
            params: The values (``None`` for NULL); ``params=None`` itself means no parameters.

        Returns:
            The rows.
        """
        return self._execute_one(sql, () if params is None else params).rows

    def query_one(self, sql: str, params: Sequence[Any] | None = ()) -> Row:
        """Return the only row.

        Raises:
            NoRows: There is no row.
            TooManyRows: There is more than one row.
        """
        rows = self.query(sql, params)
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise NoRows(f"query_one: expected one row, got none: {sql[:200]!r}")
        raise TooManyRows(f"query_one: expected one row, got {len(rows)}: {sql[:200]!r}")

    def query_opt(self, sql: str, params: Sequence[Any] | None = ()) -> Row | None:
        """Return the only row, or ``None`` if there is none.

        Raises:
            TooManyRows: There is more than one row.
        """
        rows = self.query(sql, params)
        if len(rows) > 1:
            raise TooManyRows(f"query_opt: expected at most one row, got {len(rows)}: {sql[:200]!r}")
        return rows[0] if rows else None

    def query_scalar(self, sql: str, params: Sequence[Any] | None = ()) -> Any:
        """Return the first column of the only row (see :meth:`query_one`)."""
        return self.query_one(sql, params)[0]

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run a statement and return the number of rows it affected (-1 when the command reports none).

        Without ``params`` the simple protocol is used, so ``sql`` may hold several
        statements (the count is the last one's).  With ``params`` (even empty),
        the extended protocol and the statement cache are used.
        """
        if params is None:
            results: list[Result] = self._run(self._session.simple_query(sql))
            return results[-1].rowcount if results else -1
        return self._execute_one(sql, params).rowcount

    def executemany(self, sql: str, param_sets: Iterable[Sequence[Any] | None] | None) -> int:
        """Run a statement once per parameter set, pipelined in one round trip.

        Args:
            sql: One statement with ``$1..$n`` placeholders.
            param_sets: The parameter sets; a ``None`` set means no parameters, and
                ``param_sets=None`` means no sets (nothing runs).

        Returns:
            The total number of affected rows.
        """
        if param_sets is None:
            return 0
        sets: list[Sequence[Any]] = [() if params is None else params for params in param_sets]
        if not sets:
            return 0
        return sum(max(r.rowcount, 0) for r in self._execute(sql, sets))

    def pipeline(self) -> Pipeline:
        """Return a pipeline: ``with conn.pipeline() as pl:`` queues queries sent in one round trip.

        See :mod:`chopin_pg.pipeline` for how errors and transactions behave.
        """
        return Pipeline(self)

    # -- transactions -------------------------------------------------------------

    def begin(self, isolation: str | None = None) -> None:
        """Open a transaction block (``BEGIN``, optionally ``ISOLATION LEVEL ...``)."""
        if isolation is not None:
            levels = ("SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED", "READ UNCOMMITTED")
            if isolation.upper() not in levels:
                raise InterfaceError(f"isolation: expected one of {levels}, got {isolation!r}")
            self.execute(f"BEGIN ISOLATION LEVEL {isolation.upper()}")
        else:
            self.execute("BEGIN")

    def commit(self) -> None:
        """Commit the transaction block (a failed block is rolled back by the server)."""
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the transaction block."""
        self.execute("ROLLBACK")

    def savepoint(self, name: str) -> None:
        """Create a savepoint."""
        self.execute(f"SAVEPOINT {quote_identifier(name)}")

    def rollback_to(self, name: str) -> None:
        """Roll back to a savepoint (it stays defined)."""
        self.execute(f"ROLLBACK TO SAVEPOINT {quote_identifier(name)}")

    def release_savepoint(self, name: str) -> None:
        """Release a savepoint."""
        self.execute(f"RELEASE SAVEPOINT {quote_identifier(name)}")

    @overload
    def transaction(self) -> Transaction: ...
    @overload
    def transaction(self, fn: Callable[[Connection], T]) -> T: ...
    def transaction(self, fn: Callable[[Connection], T] | None = None) -> T | Transaction:
        """Run ``fn(conn)`` in a transaction, or return a context manager doing the same.

        Outside a transaction this is ``BEGIN`` ... ``COMMIT`` (``ROLLBACK`` if
        ``fn`` raises); inside one it nests as a savepoint, rolled back to on error.

        Args:
            fn: The work to do; omit it for the ``with conn.transaction():`` form.

        Returns:
            What ``fn`` returned, or the context manager.
        """
        tx = Transaction(self)
        if fn is None:
            return tx
        with tx:
            return fn(self)

    # -- cancel -------------------------------------------------------------------

    def cancel(self) -> None:
        """Ask the server to cancel the running query (CancelRequest on a new connection, §55.2.7).

        Safe to call from another thread; the query then fails with :class:`QueryCanceled`.
        """
        config = self.config
        sock = _open_socket(config, config.connect_timeout or 10.0)
        try:
            sock.sendall(p.cancel_request(self._session.backend_pid, self._session.backend_secret))
            sock.recv(1)  # the server closes the connection when it has the request
        finally:
            sock.close()

    # -- LISTEN / NOTIFY ----------------------------------------------------------

    def listen(self, channel: str) -> None:
        """Start listening on ``channel``."""
        self.execute(f"LISTEN {quote_identifier(channel)}")

    def unlisten(self, channel: str) -> None:
        """Stop listening on ``channel``."""
        self.execute(f"UNLISTEN {quote_identifier(channel)}")

    def unlisten_all(self) -> None:
        """Stop listening on every channel."""
        self.execute("UNLISTEN *")

    def notify(self, channel: str, payload: str = "") -> None:
        """Send a notification (``pg_notify``; delivered when the sender's transaction commits)."""
        self.query("SELECT pg_notify($1, $2)", (channel, payload))

    def poll_notification(self, timeout: float | None = 0.0) -> Notification | None:
        """Return the next notification, waiting up to ``timeout`` seconds (``None``: forever).

        Notifications that arrived during other queries are returned first.
        """
        queue = self._session.notifications
        if queue:
            return queue.popleft()
        if self._closed:
            raise InterfaceError("connection is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        sock = self._sock
        while not queue:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            if not pending:
                readable, _, _ = select.select([sock], [], [], remaining)
                if not readable:
                    return None
            self._read_idle()
            if deadline is not None and time.monotonic() >= deadline and not queue:
                return None
        return queue.popleft()

    def _read_idle(self) -> None:
        try:
            data = self._sock.recv(RECV_SIZE)
        except OSError as exc:
            self._lose()
            raise ConnectionLost(f"socket error: {exc}") from exc
        if not data:
            self._lose()
            fatal = self._session.fatal
            if fatal is not None:
                raise fatal
            raise ConnectionLost("server closed the connection")
        self._session.absorb(data)

    def drain_notifications(self) -> list[Notification]:
        """Return every notification received so far (reading what is waiting on the socket), without blocking."""
        queue = self._session.notifications
        if not self._closed:
            self.drain_pending()
        out = list(queue)
        queue.clear()
        return out

    # -- COPY ---------------------------------------------------------------------

    def copy_in(self, sql: str) -> CopyWriter:
        """Start ``COPY ... FROM STDIN`` and return a writer (``write_row``, ``write``, ``finish``, ``fail``).

        Raises:
            ServerError: The statement failed.
            InterfaceError: The statement is not a COPY FROM STDIN.
        """
        return CopyWriter(self, sql)

    def copy_records(
        self,
        table: str,
        records: Iterable[Sequence[Any]],
        *,
        columns: Sequence[str] | None = None,
        schema: str | None = None,
    ) -> int:
        """Copy rows of Python values into a table (``COPY ... FROM STDIN``): the fastest way to load many rows.

        The column types are read first (one round trip: the server describes
        ``SELECT <columns> FROM <table>``).  When every column type has a binary
        COPY encoder (integers, floats, bool, text types, bytea, uuid, json, jsonb,
        date, timestamp, timestamptz) the rows travel in the binary format
        (:meth:`CopyWriter.set_types`), else in the text format
        (:meth:`CopyWriter.write_rows`).  If a row cannot be encoded the COPY is
        failed: nothing is copied and the connection stays usable.

        Args:
            table: The table's name (quoted as an identifier).
            records: The rows, one value per column (``None`` for NULL).
            columns: The columns the values are for (default: all, in table order).
            schema: The table's schema (default: found on the search path).

        Returns:
            The number of rows copied.

        Raises:
            DataError: A value does not suit its column's type (binary format).
            ServerError: The table or a column does not exist, or the server refused the data.
            InterfaceError: ``columns`` is empty.
        """
        if columns is not None and not columns:
            raise InterfaceError("copy_records: columns is empty; name at least one column, or pass None for all")
        target = quote_identifier(table) if schema is None else f"{quote_identifier(schema)}.{quote_identifier(table)}"
        listed = "*" if columns is None else ", ".join(map(quote_identifier, columns))
        described: PreparedStatement = self._run(self._session.prepare(f"SELECT {listed} FROM {target}", cache=False))
        type_oids = [col.type_oid for col in described.columns]
        zone = self._session.types.tz
        use_binary = all(field_codec(oid, zone) is not None for oid in type_oids)
        names = ", ".join(quote_identifier(col.name) for col in described.columns)
        with self.copy_in(f"COPY {target} ({names}) FROM STDIN{' (FORMAT binary)' if use_binary else ''}") as writer:
            if use_binary:
                writer.set_types(type_oids)
            writer.write_rows(iter(records))
            return writer.finish()

    def copy_out(self, sql: str) -> CopyReader:
        """Start ``COPY ... TO STDOUT`` and return a reader (iterate for chunks, or ``read_all``).

        Raises:
            ServerError: The statement failed.
            InterfaceError: The statement is not a COPY TO STDOUT.
        """
        return CopyReader(self, sql)

    def copy_from(self, sql: str, data: Iterable[bytes] | bytes | IO[bytes]) -> int:
        """Run ``COPY ... FROM STDIN`` feeding it ``data`` (bytes, an iterable of chunks, or a binary file).

        If reading ``data`` raises, the COPY is failed (nothing copied) and the exception propagates.

        Returns:
            The number of rows copied.
        """
        if isinstance(data, bytes | bytearray | memoryview):
            chunks: Iterable[bytes] = [bytes(data)]
        elif isinstance(data, io.IOBase) or hasattr(data, "read"):
            chunks = _file_chunks(cast("IO[bytes]", data))
        else:
            chunks = data
        with self.copy_in(sql) as writer:
            for chunk in chunks:
                writer.write(chunk)
            return writer.finish()

    def copy_to(self, sql: str, write: Callable[[bytes], object]) -> int:
        """Run ``COPY ... TO STDOUT`` calling ``write(chunk)`` for each data message.

        Returns:
            The number of rows copied.
        """
        with self.copy_out(sql) as reader:
            for chunk in reader:
                write(chunk)
        return reader.rowcount


def _file_chunks(file: IO[bytes]) -> Iterator[bytes]:
    while chunk := file.read(65536):
        yield chunk


def connect(config: PgConfig | str | None = None, **kwargs: Any) -> Connection:
    """Open a :class:`Connection` (see :meth:`Connection.connect`)."""
    return Connection.connect(config, **kwargs)
