"""The ``Auth[Claims]`` extractor and the middleware that turns its refusals into responses.

``ctx.extract(Auth[Claims])`` (or ``extract(ctx, Auth[Claims])``) is resolved like
chopin-core's ``ctx.extract(Json[T])``: ``Auth`` carries chopin-core's extractor hook
(``__chopin_extract__``).  A refusal raises :class:`~chopin_auth.AuthRejected`, a
chopin-core ``ExtractError`` that holds the response the error handler made; the worker
answers with that response, headers (``WWW-Authenticate``) included.  :func:`auth_errors`
(one ``router.layer``) does the same for middleware that runs before the handler.
"""

from __future__ import annotations

import enum
import logging
import re
import typing
from typing import Any, Final, Generic, TypeVar

import kowito_json
from chopin_core import Context, Response
from chopin_core.middleware import with_async_form
from chopin_core.types import AsyncHandler, Handler

from .errors import AuthError, AuthRejected, InvalidToken, MissingToken
from .registry import error_handler, jwt_manager

log = logging.getLogger("chopin_auth")

__all__ = ["Auth", "auth_errors", "bearer_token", "claims_as", "extract", "verified_payload"]

C = TypeVar("C")

_STATE_KEY: Final = "chopin_auth.verified"
# RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class Auth(Generic[C]):
    """What ``extract(ctx, Auth[Claims])`` returns: the verified claims and the token.

    Attributes:
        claims: the claims as the type asked for (a dataclass, or a dict for ``Auth[dict]``).
        payload: every claim as a dict (``jti``, ``exp`` … even when ``Claims`` lacks them).
        token: the bearer token as sent.
    """

    __slots__ = ("claims", "payload", "token")

    def __init__(self, claims: C, payload: dict[str, Any], token: str) -> None:
        self.claims = claims
        self.payload = payload
        self.token = token

    @property
    def jti(self) -> str | None:
        """The token id (``jti``), for revocation."""
        jti = self.payload.get("jti")
        return jti if isinstance(jti, str) else None

    @property
    def expires_at(self) -> float | None:
        """The token's ``exp`` as a POSIX timestamp."""
        exp = self.payload.get("exp")
        return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None

    def __repr__(self) -> str:
        return f"<Auth {self.claims!r}>"

    @classmethod
    def __chopin_extract__(cls, ctx: Context, kind: Any) -> Auth[Any]:
        """chopin-core's extractor hook: ``ctx.extract(Auth[Claims])`` is :func:`extract`."""
        return extract(ctx, kind)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value (RFC 6750 2.1).

    The scheme is case-insensitive (RFC 9110 11.1).

    Raises:
        MissingToken: no header, or another scheme.
        InvalidToken: a ``Bearer`` header whose token is empty or not a b64token.
    """
    if authorization is None:
        raise MissingToken()
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingToken(f"Authorization scheme {scheme[:20]!r}, expected Bearer")
    token = rest.strip(" ")
    if not token:
        raise InvalidToken("empty bearer token")
    if _B64TOKEN.fullmatch(token) is None:
        raise InvalidToken("bearer token has characters outside the RFC 6750 b64token set")
    return token


def verified_payload(ctx: Context) -> tuple[str, dict[str, Any]]:
    """The request's bearer token and its verified claims, checked once per request.

    The result is kept in ``ctx.state``, so a role middleware and the handler's
    extractor verify the token once between them.

    Raises:
        AuthError: no token, a bad token, no manager, an unreachable revocation list.
    """
    state = ctx.state
    cached = state.get(_STATE_KEY)
    if cached is not None:
        return typing.cast("tuple[str, dict[str, Any]]", cached)
    token = bearer_token(ctx.header("authorization"))
    payload = jwt_manager().decode_payload(token)
    state[_STATE_KEY] = (token, payload)
    return token, payload


def claims_as(payload: dict[str, Any], kind: Any) -> Any:
    """``payload`` as ``kind``: itself for ``dict``/``dict[str, Any]``, else decoded by kowito-json.

    Raises:
        InvalidToken: the claims do not fit ``kind``.
    """
    if kind is dict or typing.get_origin(kind) is dict or kind is Any:
        return payload
    try:
        return kowito_json.decoder_for(kind).from_builtins(payload)
    except kowito_json.ValidationError as exc:
        raise InvalidToken(f"claims do not fit {getattr(kind, '__name__', kind)}: {exc}") from None


def extract(ctx: Context, kind: type[Auth[C]]) -> Auth[C]:
    """Resolve ``Auth[Claims]`` against the request: verify its bearer token, decode its claims.

    Raises:
        AuthRejected: the request is not authenticated (401 with ``WWW-Authenticate``),
            no manager was installed (500) or the revocation list is unreachable (503);
            it holds the error handler's response.
        TypeError: ``kind`` is not ``Auth[T]``.
    """
    args = typing.get_args(kind)
    if typing.get_origin(kind) is not Auth or len(args) != 1:
        raise TypeError(f"extract: expected Auth[T], got {kind!r}")
    try:
        token, payload = verified_payload(ctx)
        claims = claims_as(payload, args[0])
    except AuthError as error:
        # "from error": a 5xx (no manager, revocation list down) is logged with this cause.
        raise AuthRejected(error, error_handler()(error)) from error
    return Auth(claims, payload, token)


def _rejected(exc: AuthRejected) -> Response:
    if exc.response.status >= 500:
        # chopin-core would log this 5xx had it reached the worker: it stops here.
        log.error("authentication failed on the server side: %s", exc.error, exc_info=exc.error)
    return exc.response


def _auth_errors(ctx: Context, next: Handler) -> Response:
    try:
        return next(ctx)
    except AuthRejected as exc:
        return _rejected(exc)


async def _auth_errors_waiting(ctx: Context, next: AsyncHandler) -> Response:
    try:
        return await next(ctx)
    except AuthRejected as exc:
        return _rejected(exc)


_auth_errors.__name__ = _auth_errors_waiting.__name__ = "auth_errors"
auth_errors = with_async_form(_auth_errors, _auth_errors_waiting)
"""Middleware: answer an :class:`AuthRejected` with its response (``router.layer(auth_errors)``)."""


def role_value(role: object) -> object:
    """An enum member's value, anything else as is (how roles are compared with claims)."""
    return role.value if isinstance(role, enum.Enum) else role
