"""``chopin db shell|dump|restore``: psql and pg_dump on the project's ``DATABASE_URL``.

The URL is parsed by chopin-pg and handed to the tools as libpq environment variables
(``PGHOST``, ``PGPASSWORD``, ...), so a password never appears on a command line.  Before
a tool runs, the database is reached once with chopin-pg: an unreachable server is one
clear error instead of a tool's multi-line complaint.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import chopin_pg
from chopin_pg import PgConfig, PgError

from .console import Output, progress_bar, spinner
from .errors import DatabaseUnreachable, ProjectError, ToolFailed, ToolMissing

__all__ = ["NO_SERVER_HINT", "dump", "no_server_hint", "pg_environment", "ping", "require_tool", "restore", "shell"]

#: SQLSTATE of "database ... does not exist".
INVALID_CATALOG_NAME = "3D000"
#: Seconds allowed to reach the database before a command gives up.
CONNECT_TIMEOUT = 10.0
#: Bytes written to psql per step of the restore progress bar.
RESTORE_CHUNK = 256 * 1024
#: Said when nothing listens where the database should be (a machine without a server yet).
NO_SERVER_HINT = (
    "nothing listens there: start PostgreSQL (`docker compose up -d --wait db`, or without Docker "
    "`python -m chopin_testkit serve` from chopin-testkit[embedded]; see the project's README)"
)
_INSTALL_HINT = "install the PostgreSQL client tools (Debian/Ubuntu: apt install postgresql-client)"


def parse_url(url: str) -> PgConfig:
    """The chopin-pg config of ``url``.

    Raises:
        DatabaseUnreachable: the URL is malformed.
    """
    try:
        return PgConfig.from_url(url)
    except PgError as exc:
        raise DatabaseUnreachable(f"DATABASE_URL is not usable: {exc}") from None


def _where(config: PgConfig) -> str:
    return f"{config.user + '@' if config.user else ''}{config.host}:{config.port}/{config.database or config.user}"


def pg_environment(config: PgConfig, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for psql/pg_dump that points them at ``config``."""
    env = dict(os.environ if base is None else base)
    env.update(PGHOST=config.host, PGPORT=str(config.port), PGSSLMODE=config.sslmode)
    if config.user:
        env["PGUSER"] = config.user
    if config.database:
        env["PGDATABASE"] = config.database
    if config.password is not None:
        env["PGPASSWORD"] = config.password
    else:
        env.pop("PGPASSWORD", None)
    if config.sslrootcert:
        env["PGSSLROOTCERT"] = config.sslrootcert
    if config.application_name:
        env["PGAPPNAME"] = config.application_name
    if config.options:
        env["PGOPTIONS"] = " ".join(f"-c {key}={value}" for key, value in config.options.items())
    return env


def require_tool(name: str) -> str:
    """The full path of ``name`` on ``PATH``.

    Raises:
        ToolMissing: it is not there.
    """
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(f"{name} not found on PATH; {_INSTALL_HINT}")
    return path


def no_server_hint(exc: BaseException) -> str:
    """``"; " + NO_SERVER_HINT`` when ``exc`` (or what caused it) is a refused TCP connection, else ``""``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "; " + NO_SERVER_HINT
        seen = seen.__cause__
    return ""


def ping(config: PgConfig, timeout: float = CONNECT_TIMEOUT) -> None:
    """Connect once and disconnect.

    Raises:
        DatabaseUnreachable: the server does not answer or refuses the session.
    """
    try:
        with chopin_pg.connect(config.replace(connect_timeout=timeout)):
            pass
    except (PgError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, PgError) and exc.sqlstate == INVALID_CATALOG_NAME:
            message += "; create it with `chopin db create`"
        message += no_server_hint(exc)
        raise DatabaseUnreachable(f"cannot reach the database {_where(config)}: {message}") from None


def shell(config: PgConfig, args: Sequence[str]) -> None:
    """Replace this process with psql on the database (so Ctrl-C and job control reach psql alone).

    Raises:
        ToolMissing, DatabaseUnreachable: see :func:`require_tool`, :func:`ping`.
    """
    psql = require_tool("psql")
    ping(config)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(psql, [psql, *args], pg_environment(config))


def dump(config: PgConfig, file: Path, output: Output, extra: Sequence[str] = ()) -> int:
    """``pg_dump`` the database to ``file`` as plain SQL; returns the number of tables dumped.

    Raises:
        ToolMissing, DatabaseUnreachable: see :func:`require_tool`, :func:`ping`.
        ToolFailed: pg_dump failed.
    """
    pg_dump = require_tool("pg_dump")
    ping(config)
    file = file.resolve()
    if not file.parent.is_dir():
        raise ProjectError(f"--file {file}: directory {file.parent} does not exist")
    command = [pg_dump, "--format=plain", "--no-owner", "--no-privileges", "--verbose", f"--file={file}", *extra]
    tables = 0
    errors: list[str] = []
    with spinner(output) as progress:
        task = progress.add_task(f"dumping {_where(config)}", total=None)
        process = subprocess.Popen(
            command, env=pg_environment(config), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        assert process.stderr is not None
        for line in process.stderr:
            line = line.rstrip()
            if "dumping contents of table" in line:
                tables += 1
                table = line.rsplit(" ", 1)[-1].strip('"')
                progress.update(task, description=f"dumping {_where(config)}: table {table} ({tables})")
            elif "error" in line.lower():
                errors.append(line)
        code = process.wait()
    if code != 0:
        raise ToolFailed(f"pg_dump exited with {code}: {' / '.join(errors[-3:]) or 'no error output'}")
    return tables


def restore(config: PgConfig, file: Path, output: Output, extra: Sequence[str] = ()) -> int:
    """Run the plain-SQL dump ``file`` through psql in one transaction; returns the bytes sent.

    Raises:
        ProjectError: ``file`` is missing or is a custom-format archive.
        ToolMissing, DatabaseUnreachable: see :func:`require_tool`, :func:`ping`.
        ToolFailed: psql stopped at an error (nothing was committed).
    """
    try:
        size = file.stat().st_size
        with file.open("rb") as probe:
            magic = probe.read(5)
    except OSError as exc:
        raise ProjectError(f"--file {file}: {exc.strerror or exc}") from None
    if magic == b"PGDMP":
        raise ProjectError(f"--file {file}: a pg_dump custom-format archive; restore it with pg_restore")
    psql = require_tool("psql")
    ping(config)
    command = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-", *extra]
    sent = 0
    with tempfile.TemporaryFile("w+b") as errlog, progress_bar(output) as progress:
        task = progress.add_task(f"restoring into {_where(config)}", total=size)
        process = subprocess.Popen(
            command, env=pg_environment(config), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errlog
        )
        assert process.stdin is not None
        try:
            with file.open("rb") as source:
                while chunk := source.read(RESTORE_CHUNK):
                    process.stdin.write(chunk)
                    sent += len(chunk)
                    progress.update(task, completed=sent)
            process.stdin.close()
        except BrokenPipeError:
            pass  # psql stopped at an error; its exit code and stderr say which
        code = process.wait()
        errlog.seek(0)
        err_text = errlog.read().decode("utf-8", errors="replace").strip().splitlines()
    if code != 0:
        detail = " / ".join(line for line in err_text[-3:]) or "no error output"
        raise ToolFailed(f"psql stopped at an error, nothing was restored (exit {code}): {detail}")
    return sent
