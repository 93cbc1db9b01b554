"""A connection pool for one worker: :class:`PgPool`, :class:`PgPoolConfig`, :class:`PooledConnection`.

::

    pool = PgPool.connect_with_config(config, PgPoolConfig().max_size(8).checkout_timeout(2.0))
    with pool.get() as conn:
        conn.query("SELECT 1")

Worker-local by design: create one pool per worker process.  It is also safe
to create before ``fork``: the pool remembers the pid that created it, and the
first use in another process forgets the inherited connections (without
sending Terminate: the parent still owns those sessions; only the child's copy
of each file descriptor is closed) and starts afresh.

Waiting: :meth:`PgPool.get` blocks up to ``checkout_timeout`` for a connection
to be returned.  In a single-threaded worker nobody can return one while it
waits, so an exhausted pool raises :class:`~chopin_pg.errors.PoolTimeout` after
the timeout; applications that use threads share the pool safely (a
``threading.Condition`` guards it) and waiting threads are woken by returns.

No background thread: expiry (``idle_timeout``, ``max_lifetime``) is applied on
every checkout and return.  Broken connections (a server restart, an idle
session terminated by the server) are found cheaply at checkout (the idle socket
is readable: EOF or a FATAL message) or with a round trip when
``test_on_checkout`` is set, and a connection that failed while checked out is
discarded on return; either way a new one replaces it.

Session reset: one user's session state (``SET search_path``, temporary
tables, ``LISTEN``, prepared statements...) must not reach the next user, so a
returned connection that was used gets ``DISCARD ALL`` by default
(:meth:`PgPoolConfig.reset` says what it costs and how to opt out); a
connection whose reset fails is closed instead of returned.

Failover: given a URL naming several hosts with ``target_session_attrs`` (or a
``connection_info`` source returning one), each new connection goes to the first host
that fits, and each checkout re-checks that the session still fits: one round trip
brings the server's latest ``in_hot_standby`` and ``default_transaction_read_only``,
so a pool of ``read-write`` sessions drops those on a primary that was fenced
read-only and a pool of ``standby`` sessions drops those on a promoted standby, and
reconnects to the host that fits now (``any`` and ``prefer-standby`` are not re-checked).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, get_args

from ._multihost import split_hosts, still_fits
from .config import PgConfig
from .connection import Connection
from .errors import ConfigError, InterfaceError, PoolTimeout

__all__ = ["ConnectionHook", "PgPool", "PgPoolConfig", "PoolStats", "PooledConnection", "ResetMode"]

ResetMode = Literal["discard", "keep_statements", "none"]
"""How a returned connection's session is cleaned: see :meth:`PgPoolConfig.reset`."""
RESET_MODES: tuple[str, ...] = get_args(ResetMode)

ConnectionHook = Callable[[Connection], object]
"""A pool hook (``configure``, ``check``, ``on_reset``): called with the connection; raising rejects it."""


@dataclasses.dataclass(frozen=True, slots=True)
class _PoolSettings:
    max_size: int = 10
    min_size: int = 1
    checkout_timeout: float = 30.0
    connection_timeout: float | None = 10.0
    idle_timeout: float | None = 600.0
    max_lifetime: float | None = 1800.0
    test_on_checkout: bool = False
    reset: ResetMode = "discard"
    configure: ConnectionHook | None = None
    check: ConnectionHook | None = None
    on_reset: ConnectionHook | None = None
    connection_info: Callable[[], PgConfig | str] | None = None


class PgPoolConfig:
    """Pool settings, built fluently: ``PgPoolConfig().max_size(8).min_size(1).checkout_timeout(2.0)``.

    Each setter returns a new config.  Defaults: ``max_size`` 10, ``min_size`` 1
    (opened by ``connect``), ``checkout_timeout`` 30 s, ``connection_timeout`` 10 s
    (connect + authenticate), ``idle_timeout`` 600 s, ``max_lifetime`` 1800 s,
    ``test_on_checkout`` off, ``reset`` ``"discard"``, no ``configure``/``check``/``on_reset``
    hooks and no ``connection_info`` source.  ``None`` disables a timeout.
    """

    __slots__ = ("_settings",)

    def __init__(self, settings: _PoolSettings | None = None) -> None:
        self._settings = settings or _PoolSettings()

    def _with(self, **changes: Any) -> PgPoolConfig:
        return PgPoolConfig(dataclasses.replace(self._settings, **changes))

    def max_size(self, n: int) -> PgPoolConfig:
        """At most ``n`` connections, idle and checked out together (``n`` >= 1)."""
        return self._with(max_size=n)

    def min_size(self, n: int) -> PgPoolConfig:
        """Open ``n`` connections up front and keep at least ``n`` through idle expiry."""
        return self._with(min_size=n)

    def checkout_timeout(self, seconds: float) -> PgPoolConfig:
        """How long :meth:`PgPool.get` waits for a free connection before :class:`PoolTimeout`."""
        return self._with(checkout_timeout=seconds)

    def connection_timeout(self, seconds: float | None) -> PgPoolConfig:
        """Time allowed to open (connect and authenticate) one connection."""
        return self._with(connection_timeout=seconds)

    def idle_timeout(self, seconds: float | None) -> PgPoolConfig:
        """Close connections idle for longer than this (down to ``min_size``)."""
        return self._with(idle_timeout=seconds)

    def max_lifetime(self, seconds: float | None) -> PgPoolConfig:
        """Close connections older than this when they are next idle."""
        return self._with(max_lifetime=seconds)

    def test_on_checkout(self, enabled: bool = True) -> PgPoolConfig:
        """Run an empty query on each checkout and replace the connection if it fails."""
        return self._with(test_on_checkout=enabled)

    def reset(self, mode: ResetMode) -> PgPoolConfig:
        """How a returned connection's session is cleaned before the next checkout.

        ``"discard"`` (the default): a connection that ran anything while checked
        out gets ``DISCARD ALL`` (:meth:`Connection.reset_session`): settings,
        temporary tables, ``LISTEN``s, advisory locks, cursors and prepared
        statements of one user never reach the next.  It costs one round trip per
        used checkout, and the driver's statement cache starts empty again, so each
        statement is prepared again once per checkout (one more round trip each).
        A checkout that ran nothing is returned without a reset.

        ``"keep_statements"``: the same reset in one round trip (two when SQL
        ``PREPARE`` statements are to be deallocated), but the driver's prepared
        statements survive it (``Connection.reset_session(keep_statements=True)``):
        worth it when a request runs several statements, or the server is far away,
        since each is otherwise prepared again per checkout.  The price: a
        statement first prepared by a user with another ``search_path``, whose
        result columns differ under the clean session, fails once with "cached plan
        must not change result type" inside a transaction (outside one the driver
        prepares it again by itself).

        ``"none"``: only an open transaction is rolled back, and the statement
        cache survives.  For applications that never change session state
        (no ``SET``, ``set_config``, temporary tables, ``LISTEN``, advisory locks,
        SQL ``PREPARE``): whatever one user leaves is seen by the next.

        Raises:
            ConfigError: ``mode`` is not one of the above.
        """
        if mode not in RESET_MODES:
            raise ConfigError(f"reset: expected one of {RESET_MODES}, got {mode!r}")
        return self._with(reset=mode)

    def configure(self, hook: ConnectionHook | None) -> PgPoolConfig:
        """Call ``hook(conn)`` on each new connection, and again after each session reset, before use.

        As psycopg_pool's ``configure``: set session state there (``SET``, ``register_type``...).
        A reset mode other than ``"none"`` wipes session state on return, so the hook runs again
        then (its round trips are paid per used checkout: keep it cheap, or use ``reset("none")``).
        If it raises, or leaves a transaction open, the connection is closed and the error raised.
        """
        return self._with(configure=hook)

    def check(self, hook: ConnectionHook | None) -> PgPoolConfig:
        """Call ``hook(conn)`` at each checkout of an idle connection; if it raises, the connection is replaced.

        As psycopg_pool's ``check`` (``lambda conn: conn.execute("")`` is ``test_on_checkout``).
        """
        return self._with(check=hook)

    def on_reset(self, hook: ConnectionHook | None) -> PgPoolConfig:
        """Call ``hook(conn)`` when a connection comes back, after the :meth:`reset` mode ran.

        psycopg_pool calls this hook ``reset`` (here :meth:`reset` picks the mode).  The
        connection is idle (no transaction) when called.  If the hook raises, or leaves a
        transaction open, the connection is closed instead of returned.
        """
        return self._with(on_reset=hook)

    def connection_info(self, source: Callable[[], PgConfig | str] | None) -> PgPoolConfig:
        """Ask ``source()`` for the settings (a :class:`PgConfig` or URL) at each connection the pool opens.

        For credentials that change (rotated passwords, short-lived tokens): with
        :meth:`PgPool.drain` every connection moves to the new ones.  The pool's
        ``connection_timeout`` still applies.
        """
        return self._with(connection_info=source)

    @property
    def settings(self) -> _PoolSettings:
        """The settings as a frozen record."""
        return self._settings

    def __repr__(self) -> str:
        return f"PgPoolConfig({', '.join(f'{k}={v!r}' for k, v in dataclasses.asdict(self._settings).items())})"


@dataclasses.dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of a pool's counters.

    Attributes:
        idle: Connections waiting in the pool.
        active: Connections checked out (or being opened).
        total: ``idle + active``.
        max_size: The configured maximum.
        opened: Connections opened since the pool was created (or since fork).
        closed: Connections closed or discarded by the pool.
        checkouts: Successful checkouts.
        timeouts: Checkouts that gave up (:class:`PoolTimeout`).
        broken: Connections found broken (at checkout or on return) and replaced.
    """

    idle: int
    active: int
    total: int
    max_size: int
    opened: int
    closed: int
    checkouts: int
    timeouts: int
    broken: int


class _Entry:
    __slots__ = ("commands", "conn", "created", "generation", "last_used", "pid")

    def __init__(self, conn: Connection, now: float, generation: int) -> None:
        self.conn = conn
        self.generation = generation  # the pool's drain() count when opened: older ones are closed
        self.created = now
        self.last_used = now
        self.pid = os.getpid()  # the process that owns the session
        self.commands = conn.command_count  # at checkout: unchanged on return means the session was not used


class PooledConnection:
    """A checked-out connection: ``with pool.get() as conn:`` returns it to the pool on exit.

    Attributes:
        conn: The connection (also what ``__enter__`` returns).
    """

    __slots__ = ("_entry", "_pool", "conn")

    def __init__(self, pool: PgPool, entry: _Entry) -> None:
        self._pool = pool
        self._entry: _Entry | None = entry
        self.conn = entry.conn

    def release(self) -> None:
        """Return the connection to the pool, its session reset (see :meth:`PgPoolConfig.reset`); safe to call twice.

        A connection whose reset fails is closed, not returned.
        """
        entry = self._entry
        if entry is not None:
            self._entry = None
            self._pool.check_in(entry)

    def __enter__(self) -> Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.release()


class PgPool:
    """Connections to one server, reused across requests of one worker.

    Args:
        config: How to connect: a :class:`PgConfig`, a ``postgres://`` URL or ``key=value``
            string (which may name several hosts and ``target_session_attrs``: see the module
            docstring on failover), or ``None`` for the environment (``DATABASE_URL``, then
            the libpq variables).
        pool_config: Pool settings.
    """

    def __init__(self, config: PgConfig | str | None = None, pool_config: PgPoolConfig | None = None) -> None:
        settings = (pool_config or PgPoolConfig()).settings
        if settings.max_size < 1:
            raise ConfigError(f"max_size: expected >= 1, got {settings.max_size}")
        if not 0 <= settings.min_size <= settings.max_size:
            raise ConfigError(f"min_size: expected 0..{settings.max_size}, got {settings.min_size}")
        if settings.reset not in RESET_MODES:
            raise ConfigError(f"reset: expected one of {RESET_MODES}, got {settings.reset!r}")
        if settings.checkout_timeout < 0:
            raise ConfigError(f"checkout_timeout: expected >= 0, got {settings.checkout_timeout}")
        # A conninfo naming several hosts (or target_session_attrs) is kept as given and
        # resolved at each connect; `config` then describes its first host.
        self._conninfo: str | None = None
        if config is None:
            config = PgConfig.from_env()
        elif isinstance(config, str):
            if (hosts := split_hosts(config)) is not None:
                self._conninfo = config
                config = PgConfig.from_url(hosts[0][0])
            else:
                config = PgConfig.from_url(config)
        self.config = config.replace(connect_timeout=settings.connection_timeout)
        self.settings = settings
        self._closed = False
        self._reset_state()

    def _reset_state(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._idle: list[_Entry] = []  # a stack: the warmest connection is reused first
        self._active = 0  # checked out, or being opened
        self._generation = 0  # bumped by drain(): connections of older generations are not reused
        self._opened = self._closed_count = self._checkouts = self._timeouts = self._broken = 0

    # -- construction ----------------------------------------------------------------

    @classmethod
    def connect(cls, config: PgConfig | str | None, size: int) -> PgPool:
        """Create a pool of up to ``size`` connections and open ``min_size`` (1) of them.

        Raises:
            PgError: The first connection could not be opened.
        """
        return cls.connect_with_config(config, PgPoolConfig().max_size(size).min_size(min(1, size)))

    @classmethod
    def connect_with_config(cls, config: PgConfig | str | None, pool_config: PgPoolConfig) -> PgPool:
        """Create a pool with ``pool_config`` and open its ``min_size`` connections.

        Raises:
            PgError: A connection could not be opened.
        """
        pool = cls(config, pool_config)
        try:
            pool.fill()
        except BaseException:
            pool.close()
            raise
        return pool

    def fill(self) -> None:
        """Open connections until ``min_size`` exist."""
        self._check_fork()
        while True:
            with self._cond:
                if self._closed or len(self._idle) + self._active >= self.settings.min_size:
                    return
                self._active += 1
            entry = self._open()
            with self._cond:
                self._active -= 1
                self._idle.insert(0, entry)
                self._cond.notify()

    # -- fork safety -----------------------------------------------------------------

    def _check_fork(self) -> None:
        if self._pid == os.getpid():
            return
        # A child process: the sessions belong to the parent.  Forget them without
        # Terminate; closing our copy of each descriptor leaves the parent's open.
        for entry in self._idle:
            entry.conn.close_inherited()
        self._reset_state()

    # -- checkout and return -----------------------------------------------------------

    def _open(self) -> _Entry:
        generation = self._generation
        try:
            conn = self._connect()
            try:
                self._configure(conn)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            with self._cond:
                self._active -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._opened += 1
        return _Entry(conn, time.monotonic(), generation)

    def _connect(self) -> Connection:
        source = self.settings.connection_info
        if source is None:
            if self._conninfo is not None:
                return Connection.connect(self._conninfo, connect_timeout=self.settings.connection_timeout)
            return Connection.connect(self.config)
        info = source()  # a str may name several hosts (target_session_attrs): Connection.connect tries them
        timeout = self.settings.connection_timeout
        if isinstance(info, str):
            return Connection.connect(info, connect_timeout=timeout)
        return Connection.connect(info.replace(connect_timeout=timeout))

    def _configure(self, conn: Connection) -> None:
        hook = self.settings.configure
        if hook is not None:
            hook(conn)
            if conn.in_transaction:
                raise InterfaceError("the pool's configure hook left a transaction open: commit or roll back in it")

    def _discard(self, entry: _Entry, broken: bool = False) -> None:
        # Called with the lock held; the entry is in no list any more.
        entry.conn.close()
        self._closed_count += 1
        if broken:
            self._broken += 1

    def _expired(self, entry: _Entry, now: float) -> bool:
        lifetime = self.settings.max_lifetime
        return lifetime is not None and now - entry.created >= lifetime

    def _evict(self, now: float) -> None:
        # Lock held.  Oldest idle entries are at the bottom of the stack.
        settings = self.settings
        keep: list[_Entry] = []
        total = len(self._idle) + self._active
        for entry in self._idle:
            idle_for = now - entry.last_used
            too_idle = settings.idle_timeout is not None and idle_for >= settings.idle_timeout
            if self._expired(entry, now) or (too_idle and total > settings.min_size):
                self._discard(entry)
                total -= 1
            else:
                keep.append(entry)
        self._idle = keep

    def _checkout(self, wait: bool, timeout: float | None) -> PooledConnection | None:
        self._check_fork()
        if timeout is None:
            timeout = self.settings.checkout_timeout
        deadline = time.monotonic() + timeout
        while True:
            entry: _Entry | None = None
            with self._cond:
                while True:
                    if self._closed:
                        raise InterfaceError("pool is closed")
                    now = time.monotonic()
                    self._evict(now)
                    if self._idle:
                        entry = self._idle.pop()
                        self._active += 1
                        break
                    if self._active < self.settings.max_size:
                        self._active += 1  # reserve the slot, open outside the lock
                        break
                    remaining = deadline - now
                    if not wait:
                        return None
                    if remaining <= 0:
                        self._timeouts += 1
                        raise PoolTimeout(
                            f"no connection free within {timeout} s: all {self.settings.max_size} are checked out"
                        )
                    self._cond.wait(remaining)
            if entry is None:
                entry = self._open()
            elif not self._healthy(entry):
                with self._cond:
                    self._active -= 1
                    self._discard(entry, broken=True)
                    self._cond.notify()
                continue
            with self._cond:
                self._checkouts += 1
            entry.commands = entry.conn.command_count
            return PooledConnection(self, entry)

    def _healthy(self, entry: _Entry) -> bool:
        conn = entry.conn
        if conn.closed:
            return False
        try:
            # An idle session has nothing to say: a readable socket means EOF, a FATAL
            # message (server restart, idle_session_timeout) or a stray notification.
            conn.drain_pending()
            recheck = conn.target_session_attrs not in ("any", "prefer-standby")
            if self.settings.test_on_checkout or recheck:
                conn.execute("")  # also brings ParameterStatus changes the server holds back until a reply
            if recheck and not still_fits(conn):
                return False  # a failover moved the role this session was chosen for
            if self.settings.check is not None:
                self.settings.check(conn)
        except Exception:  # a check hook may raise anything: the connection is replaced either way
            return False
        return not conn.closed

    def get(self, timeout: float | None = None) -> PooledConnection:
        """Check out a connection, opening one if below ``max_size``; wait for one otherwise.

        Args:
            timeout: Seconds to wait; ``checkout_timeout`` when ``None``.

        Returns:
            A guard: ``with pool.get() as conn:`` (or call ``release()``).

        Raises:
            PoolTimeout: None became free in time.
            PgError: A new connection could not be opened.
            InterfaceError: The pool is closed.
        """
        result = self._checkout(True, timeout)
        assert result is not None
        return result

    def try_get(self) -> PooledConnection | None:
        """Check out a connection without waiting; ``None`` if all ``max_size`` are checked out.

        Raises:
            PgError: A new connection could not be opened.
        """
        return self._checkout(False, 0.0)

    def check_in(self, entry: _Entry) -> None:
        """Take back a checked-out connection: what :meth:`PooledConnection.release` calls.

        Its session is reset (see :meth:`PgPoolConfig.reset`); a connection that is broken,
        mid-COPY or mid-pipeline, or whose reset fails is closed instead of kept.
        """
        if entry.pid != os.getpid():
            entry.conn.close_inherited()  # checked out before fork: the parent's session
            return
        self._check_fork()
        conn = entry.conn
        broken = conn.closed
        if not broken:
            try:
                if conn.busy is not None:
                    conn.close()  # mid-COPY or mid-pipeline: the protocol position is unknown
                elif self.settings.reset != "none" and conn.command_count != entry.commands:
                    conn.reset_session(keep_statements=self.settings.reset == "keep_statements")
                    self._configure(conn)  # the reset wiped what configure set
                elif conn.in_transaction:
                    conn.rollback()
                if not conn.closed and self.settings.on_reset is not None:
                    self.settings.on_reset(conn)
                    if conn.in_transaction:
                        conn.close()  # the hook left a transaction open: not a clean session
            except Exception:  # PgError, or whatever a hook raised
                conn.close()  # a session that could not be reset must not reach the next user
            broken = conn.closed
        now = time.monotonic()
        with self._cond:
            self._active -= 1
            if broken:
                self._discard(entry, broken=True)
            elif self._closed or self._expired(entry, now) or entry.generation != self._generation:
                self._discard(entry)
            else:
                entry.last_used = now
                self._idle.append(entry)
            self._cond.notify()

    def drain(self) -> None:
        """Replace every connection: idle ones are closed now, checked-out ones when returned.

        As psycopg_pool's ``drain()``: after rotating credentials (see
        :meth:`PgPoolConfig.connection_info`) or a failover, no session opened before
        the call is handed out again.  Then connections are opened up to ``min_size``
        (checked-out ones count until they are returned).

        Raises:
            PgError: A new connection could not be opened (the pool stays usable).
        """
        self._check_fork()
        with self._cond:
            self._generation += 1
            idle, self._idle = self._idle, []
            for entry in idle:
                self._discard(entry)
            self._cond.notify_all()
        self.fill()

    # -- introspection and shutdown ----------------------------------------------------

    @property
    def idle_connections(self) -> int:
        """Connections waiting in the pool."""
        self._check_fork()
        return len(self._idle)

    @property
    def active_connections(self) -> int:
        """Connections checked out (or being opened)."""
        self._check_fork()
        return self._active

    @property
    def total_connections(self) -> int:
        """Idle plus active connections."""
        self._check_fork()
        return len(self._idle) + self._active

    def stats(self) -> PoolStats:
        """Return a snapshot of the pool's counters."""
        self._check_fork()
        with self._cond:
            idle = len(self._idle)
            return PoolStats(
                idle=idle,
                active=self._active,
                total=idle + self._active,
                max_size=self.settings.max_size,
                opened=self._opened,
                closed=self._closed_count,
                checkouts=self._checkouts,
                timeouts=self._timeouts,
                broken=self._broken,
            )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the idle connections; checked-out ones are closed when returned. Safe to call twice."""
        self._check_fork()
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            for entry in idle:
                self._discard(entry)
            self._cond.notify_all()

    def __enter__(self) -> PgPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
