"""SQL migration files and the ``Migrator`` that applies and rolls them back.

A migrations folder holds pairs of files named ``<UTC YYYYMMDDHHMMSS>_<name>.up.sql`` and
``<...>.down.sql`` (the down file is optional; without it a migration cannot be rolled
back).  A table (``chopin_migrations`` by default) records each applied migration: its
version, name, the sha256 of its up file and when it was applied.

How ``Migrator.up`` works: it takes a session-level PostgreSQL advisory lock on its
connection (so two deployers, in two processes or on two machines, run one after the
other), creates the record table if needed, re-reads what is applied *under the lock*,
refuses to go on if an applied file was edited (``ChecksumMismatch``) or deleted, or if
a file to run holds its own BEGIN/COMMIT/ROLLBACK, then runs each pending file in its own
transaction: ``BEGIN``, the file body through the simple query protocol (several
statements allowed), the ``INSERT`` of its record, ``COMMIT``.  A failing statement rolls
the whole file back, so the schema is as it was before that file.  ``down`` does the same
with the last applied migration's down file and deletes its record.  The lock is released
when the call returns (or when the session ends, if the process dies).

A file whose leading comments include the line ``-- chopin:no-transaction`` runs outside
any transaction, one statement at a time (for ``CREATE INDEX CONCURRENTLY`` and the like,
which a transaction refuses); if one of its statements fails, the ones before it stay, the
migration is not recorded, and the error says so.  Keep such files to one statement.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from chopin_pg import Connection, PgError, ServerError
from chopin_pg.connection import quote_identifier

from ._migration_files import DEFAULT_MAX_FILE_BYTES, Migration, discover, write_migration
from ._migration_scan import NO_TRANSACTION_DIRECTIVE, split_statements, transaction_control, wants_no_transaction
from .errors import MigrationError

__all__ = [
    "DEFAULT_LOCK_KEY",
    "DEFAULT_LOCK_WAIT",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_TABLE",
    "ChecksumMismatch",
    "Migration",
    "MigrationFailed",
    "MigrationLockTimeout",
    "MigrationStatus",
    "Migrator",
    "ProgressCallback",
    "discover",
    "write_migration",
]

#: The record table's default name.
DEFAULT_TABLE = "chopin_migrations"
#: The advisory lock key every ``Migrator`` takes by default: the bytes of "chopinmg".
DEFAULT_LOCK_KEY = 0x63686F70696E6D67
#: Seconds ``up``/``down`` wait for another migrator's lock before giving up.
DEFAULT_LOCK_WAIT = 600.0

#: ``on_progress(migration, event)``; event is "applying", "applied", "reverting" or "reverted".
ProgressCallback = Callable[["Migration", str], None]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_LOCK_POLL_MIN, _LOCK_POLL_MAX = 0.05, 1.0


class ChecksumMismatch(MigrationError):
    """An already-applied migration's up file was edited; it is never re-run silently.

    Attributes:
        version: The migration's version.
        name: Its name.
        recorded: The sha256 recorded when it was applied.
        current: The sha256 of the file now.
    """

    def __init__(self, message: str, *, version: str, name: str, recorded: str, current: str) -> None:
        super().__init__(message)
        self.version = version
        self.name = name
        self.recorded = recorded
        self.current = current


class MigrationFailed(MigrationError):
    """A migration file's SQL failed; its transaction was rolled back.

    Attributes:
        migration: The migration that failed.
        direction: "up" or "down".
        applied: The migrations this call had already completed (committed) before it.
        line: The 1-based line of the file the server pointed at, if it gave a position.
    """

    def __init__(
        self,
        message: str,
        *,
        migration: Migration,
        direction: str,
        applied: tuple[Migration, ...],
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.migration = migration
        self.direction = direction
        self.applied = applied
        self.line = line


class MigrationLockTimeout(MigrationError):
    """Another migrator held the advisory lock for longer than ``lock_wait`` seconds."""


@dataclass(frozen=True)
class MigrationStatus:
    """One line of ``Migrator.status()``: a file, a record, or both.

    ``applied_at`` is ``None`` for a pending migration; ``changed`` is true when the file
    was edited after it was applied; ``missing`` is true when a record has no file.
    """

    migration: Migration | None
    version: str
    name: str
    applied_at: datetime | None
    changed: bool
    missing: bool

    @property
    def applied(self) -> bool:
        """Whether the record table says this migration was applied."""
        return self.applied_at is not None


@dataclass(frozen=True)
class _Record:
    version: str
    name: str
    checksum: str
    applied_at: datetime


# -- the migrator ---------------------------------------------------------------------------


def _quote_table(table: str) -> str:
    parts = table.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise MigrationError(f"table {table!r}: expected an identifier or schema.identifier (letters, digits, _)")
    return ".".join(quote_identifier(p) for p in parts)


def _line_of(sql: str, position: int | None) -> int | None:
    if not position or position < 1:
        return None
    return sql[: position - 1].count("\n") + 1


class Migrator:
    """Applies and rolls back the migrations of one folder on one connection.

    Args:
        executor: The connection migrations run on; it must not be inside a transaction
            when ``up``/``down`` are called (each migration gets its own).
        directory: The migrations folder.
        table: The record table (``name`` or ``schema.name``); an unqualified name
            resolves through the connection's ``search_path``.
        lock_key: The 64-bit advisory lock key; every migrator of one database should use
            the same one.
        lock_wait: Seconds to wait for the lock before ``MigrationLockTimeout``.
        max_file_bytes: Largest migration file read.

    Raises:
        MigrationError: ``table`` is not a valid name, ``lock_key`` does not fit a signed
            64-bit integer, or ``lock_wait`` is negative.
    """

    def __init__(
        self,
        executor: Connection,
        directory: str | Path,
        *,
        table: str = DEFAULT_TABLE,
        lock_key: int = DEFAULT_LOCK_KEY,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self._table_sql = _quote_table(table)
        if not isinstance(lock_key, int) or not _INT64_MIN <= lock_key <= _INT64_MAX:
            raise MigrationError(f"lock_key: expected a signed 64-bit integer, got {lock_key!r}")
        if lock_wait < 0:
            raise MigrationError(f"lock_wait: expected seconds >= 0, got {lock_wait!r}")
        self._conn = executor
        self._directory = Path(directory)
        self._table = table
        self._lock_key = lock_key
        self._lock_wait = lock_wait
        self._max_file_bytes = max_file_bytes

    @property
    def directory(self) -> Path:
        """The migrations folder."""
        return self._directory

    @property
    def table(self) -> str:
        """The record table's name."""
        return self._table

    # -- reading ----------------------------------------------------------------------------

    def _discover(self) -> list[Migration]:
        return discover(self._directory, max_file_bytes=self._max_file_bytes)

    def _table_exists(self) -> bool:
        return self._conn.query_scalar("SELECT to_regclass($1) IS NOT NULL", (self._table_sql,)) is True

    def _records(self) -> list[_Record]:
        """Applied migrations, in the order they were applied."""
        if not self._table_exists():
            return []
        try:
            rows = self._conn.query(
                f"SELECT version::text, name::text, checksum::text, applied_at::timestamptz FROM {self._table_sql}"
                " ORDER BY applied_at, version",
                (),
            )
        except ServerError as exc:
            raise MigrationError(
                f"cannot read the record table {self._table} (version, name, checksum, applied_at): {exc.message}"
            ) from exc
        return [_Record(r[0], r[1], r[2], r[3]) for r in rows]

    def status(self) -> list[MigrationStatus]:
        """Every migration file and every record, by version (the record table is not created).

        Raises:
            MigrationError: The folder cannot be read (see ``discover``).
        """
        files = {m.version: m for m in self._discover()}
        records = {r.version: r for r in self._records()}
        out = []
        for version in sorted(files.keys() | records.keys()):
            m = files.get(version)
            r = records.get(version)
            out.append(
                MigrationStatus(
                    migration=m,
                    version=version,
                    name=m.name if m is not None else r.name if r is not None else "",
                    applied_at=r.applied_at if r is not None else None,
                    changed=m is not None and r is not None and m.checksum != r.checksum,
                    missing=m is None,
                )
            )
        return out

    def pending(self) -> list[Migration]:
        """The migrations not applied yet, oldest first (a read without the lock)."""
        applied = {r.version for r in self._records()}
        return [m for m in self._discover() if m.version not in applied]

    # -- locking ------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        conn = self._conn
        if conn.transaction_status != "I":
            raise MigrationError(
                "migrations need a connection outside a transaction (each one runs in its own); "
                f"this one is in state {conn.transaction_status!r}"
            )
        deadline = time.monotonic() + self._lock_wait
        pause = _LOCK_POLL_MIN
        # pg_try_advisory_lock in a loop rather than pg_advisory_lock: the wait is bounded
        # without touching the session's lock_timeout, which the migrations themselves see.
        while not conn.query_scalar("SELECT pg_try_advisory_lock($1)", (self._lock_key,)):
            if time.monotonic() >= deadline:
                raise MigrationLockTimeout(
                    f"advisory lock {self._lock_key} is still held by another migrator after "
                    f"{self._lock_wait:g} s (lock_wait)"
                )
            time.sleep(pause)
            pause = min(pause * 2, _LOCK_POLL_MAX)
        try:
            yield
        except BaseException:
            try:
                self._unlock()
            except PgError:
                pass  # keep the first error; a lost session drops its locks anyway
            raise
        self._unlock()

    def _unlock(self) -> None:
        conn = self._conn
        if conn.closed:
            return  # the server released the session's locks when it ended
        if conn.transaction_status != "I":
            conn.rollback()
        conn.query_scalar("SELECT pg_advisory_unlock($1)", (self._lock_key,))

    def _ensure_table(self) -> None:
        if self._table_exists():
            return
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table_sql} ("
            "version text PRIMARY KEY, "
            "name text NOT NULL, "
            "checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )

    # -- running ------------------------------------------------------------------------------

    def _run(
        self,
        m: Migration,
        direction: str,
        sql: str,
        record_sql: str,
        record_params: tuple[str, ...],
        done: list[Migration],
    ) -> None:
        conn = self._conn
        path = m.up_path if direction == "up" else m.down_path
        if wants_no_transaction(sql):
            self._run_outside_transaction(m, direction, sql, record_sql, record_params, done)
            return
        conn.begin()
        try:
            if sql.strip():
                conn.execute(sql)
            if conn.transaction_status != "T":
                raise MigrationFailed(
                    f"{path}: the file ended the transaction itself (COMMIT, ROLLBACK or END in it?); "
                    "what ran before that is committed but the migration is not recorded: fix it by hand",
                    migration=m,
                    direction=direction,
                    applied=tuple(done),
                )
            conn.execute(record_sql, record_params)
            conn.commit()
        except PgError as exc:
            self._abandon()
            line = _line_of(sql, exc.position)
            where = f"{path}" + (f", line {line}" if line is not None else "")
            state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
            raise MigrationFailed(
                f"{where}: {exc.message}{state}; its transaction was rolled back",
                migration=m,
                direction=direction,
                applied=tuple(done),
                line=line,
            ) from exc
        except BaseException:
            self._abandon()
            raise

    def _run_outside_transaction(
        self,
        m: Migration,
        direction: str,
        sql: str,
        record_sql: str,
        record_params: tuple[str, ...],
        done: list[Migration],
    ) -> None:
        # One statement per Query message: a multi-statement message is an implicit
        # transaction block, where CREATE INDEX CONCURRENTLY and friends are refused.
        conn = self._conn
        path = m.up_path if direction == "up" else m.down_path
        statements = split_statements(sql)
        for number, statement in enumerate(statements, 1):
            try:
                conn.execute(statement.text)
            except PgError as exc:
                self._abandon()
                offset = _line_of(statement.text, exc.position)
                line = statement.line + (offset - 1 if offset is not None else 0)
                state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
                raise MigrationFailed(
                    f"{path}, line {line}: {exc.message}{state}; the file runs without a transaction "
                    f"({NO_TRANSACTION_DIRECTIVE}): its {number - 1} statement(s) before this one stay "
                    "committed and it is not recorded: finish or undo them by hand",
                    migration=m,
                    direction=direction,
                    applied=tuple(done),
                    line=line,
                ) from exc
        conn.execute(record_sql, record_params)

    def _abandon(self) -> None:
        conn = self._conn
        if not conn.closed and conn.transaction_status != "I":
            try:
                conn.rollback()
            except PgError:
                pass  # the connection is gone; the server rolls back on its own

    def _check_applied(self, files: dict[str, Migration], records: list[_Record]) -> None:
        changed = [(files[r.version], r) for r in records if r.version in files]
        changed = [(m, r) for m, r in changed if m.checksum != r.checksum]
        if changed:
            m, r = changed[0]
            names = ", ".join(f"{m.version}_{m.name}" for m, _ in changed)
            raise ChecksumMismatch(
                f"applied migration file(s) edited since they were applied: {names} "
                f"({m.up_path.name}: recorded sha256 {r.checksum[:12]}..., now {m.checksum[:12]}...); "
                "restore them, or write a new migration for the change",
                version=m.version,
                name=m.name,
                recorded=r.checksum,
                current=m.checksum,
            )
        missing = [r for r in records if r.version not in files]
        if missing:
            names = ", ".join(f"{r.version}_{r.name}" for r in missing)
            raise MigrationError(f"applied migration(s) with no file in {self._directory}: {names}")

    @staticmethod
    def _check_no_transaction_control(todo: list[Migration], direction: str) -> None:
        for m in todo:
            path, sql = (m.up_path, m.up_sql) if direction == "up" else (m.down_path, m.down_sql)
            found = transaction_control(sql)
            if found is not None:
                keyword, line = found
                raise MigrationError(
                    f"{path}, line {line}: {keyword} controls the transaction, but each migration already runs "
                    "in its own: remove BEGIN/COMMIT/ROLLBACK from the file (nothing was run)"
                )

    def up(self, *, target: str | None = None, on_progress: ProgressCallback | None = None) -> list[Migration]:
        """Apply the pending migrations, oldest first, each in its own transaction.

        Args:
            target: Stop after this version (it must be one of the folder's versions).
            on_progress: Called with ("applying", then "applied") for each migration.

        Returns:
            The migrations applied by this call (empty when nothing was pending).

        Raises:
            ChecksumMismatch: An applied file was edited; nothing is applied.
            MigrationFailed: A migration's SQL failed; it was rolled back, and the ones before
                it in this call stay applied (``.applied``).
            MigrationLockTimeout: Another migrator held the lock too long.
            MigrationError: Bad files, an applied migration's file is gone, an unknown
                ``target``, a file to apply holds BEGIN/COMMIT/ROLLBACK (checked before any
                runs), or the connection is inside a transaction.
        """
        files = self._discover()
        if target is not None and target not in {m.version for m in files}:
            raise MigrationError(f"target {target!r}: no migration with that version in {self._directory}")
        done: list[Migration] = []
        with self._locked():
            self._ensure_table()
            records = self._records()  # read under the lock: another deployer may just have finished
            self._check_applied({m.version: m for m in files}, records)
            applied = {r.version for r in records}
            todo = [m for m in files if m.version not in applied and (target is None or m.version <= target)]
            self._check_no_transaction_control(todo, "up")
            for m in todo:
                if on_progress is not None:
                    on_progress(m, "applying")
                self._run(
                    m,
                    "up",
                    m.up_sql,
                    f"INSERT INTO {self._table_sql} (version, name, checksum) VALUES ($1, $2, $3)",
                    (m.version, m.name, m.checksum),
                    done,
                )
                done.append(m)
                if on_progress is not None:
                    on_progress(m, "applied")
        return done

    def down(self, *, steps: int = 1, on_progress: ProgressCallback | None = None) -> list[Migration]:
        """Roll back the last ``steps`` applied migrations, most recent first.

        Each runs its down file and deletes its record in one transaction.  Fewer than
        ``steps`` are rolled back when fewer are applied.

        Args:
            steps: How many to roll back (at least 1).
            on_progress: Called with ("reverting", then "reverted") for each migration.

        Returns:
            The migrations rolled back, most recent first.

        Raises:
            ChecksumMismatch: The up file of a migration to roll back was edited.
            MigrationFailed: A down file's SQL failed; it was rolled back.
            MigrationLockTimeout: Another migrator held the lock too long.
            MigrationError: ``steps`` < 1, a migration to roll back has no file or no down
                file, a down file holds BEGIN/COMMIT/ROLLBACK (all are checked before any runs),
                or the connection is inside a transaction.
        """
        if not isinstance(steps, int) or steps < 1:
            raise MigrationError(f"steps: expected an integer >= 1, got {steps!r}")
        files = {m.version: m for m in self._discover()}
        done: list[Migration] = []
        with self._locked():
            todo = []
            for r in reversed(self._records()[-steps:]):
                m = files.get(r.version)
                if m is None:
                    raise MigrationError(
                        f"cannot roll back {r.version}_{r.name}: its files are gone from {self._directory}"
                    )
                self._check_applied({m.version: m}, [r])
                if m.down_path is None:
                    raise MigrationError(f"cannot roll back {m.filename_stem}: it has no .down.sql file")
                todo.append(m)
            self._check_no_transaction_control(todo, "down")
            for m in todo:
                if on_progress is not None:
                    on_progress(m, "reverting")
                delete = f"DELETE FROM {self._table_sql} WHERE version = $1"
                self._run(m, "down", m.down_sql, delete, (m.version,), done)
                done.append(m)
                if on_progress is not None:
                    on_progress(m, "reverted")
        return done
