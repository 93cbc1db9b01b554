"""``chopin migrate up|down|status|make``: the project's SQL migrations through chopin-orm's ``Migrator``.

One connection (chopin-pg, from ``DATABASE_URL``) per command; ``up``/``down`` show a
progress bar with one step per migration and, under ``-v``, the SQL each one runs.
``make`` asks about each likely rename (a vanished column or table matching a new one)
before it writes drop + add for it (:class:`RenamePrompt`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TextIO

import chopin_pg
from chopin_orm.autogen import MigrationHints
from chopin_orm.migrations import Migration, MigrationStatus, Migrator
from chopin_pg import Connection
from rich.syntax import Syntax
from rich.table import Table

from .console import Output, escape, progress_bar
from .errors import CliError, ProjectError
from .pgtools import CONNECT_TIMEOUT, parse_url, ping

__all__ = [
    "RENAME_MODES",
    "RenameMode",
    "RenamePrompt",
    "migrate_down",
    "migrate_make",
    "migrate_status",
    "migrate_up",
    "status_table",
]

#: What ``chopin migrate make --renames`` does with a likely rename.
RenameMode = Literal["ask", "accept", "never"]
RENAME_MODES: tuple[RenameMode, ...] = ("ask", "accept", "never")


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


class RenamePrompt:
    """Decides the likely renames ``make_migration`` found (its ``confirm_renames`` callback).

    ``ask``: one ``Rename orders.qty to orders.quantity? [y/N]`` question per rename on
    stderr, the answer read from ``answers`` (a line; ``y``/``yes`` accepts, anything else
    or end of input declines); ``accept``: every one; ``never``: none.  A declined rename
    is written as drop + add and said so, with its data loss, in a warning.

    Args:
        mode: ``ask``, ``accept`` or ``never``.
        output: Where the questions and notes go.
        answers: Where answers are read from (default: stdin).
    """

    def __init__(self, mode: RenameMode, output: Output, answers: TextIO | None = None) -> None:
        self.mode = mode
        self.output = output
        self.answers = answers if answers is not None else sys.stdin

    def __call__(self, suggested: MigrationHints) -> MigrationHints:
        """The renames of ``suggested`` to apply."""
        tables: dict[str, str] = {}
        columns: dict[str, dict[str, str]] = {}
        for old, new in sorted(suggested.renamed_tables.items()):
            if self._decide(f"table {old} to {new}", f"table {old} would be dropped and {new} created empty"):
                tables[old] = new
        for table, renamed in sorted(suggested.renamed_columns.items()):
            for old, new in sorted(renamed.items()):
                question = f"{table}.{old} to {table}.{new}"
                loss = f"column {table}.{old} would be dropped and {table}.{new} added: the data in {old} is lost"
                if self._decide(question, loss):
                    columns.setdefault(table, {})[old] = new
        return MigrationHints(renamed_tables=tables, renamed_columns=columns)

    def _decide(self, what: str, loss: str) -> bool:
        if self.mode == "accept":
            self.output.note(f"  [cyan]rename[/cyan] {escape(what)}")
            return True
        if self.mode == "ask" and self._ask(f"Rename {what}? [y/N] "):
            return True
        hint = "" if self.mode == "ask" else " (answer on a terminal, or pass --renames=accept)"
        self.output.warn(f"possible rename {what} not taken: {loss}{hint}")
        return False

    def _ask(self, question: str) -> bool:
        err = self.output.err.file
        err.write(question)
        err.flush()
        line = self.answers.readline()
        if not line:
            err.write("\n")  # end of input: the answer is the default
        return line.strip().lower() in ("y", "yes")


def migrate_make(
    url: str,
    directory: Path,
    models: list[type],
    name: str,
    confirm_renames: Callable[[MigrationHints], MigrationHints] | None = None,
) -> tuple[Path, Path] | None:
    """Write a migration taking the database's schema to what ``models`` declare (None: nothing differs).

    ``confirm_renames`` decides the likely renames (see :class:`RenamePrompt`); without it
    they are written as drop + add, named in comments atop the up file.

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
        return make_migration(models, conn, directory, name, confirm_renames=confirm_renames)
