"""`LocalPg`: the machine's own PostgreSQL server (127.0.0.1:5432, trust), checked and started if need be.

Benchmarks and quick local runs use the system cluster instead of a private one: it is
already warm, and its settings are the machine's. `ensure_local_pg()` waits a bounded
time for it to accept connections, tries `pg_ctlcluster` once if it does not, and
fails loudly otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from . import _pgbin
from .errors import ClusterError

DEBIAN_CONF = Path("/etc/postgresql")


@dataclass(frozen=True)
class LocalPg:
    """Where the machine's PostgreSQL server is, and whom to connect as (trust: no password).

    Attributes:
        host: "127.0.0.1" unless $PGHOST says otherwise.
        port: 5432 unless $PGPORT says otherwise.
        user: "postgres" unless $PGUSER says otherwise.
        database: "test" unless $PGDATABASE says otherwise.
    """

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    database: str = "test"

    @classmethod
    def from_env(cls) -> LocalPg:
        """The defaults, overridden by $PGHOST, $PGPORT, $PGUSER and $PGDATABASE."""
        return cls(
            host=os.environ.get("PGHOST", cls.host),
            port=int(os.environ.get("PGPORT", cls.port)),
            user=os.environ.get("PGUSER", cls.user),
            database=os.environ.get("PGDATABASE", cls.database),
        )

    def dsn(self) -> str:
        """A libpq URI: `postgres://user@host:port/database?sslmode=disable`."""
        return f"postgres://{quote(self.user, safe='')}@{self.host}:{self.port}/{self.database}?sslmode=disable"

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
    notes = _start_system_cluster()
    if local.wait_ready(timeout):
        return local
    raise ClusterError(
        f"PostgreSQL on {local.host}:{local.port} does not accept connections "
        f"(waited {timeout:.0f} s, tried to start it, waited {timeout:.0f} s more):\n{notes}"
    )
