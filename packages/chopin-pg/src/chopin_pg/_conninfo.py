"""libpq's ways of giving connection settings: ``key=value`` strings, service files, the password file.

Used by :mod:`chopin_pg.config`; everything here returns plain values (no :class:`PgConfig`), so
the precedence stays in one place there: explicit settings, then the service's, then the ``PG*``
environment, then defaults; a password still missing is looked up in the password file.

* ``key=value`` strings (libpq "Keyword/Value Connection Strings", PostgreSQL docs §34.1.1):
  ``host=db port=5433 dbname=app user='al ice'``; a value with spaces is single-quoted, ``\\'``
  and ``\\\\`` escape.  A keyword libpq does not know, or that chopin-pg does not implement, is
  refused here with its name, not sent to the server.
* Service files (§34.17): ``service=name`` or ``PGSERVICE``; sections of ``PGSERVICEFILE`` (else
  ``~/.pg_service.conf``), then ``PGSYSCONFDIR/pg_service.conf``.
* The password file (§34.16): ``passfile=`` or ``PGPASSFILE`` (else ``~/.pgpass``), lines
  ``host:port:database:user:password`` with ``*`` wildcards; as libpq, a file readable by group
  or others is ignored (with a warning), and ``localhost`` also matches a unix-socket host.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

__all__ = [
    "SUPPORTED_KEYWORDS",
    "UNSUPPORTED_LIBPQ_KEYWORDS",
    "keyword_fields",
    "lookup_password",
    "parse_keyword_value",
    "read_service",
    "refuse_unsupported",
]

#: Keywords chopin-pg understands in ``key=value`` strings (libpq's, plus its own).
SUPPORTED_KEYWORDS = frozenset(
    {
        "host",
        "port",
        "user",
        "password",
        "dbname",
        "sslmode",
        "sslrootcert",
        "channel_binding",
        "application_name",
        "connect_timeout",
        "service",
        "passfile",
        "statement_cache_capacity",
        "options",
    }
)

#: libpq keywords chopin-pg does not implement: refused rather than sent as server settings.
UNSUPPORTED_LIBPQ_KEYWORDS = frozenset(
    {
        "hostaddr",
        "client_encoding",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "target_session_attrs",
        "load_balance_hosts",
        "require_auth",
        "sslnegotiation",
    }
)


def parse_keyword_value(text: str, allowed: frozenset[str] = SUPPORTED_KEYWORDS) -> dict[str, str]:
    """Parse a libpq ``key=value`` connection string.

    Args:
        text: The string.
        allowed: The keywords accepted.

    Raises:
        ConfigError: Malformed text, or a keyword chopin-pg does not know or implement (named).
    """
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        while i < n and not text[i].isspace() and text[i] != "=":
            i += 1
        key = text[start:i]
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != "=" or not key:
            got = text[start : start + 20]
            raise ConfigError(f"connection string, character {start + 1}: expected 'keyword=value', got {got!r}")
        i += 1
        while i < n and text[i].isspace():
            i += 1
        value: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise ConfigError(f"connection string: unterminated quoted value of {key!r}")
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                    continue
                i += 1
                if ch == "'":
                    break
                value.append(ch)
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(text[i])
                i += 1
        params[key] = "".join(value)
    refuse_unsupported(params, allowed)
    return params


def refuse_unsupported(keys: Mapping[str, str] | set[str], allowed: frozenset[str] | None = None) -> None:
    """Refuse keywords chopin-pg does not implement, naming them (before anything is sent).

    Args:
        keys: The keywords given.
        allowed: When given, every other keyword is refused too (``key=value`` strings); when
            ``None`` only the libpq keywords chopin-pg lacks are (a URL's other parameters are
            server settings).

    Raises:
        ConfigError: Naming each refused keyword.
    """
    if allowed is None:
        bad = sorted(k for k in keys if k in UNSUPPORTED_LIBPQ_KEYWORDS)
    else:
        bad = sorted(k for k in keys if k not in allowed)
    if bad:
        hint = ""
        if "target_session_attrs" in bad:
            hint = "; several hosts and target_session_attrs are for connect(), not a PgConfig"
        raise ConfigError(
            f"unknown or unsupported connection parameter(s): {', '.join(bad)}"
            f" (chopin-pg takes: {', '.join(sorted(SUPPORTED_KEYWORDS))}{hint})"
        )


def keyword_fields(params: Mapping[str, str]) -> dict[str, object]:
    """Turn libpq keywords (from a service file) into :class:`PgConfig` field values.

    Raises:
        ConfigError: A number that is not one.
    """
    fields: dict[str, object] = {}
    for key, value in params.items():
        if key == "dbname":
            fields["database"] = value
        elif key in ("port", "statement_cache_capacity"):
            try:
                fields[key] = int(value)
            except ValueError:
                raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        elif key == "connect_timeout":
            try:
                seconds = float(value)
            except ValueError:
                raise ConfigError(f"connect_timeout: expected seconds, got {value!r}") from None
            fields[key] = seconds if seconds > 0 else None  # libpq: zero or less waits forever
        elif key == "options":
            fields["options"] = {"options": value}
        elif key not in ("service", "passfile"):
            fields[key] = value
    return fields


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def read_service(name: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Return the settings of service ``name`` from the per-user, then the system service file.

    Raises:
        ConfigError: No file defines the service, a line is malformed, or a keyword is unsupported.
    """
    files = [Path(environ["PGSERVICEFILE"]) if environ.get("PGSERVICEFILE") else _home() / ".pg_service.conf"]
    sysconf = environ.get("PGSYSCONFDIR") or "/etc/postgresql-common"
    files.append(Path(sysconf) / "pg_service.conf")
    for path in files:
        if not path.is_file():
            continue
        found = _service_section(path, name)
        if found is not None:
            refuse_unsupported(found, SUPPORTED_KEYWORDS - {"service"})
            return found
    raise ConfigError(f"service {name!r}: not defined in {' or '.join(str(p) for p in files)}")


def _service_section(path: Path, name: str) -> dict[str, str] | None:
    section: str | None = None
    values: dict[str, str] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            if values is not None:
                return values  # the section we wanted has ended
            section = line[1:-1].strip()
            if section == name:
                values = {}
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}, line {number}: expected 'keyword=value', got {line[:40]!r}")
        if values is not None:
            values[key.strip()] = value.strip()
    return values


def _pgpass_fields(line: str) -> list[str]:
    fields: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            current.append(line[i + 1])
            i += 2
            continue
        if ch == ":" and len(fields) < 4:
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    fields.append("".join(current))
    return fields


def lookup_password(host: str, port: int, database: str, user: str, environ: Mapping[str, str]) -> str | None:
    """Return the password the password file holds for this connection, or ``None``.

    A file that group or others can read is ignored with a :class:`UserWarning`, as libpq does.
    """
    path = Path(environ.get("PGPASSFILE") or _home() / ".pgpass")
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        return None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f"password file {path} has group or world access; permissions should be u=rw (0600) or less: ignored",
            stacklevel=3,
        )
        return None
    match_host = "localhost" if host.startswith("/") else host
    wanted = (match_host, str(port), database, user)
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = _pgpass_fields(raw)
        if len(fields) != 5:
            continue
        if all(f in ("*", w) for f, w in zip(fields[:4], wanted, strict=True)):
            return fields[4]
    return None
