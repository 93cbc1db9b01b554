"""More ``chopin`` commands: ``generate scaffold``, ``generate auth``, ``db seed``, ``migrate redo`` and ``rollback``.

They attach themselves to the groups of :mod:`chopin_cli.cli` when it imports this
module, and follow its conventions: a :class:`~chopin_cli.errors.CliError` is one line
and exit 2, a command that ran and failed exits 1, long work shows progress on stderr.
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli import db, generate, migrate, migrate_down_command
from .console import Output, escape
from .project import Project, find_project

__all__ = [
    "db_seed_command",
    "generate_auth_command",
    "generate_scaffold_command",
    "migrate_redo_command",
    "migrate_rollback_command",
]

_db_option = click.option("--database-url", help="Default: DATABASE_URL from the environment or .env.")


def _output(ctx: click.Context) -> Output:
    root = ctx.find_root()
    if not isinstance(root.obj, Output):
        root.obj = Output()
    return root.obj


def _created(output: Output, project: Project, paths: list[Path]) -> None:
    for path in paths:
        output.note(f"  [green]create[/green] {escape(str(path.relative_to(project.root)))}")


@generate.command("scaffold")
@click.argument("name")
@click.argument("fields", nargs=-1, required=True)
@click.option("--table", help="Table name (default: the model name in snake_case, plural).")
@click.pass_context
def generate_scaffold_command(ctx: click.Context, name: str, fields: tuple[str, ...], table: str | None) -> None:
    """Model NAME with FIELDS (name:type[?][:unique][:index]), its migration, CRUD routes and their tests."""
    from .generate_scaffold import generate_scaffold

    project = find_project(Path.cwd())
    output = _output(ctx)
    written = generate_scaffold(project, name, list(fields), table)
    _created(output, project, written)
    output.done(f"scaffold {name} written; `chopin migrate up`, then `pytest`")


@generate.command("auth")
@click.pass_context
def generate_auth_command(ctx: click.Context) -> None:
    """Accounts: sign-up, sign-in, sign-out, me (Argon2id, JWT), the users migration and tests."""
    from .generate_auth import generate_auth

    project = find_project(Path.cwd())
    output = _output(ctx)
    written, secret_added = generate_auth(project)
    _created(output, project, written)
    if secret_added:
        output.note("  [green]update[/green] .env (a random JWT_SECRET)")
    output.done("auth written (routes under /auth); `chopin migrate up`, then `pytest`")


@db.command("seed")
@_db_option
@click.option("-m", "--module", "module_name", help="Seeds module (default: [tool.chopin] seeds, else PACKAGE.seeds).")
@click.pass_context
def db_seed_command(ctx: click.Context, database_url: str | None, module_name: str | None) -> None:
    """Run the seeds module's seed(tx) in one transaction (all of it or nothing)."""
    from .seed import run_seeds, seeds_module

    project = find_project(Path.cwd())
    output = _output(ctx)
    name = seeds_module(project, module_name)
    seconds = run_seeds(project, project.database_url(database_url), name, output)
    output.done(f"seeded with {name}.seed in {seconds:.2f} s (committed)")


@migrate.command("rollback")
@_db_option
@click.argument("steps", type=click.IntRange(1), default=1)
@click.pass_context
def migrate_rollback_command(ctx: click.Context, database_url: str | None, steps: int) -> None:
    """Roll back the last STEPS applied migrations (default 1), newest first."""
    # The Rust chopin's name for `migrate down --steps N`: one implementation serves both.
    ctx.invoke(migrate_down_command, database_url=database_url, steps=steps)


@migrate.command("redo")
@_db_option
@click.option("-n", "--steps", type=click.IntRange(1), default=1, show_default=True, help="How many to redo.")
@click.pass_context
def migrate_redo_command(ctx: click.Context, database_url: str | None, steps: int) -> None:
    """Roll back the last migration (or --steps of them) and apply it again; later pending ones stay pending."""
    from .migrate import migrate_down, migrate_up

    project = find_project(Path.cwd())
    output = _output(ctx)
    url = project.database_url(database_url)
    reverted = migrate_down(url, project.migrations_dir, output, steps)
    if not reverted:
        output.done("nothing to redo: no migration is applied")
        return
    for m in reverted:
        output.done(f"reverted {m.filename_stem}")
    applied = migrate_up(url, project.migrations_dir, output, target=max(m.version for m in reverted))
    for m in applied:
        output.done(f"applied {m.filename_stem}")
