"""`LocalPg`: the shared test server, checked and started if need be.

The shared server is the one named by `$CHOPIN_TEST_DATABASE_URL` (a PostgreSQL started
elsewhere: `docker compose up -d db`, a CI service; password authentication included),
else the machine's own server (127.0.0.1:5432, trust, overridden by `$PGHOST`, `$PGPORT`,
`$PGUSER`, `$PGDATABASE`). It is already warm, and its settings are the machine's.
`ensure_local_pg()` waits a bounded time for it to accept connections, tries
`pg_ctlcluster` once if it does not (the machine's server only), and fails loudly otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from . import _pgbin
from .errors import ClusterError

DEBIAN_CONF = Path("/etc/postgresql")
#: The variable naming the shared test server as a URL (`postgres://user:password@host:port/db`).
TEST_DATABASE_URL_ENV = "CHOPIN_TEST_DATABASE_URL"


@dataclass(frozen=True)
class LocalPg:
    """Where the shared test server is, and whom to connect as.

    Attributes:
        host: "127.0.0.1" unless the URL or $PGHOST says otherwise.
        port: 5432 unless the URL or $PGPORT says otherwise.
        user: "postgres" unless the URL or $PGUSER says otherwise.
        database: "test" unless the URL or $PGDATABASE says otherwise.
        password: None (trust) unless the URL carries one.
        sslmode: "disable" unless the URL's `sslmode` says otherwise.
    """

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    database: str = "test"
    password: str | None = None
    sslmode: str = "disable"

    @classmethod
    def from_env(cls) -> LocalPg:
        """`$CHOPIN_TEST_DATABASE_URL` when set; else the defaults, overridden by the PG* variables."""
        if url := os.environ.get(TEST_DATABASE_URL_ENV):
            return cls.from_url(url)
        return cls(
            host=os.environ.get("PGHOST", cls.host),
            port=int(os.environ.get("PGPORT", cls.port)),
            user=os.environ.get("PGUSER", cls.user),
            database=os.environ.get("PGDATABASE", cls.database),
        )

    @classmethod
    def from_url(cls, url: str) -> LocalPg:
        """The server a `postgres://user:password@host:port/database?sslmode=...` URL names.

        Parts the URL leaves out keep the defaults (127.0.0.1, 5432, postgres, test, no
        password, sslmode disable).

        Raises:
            ClusterError: it is not a postgres:// URL.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ClusterError(f"{TEST_DATABASE_URL_ENV}: expected a postgres:// URL, got {parts.scheme!r}")
        try:
            port = parts.port
        except ValueError:
            raise ClusterError(f"{TEST_DATABASE_URL_ENV}: bad port in {parts.netloc!r}") from None
        query = dict(parse_qsl(parts.query))
        return cls(
            host=unquote(parts.hostname) if parts.hostname else cls.host,
            port=port or cls.port,
            user=unquote(parts.username) if parts.username else cls.user,
            database=unquote(parts.path.lstrip("/")) or cls.database,
            password=unquote(parts.password) if parts.password is not None else None,
            sslmode=query.get("sslmode", cls.sslmode),
        )

    def dsn(self) -> str:
        """A libpq URI: `postgres://user[:password]@host:port/database?sslmode=disable`."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        return f"postgres://{auth}@{self.host}:{self.port}/{quote(self.database, safe='')}?sslmode={self.sslmode}"

    def libpq_env(self) -> dict[str, str]:
        """The PG* variables that point libpq clients (psql, chopin-pg) at this server."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.database,
            "PGSSLMODE": self.sslmode,
        }
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    def with_database(self, database: str) -> LocalPg:
        """The same server and role, another database."""
        return replace(self, database=database)

    def accepts_connections(self, timeout: float = 1.0) -> bool:
        """Whether the server answers a startup message right now (pg_isready, else a TCP connect)."""
        try:
            bin_dir: Path | None = _pgbin.find_bin_dir()
        except ClusterError:
            bin_dir = None
        pg_isready = bin_dir / "pg_isready" if bin_dir else None
        if pg_isready is None or not pg_isready.exists():
            found = shutil.which("pg_isready")
            pg_isready = Path(found) if found else None
        if pg_isready is not None:
            argv = [str(pg_isready), "-h", self.host, "-p", str(self.port), "-d", self.database]
            argv += ["-U", self.user, "-t", str(max(1, round(timeout)))]
            try:
                _pgbin.run(argv, what="pg_isready", cwd=Path("/"), timeout=timeout + 5, as_server=False)
            except ClusterError:
                return False
            return True
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return True
        except OSError:
            return False

    def wait_ready(self, timeout: float) -> bool:
        """Poll `accepts_connections` for up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.accepts_connections():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def _start_system_cluster() -> str:
    """Try `pg_ctlcluster <version> main start` for each Debian cluster; return what happened."""
    if not DEBIAN_CONF.is_dir() or shutil.which("pg_ctlcluster") is None:
        return "no pg_ctlcluster / /etc/postgresql: cannot start the system cluster"
    notes = []
    for version in sorted(path.name for path in DEBIAN_CONF.iterdir()):
        argv = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]
        try:
            _pgbin.run(argv, what=" ".join(argv), cwd=Path("/"), timeout=60, as_server=False)
            notes.append(f"{' '.join(argv)}: ok")
        except ClusterError as exc:
            notes.append(str(exc))
    return "\n".join(notes) or f"no cluster under {DEBIAN_CONF}"


def ensure_local_pg(local: LocalPg | None = None, *, timeout: float = 10.0) -> LocalPg:
    """Return the machine's server once it accepts connections, starting it if it does not.

    Args:
        local: where to look; `LocalPg.from_env()` when None.
        timeout: seconds to wait before, and again after, trying to start it.

    Raises:
        ClusterError: it does not accept connections, and starting it did not help.
    """
    local = local or LocalPg.from_env()
    if local.wait_ready(timeout):
        return local
    if os.environ.get(TEST_DATABASE_URL_ENV):
        # A server started elsewhere (compose, CI): ours to use, not to start.
        raise ClusterError(
            f"${TEST_DATABASE_URL_ENV} names {local.host}:{local.port}, which does not accept connections "
            f"(waited {timeout:.0f} s); start it (e.g. `docker compose up -d db`) or unset the variable"
        )
    notes = _start_system_cluster()
    if local.wait_ready(timeout):
        return local
    raise ClusterError(
        f"PostgreSQL on {local.host}:{local.port} does not accept connections "
        f"(waited {timeout:.0f} s, tried to start it, waited {timeout:.0f} s more):\n{notes}"
    )
