"""Finding PostgreSQL's programs and running them, as the `postgres` OS user when we are root.

PostgreSQL refuses to run as root, so a root test run hands the data directory to the
`postgres` user and runs `initdb`, `pg_ctl` and friends through `runuser` (or `su`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import ClusterError

BIN_DIR_ENV = "CHOPIN_TESTKIT_PG_BIN"
SERVER_USER = "postgres"


def find_bin_dir() -> Path:
    """The directory holding `initdb`, `pg_ctl`, `psql` and `pg_isready`.

    Looks only at `$CHOPIN_TESTKIT_PG_BIN` when it is set; else at `pg_config --bindir`, then the newest
    `/usr/lib/postgresql/*/bin` (Debian and Ubuntu), then the directory of `initdb`
    on `PATH`.

    Raises:
        ClusterError: no directory with both `initdb` and `pg_ctl` was found.
    """
    if env := os.environ.get(BIN_DIR_ENV):
        # Set on purpose, so it is the only place looked at: a wrong value fails.
        candidates = [Path(env)]
    else:
        candidates = _default_bin_dirs()
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise ClusterError(
        "PostgreSQL server programs not found: looked for initdb and pg_ctl in "
        f"{[str(c) for c in candidates] or 'nothing'}; install PostgreSQL or set ${BIN_DIR_ENV}"
    )


def _default_bin_dirs() -> list[Path]:
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted(
            (path for path in debian.iterdir() if path.name.isdigit()), key=lambda p: int(p.name), reverse=True
        )
        candidates.extend(path / "bin" for path in versions)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    return candidates


def running_as_root() -> bool:
    """Whether this process is root, so that servers must run as another user."""
    return os.geteuid() == 0


def server_uid_gid() -> tuple[int, int]:
    """The uid and gid of the `postgres` OS user.

    Raises:
        ClusterError: there is no such user.
    """
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise ClusterError(
            f"running as root, but there is no {SERVER_USER!r} OS user to run PostgreSQL as "
            "(PostgreSQL refuses to run as root)"
        ) from None
    return entry.pw_uid, entry.pw_gid


def as_server_user(argv: Sequence[str]) -> list[str]:
    """`argv` wrapped so that it runs as the `postgres` OS user when we are root."""
    if not running_as_root():
        return list(argv)
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", SERVER_USER, "--", *argv]
    if su := shutil.which("su"):
        return [su, SERVER_USER, "-s", "/bin/sh", "-c", subprocess.list2cmdline(argv)]
    raise ClusterError("running as root, but neither runuser nor su is available to drop to the postgres user")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without libpq's PG* variables, plus `extra`.

    A PGSSLMODE or PGPASSWORD set for the test run must not leak into the helper
    commands, which say everything on their command line.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    if extra:
        env.update(extra)
    return env


def run(
    argv: Sequence[str],
    *,
    what: str,
    cwd: Path,
    timeout: float,
    as_server: bool = True,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    stdin: str | None = None,
) -> str:
    """Run one command to completion and return its stdout.

    Args:
        argv: the command.
        what: the step, for the error message ("initdb", "pg_ctl start").
        cwd: working directory; must be readable by the postgres user.
        timeout: seconds before the command is killed and the step fails.
        as_server: run as the postgres OS user when we are root.
        env: extra environment variables.
        log_file: a server log whose tail goes into the error message.
        stdin: text fed to the command's standard input (else it reads /dev/null).

    Raises:
        ClusterError: the command could not start, timed out or exited non-zero.
    """
    command = as_server_user(argv) if as_server else list(argv)
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=clean_env(env),
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(
            f"{what}: no answer within {timeout:.0f} s: {subprocess.list2cmdline(command)}"
            + _output(exc.stdout, exc.stderr)
            + log_tail(log_file)
        ) from None
    except OSError as exc:
        raise ClusterError(f"{what}: could not run {subprocess.list2cmdline(command)}: {exc}") from None
    if done.returncode != 0:
        raise ClusterError(
            f"{what}: exit code {done.returncode}: {subprocess.list2cmdline(command)}"
            + _output(done.stdout, done.stderr)
            + log_tail(log_file)
        )
    return done.stdout


def _output(stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    parts = []
    for label, text in (("stdout", stdout), ("stderr", stderr)):
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        if text and text.strip():
            parts.append(f"\n--- {label} ---\n{text.rstrip()}")
    return "".join(parts)


def log_tail(log_file: Path | None, lines: int = 40) -> str:
    """The last `lines` lines of a server log, formatted for an error message."""
    if log_file is None:
        return ""
    try:
        text = log_file.read_text(errors="replace")
    except OSError as exc:
        return f"\n--- server log {log_file}: unreadable ({exc}) ---"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"\n--- server log {log_file} (last {lines} lines) ---\n{tail}"
