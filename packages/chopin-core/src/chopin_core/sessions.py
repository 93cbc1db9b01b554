"""Signed-cookie sessions: a JSON dict in a cookie, HMAC-SHA256 signed, with expiry and key rotation.

The cookie value is ``<payload>.<issued>.<mac>``: the base64url JSON payload, the Unix
time it was signed, and HMAC-SHA256 over both under a key derived from the secret
(``hmac`` from the stdlib).  The data is signed, not encrypted: the client can read it,
only not change it.  The first key signs; every key verifies, so a new key is rolled in
by putting it first and the old one is dropped once its cookies have expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson

from .cookies import format_set_cookie
from .middleware import with_async_form

if TYPE_CHECKING:
    from .context import Context
    from .response import Response
    from .types import AsyncHandler, Handler, Middleware

__all__ = ["SESSION_MAX_AGE", "SessionSigner", "sessions"]

SESSION_MAX_AGE: Final = 14 * 24 * 3600
"""Seconds a session cookie stays valid after it was last written (two weeks)."""

MAX_SESSION_COOKIE: Final = 4096
"""Bytes of a session cookie value; browsers drop bigger cookies (RFC 6265 6.1 asks for 4096)."""

_SKEW: Final = 60  # seconds of clock difference between workers/hosts tolerated for a future stamp


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Signs and verifies session cookie values.

    Args:
        secret_keys: one or more secrets (32+ random bytes each); the first signs,
            all verify (key rotation).
        max_age: seconds a value stays valid after signing.
        salt: separates these signatures from other uses of the same secret.

    Raises:
        ValueError: no key, or a key shorter than 16 bytes.
    """

    __slots__ = ("_keys", "max_age")

    def __init__(
        self, secret_keys: Sequence[str | bytes], *, max_age: int = SESSION_MAX_AGE, salt: bytes = b"chopin.session"
    ) -> None:
        if isinstance(secret_keys, (str, bytes)) or not secret_keys:
            raise ValueError("secret_keys: expected a non-empty list of keys, newest first")
        keys = [key.encode() if isinstance(key, str) else key for key in secret_keys]
        if any(len(key) < 16 for key in keys):
            raise ValueError("secret_keys: every key must be at least 16 bytes (use secrets.token_bytes(32))")
        # One derived key per secret: the raw secret is never used as the HMAC key directly.
        self._keys = [hmac.new(key, salt, hashlib.sha256).digest() for key in keys]
        self.max_age = max_age

    def dumps(self, data: dict[str, Any], now: float | None = None) -> str:
        """``data`` as a signed cookie value (JSON-encodable values only)."""
        payload = _b64(orjson.dumps(data))
        signed = f"{payload}.{int(time.time() if now is None else now)}"
        mac = hmac.new(self._keys[0], signed.encode("ascii"), hashlib.sha256).digest()
        return f"{signed}.{_b64(mac)}"

    def loads(self, value: str, now: float | None = None) -> dict[str, Any] | None:
        """The data of a signed value, or ``None`` when it is forged, malformed or expired."""
        signed, _, mac_text = value.rpartition(".")
        payload, _, issued_text = signed.partition(".")
        if not mac_text or not issued_text.isdigit() or not issued_text.isascii():
            return None
        try:
            mac = _unb64(mac_text)
        except ValueError:
            return None
        message = signed.encode("ascii", "replace")
        # compare_digest against every key: constant time per key, whichever key matches.
        if not any(hmac.compare_digest(hmac.new(k, message, hashlib.sha256).digest(), mac) for k in self._keys):
            return None
        age = (time.time() if now is None else now) - int(issued_text)
        if age > self.max_age or age < -_SKEW:
            return None
        try:
            data = orjson.loads(_unb64(payload))
        except (ValueError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None


def sessions(
    secret_keys: Sequence[str | bytes],
    *,
    cookie_name: str = "session",
    max_age: int = SESSION_MAX_AGE,
    path: str = "/",
    domain: str | None = None,
    secure: bool = True,
    samesite: str = "Lax",
) -> Middleware:
    """Middleware keeping a per-client dict in a signed cookie, at ``ctx.state["session"]``.

    The handler reads and changes ``ctx.state["session"]`` (a plain dict); when it
    changed, the response carries a fresh cookie (``HttpOnly``); when it was emptied,
    the cookie is deleted.  A forged, malformed or expired cookie reads as an empty
    session.  Each write restarts ``max_age``.

    Args:
        secret_keys: signing keys, newest first (see :class:`SessionSigner`).
        cookie_name: the cookie's name.
        max_age: seconds a session lives after its last write.
        path: the cookie's ``Path``.
        domain: the cookie's ``Domain`` (host-only when ``None``).
        secure: send the cookie over HTTPS only (turn off for plain-HTTP development).
        samesite: the cookie's ``SameSite``.

    Raises:
        ValueError: bad keys or cookie attributes (checked here, not per request);
            per request, a session that signs to more than ``MAX_SESSION_COOKIE``
            (4096) bytes raises it from the layer (a 500: keep sessions small).
    """
    signer = SessionSigner(secret_keys, max_age=max_age)
    format_set_cookie(cookie_name, "x", path=path, domain=domain, secure=secure, samesite=samesite)  # validate now

    def load(ctx: Context) -> tuple[dict[str, Any], dict[str, Any] | None]:
        raw = ctx.cookies.get(cookie_name)
        loaded = signer.loads(raw) if raw else None
        session: dict[str, Any] = dict(loaded) if loaded else {}
        ctx.state["session"] = session
        return session, loaded

    def session_layer(ctx: Context, call_next: Handler) -> Response:
        session, loaded = load(ctx)
        return store(call_next(ctx), session, loaded)

    async def session_waiting(ctx: Context, call_next: AsyncHandler) -> Response:
        session, loaded = load(ctx)
        return store(await call_next(ctx), session, loaded)

    def store(resp: Response, session: dict[str, Any], loaded: dict[str, Any] | None) -> Response:
        if session == (loaded or {}):
            return resp
        if not session:
            return resp.delete_cookie(cookie_name, path=path, domain=domain, secure=secure)
        value = signer.dumps(session)
        if len(value) > MAX_SESSION_COOKIE:
            raise ValueError(f"session: {len(value)} bytes signed, more than the {MAX_SESSION_COOKIE} a cookie holds")
        return resp.set_cookie(
            cookie_name,
            value,
            max_age=max_age,
            path=path,
            domain=domain,
            secure=secure,
            httponly=True,
            samesite=samesite,
        )

    return with_async_form(session_layer, session_waiting)
