"""The non-blocking connection: :class:`AsyncConnection`, shared by many coroutines.

The second shell over the same sans-IO core as :class:`~chopin_pg.Connection`:
the same :class:`~chopin_pg._session.Session`, statement cache, Bind encoder
and row decoders; only the socket handling differs.  Its coroutines await the
two things of the wait protocol (:mod:`chopin_pg._nonblocking`), so chopin-core's
worker loop (or any driver of that protocol) runs them without asyncio.

How sharing works (many coroutines, one connection, queries pipelined):

- Each query is written in the loop turn it is made, as one request ending in
  its own Sync (:func:`~chopin_pg._inflight.query_request`): nothing waits for
  an earlier query's answer before sending.  The requests of one turn (the
  handlers one epoll wake-up started, the queries of a ``gather``) leave in one
  write: the turn's first caller yields once before writing them all.  An error in one request is answered with its
  ReadyForQuery and the server goes on with the next request: it is raised in
  that caller only.
- The connection keeps a FIFO of pending replies, each with its reader (an
  operation generator); the answers come back in the order the requests were
  written, so bytes read from the socket are fed to the head of the FIFO, and
  when its ReadyForQuery is read the next one takes over the parser.
- One caller at a time is *the reader*: whoever finds nobody reading waits on
  the socket (``(fd, EPOLLIN)``, plus ``EPOLLOUT`` while output is buffered),
  reads, and completes every reply it can, its own and the others'.  The others
  wait on a :class:`~chopin_pg._nonblocking.Signal`, set when their reply is
  complete or when it is their turn to read.  When the reader's own reply is
  complete it hands the role to the first caller still waiting.
- Why this shape rather than a reader task: the wait protocol has no tasks, only
  coroutines of requests; letting the callers take turns needs no spawning, and
  the common case (one caller, one query) is one wait on the fd, no signal.
- Writes never block: a write that does not fit in the socket stays in an output
  buffer that the reader flushes when the socket is writable, while it keeps
  reading, so a long pipeline cannot deadlock against a server whose own output
  is full (libpq docs §34.5 "Pipeline Mode").
- Cancellation: a caller cancelled while it waits (``coro.close()``, or an
  exception thrown in) leaves its reply in the FIFO, where it is read and
  discarded in turn; a cancelled reader hands the reader role on in ``finally``.
  The cancelled query itself still runs on the server (it was written already).
- Failure: EOF, a socket error or a protocol violation fails every pending reply
  with its own exception (the server's FATAL error when it sent one, such as
  :class:`~chopin_pg.errors.AdminShutdown` for ``pg_terminate_backend`` or a
  server shutdown, else :class:`~chopin_pg.errors.ConnectionLost`) and closes the
  connection; nothing waits forever.

TLS is negotiated as the blocking shell does (SSLRequest, ``sslmode`` rules,
SCRAM-SHA-256-PLUS channel binding), over :class:`ssl.SSLObject` and memory
BIOs so that nothing blocks (:class:`~chopin_pg._nonblocking.TlsChannel`).

Not in this shell (yet): several hosts in one URL, COPY, LISTEN/notifications,
cancel requests, ``connect_timeout`` and ``io_timeout`` (the wait protocol has
no timers: the worker's per-request deadline cancels a caller instead).
"""

from __future__ import annotations

import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import protocol as p
from ._bind import execute as execute_batch
from ._inflight import ParseTable, copy_error, query_request
from ._nonblocking import (
    ERR,
    HUP,
    IN,
    OUT,
    RECV_SIZE,
    Channel,
    FdWait,
    NextTurn,
    PlainChannel,
    Signal,
    TlsChannel,
    drive,
    finish_connect,
    open_socket,
    read_byte,
)
from ._pipeline import PipelineBatch, run_batch
from ._result import Gen, Result
from ._session import Session
from ._session_view import SessionView
from ._statements import is_stale_plan
from .async_transaction import AsyncTransaction
from .config import PgConfig
from .connection import ssl_context
from .errors import ConnectionLost, InterfaceError, NoRows, PgError, TooManyRows
from .row import Row
from .types import DEFAULT_TYPES

__all__ = ["AsyncConnection", "resolve_config"]


class _Reply:
    """One request's place in the FIFO: its reader, its outcome, and who to wake when it is known."""

    __slots__ = ("done", "error", "gen", "result", "waiter")

    def __init__(self, gen: Gen) -> None:
        self.gen = gen
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.waiter: Signal | None = None

    def finish(self, result: Any, error: BaseException | None) -> None:
        self.done = True
        self.result = result
        self.error = error
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set_result()


class AsyncConnection(SessionView):
    """One PostgreSQL session on a non-blocking socket, shared by the coroutines that use it.

    Open it with ``await AsyncConnection.connect(...)``.  The query methods are
    the blocking :class:`~chopin_pg.Connection`'s, awaited, with the same
    results and the same errors.  Any number of coroutines may call them at
    once: their queries are pipelined (see the module docstring).  It belongs to
    one loop (one thread), like the worker-local pool that holds it.

    Attributes:
        config: The settings it was opened with.
        types: This connection's type registry (a copy of the default).
        savepoint_depth: How many savepoints :meth:`transaction` has open.
        transaction_depth: How many :class:`AsyncTransaction` blocks are open (savepoints included).
    """

    def __init__(self, config: PgConfig, channel: Channel, session: Session) -> None:
        self.config = config
        self.types = session.types
        self._sock = channel.sock
        self._fd = channel.sock.fileno()
        self._send = channel.send
        self._recv = channel.recv
        self._tls = channel if isinstance(channel, TlsChannel) else None
        self._session = session
        self._cache = session.cache
        self._parsing: ParseTable = {}
        self._replies: deque[_Reply] = deque()
        self._out = bytearray()
        # The caller whose request started the batch of this loop turn (see _submit), or None.
        self._cork: _Reply | None = None
        self._reading = False  # a caller is the reader (waiting on the fd, or processing what it read)
        self._closed = False
        self._sock_open = True
        self.savepoint_depth = 0
        self.transaction_depth = 0

    # -- lifecycle ----------------------------------------------------------------

    @classmethod
    async def connect(cls, config: PgConfig | str | None = None, **kwargs: Any) -> AsyncConnection:
        """Open a connection without blocking (the socket connect and the startup exchange are awaited).

        Args:
            config: A :class:`PgConfig`, a ``postgres://`` URL, or ``None`` for the environment
                (``DATABASE_URL``, then the ``PG*`` variables), as :func:`chopin_pg.connect` takes.
            **kwargs: :class:`PgConfig` fields overriding ``config``.

        Returns:
            The connection, authenticated and ready.

        Raises:
            ConnectionLost: The server cannot be reached or closed the connection.
            ServerError: The server refused the session (authentication, unknown database...).
            AuthenticationFailed: The client could not complete authentication.
            InterfaceError: The URL names several hosts (not supported by this shell yet).
        """
        config = resolve_config(config, kwargs)
        where = config.socket_path if config.is_unix_socket else f"{config.host}:{config.port}"
        sock = open_socket(config)
        try:
            await finish_connect(sock, where)
            channel: Channel = PlainChannel(sock)
            if not config.is_unix_socket and config.sslmode not in ("disable", "allow"):
                channel = await _negotiate_tls(sock, config, where)
            session = Session(config, DEFAULT_TYPES.copy())
            await drive(session.startup(channel.peer_certificate()), channel)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, ssl.SSLError):
                raise ConnectionLost(f"TLS with {where}: {exc}") from exc
            raise
        return cls(config, channel, session)

    def close(self) -> None:
        """Send Terminate (without waiting) and close the socket; safe to call twice.

        Replies still pending fail with :class:`InterfaceError`.
        """
        if self._closed:
            return
        if not self._out:
            try:
                self._send(p.terminate())
            except OSError:
                pass
        self._fail_all(lambda: InterfaceError("the connection was closed while this query was pending"))

    def close_inherited(self) -> None:
        """Drop a connection inherited across fork: close this process's descriptor only, send nothing.

        The parent process still owns the session (no Terminate, no shutdown); pending replies are dropped.
        """
        self._closed = True
        self._replies.clear()
        self._out.clear()
        if self._sock_open:
            self._sock_open = False
            self._sock.close()

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A connection dropped without close() must not leak its socket.
        if getattr(self, "_sock_open", False):
            self._sock_open = False
            self._sock.close()

    @property
    def pending(self) -> int:
        """How many requests are written (or buffered) and not answered yet."""
        return len(self._replies)

    @property
    def ssl_in_use(self) -> bool:
        """Whether the connection runs over TLS (libpq's ``PQsslInUse``): the client's own view."""
        return self._tls is not None

    @property
    def statement_cache_size(self) -> int:
        """How many prepared statements are cached."""
        return len(self._cache.statements)

    def fileno(self) -> int:
        """The socket's file descriptor."""
        return self._fd

    def check_idle(self) -> bool:
        """Read, without waiting, what the server sent while nobody was reading; return whether the connection lives.

        A pool calls it before choosing a connection: a session the server ended
        while it was idle (a restart, ``pg_terminate_backend``) is found here, by
        one non-blocking ``recv``, instead of failing the next query.
        """
        if self._closed:
            return False
        if not self._reading:
            if self._out and self._cork is None:
                self._flush()  # what a cancelled reader left unwritten (the socket was full)
            self._read_available()
        return not self._closed

    # -- the shared socket ------------------------------------------------------------

    def _submit(self, gen: Gen) -> _Reply:
        """Start ``gen`` (it yields its request), queue its reply, and buffer the request.

        Requests are corked for one loop turn: the first caller of a turn yields to the
        loop once before it writes (see :meth:`_wait`), so the requests other callers
        submit in the same turn (the other handlers woken by the same epoll wake-up,
        the queries of a ``gather``) leave in the same write: one syscall instead of N.
        """
        if self._closed:
            gen.close()
            raise InterfaceError("connection is closed")
        request = next(gen)  # runs the operation's set-up: may raise before anything is queued
        assert request is not None, "an operation on a shared connection starts with its request"
        reply = _Reply(gen)
        self._replies.append(reply)
        self._out += request
        if self._cork is None:
            self._cork = reply
        return reply

    def _uncork(self) -> None:
        """Write the turn's batch now."""
        self._cork = None
        if self._out and not self._closed:
            self._flush()

    def _write(self, data: bytes) -> None:
        """Write ``data`` after what is buffered; what the socket does not take now waits in the buffer."""
        out = self._out
        if out:
            out += data
            return
        try:
            sent = self._send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lost(f"socket error while writing: {exc}")
            return
        if sent < len(data):
            out += memoryview(data)[sent:]

    def _flush(self) -> None:
        out = self._out
        try:
            while out:
                try:
                    sent = self._send(out)
                except BlockingIOError:
                    return
                del out[:sent]
            if self._tls is not None:
                self._tls.flush()
        except OSError as exc:
            self._lost(f"socket error while writing: {exc}")

    def _output_pending(self) -> bool:
        """Whether bytes wait to be written (ours, or TLS records the socket did not take)."""
        return bool(self._out) or (self._tls is not None and bool(self._tls.raw_out))

    async def _wait(self, reply: _Reply) -> Any:
        """Wait for ``reply``, as the reader or woken by it; return its result or raise its error."""
        try:
            if self._cork is reply:
                try:
                    await NextTurn()  # back in line once: the other callers of this turn add their requests
                finally:
                    self._uncork()
            while not reply.done:
                if self._reading or self._cork is not None:
                    # Someone reads; or this turn's first caller will write the batch, then read.
                    signal = Signal()
                    reply.waiter = signal
                    await signal
                    continue
                self._reading = True
                try:
                    fd = self._fd
                    while not reply.done:
                        mask = await FdWait(fd, IN | OUT if self._output_pending() else IN)
                        if mask & OUT:
                            self._flush()
                        if mask & (IN | ERR | HUP):
                            self._read_available()
                finally:
                    self._reading = False
                    if self._closed:
                        self._close_socket()
                    else:
                        self._wake_next_reader()
        except BaseException:
            # Cancelled (or thrown into) while waiting: the reply is read and dropped in its
            # turn; a reader role handed to us is passed on.
            reply.waiter = None
            if not self._reading and not self._closed:
                self._wake_next_reader()
            raise
        if reply.error is not None:
            raise reply.error
        return reply.result

    def _wake_next_reader(self) -> None:
        for reply in self._replies:
            if reply.waiter is not None:
                waiter = reply.waiter
                reply.waiter = None
                waiter.set_result()
                return

    def _read_available(self) -> None:
        """Read what the socket holds and complete the replies it answers."""
        recv = self._recv
        feed = self._session.parser.feed
        plain = self._tls is None
        while True:
            try:
                data = recv(RECV_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:
                self._lost(f"socket error while reading: {exc}")
                return
            if not data:
                self._lost("server closed the connection")
                return
            try:
                feed(data)
            except ConnectionLost as exc:
                self._lost(str(exc))
                return
            self._pump()
            if self._session.fatal is not None:  # FATAL: the server closes the session next
                self._lost("the server ended the session")
            # A short read emptied the socket; TLS reads one record at a time, so it reads on to EAGAIN.
            if (plain and len(data) < RECV_SIZE) or self._closed:
                return

    def _pump(self) -> None:
        """Run the head reply's reader on what the parser holds; on to the next one as each completes."""
        replies = self._replies
        while replies:
            reply = replies[0]
            gen = reply.gen
            try:
                out = gen.send(None)
                while out is not None:  # an operation that answers the server (COPY refused by execute())
                    self._write(out)
                    if self._closed:
                        return
                    out = gen.send(None)
                return
            except StopIteration as stop:
                replies.popleft()
                reply.finish(stop.value, None)
            except ConnectionLost as exc:  # a protocol violation: the stream is out of step
                self._lost(str(exc))
                return
            except Exception as exc:  # the query's own error, raised after its ReadyForQuery
                replies.popleft()
                reply.finish(None, exc)
        # Nobody waits for anything: messages the server sent unprompted (a notice, a FATAL before EOF).
        parser = self._session.parser
        try:
            while (raw := parser.next_raw()) is not None:
                self._session.handle_async(*raw)
        except ConnectionLost as exc:
            self._lost(str(exc))

    def _lost(self, what: str) -> None:
        """The connection is gone: fail every pending reply (with the server's FATAL error if it sent one)."""
        fatal = self._session.fatal
        config = self.config
        where = config.socket_path if config.is_unix_socket else f"{config.host}:{config.port}"

        def error() -> PgError:
            if fatal is not None:
                return copy_error(fatal)
            return ConnectionLost(f"connection to {where} lost: {what}")

        self._fail_all(error)

    def _fail_all(self, error: Callable[[], PgError]) -> None:
        self._closed = True
        replies = list(self._replies)
        self._replies.clear()
        self._out.clear()
        self._parsing.clear()
        for reply in replies:
            reply.gen.close()
            reply.finish(None, error())
        self._close_socket()

    def _close_socket(self) -> None:
        if not self._sock_open:
            return
        if self._reading:
            # A reader may be waiting on the fd: closing it would leave that wait unanswered.
            # Shut it down instead (the reader wakes with EOF) and let the reader close it.
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._sock_open = False
        self._sock.close()

    async def _run(self, gen: Gen) -> Any:
        return await self._wait(self._submit(gen))

    def execute_nowait(self, sql: str) -> None:
        """Send SQL text (simple protocol) without waiting for its answer, which is read and dropped in turn.

        For clean-up where awaiting is impossible (a transaction block left by a
        cancelled caller is rolled back with it): the requests written after it
        run after it.

        Raises:
            InterfaceError: The connection is closed.
        """
        reply = self._submit(self._session.simple_query(sql))
        if self._cork is reply:
            self._uncork()  # nobody waits for it: written now

    # -- queries ------------------------------------------------------------------

    async def _result(self, sql: str, params: Sequence[Any]) -> Result:
        session = self._session
        try:
            return await self._run(query_request(session, self._parsing, sql, params))  # type: ignore[no-any-return]
        except PgError as exc:
            if not is_stale_plan(exc):
                raise
            self._cache.evict(sql)
            if session.status != "I" or self._closed:
                raise  # inside a transaction the block is aborted: the caller must roll back
        # Outside a transaction: prepare against the new table shape and retry once.
        return await self._run(query_request(session, self._parsing, sql, params))  # type: ignore[no-any-return]

    async def query(self, sql: str, params: Sequence[Any] | None = ()) -> list[Row]:
        """Run a statement with parameters sent out of band (see :meth:`chopin_pg.Connection.query`).

        Args:
            sql: One statement with ``$1..$n`` placeholders.
            params: The values (``None`` for NULL); ``params=None`` itself means no parameters.

        Returns:
            The rows.
        """
        return (await self._result(sql, () if params is None else params)).rows

    async def query_one(self, sql: str, params: Sequence[Any] | None = ()) -> Row:
        """Return the only row.

        Raises:
            NoRows: There is no row.
            TooManyRows: There is more than one row.
        """
        rows = await self.query(sql, params)
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise NoRows(f"query_one: expected one row, got none: {sql[:200]!r}")
        raise TooManyRows(f"query_one: expected one row, got {len(rows)}: {sql[:200]!r}")

    async def query_opt(self, sql: str, params: Sequence[Any] | None = ()) -> Row | None:
        """Return the only row, or ``None`` if there is none.

        Raises:
            TooManyRows: There is more than one row.
        """
        rows = await self.query(sql, params)
        if len(rows) > 1:
            raise TooManyRows(f"query_opt: expected at most one row, got {len(rows)}: {sql[:200]!r}")
        return rows[0] if rows else None

    async def query_scalar(self, sql: str, params: Sequence[Any] | None = ()) -> Any:
        """Return the first column of the only row (see :meth:`query_one`)."""
        return (await self.query_one(sql, params))[0]

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run a statement and return the number of rows it affected (-1 when the command reports none).

        Without ``params`` the simple protocol is used, so ``sql`` may hold several
        statements (the count is the last one's).  With ``params`` (even empty), the
        extended protocol and the statement cache are used.
        """
        if params is None:
            results: list[Result] = await self._run(self._session.simple_query(sql))
            return results[-1].rowcount if results else -1
        return (await self._result(sql, params)).rowcount

    async def executemany(self, sql: str, param_sets: Iterable[Sequence[Any] | None] | None) -> int:
        """Run a statement once per parameter set, in one request ending in one Sync (one implicit transaction).

        Returns:
            The total number of affected rows.
        """
        if param_sets is None:
            return 0
        sets: list[Sequence[Any]] = [() if params is None else params for params in param_sets]
        if not sets:
            return 0
        session = self._session
        stmt = self._cache.lookup(sql)
        if stmt is None:
            # Parse + Describe travel with the Binds (text format), as in a pipeline batch.
            batch = PipelineBatch(session)
            for params in sets:
                batch.add(sql, params)
            first: BaseException | None = await self._run(run_batch(session, batch))
            if first is not None:
                raise first
            return sum(max(op.result.rowcount, 0) for op in batch.ops if op.result is not None)
        try:
            results = await self._run(execute_batch(session, stmt, sets))
        except PgError as exc:
            if not is_stale_plan(exc):
                raise
            self._cache.evict(sql)
            if session.status != "I" or self._closed:
                raise
            return await self.executemany(sql, sets)
        return sum(max(r.rowcount, 0) for r in results)

    async def query_many(self, sql: str, param_sets: Iterable[Sequence[Any] | None]) -> list[list[Row]]:
        """Run one statement once per parameter set, every request written at once; each set's rows, in order.

        Unlike :meth:`executemany` (one request, one implicit transaction, a row count),
        each set is its own query with its own Sync, as if :meth:`query` were called
        for each in the same loop turn: they leave in one write and are answered in
        one round trip, and an error in one set does not stop the others.

        Args:
            sql: One statement with ``$1..$n`` placeholders.
            param_sets: One sequence of values per query (``None``: no parameters).

        Returns:
            One list of rows per parameter set.

        Raises:
            PgError: The first failing set's error, raised once every answer is read.
        """
        sets: list[Sequence[Any]] = [() if params is None else params for params in param_sets]
        session = self._session
        replies: list[_Reply] = []
        try:
            for params in sets:
                replies.append(self._submit(query_request(session, self._parsing, sql, params)))
        except BaseException:
            # A set refused before it was queued (DataError): the ones queued still go out, read and
            # dropped in their turn; if this call holds the turn's cork nobody else would write them.
            if self._cork is not None and any(self._cork is reply for reply in replies):
                self._uncork()
            raise
        out: list[list[Row]] = []
        first: BaseException | None = None
        evicted = False
        for params, reply in zip(sets, replies, strict=True):
            try:
                result: Result = await self._wait(reply)
            except PgError as exc:
                if is_stale_plan(exc) and session.status == "I" and not self._closed:
                    if not evicted:  # the later sets bound the same stale plan: the first retry re-prepared it
                        self._cache.evict(sql)
                        evicted = True
                    try:
                        result = await self._result(sql, params)  # prepared afresh, as query() does
                    except PgError as again:
                        first = first or again
                        out.append([])
                        continue
                else:
                    first = first or exc
                    out.append([])
                    continue
            out.append(result.rows)
        if first is not None:
            raise first
        return out

    # -- transactions -------------------------------------------------------------

    def transaction(self, isolation: str | None = None) -> AsyncTransaction:
        """Return ``async with conn.transaction():``: ``BEGIN`` ... ``COMMIT`` (``ROLLBACK`` on error).

        Inside a transaction it nests as a savepoint.  On a connection shared by
        several coroutines a transaction covers every query sent on it while it is
        open: use :meth:`chopin_pg.AsyncPool.transaction`, which pins a connection.

        Args:
            isolation: ``SERIALIZABLE``, ``REPEATABLE READ``, ``READ COMMITTED`` or
                ``READ UNCOMMITTED``, for an outermost transaction.
        """
        return AsyncTransaction(self, isolation)


async def _negotiate_tls(sock: socket.socket, config: PgConfig, where: str) -> Channel:
    """Send SSLRequest and run the TLS handshake if the server agrees (§55.2.10), as the blocking shell does."""
    if sock.send(p.ssl_request()) != 8:  # 8 bytes on a fresh socket: the buffer takes them
        raise ConnectionLost(f"SSLRequest to {where}: short write")
    answer = await read_byte(sock)
    if answer == b"S":
        channel = TlsChannel(sock, ssl_context(config), config.host)
        await channel.handshake()
        return channel
    if answer == b"N":
        if config.sslmode == "prefer":
            return PlainChannel(sock)
        raise ConnectionLost(f"sslmode={config.sslmode}: server at {where} does not support TLS")
    raise ConnectionLost(f"SSLRequest: expected 'S' or 'N', got {answer!r}")


def resolve_config(config: PgConfig | str | None, kwargs: dict[str, Any]) -> PgConfig:
    """The settings :func:`chopin_pg.connect` would use for the same arguments (one host only).

    Raises:
        InterfaceError: The URL names several hosts (or ``target_session_attrs``): not supported here yet.
        ConfigError: The URL is malformed.
    """
    if config is None:
        return PgConfig.from_env(**kwargs)
    if isinstance(config, str):
        from ._multihost import split_hosts

        if split_hosts(config) is not None:
            raise InterfaceError("AsyncConnection: several hosts or target_session_attrs are not supported yet")
        config = PgConfig.from_url(config)
    return config.replace(**kwargs) if kwargs else config
