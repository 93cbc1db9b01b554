"""``PgRevocations``: a revocation backend every worker of a multi-process server sees.

How it works.  Revoked ids live in a PostgreSQL table; each worker process keeps
them in a dict of its own and one chopin-pg connection that ``LISTEN``s on a
channel.  ``add`` inserts the row and sends ``pg_notify`` in the same statement
(one round trip, one transaction), so the notification goes out when the row is
committed.  Every check first drains what is waiting on the listener socket
without blocking (one ``select`` with a zero timeout when nothing is there), then
looks in the dict.

The bound: a revocation committed by one worker is refused by another worker on
that worker's first check after PostgreSQL has written the notification to its
socket.  PostgreSQL signals listening backends at commit and an idle backend
sends at once, so on one host this is well under a millisecond; nothing waits on
the worker's own loop (an idle worker catches up on its next check).  With
``poll_interval > 0`` the socket is read at most that often, and the bound grows
by ``poll_interval``.  A new connection (at start, after a fork, after a lost
connection) ``LISTEN``s first and then loads the table, so nothing committed in
between is missed.  When the database cannot be reached, checks raise
:class:`~chopin_auth.RevocationUnavailable`: requests fail closed (503), never open.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Final

from chopin_pg import Connection, ConnectionLost, PgConfig, PgError, connect
from chopin_pg.connection import quote_identifier

from .errors import BlacklistFull, RevocationUnavailable

__all__ = ["DEFAULT_TABLE", "PgRevocations"]

DEFAULT_TABLE: Final = "chopin_revoked_tokens"

# SQLSTATEs of losing a CREATE TABLE IF NOT EXISTS race against another worker.
_CREATE_RACE: Final = frozenset({"23505", "42P07"})


class PgRevocations:
    """Revoked token ids in PostgreSQL, cached per worker process, kept in step by LISTEN/NOTIFY.

    Safe to create before the server forks: connections are opened lazily in each
    process, and a connection inherited across ``fork`` is dropped (without sending
    anything on it) and replaced.

    Args:
        connect: a ``postgres://`` URL, a chopin-pg ``PgConfig``, a function returning
            a new ``Connection``, or ``None`` for the libpq ``PG*`` environment variables.
        table: the table holding revoked ids (created if missing when ``create_table``).
        channel: the notification channel (default: the table name).
        create_table: run ``CREATE TABLE IF NOT EXISTS`` on connecting.
        max_entries: unexpired ids one worker caches at most; ``add`` past it raises
            :class:`BlacklistFull` (1 000 000).
        poll_interval: seconds between reads of the listener socket (0: every check).
    """

    def __init__(
        self,
        connect: str | PgConfig | Callable[[], Connection] | None = None,
        *,
        table: str = DEFAULT_TABLE,
        channel: str | None = None,
        create_table: bool = True,
        max_entries: int = 1_000_000,
        poll_interval: float = 0.0,
    ) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries: expected > 0, got {max_entries}")
        if poll_interval < 0:
            raise ValueError(f"poll_interval: expected >= 0 seconds, got {poll_interval}")
        for what, name in (("table", table), ("channel", channel or table)):
            if not name or len(name) > 63 or "\x00" in name:
                raise ValueError(f"{what}: expected a PostgreSQL identifier of 1..63 characters, got {name!r}")
        self._connect = connect
        self.table = table
        self.channel = channel or table
        self.create_table = create_table
        self.max_entries = max_entries
        self.poll_interval = poll_interval
        self._qtable = quote_identifier(table)
        self._pid = -1
        self._conn: Connection | None = None
        self._cache: dict[str, float | None] = {}
        self._next_poll = 0.0

    # -- connection ----------------------------------------------------------------

    def _new_connection(self) -> Connection:
        target = self._connect
        if callable(target):
            return target()
        return connect(target)

    def _connection(self) -> Connection:
        if self._pid != os.getpid():
            # Inherited across fork: the session belongs to the parent.  Dropping the
            # object closes only this process's descriptor (chopin-pg sends nothing).
            self._conn = None
            self._cache = {}
            self._pid = os.getpid()
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._open()
        return conn

    def _open(self) -> Connection:
        self._conn = None
        try:
            conn = self._new_connection()
        except PgError as exc:
            raise RevocationUnavailable(f"revocation database: cannot connect: {exc}") from exc
        try:
            if self.create_table:
                self._create_table(conn)
            conn.listen(self.channel)  # LISTEN before loading: nothing committed in between is missed
            rows = conn.query(
                f"SELECT jti, extract(epoch FROM expires_at)::float8 FROM {self._qtable} "
                "WHERE expires_at IS NULL OR expires_at > now()"
            )
        except PgError as exc:
            conn.close()
            raise RevocationUnavailable(f"revocation database: {exc}") from exc
        self._cache = {row[0]: row[1] for row in rows}
        self._conn = conn
        self._next_poll = 0.0
        return conn

    def _create_table(self, conn: Connection) -> None:
        try:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self._qtable} (jti text PRIMARY KEY, expires_at timestamptz)")
        except PgError as exc:
            if getattr(exc, "sqlstate", None) not in _CREATE_RACE:
                raise

    def _drain(self, conn: Connection) -> Connection:
        """Apply the notifications waiting on the listener socket; reconnect if it was lost."""
        if self.poll_interval:
            now = time.monotonic()
            if now < self._next_poll:
                return conn
            self._next_poll = now + self.poll_interval
        try:
            notes = conn.drain_notifications()
        except PgError:
            # Lost: a fresh connection reloads the table, which covers what was missed.
            return self._open()
        cache = self._cache
        channel = self.channel
        for note in notes:
            if note.channel != channel:
                continue
            stamp, _, jti = note.payload.partition(" ")
            if not jti:
                continue
            try:
                expires_at = float(stamp) if stamp else None
            except ValueError:
                continue
            _keep_later(cache, jti, expires_at)
        return conn

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Run a statement, once more on a fresh connection if the first one was lost."""
        conn = self._connection()
        try:
            return conn.query(sql, params)
        except ConnectionLost:
            conn = self._open()
        except PgError as exc:
            raise RevocationUnavailable(f"revocation database: {exc}") from exc
        try:
            return conn.query(sql, params)
        except PgError as exc:
            raise RevocationUnavailable(f"revocation database: {exc}") from exc

    # -- RevocationBackend -----------------------------------------------------------

    def add(self, jti: str, expires_at: float | None) -> None:
        """Insert ``jti`` (committed and announced to every listener in one statement)."""
        self._drain(self._connection())
        if jti not in self._cache and len(self._cache) >= self.max_entries:
            self.purge(time.time())
            if len(self._cache) >= self.max_entries:
                raise BlacklistFull(f"revocation list holds max_entries ({self.max_entries}) unexpired ids")
        t = self._qtable
        self._run(
            f"WITH saved AS (INSERT INTO {t} AS t (jti, expires_at) VALUES ($1, to_timestamp($2::float8)) "
            "ON CONFLICT (jti) DO UPDATE SET expires_at = CASE "
            "WHEN t.expires_at IS NULL OR EXCLUDED.expires_at IS NULL THEN NULL "
            "ELSE greatest(t.expires_at, EXCLUDED.expires_at) END RETURNING 1) "
            "SELECT pg_notify($3, $4) FROM saved",
            (jti, expires_at, self.channel, f"{'' if expires_at is None else repr(expires_at)} {jti}"),
        )
        _keep_later(self._cache, jti, expires_at)

    def contains(self, jti: str, now: float) -> bool:
        """Whether ``jti`` is revoked, after applying the notifications that have arrived."""
        self._drain(self._connection())
        cache = self._cache
        if jti not in cache:
            return False
        expires_at = cache[jti]
        return expires_at is None or expires_at > now

    def purge(self, now: float) -> int:
        """Drop expired ids from this worker's cache and from the table."""
        cache = self._cache
        gone = [jti for jti, expires_at in cache.items() if expires_at is not None and expires_at <= now]
        for jti in gone:
            del cache[jti]
        self._run(f"DELETE FROM {self._qtable} WHERE expires_at <= to_timestamp($1::float8)", (now,))
        return len(gone)

    def count(self) -> int:
        """How many unexpired-or-not-yet-purged ids this worker holds (after draining notifications)."""
        self._drain(self._connection())
        return len(self._cache)

    def close(self) -> None:
        """Close this process's connection (a later use opens a new one)."""
        conn = self._conn
        self._conn = None
        if conn is not None and self._pid == os.getpid():
            conn.close()

    def __repr__(self) -> str:
        return f"<PgRevocations table={self.table!r} channel={self.channel!r} cached={len(self._cache)}>"


def _keep_later(cache: dict[str, float | None], jti: str, expires_at: float | None) -> None:
    """Record ``jti`` in ``cache``, keeping the later of two expiries (``None`` is forever)."""
    if jti in cache:
        old = cache[jti]
        if old is None or (expires_at is not None and expires_at <= old):
            return
    cache[jti] = expires_at
