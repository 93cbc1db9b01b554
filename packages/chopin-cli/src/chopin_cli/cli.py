"""The ``chopin`` command: click commands over the modules that do the work.

Every failure the user can fix (bad input, a missing tool, an unreachable database) is a
:class:`~chopin_cli.errors.CliError` and ends as one line on stderr with exit code 2;
a command that ran and failed (a linter finding, a failing migration, a tool that
stopped) exits 1.  No traceback is shown unless ``CHOPIN_TRACEBACK=1``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__
from .console import Output, escape
from .errors import CliError, NoProject, ProjectError
from .project import Project, database_url_from, find_project

__all__ = ["cli", "main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _output(ctx: click.Context) -> Output:
    obj = ctx.find_root().obj
    if not isinstance(obj, Output):
        obj = Output()
        ctx.find_root().obj = obj
    return obj


def _project() -> Project:
    return find_project(Path.cwd())


def _database_url(override: str | None) -> str:
    """``--database-url``, else the project's (environment, then .env), else the environment."""
    try:
        project = _project()
    except NoProject:
        return database_url_from(dict(os.environ), override, where="no project here, and not in the environment")
    return project.database_url(override)


def _load_dotenv() -> None:
    """Load the project's ``.env`` (if there is a project) before any command runs."""
    try:
        project = _project()
    except ProjectError:
        return  # no project, or a broken pyproject.toml the command itself reports
    project.load_env()


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="chopin")
@click.option("-v", "--verbose", is_flag=True, help="Show more (the SQL of migrations, tool output).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Chopin: create, serve, check, migrate and deploy Chopin web services."""
    ctx.obj = Output(verbose=verbose)
    _load_dotenv()


# -- new ----------------------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option(
    "--local-packages",
    type=click.Path(file_okay=False, path_type=Path),
    help="Depend on the chopin distributions in this directory (path dependencies).",
)
@click.option("--pypi", is_flag=True, help="Depend on the chopin distributions by name, even inside the monorepo.")
@click.option("--database-url", help="DATABASE_URL written to .env.")
@click.option(
    "-d", "--directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."), help="Parent directory."
)
@click.pass_context
def new(
    ctx: click.Context,
    name: str,
    local_packages: Path | None,
    pypi: bool,
    database_url: str | None,
    directory: Path,
) -> None:
    """Create a runnable project NAME: app package, routes, a test, migrations/, .env."""
    from .scaffold import find_local_packages, new_project

    output = _output(ctx)
    if local_packages is not None and pypi:
        raise CliError("--local-packages and --pypi contradict each other; give one")
    if not directory.is_dir():
        raise ProjectError(f"--directory {directory}: no such directory")
    if local_packages is None and not pypi:
        local_packages = find_local_packages()
    root, written = new_project(name, directory, local_packages, database_url)
    for path in written:
        output.note(f"  [green]create[/green] {escape(str(path.relative_to(root.parent)))}")
    where = f"path dependencies on {local_packages}" if local_packages else "the chopin packages by name"
    output.done(escape(f"created {root} ({where})"))
    output.out.print(f"\n  cd {root}\n  pip install -e '.[test]'\n  chopin dev\n", markup=False)


# -- dev ----------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: a free port.")
@click.option("-w", "--workers", type=click.IntRange(1, 256), default=1, show_default=True, help="Worker processes.")
@click.option("--app", "app_spec", help="module:attribute of the app (default: [tool.chopin] app).")
@click.pass_context
def dev(ctx: click.Context, host: str, port: int, workers: int, app_spec: str | None) -> None:
    """Serve the app with hot reload: restart on change, keep the port, survive import errors."""
    from .apploader import parse_app_spec
    from .devserver import DevServer, DevSettings, free_port, port_answers

    project = _project()
    if app_spec is not None:
        parse_app_spec(app_spec)
    if port == 0:
        port = free_port(host)
    elif port_answers(host, port):
        raise CliError(f"port {port} on {host} is in use (another server, or another `chopin dev`?); pick --port")
    settings = DevSettings(host=host, port=port, workers=workers)
    ctx.exit(DevServer(project, settings, _output(ctx), app_spec).run())


# -- build --------------------------------------------------------------------------------


@cli.command()
@click.option("-o", "--outdir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Default: dist/")
@click.option("--no-isolation", is_flag=True, help="Use this interpreter's build backend instead of a fresh env.")
@click.pass_context
def build(ctx: click.Context, outdir: Path | None, no_isolation: bool) -> None:
    """Build the project's sdist and wheel (through its PEP 517 backend)."""
    from .build import build_dists

    project = _project()
    output = _output(ctx)
    built = build_dists(project.root, outdir or project.root / "dist", output, isolated=not no_isolation)
    for path in built:
        output.done(escape(f"built {path}"))


# -- check --------------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.pass_context
def check(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Lint the project: blocking calls and shared state in handlers, route conflicts, docs, migrations."""
    from .lint import check_files

    output = _output(ctx)
    project = _project()
    targets = list(paths) or [project.source_dir if project.source_dir != project.root else project.root]
    findings = check_files(targets, project.migrations_dir, Path.cwd())
    for f in findings:
        output.out.print(f"[bold]{escape(f.path)}:{f.line}:{f.col}:[/bold] [red]{f.code}[/red] {escape(f.message)}")
        output.out.print(f"    [dim]hint:[/dim] {escape(f.hint)}")
    if findings:
        output.err.print(f"[red]{len(findings)} finding{'s' if len(findings) != 1 else ''}[/red]")
        ctx.exit(1)
    output.done("no findings")


# -- generate -----------------------------------------------------------------------------


@cli.group()
def generate() -> None:
    """Generate an app, a handler or a model (with its migration)."""


@generate.command("app")
@click.argument("name")
@click.pass_context
def generate_app_command(ctx: click.Context, name: str) -> None:
    """Create app NAME: models, handlers and errors modules (its routes mount with the rest)."""
    from .scaffold import generate_app

    output = _output(ctx)
    project = _project()
    for path in generate_app(project, name):
        output.note(f"  [green]create[/green] {escape(str(path.relative_to(project.root)))}")
    output.done(f"app {name} created; its routes are mounted by mount_all_routes({project.package!r})")


@generate.command("handler")
@click.argument("app")
@click.argument("name")
@click.option("-m", "--method", default="get", show_default=True, help="HTTP method.")
@click.option("--path", "route_path", help="Route path (default /APP/NAME).")
@click.pass_context
def generate_handler_command(ctx: click.Context, app: str, name: str, method: str, route_path: str | None) -> None:
    """Add handler NAME to APP's handlers.py (APP = the project package for the top level)."""
    from .scaffold import generate_handler

    project = _project()
    target = generate_handler(project, app, name, method, route_path)
    _output(ctx).done(f"handler {name} added to {target.relative_to(project.root)}")


@generate.command("model")
@click.argument("name")
@click.argument("fields", nargs=-1, required=True)
@click.option("--table", help="Table name (default: the model name in snake_case, plural).")
@click.option("--app", "app_name", help="Put the model in this app's models/ (default: the project package).")
@click.pass_context
def generate_model_command(
    ctx: click.Context, name: str, fields: tuple[str, ...], table: str | None, app_name: str | None
) -> None:
    """Create model NAME with FIELDS (name:type[?][:unique][:index]) and its up/down migration."""
    from .modelgen import generate_model

    project = _project()
    output = _output(ctx)
    model_path, up, down = generate_model(project, name, list(fields), table, app_name)
    for path in (model_path, up, down):
        output.note(f"  [green]create[/green] {escape(str(path.relative_to(project.root)))}")
    if output.verbose:
        output.err.print(up.read_text(encoding="utf-8"), markup=False)
    output.done(f"model {name} written; apply it with `chopin migrate up`")


# -- migrate ------------------------------------------------------------------------------


@cli.group()
def migrate() -> None:
    """Apply, roll back and list the project's SQL migrations."""


_db_option = click.option("--database-url", help="Default: DATABASE_URL from the environment or .env.")


@migrate.command("up")
@_db_option
@click.option("--target", help="Stop after this version.")
@click.pass_context
def migrate_up_command(ctx: click.Context, database_url: str | None, target: str | None) -> None:
    """Apply the pending migrations, oldest first (each in its own transaction)."""
    from .migrate import migrate_up

    project = _project()
    output = _output(ctx)
    done = migrate_up(project.database_url(database_url), project.migrations_dir, output, target)
    if not done:
        output.done("nothing to apply: the database is up to date")
    for m in done:
        output.done(f"applied {m.filename_stem}")


@migrate.command("down")
@_db_option
@click.option("-n", "--steps", type=click.IntRange(1), default=1, show_default=True, help="How many to roll back.")
@click.pass_context
def migrate_down_command(ctx: click.Context, database_url: str | None, steps: int) -> None:
    """Roll back the most recent migration (or --steps of them)."""
    from .migrate import migrate_down

    project = _project()
    output = _output(ctx)
    done = migrate_down(project.database_url(database_url), project.migrations_dir, output, steps)
    if not done:
        output.done("nothing to roll back")
    for m in done:
        output.done(f"reverted {m.filename_stem}")


@migrate.command("make")
@_db_option
@click.option(
    "--renames",
    type=click.Choice(["ask", "accept", "never"]),
    help="A likely rename (a vanished column or table matching a new one): ask (the default on a terminal), "
    "accept it (RENAME keeps the data), or never (drop + add; the default otherwise, with a warning).",
)
@click.argument("name")
@click.pass_context
def migrate_make_command(ctx: click.Context, database_url: str | None, renames: str | None, name: str) -> None:
    """Write migration NAME for what the models declare and the database lacks (review it, then `up`)."""
    from .discovery import find_models
    from .migrate import RENAME_MODES, RenamePrompt, migrate_make

    project = _project()
    output = _output(ctx)
    models = find_models(project.package, [project.source_dir, project.root])
    mode = next((m for m in RENAME_MODES if m == renames), "ask" if sys.stdin.isatty() else "never")
    prompt = RenamePrompt(mode, output)
    written = migrate_make(project.database_url(database_url), project.migrations_dir, models, name, prompt)
    if written is None:
        output.done(f"the database matches the {len(models)} model(s); no migration written")
        return
    for path in written:
        output.note(f"  [green]create[/green] {escape(str(path.relative_to(project.root)))}")
    if output.verbose:
        output.err.print(written[0].read_text(encoding="utf-8"), markup=False)
    output.done("review the migration, then apply it with `chopin migrate up`")


@migrate.command("status")
@_db_option
@click.pass_context
def migrate_status_command(ctx: click.Context, database_url: str | None) -> None:
    """List the migrations: applied (when), pending, changed or missing."""
    from .migrate import migrate_status, status_table

    project = _project()
    output = _output(ctx)
    rows = migrate_status(project.database_url(database_url), project.migrations_dir)
    if not rows:
        output.note(f"no migrations in {project.migrations_dir}")
        return
    output.out.print(status_table(rows))


# -- db -----------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Create, drop, psql, pg_dump and restore on DATABASE_URL."""


@db.command("shell", context_settings={"ignore_unknown_options": True})
@_db_option
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def db_shell(ctx: click.Context, database_url: str | None, psql_args: tuple[str, ...]) -> None:
    """Open psql on the database (extra arguments go to psql)."""
    from .pgtools import parse_url, shell

    shell(parse_url(_database_url(database_url)), psql_args)


@db.command("dump")
@_db_option
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def db_dump(ctx: click.Context, database_url: str | None, file: Path) -> None:
    """Dump the database to FILE as plain SQL (pg_dump)."""
    from .pgtools import dump, parse_url

    output = _output(ctx)
    tables = dump(parse_url(_database_url(database_url)), file, output)
    output.done(escape(f"dumped {tables} table{'s' if tables != 1 else ''} to {file} ({file.stat().st_size} bytes)"))


@db.command("restore")
@_db_option
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
def db_restore(ctx: click.Context, database_url: str | None, file: Path) -> None:
    """Restore a plain-SQL dump FILE in one transaction (psql)."""
    from .pgtools import parse_url, restore

    output = _output(ctx)
    sent = restore(parse_url(_database_url(database_url)), file, output)
    output.done(escape(f"restored {file} ({sent} bytes)"))


def _register_db_admin() -> None:
    from .dbadmin import db_create, db_drop  # their own module: create/drop the database

    db.add_command(db_create)
    db.add_command(db_drop)


_register_db_admin()


# -- openapi ------------------------------------------------------------------------------


@cli.command()
@click.option("-o", "--output", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout.")
@click.option("--app", "app_spec", help="module:attribute of the app (default: [tool.chopin] app).")
@click.option("--title", help="info.title (default: the project name).")
@click.option("--api-version", help="info.version (default: the project version).")
@click.pass_context
def openapi(
    ctx: click.Context, out_file: Path | None, app_spec: str | None, title: str | None, api_version: str | None
) -> None:
    """Print (or write) the app's OpenAPI 3.1 document."""
    from chopin_core import openapi as core_openapi

    from .apploader import load_app

    project = _project()
    app = load_app(app_spec or project.app_spec, [project.source_dir, project.root])
    try:
        document = core_openapi.document(app, title=title or project.name, version=api_version or project.version)
    except Exception as exc:
        raise CliError(f"cannot describe the app: {type(exc).__name__}: {exc}") from exc
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if out_file is None:
        click.echo(text, nl=False)
        return
    out_file.write_text(text, encoding="utf-8")
    _output(ctx).done(escape(f"wrote {out_file} ({len(document.get('paths', {}))} paths)"))


# -- deploy -------------------------------------------------------------------------------


@cli.group()
def deploy() -> None:
    """Deployment files."""


@deploy.command("docker")
@click.option("--python", "python_version", default="3.11", show_default=True, help="Python version of the image.")
@click.option("--port", type=int, default=8080, show_default=True, help="PORT the image listens on.")
@click.option("--workers", type=int, default=2, show_default=True, help="WORKERS default of the image.")
@click.option("--force", is_flag=True, help="Replace an existing Dockerfile/.dockerignore.")
@click.pass_context
def deploy_docker(ctx: click.Context, python_version: str, port: int, workers: int, force: bool) -> None:
    """Write a production Dockerfile (multi-stage, slim, non-root, HEALTHCHECK /health), .dockerignore and
    deploy/start.py; build path dependencies' wheels into wheels/ (with wheels/requirements.txt)."""
    from .docker import DockerSettings, build_local_wheels, local_dependencies, write_docker_files

    output = _output(ctx)
    project = _project()
    settings = DockerSettings(python=python_version, port=port, workers=workers)
    for path in write_docker_files(project, settings, force):
        output.note(f"  [green]write[/green] {escape(str(path.relative_to(project.root)))}")
    local = local_dependencies(project)
    if local:
        output.note(f"  building wheels of the path dependencies {', '.join(local)} (a Docker build cannot reach them)")
    local_python = f"{sys.version_info.major}.{sys.version_info.minor}"
    for path in build_local_wheels(project):
        output.note(f"  [green]write[/green] {escape(str(path.relative_to(project.root)))}")
        if path.name.endswith(".whl") and "-py3-none-any" not in path.name and python_version != local_python:
            output.warn(
                f"{path.name} is built for Python {local_python}, the image runs {python_version}: "
                f"pass --python {local_python}"
            )
    output.done("Dockerfile written; build it with `docker build -t " + project.name + " .`")


# generate scaffold/auth, db seed, migrate redo/rollback: their module registers them on the groups above.
from . import cli_extra  # noqa: E402, F401

# -- entry point --------------------------------------------------------------------------


def _fail(output: Output, message: str, code: int) -> NoReturn:
    output.error(message)
    sys.exit(code)


def _is_database_error(exc: Exception) -> bool:
    """An ORM or driver error (looked up lazily: importing chopin-orm costs ~150 ms of start-up)."""
    for module, name in (("chopin_orm.errors", "OrmError"), ("chopin_pg.errors", "PgError")):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


def main(argv: list[str] | None = None) -> None:
    """The console script: run the command, turn every error into one line and an exit code."""
    output = Output()
    show_traceback = os.environ.get("CHOPIN_TRACEBACK") == "1"
    try:
        result: Any = cli.main(args=argv, prog_name="chopin", standalone_mode=False, obj=output)
    except CliError as exc:
        if show_traceback:
            traceback.print_exc()
        _fail(output, str(exc), exc.exit_code)
    except click.UsageError as exc:
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _fail(output, exc.format_message() + where, 2)
    except click.ClickException as exc:
        _fail(output, exc.format_message(), exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        _fail(output, "interrupted", 130)
    except Exception as exc:
        if _is_database_error(exc):
            # The database refused something (a failing migration, an edited applied
            # file): the command ran and failed, and the message says where.
            if show_traceback:
                traceback.print_exc()
            _fail(output, f"{type(exc).__name__}: {exc}", 1)
        if show_traceback:
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else ""
        _fail(output, f"{type(exc).__name__}: {message} (CHOPIN_TRACEBACK=1 shows where)", 1)
    sys.exit(result if isinstance(result, int) else 0)
