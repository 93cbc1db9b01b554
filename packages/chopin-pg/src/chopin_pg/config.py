"""Connection settings: :class:`PgConfig`, built from keywords, a URL or the libpq environment.

A ``host`` that starts with ``/`` is a unix-socket directory, as in libpq: the
socket is ``{host}/.s.PGSQL.{port}``.

Finding the database follows one convention across Chopin (the driver, the pool, the
CLI and generated apps): ``DATABASE_URL`` when it is set, then the libpq environment
variables ``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``,
``PGSSLMODE``, ``PGSSLROOTCERT``, ``PGCHANNELBINDING``, ``PGAPPNAME`` and ``PGCONNECT_TIMEOUT`` for what the
URL leaves out, then libpq's defaults.  libpq ``key=value`` strings, service files
(``service=``, ``PGSERVICE``) and the password file (``PGPASSFILE``, ``~/.pgpass``) are read by
:mod:`chopin_pg._conninfo`.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from . import _conninfo
from .errors import ConfigError
from .protocol import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["CHANNEL_BINDING_MODES", "DATABASE_URL_ENV", "SSL_MODES", "PgConfig"]

#: The variable holding the connection URL, read before the libpq variables.
DATABASE_URL_ENV = "DATABASE_URL"

#: The sslmode values libpq knows.  ``allow`` is treated as ``disable``.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

#: The channel_binding values libpq knows (PostgreSQL docs §34.1.2).
CHANNEL_BINDING_MODES = ("disable", "prefer", "require")


def _env(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    return value or None


@dataclasses.dataclass(frozen=True, slots=True)
class PgConfig:
    """Everything needed to open a connection.

    Attributes:
        host: Host name, IP address, or unix-socket directory (starts with ``/``).
        port: TCP port, also the suffix of the socket file name.
        user: Role to log in as.
        password: Password, or ``None`` when the server trusts the client.
        database: Database name; defaults to the user name.
        sslmode: One of :data:`SSL_MODES`.
        sslrootcert: CA bundle for ``verify-ca`` / ``verify-full``.
        channel_binding: One of :data:`CHANNEL_BINDING_MODES`, as libpq: ``prefer`` binds
            SCRAM to the TLS connection (SCRAM-SHA-256-PLUS, ``tls-server-end-point``) when
            the server offers it; ``require`` refuses to authenticate otherwise (no TLS, no
            -PLUS offered, or a method other than SCRAM, trust included); ``disable`` never binds.
        application_name: Reported in ``pg_stat_activity``.
        connect_timeout: Seconds allowed for connecting and authenticating; ``None`` waits forever.
        io_timeout: Seconds a socket read or write may block once connected; ``None`` waits forever.
        statement_cache_capacity: Prepared statements kept per connection (0 disables the cache).
        max_message_size: Largest backend message accepted.
        options: Extra startup parameters (e.g. ``{"search_path": "app"}``).
    """

    host: str = "localhost"
    port: int = 5432
    user: str = ""
    password: str | None = None
    database: str = ""
    sslmode: str = "prefer"
    sslrootcert: str | None = None
    channel_binding: str = "prefer"
    application_name: str | None = None
    connect_timeout: float | None = None
    io_timeout: float | None = None
    statement_cache_capacity: int = 256
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    options: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sslmode not in SSL_MODES:
            raise ConfigError(f"sslmode: expected one of {', '.join(SSL_MODES)}, got {self.sslmode!r}")
        if self.channel_binding not in CHANNEL_BINDING_MODES:
            raise ConfigError(
                f"channel_binding: expected one of {', '.join(CHANNEL_BINDING_MODES)}, got {self.channel_binding!r}"
            )
        if not 0 < self.port < 65536:
            raise ConfigError(f"port: expected 1..65535, got {self.port}")
        if self.statement_cache_capacity < 0:
            raise ConfigError(f"statement_cache_capacity: expected >= 0, got {self.statement_cache_capacity}")
        if not self.user:
            object.__setattr__(self, "user", getpass.getuser())
        if not self.database:
            object.__setattr__(self, "database", self.user)

    @property
    def is_unix_socket(self) -> bool:
        """Whether :attr:`host` names a unix-socket directory."""
        return self.host.startswith("/")

    @property
    def socket_path(self) -> str:
        """The unix socket file for this config (meaningful only if :attr:`is_unix_socket`)."""
        return f"{self.host}/.s.PGSQL.{self.port}"

    def with_socket_dir(self, directory: str) -> PgConfig:
        """Return a copy that connects through the unix socket in ``directory``."""
        if not directory.startswith("/"):
            raise ConfigError(f"socket directory: expected an absolute path, got {directory!r}")
        return dataclasses.replace(self, host=directory)

    def replace(self, **changes: object) -> PgConfig:
        """Return a copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def startup_params(self) -> dict[str, str]:
        """The StartupMessage parameters this config sends."""
        params = {"user": self.user, "database": self.database, "client_encoding": "UTF8", "DateStyle": "ISO"}
        if self.application_name:
            params["application_name"] = self.application_name
        params.update(self.options)
        return params

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> PgConfig:
        """Build a config from the environment, then apply ``overrides``.

        ``DATABASE_URL`` wins when it is set; the libpq variables fill in what it leaves
        out (or everything, when it is not set).

        Args:
            environ: Variables to read; ``os.environ`` when ``None``.
            **overrides: Fields that win over the environment.

        Returns:
            The config.

        Raises:
            ConfigError: A variable holds an unusable value.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if (url := _env(DATABASE_URL_ENV, env)) is not None:
            try:
                values, env = _url_values(url, env)
            except ConfigError as exc:
                raise ConfigError(f"{DATABASE_URL_ENV}: {exc}") from None
        values.update(overrides)
        return cls._from_libpq_env(env, values)

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str] | None = None) -> PgConfig:
        """Parse ``postgres://user:password@host:port/database?param=value``.

        Missing parts fall back to the libpq environment (not to ``DATABASE_URL``: the
        URL given is the one used).  A libpq ``key=value`` string is read the same way.
        Query parameters:
        ``sslmode``, ``sslrootcert``, ``channel_binding``, ``application_name``, ``connect_timeout``,
        ``host`` (a socket directory, for URLs with an empty host), ``port``,
        ``user``, ``password``, ``dbname``, ``statement_cache_capacity``; any
        other parameter is sent as a startup option (``options`` style GUCs such
        as ``search_path``).

        Args:
            url: The connection URL (``postgres://`` or ``postgresql://``).
            environ: Variables to read; ``os.environ`` when ``None``.

        Returns:
            The config.

        Raises:
            ConfigError: The URL is malformed or holds an unusable value.
        """
        values, env = _url_values(url, os.environ if environ is None else environ)
        return cls._from_libpq_env(env, values)

    @classmethod
    def _from_libpq_env(cls, environ: Mapping[str, str], given: Mapping[str, object]) -> PgConfig:
        """``given`` fields, the rest from the libpq variables (a service's first), then the defaults."""
        values: dict[str, object] = {}
        if (host := _env("PGHOST", environ)) is not None:
            values["host"] = host
        if (port := _env("PGPORT", environ)) is not None:
            values["port"] = _int("PGPORT", port)
        for var, field in (
            ("PGUSER", "user"),
            ("PGPASSWORD", "password"),
            ("PGDATABASE", "database"),
            ("PGSSLMODE", "sslmode"),
            ("PGSSLROOTCERT", "sslrootcert"),
            ("PGCHANNELBINDING", "channel_binding"),
            ("PGAPPNAME", "application_name"),
        ):
            if (value := _env(var, environ)) is not None:
                values[field] = value
        if (timeout := _env("PGCONNECT_TIMEOUT", environ)) is not None:
            values["connect_timeout"] = _timeout("PGCONNECT_TIMEOUT", timeout)
        # libpq: a service's settings win over the environment; .pgpass is asked last (_conninfo).
        if (service := _env("PGSERVICE", environ)) is not None:
            values.update(_conninfo.keyword_fields(_conninfo.read_service(service, environ)))
        values.update(given)
        config = cls(**values)  # type: ignore[arg-type]
        if config.password is not None:
            return config
        found = _conninfo.lookup_password(config.host, config.port, config.database, config.user, environ)
        return config if found is None else dataclasses.replace(config, password=found)


def _url_values(url: str, environ: Mapping[str, str]) -> tuple[dict[str, object], Mapping[str, str]]:
    """The fields a URL or ``key=value`` string sets, and the environment to read the rest from.

    A ``service=`` parameter's settings come under the URL's own; ``passfile=`` names the
    password file for the lookup that follows (see :meth:`PgConfig.from_url`).
    """
    if "://" not in url:  # a libpq key=value string: the same keywords as a URL's query
        url = "postgresql:///?" + urlencode(_conninfo.parse_keyword_value(url))
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"url: expected scheme postgres:// or postgresql://, got {parts.scheme!r}")
    values: dict[str, object] = {}
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"url: bad port in {parts.netloc!r}") from exc
    if parts.hostname:
        # urlsplit lowercases hostname and strips [] from IPv6 literals.
        values["host"] = unquote(parts.hostname)
    if port is not None:
        values["port"] = port
    if parts.username:
        values["user"] = unquote(parts.username)
    if parts.password is not None:
        values["password"] = unquote(parts.password)
    if parts.path.strip("/"):
        values["database"] = unquote(parts.path.lstrip("/"))
    options: dict[str, str] = {}
    libpq: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        match key:
            case "service" | "passfile":
                libpq[key] = value
            case "sslmode" | "sslrootcert" | "channel_binding" | "application_name" | "host" | "user" | "password":
                values[key] = value
            case "dbname":
                values["database"] = value
            case "port":
                values["port"] = _int("port", value)
            case "connect_timeout":
                values["connect_timeout"] = _timeout("connect_timeout", value)
            case "statement_cache_capacity":
                values["statement_cache_capacity"] = _int(key, value)
            case _:
                options[key] = value
    _conninfo.refuse_unsupported(options)
    if options:
        values["options"] = options
    if "service" in libpq:
        values = {**_conninfo.keyword_fields(_conninfo.read_service(libpq["service"], environ)), **values}
    if "passfile" in libpq:
        environ = {**environ, "PGPASSFILE": libpq["passfile"]}
    return values, environ


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {value!r}") from None


def _timeout(name: str, value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected seconds, got {value!r}") from None
    # libpq: zero, negative or no value means wait indefinitely.
    return seconds if seconds > 0 else None
