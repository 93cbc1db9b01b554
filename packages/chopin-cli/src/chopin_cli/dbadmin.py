"""``chopin db create`` and ``chopin db drop``: the database ``DATABASE_URL`` names, made or removed.

Both connect to the server's maintenance database (``postgres``) with the URL's role,
so the role must be allowed to create databases.  ``create`` is idempotent: an existing
database is left alone.  ``drop`` refuses without ``--yes``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import chopin_pg
import click
from chopin_pg import PgConfig, PgError

from .console import Output, escape
from .errors import CliError, DatabaseUnreachable, NoProject
from .pgtools import CONNECT_TIMEOUT, no_server_hint, parse_url
from .project import database_url_from, find_project

__all__ = ["MAINTENANCE_DATABASE", "create_database", "db_create", "db_drop", "drop_database"]

#: The database connected to while creating or dropping another (it exists on every server).
MAINTENANCE_DATABASE = "postgres"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _admin(config: PgConfig) -> chopin_pg.Connection:
    try:
        return chopin_pg.connect(config.replace(database=MAINTENANCE_DATABASE, connect_timeout=CONNECT_TIMEOUT))
    except (PgError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatabaseUnreachable(
            f"cannot reach the server {config.host}:{config.port} as {config.user} "
            f"(through its {MAINTENANCE_DATABASE!r} database): {message}{no_server_hint(exc)}"
        ) from None


def create_database(config: PgConfig) -> bool:
    """Create ``config.database`` on its server; returns False when it existed already.

    Raises:
        DatabaseUnreachable: the server does not answer or refuses the role.
        PgError: the server refused the CREATE DATABASE (no CREATEDB privilege, ...).
    """
    with _admin(config) as conn:
        if conn.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", (config.database,)) is not None:
            return False
        conn.execute(f"CREATE DATABASE {_quote(config.database)}")
    return True


def drop_database(config: PgConfig) -> bool:
    """Drop ``config.database`` (ending its sessions); returns False when it did not exist.

    Raises:
        DatabaseUnreachable: the server does not answer or refuses the role.
        PgError: the server refused the DROP DATABASE.
    """
    with _admin(config) as conn:
        if conn.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", (config.database,)) is None:
            return False
        conn.execute(f"DROP DATABASE {_quote(config.database)} WITH (FORCE)")
    return True


def _config(override: str | None) -> PgConfig:
    try:
        url = find_project(Path.cwd()).database_url(override)
    except NoProject:
        url = database_url_from(dict(os.environ), override, where="no project here, and not in the environment")
    config = parse_url(url)
    if config.database == MAINTENANCE_DATABASE:
        raise CliError(f"DATABASE_URL names the {MAINTENANCE_DATABASE!r} database itself; name your app's database")
    return config


def _output(ctx: click.Context) -> Output:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Output) else Output()


@click.command("create")
@click.option("--database-url", help="Default: DATABASE_URL from the environment or .env.")
@click.pass_context
def db_create(ctx: click.Context, database_url: str | None) -> None:
    """Create the database DATABASE_URL names (nothing happens if it exists)."""
    config = _config(database_url)
    output = _output(ctx)
    where = escape(f"{config.database} on {config.host}:{config.port}")
    if create_database(config):
        output.done(f"created database {where}; next: `chopin migrate up`")
    else:
        output.done(f"database {where} exists already")


@click.command("drop")
@click.option("--database-url", help="Default: DATABASE_URL from the environment or .env.")
@click.option("--yes", is_flag=True, help="Do not ask: drop it (its open sessions are ended).")
@click.pass_context
def db_drop(ctx: click.Context, database_url: str | None, yes: bool) -> None:
    """Drop the database DATABASE_URL names, ending its sessions (asks first unless --yes)."""
    config = _config(database_url)
    output = _output(ctx)
    where = f"{config.database} on {config.host}:{config.port}"
    if not yes:
        # No terminal to ask on (a script, CI): refuse rather than guess.
        if not sys.stdin.isatty() or not click.confirm(f"drop database {where} and everything in it?", default=False):
            raise CliError(f"not dropped: {where} (pass --yes to drop without asking)")
    if drop_database(config):
        output.done(escape(f"dropped database {where}"))
    else:
        output.done(escape(f"database {where} does not exist; nothing to drop"))
