"""Several hosts and ``target_session_attrs``, as libpq (PostgreSQL docs §34.1.1.3, §34.1.2).

``postgres://h1:5432,h2:5433/app?target_session_attrs=read-write`` or
``host=h1,h2 port=5432,5433 target_session_attrs=primary``: hosts are tried in order, each
with its own ``connect_timeout``; a host that cannot be reached (or refuses the session for
another reason than authentication) is skipped, and one whose session does not have the
wanted attributes is closed and skipped.  Authentication failures stop the search, as libpq.

The attributes come from the ParameterStatus messages PostgreSQL 14+ sends at startup
(``in_hot_standby``, ``default_transaction_read_only``), so checking costs no round trip;
older servers are asked (``pg_is_in_recovery()``, ``SHOW transaction_read_only``).

* ``any``: the first session; ``read-write`` / ``read-only``: one that does / does not accept
  writes by default; ``primary`` / ``standby``: a server not in / in hot standby;
  ``prefer-standby``: a standby if any host is one, else the first session.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ._conninfo import SUPPORTED_KEYWORDS, parse_keyword_value
from .config import PgConfig
from .connection import Connection
from .errors import AuthenticationFailed, ConfigError, ConnectionLost, InvalidAuthorization, PgError

__all__ = ["TARGET_SESSION_ATTRS", "connect_any", "split_hosts", "still_fits"]

TARGET_SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")


def _target(value: str | None) -> str:
    target = value or "any"
    if target not in TARGET_SESSION_ATTRS:
        raise ConfigError(f"target_session_attrs: expected one of {', '.join(TARGET_SESSION_ATTRS)}, got {target!r}")
    return target


def split_hosts(conninfo: str) -> tuple[list[str], str] | None:
    """Split a conninfo naming several hosts, or ``target_session_attrs``, into one per host.

    Returns:
        ``(single-host conninfos, target)``, or ``None`` for an ordinary one-host conninfo.

    Raises:
        ConfigError: A bad ``target_session_attrs``, or host and port lists of different lengths.
    """
    if "://" in conninfo:
        return _split_url(conninfo)
    params = parse_keyword_value(conninfo, SUPPORTED_KEYWORDS | {"target_session_attrs"})
    hosts = params.get("host", "")
    if "," not in hosts and "target_session_attrs" not in params:
        return None
    target = _target(params.pop("target_session_attrs", None))
    host_list = hosts.split(",")
    ports = params.get("port", "").split(",")
    if len(ports) == 1:
        ports = ports * len(host_list)
    if len(ports) != len(host_list):
        raise ConfigError(f"port: {len(ports)} ports for {len(host_list)} hosts")
    out = []
    for host, port in zip(host_list, ports, strict=True):
        one = {**params, "host": host}
        if port:
            one["port"] = port
        else:
            one.pop("port", None)
        out.append(" ".join(f"{key}='{_quote(value)}'" for key, value in one.items()))
    return out, target


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _split_url(url: str) -> tuple[list[str], str] | None:
    scheme, rest = url.split("://", 1)
    netloc_end = len(rest)
    for sep in "/?#":
        pos = rest.find(sep)
        if pos >= 0:
            netloc_end = min(netloc_end, pos)
    netloc, tail = rest[:netloc_end], rest[netloc_end:]
    userinfo, at, hostlist = netloc.rpartition("@")
    query = urlsplit("x://h" + tail).query
    pairs = parse_qsl(query, keep_blank_values=True)
    targets = [v for k, v in pairs if k == "target_session_attrs"]
    if "," not in hostlist and not targets:
        return None
    target = _target(targets[-1] if targets else None)
    kept = urlencode([(k, v) for k, v in pairs if k != "target_session_attrs"])
    path = tail.split("?", 1)[0].split("#", 1)[0]
    prefix = f"{scheme}://{userinfo}{at}"
    hosts = hostlist.split(",") if hostlist else [""]
    return [f"{prefix}{host}{path}{'?' + kept if kept else ''}" for host in hosts], target


def _attributes(conn: Connection) -> tuple[bool, bool]:
    """(in hot standby, read-only by default) of a fresh session."""
    params = conn.parameters
    standby = params.get("in_hot_standby")
    read_only = params.get("default_transaction_read_only")
    if standby is None:  # before PostgreSQL 14: ask
        standby = "on" if conn.query_scalar("SELECT pg_catalog.pg_is_in_recovery()") else "off"
    if read_only is None:
        read_only = str(conn.query_scalar("SHOW transaction_read_only"))
    return standby == "on", read_only == "on" or standby == "on"


def still_fits(conn: Connection) -> bool:
    """Whether an open session still has the attributes it was chosen for (a pool's re-check).

    The server reports ``in_hot_standby`` (a standby promoted) and
    ``default_transaction_read_only`` (a primary fenced read-only by ``ALTER SYSTEM`` and a
    reload) to open sessions with its next reply, so the caller makes one round trip first.
    ``any`` and ``prefer-standby`` always fit: a ``prefer-standby`` session on a primary
    was the best there was, and dropping it would only find the same.

    Raises:
        PgError: The round trip of an older server (before 14) failed.
    """
    target = conn.target_session_attrs
    return target in ("any", "prefer-standby") or _fits(conn, target)


def _fits(conn: Connection, target: str) -> bool:
    if target == "any":
        return True
    standby, read_only = _attributes(conn)
    return {
        "read-write": not read_only,
        "read-only": read_only,
        "primary": not standby,
        "standby": standby,
        "prefer-standby": standby,
    }[target]


def connect_any(hosts: list[str], target: str, **overrides: Any) -> Connection:
    """Connect to the first host whose session fits ``target`` (see the module docstring).

    Args:
        hosts: One conninfo per host, from :func:`split_hosts`.
        target: One of :data:`TARGET_SESSION_ATTRS`.
        **overrides: :class:`PgConfig` fields applied to every host.

    Raises:
        ConnectionLost: No host gave a fitting session (the message says what each did).
        AuthenticationFailed, InvalidAuthorization: A host refused the credentials.
    """
    configs = [PgConfig.from_url(h) for h in hosts]
    if overrides:
        configs = [c.replace(**overrides) for c in configs]
    tried: list[str] = []
    passes = [target, "any"] if target == "prefer-standby" else [target]
    for wanted in passes:
        for config in configs:
            where = f"{config.host}:{config.port}"
            try:
                conn = Connection.connect(config)
            except (AuthenticationFailed, InvalidAuthorization):
                raise  # as libpq: wrong credentials are not a reason to try another server
            except PgError as exc:
                tried.append(f"{where}: {exc}")
                continue
            try:
                fits = _fits(conn, wanted)
            except PgError as exc:
                conn.close()
                tried.append(f"{where}: {exc}")
                continue
            if fits:
                conn.target_session_attrs = target
                return conn
            conn.close()
            tried.append(f"{where}: not {wanted}")
    raise ConnectionLost(f"no server with target_session_attrs={target}: " + "; ".join(tried))
