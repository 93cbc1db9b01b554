"""HTTP cookies (RFC 6265): reading the ``Cookie`` header and writing ``Set-Cookie`` lines.

Reading is lenient in the one safe way: a pair that does not parse is skipped, never
guessed at, and parsing never raises (a client's junk cookie must not turn a page into
a 400).  Writing is strict: a name, value or attribute that would change the meaning of
the ``Set-Cookie`` line raises :class:`ValueError` before anything is sent.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

from ._wire._abnf import TCHARS
from .files import http_date

__all__ = ["MAX_COOKIES", "SameSite", "format_delete_cookie", "format_set_cookie", "parse_cookie_header"]

MAX_COOKIES: Final = 200
"""Cookie pairs read from one request; the rest are ignored (browsers send far fewer)."""

SameSite = Literal["Strict", "Lax", "None"]

# RFC 6265 4.1.1 cookie-octet: US-ASCII except CTLs, whitespace, DQUOTE, comma, semicolon, backslash.
_COOKIE_OCTETS: Final = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('",;\\')
# Path and Domain attribute values (RFC 6265 4.1.1 av-octet): any CHAR but CTLs and ";".
_AV_OCTETS: Final = frozenset(chr(c) for c in range(0x20, 0x7F)) - frozenset(";")
# RFC 1034 3.5 labels, as RFC 6265 4.1.1 asks of Domain (a leading dot is tolerated and ignored).
_DOMAIN: Final = re.compile(
    r"\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_SAMESITE: Final = {"strict": "Strict", "lax": "Lax", "none": "None"}
_EPOCH_EXPIRES: Final = "Thu, 01 Jan 1970 00:00:00 GMT"


def _is_token(name: str) -> bool:
    return bool(name) and TCHARS.issuperset(name)


def _is_cookie_value(value: str) -> bool:
    # RFC 6265 4.1.1: cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE )
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return _COOKIE_OCTETS.issuperset(value)


def parse_cookie_header(headers: list[str], max_cookies: int = MAX_COOKIES) -> Mapping[str, str]:
    """The cookies of a request's ``Cookie`` field values, by name.

    Follows RFC 6265 5.4 / 4.2.1: pairs are split on ``;``, optional whitespace
    around them is dropped, and one pair of surrounding double quotes is removed
    from a value.  A pair without ``=``, whose name is not a token or whose value
    holds a byte outside cookie-octet is skipped.  When a name repeats, the first
    wins (user agents send the most specific path first).  Several ``Cookie``
    fields (HTTP/2 may split one, RFC 9113 8.2.3) are read in order.

    Args:
        headers: the ``Cookie`` field values, in the order received.
        max_cookies: pairs looked at, at most; later ones are ignored.

    Returns:
        A read-only mapping of name to value (empty when nothing parses).
    """
    found: dict[str, str] = {}
    seen = 0
    for header in headers:
        for pair in header.split(";"):
            seen += 1
            if seen > max_cookies:
                return MappingProxyType(found)
            name, eq, value = pair.partition("=")
            name = name.strip(" \t")
            value = value.strip(" \t")
            if not eq or not _is_token(name) or not _is_cookie_value(value):
                continue
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1]
            found.setdefault(name, value)
    return MappingProxyType(found)


def format_set_cookie(
    name: str,
    value: str,
    *,
    max_age: int | datetime.timedelta | None = None,
    expires: datetime.datetime | float | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = False,
    samesite: str | None = "Lax",
) -> str:
    """A ``Set-Cookie`` field value (RFC 6265 4.1).

    Args:
        name: a token (RFC 9110 5.6.2).
        value: cookie-octets only (RFC 6265 4.1.1); encode anything else first
            (e.g. with :func:`urllib.parse.quote` or base64).
        max_age: seconds (or a ``timedelta``) until the cookie expires; 0 expires it now.
        expires: the expiry as an aware ``datetime`` or a Unix timestamp.
        path: the ``Path`` attribute (``"/"`` unless told; ``None`` leaves it out).
        domain: the ``Domain`` attribute (a host name), or ``None`` for host-only.
        secure: add ``Secure`` (sent over HTTPS only).
        httponly: add ``HttpOnly`` (hidden from scripts).
        samesite: ``"Strict"``, ``"Lax"`` (the default) or ``"None"``, any case; ``None``
            leaves the attribute out.  ``"None"`` requires ``secure=True``, as browsers do.

    Returns:
        The field value, e.g. ``sid=abc; Path=/; HttpOnly; SameSite=Lax``.

    Raises:
        ValueError: a name, value or attribute that cannot be sent safely.
    """
    if not _is_token(name):
        raise ValueError(f"cookie name {name!r}: expected a token (RFC 6265 4.1.1)")
    if not _is_cookie_value(value):
        raise ValueError(
            f"cookie {name}: value {value!r} holds a byte outside cookie-octet (RFC 6265 4.1.1); encode it first"
        )
    parts = [f"{name}={value}"]
    if max_age is not None:
        seconds = int(max_age.total_seconds()) if isinstance(max_age, datetime.timedelta) else max_age
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError(f"cookie {name}: max_age: expected a non-negative integer, got {max_age!r}")
        parts.append(f"Max-Age={seconds}")
    if expires is not None:
        if isinstance(expires, datetime.datetime):
            if expires.tzinfo is None:
                raise ValueError(f"cookie {name}: expires: expected an aware datetime, got a naive one")
            stamp = expires.timestamp()
        elif isinstance(expires, (int, float)) and not isinstance(expires, bool):
            stamp = float(expires)
        else:
            raise ValueError(f"cookie {name}: expires: expected a datetime or a timestamp, got {expires!r}")
        parts.append(f"Expires={http_date(max(stamp, 0.0))}")
    if path is not None:
        if not path.startswith("/") or not _AV_OCTETS.issuperset(path):
            raise ValueError(f"cookie {name}: path {path!r}: expected '/...' without control characters or ';'")
        parts.append(f"Path={path}")
    if domain is not None:
        if _DOMAIN.fullmatch(domain) is None:
            raise ValueError(f"cookie {name}: domain {domain!r}: expected a host name (RFC 1034 3.5)")
        parts.append(f"Domain={domain.removeprefix('.')}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite is not None:
        canonical = _SAMESITE.get(samesite.lower()) if isinstance(samesite, str) else None
        if canonical is None:
            raise ValueError(f"cookie {name}: samesite: expected 'Strict', 'Lax' or 'None', got {samesite!r}")
        if canonical == "None" and not secure:
            # Browsers drop a SameSite=None cookie that is not Secure (RFC 6265bis 5.6.7).
            raise ValueError(f"cookie {name}: samesite='None' requires secure=True")
        parts.append(f"SameSite={canonical}")
    if name.startswith("__Secure-") and not secure:
        raise ValueError(f"cookie {name}: the __Secure- prefix requires secure=True")
    if name.startswith("__Host-") and (not secure or path != "/" or domain is not None):
        raise ValueError(f"cookie {name}: the __Host- prefix requires secure=True, path='/' and no domain")
    return "; ".join(parts)


def format_delete_cookie(
    name: str, *, path: str | None = "/", domain: str | None = None, secure: bool = False, samesite: str | None = None
) -> str:
    """A ``Set-Cookie`` field value that removes cookie ``name`` (empty value, expired).

    ``path`` and ``domain`` must match the ones it was set with, or the browser keeps it.

    Raises:
        ValueError: as :func:`format_set_cookie`.
    """
    line = format_set_cookie(name, "", max_age=0, path=path, domain=domain, secure=secure, samesite=samesite)
    return line.replace("; Max-Age=0", f"; Max-Age=0; Expires={_EPOCH_EXPIRES}", 1)
