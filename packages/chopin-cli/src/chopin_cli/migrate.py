"""``chopin migrate up|down|status``: the project's SQL migrations through chopin-orm's ``Migrator``.

One connection (chopin-pg, from ``DATABASE_URL``) per command; ``up``/``down`` show a
progress bar with one step per migration and, under ``-v``, the SQL each one runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import chopin_pg
from chopin_orm.migrations import Migration, MigrationStatus, Migrator
from chopin_pg import Connection
from rich.syntax import Syntax
from rich.table import Table

from .console import Output, progress_bar
from .errors import CliError, ProjectError
from .pgtools import CONNECT_TIMEOUT, parse_url, ping

__all__ = ["migrate_down", "migrate_make", "migrate_status", "migrate_up", "status_table"]


@contextmanager
def _connection(url: str) -> Iterator[Connection]:
    config = parse_url(url)
    ping(config)
    conn = chopin_pg.connect(config.replace(connect_timeout=CONNECT_TIMEOUT))
    try:
        yield conn
    finally:
        conn.close()


def _check_directory(directory: Path) -> None:
    if not directory.is_dir():
        raise ProjectError(f"migrations directory {directory} does not exist")


def _show_sql(output: Output, migration: Migration, sql: str, direction: str) -> None:
    output.err.print(f"[dim]-- {migration.filename_stem}.{direction}.sql[/dim]")
    output.err.print(Syntax(sql.rstrip(), "sql", background_color="default"))


def migrate_up(url: str, directory: Path, output: Output, target: str | None = None) -> list[Migration]:
    """Apply the pending migrations of ``directory``; returns those applied."""
    _check_directory(directory)
    with _connection(url) as conn:
        migrator = Migrator(conn, directory)
        pending = migrator.pending()
        if target is not None:
            pending = [m for m in pending if m.version <= target]
        if not pending:
            return migrator.up(target=target)  # still checks applied files against their checksums
        with progress_bar(output) as progress:
            task = progress.add_task("migrating up", total=len(pending))

            def on_progress(migration: Migration, event: str) -> None:
                if event == "applying":
                    progress.update(task, description=f"applying {migration.filename_stem}")
                    if output.verbose:
                        _show_sql(output, migration, migration.up_sql, "up")
                elif event == "applied":
                    progress.advance(task)

            return migrator.up(target=target, on_progress=on_progress)


def migrate_down(url: str, directory: Path, output: Output, steps: int = 1) -> list[Migration]:
    """Roll back the last ``steps`` applied migrations; returns those rolled back."""
    _check_directory(directory)
    with _connection(url) as conn:
        migrator = Migrator(conn, directory)
        applied = [s for s in migrator.status() if s.applied]
        total = min(steps, len(applied))
        if total == 0:
            return []
        with progress_bar(output) as progress:
            task = progress.add_task("migrating down", total=total)

            def on_progress(migration: Migration, event: str) -> None:
                if event == "reverting":
                    progress.update(task, description=f"reverting {migration.filename_stem}")
                    if output.verbose:
                        _show_sql(output, migration, migration.down_sql, "down")
                elif event == "reverted":
                    progress.advance(task)

            return migrator.down(steps=steps, on_progress=on_progress)


def migrate_status(url: str, directory: Path) -> list[MigrationStatus]:
    """Every migration, applied or pending, and records whose file is gone."""
    _check_directory(directory)
    with _connection(url) as conn:
        return Migrator(conn, directory).status()


def status_table(rows: list[MigrationStatus]) -> Table:
    """A rich table of ``rows``: version, name, state."""
    table = Table(show_header=True, header_style="bold")
    table.add_column("version")
    table.add_column("name")
    table.add_column("state")
    for row in rows:
        if row.missing:
            state = "[red]applied, file missing[/red]"
        elif row.changed:
            state = "[red]applied, file changed since[/red]"
        elif row.applied_at is not None:
            state = f"[green]applied[/green] {row.applied_at:%Y-%m-%d %H:%M:%S}"
        else:
            state = "[yellow]pending[/yellow]"
        table.add_row(row.version, row.name, state)
    return table


def migrate_make(url: str, directory: Path, models: list[type], name: str) -> tuple[Path, Path] | None:
    """Write a migration taking the database's schema to what ``models`` declare (None: nothing differs).

    Raises:
        CliError: no models, or migrations are pending (the diff would repeat them).
    """
    from chopin_orm.autogen import make_migration

    if not models:
        raise CliError("no @model classes found in the project package")
    directory.mkdir(parents=True, exist_ok=True)
    with _connection(url) as conn:
        pending = Migrator(conn, directory).pending()
        if pending:
            raise CliError(
                f"{len(pending)} migration(s) are pending ({pending[0].filename_stem} ...); "
                "apply them first with `chopin migrate up`"
            )
        return make_migration(models, conn, directory, name)
