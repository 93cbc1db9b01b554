"""``require_role`` and ``require_scope``: middleware factories for ``layer``/``layer_path``.

Both verify the bearer token with the installed manager (once per request; the
handler's ``Auth[Claims]`` reuses it) and answer through the error handler: 401
without a valid token, 403 when the claims lack the role or scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from chopin_core import Context, Response
from chopin_core.middleware import with_async_form
from chopin_core.types import AsyncHandler, Handler, Middleware

from .errors import AuthError, Forbidden
from .extract import claims_as, role_value, verified_payload
from .registry import respond_to
from .types import RoleCheck

__all__ = ["granted_scopes", "has_role", "require_role", "require_scope"]

R = TypeVar("R")


def has_role(claims: object, role: object) -> bool:
    """The default role check.

    Claims implementing :class:`~chopin_auth.RoleCheck` answer themselves; otherwise the
    role (an enum member's value, or the role itself) is compared with the ``role``
    claim (a string) and looked up in the ``roles`` claim (a list), read from a dict
    or from attributes.
    """
    if isinstance(claims, RoleCheck):
        return bool(claims.has_role(role))
    wanted = role_value(role)
    if isinstance(claims, Mapping):
        single, many = claims.get("role"), claims.get("roles")
    else:
        single, many = getattr(claims, "role", None), getattr(claims, "roles", None)
    if single is not None and role_value(single) == wanted:
        return True
    if isinstance(many, list | tuple | set | frozenset):
        return any(role_value(item) == wanted for item in many)
    return False


def require_role(
    *roles: R,
    claims: type[Any] | None = None,
    check: Callable[[Any, R], bool] | None = None,
) -> Middleware:
    """Middleware letting through requests whose token grants at least one of ``roles``.

    Args:
        *roles: the roles accepted (any one suffices).
        claims: decode the claims as this type before checking (default: the claims dict).
        check: ``check(claims, role) -> bool``; default :func:`has_role`.

    Returns:
        A middleware for ``router.layer``/``router.layer_path`` (401 without a valid
        token, 403 without the role).
    """
    if not roles:
        raise ValueError("require_role: expected at least one role")
    checker: Callable[[Any, Any], bool] = check if check is not None else has_role
    names = ", ".join(repr(role_value(r)) for r in roles)

    def refusal(ctx: Context) -> Response | None:
        try:
            _, payload = verified_payload(ctx)
            subject = payload if claims is None else claims_as(payload, claims)
            if not any(checker(subject, role) for role in roles):
                raise Forbidden(f"requires role {names}" if len(roles) == 1 else f"requires one of the roles {names}")
        except AuthError as error:
            return respond_to(error)
        return None

    def require_role_middleware(ctx: Context, next: Handler) -> Response:
        refused = refusal(ctx)
        return refused if refused is not None else next(ctx)

    async def require_role_waiting(ctx: Context, next: AsyncHandler) -> Response:
        refused = refusal(ctx)
        return refused if refused is not None else await next(ctx)

    require_role_middleware.__name__ = require_role_waiting.__name__ = f"require_role({names})"
    return with_async_form(require_role_middleware, require_role_waiting)


def granted_scopes(payload: Mapping[str, Any]) -> frozenset[str]:
    """The scopes a token grants: its ``scope`` claim (space-separated, RFC 8693 4.2) and ``scp`` (a list or string)."""
    out: set[str] = set()
    for name in ("scope", "scp"):
        value = payload.get(name)
        if isinstance(value, str):
            out.update(value.split())
        elif isinstance(value, list | tuple):
            out.update(item for item in value if isinstance(item, str))
    return frozenset(out)


def require_scope(*scopes: str) -> Middleware:
    """Middleware letting through requests whose token grants every one of ``scopes``.

    Returns:
        A middleware for ``router.layer``/``router.layer_path`` (401 without a valid
        token, 403 with ``error="insufficient_scope"`` when a scope is missing).
    """
    if not scopes:
        raise ValueError("require_scope: expected at least one scope")
    for scope in scopes:
        if not isinstance(scope, str) or not scope or any(ch in scope for ch in ' "\\') or not scope.isprintable():
            raise ValueError(f"require_scope: {scope!r} is not a scope token (RFC 6749 3.3)")
    needed = tuple(scopes)

    def refusal(ctx: Context) -> Response | None:
        try:
            _, payload = verified_payload(ctx)
            missing = tuple(s for s in needed if s not in granted_scopes(payload))
            if missing:
                raise Forbidden(f"requires scope {' '.join(missing)}", missing_scopes=missing)
        except AuthError as error:
            return respond_to(error)
        return None

    def require_scope_middleware(ctx: Context, next: Handler) -> Response:
        refused = refusal(ctx)
        return refused if refused is not None else next(ctx)

    async def require_scope_waiting(ctx: Context, next: AsyncHandler) -> Response:
        refused = refusal(ctx)
        return refused if refused is not None else await next(ctx)

    require_scope_middleware.__name__ = require_scope_waiting.__name__ = f"require_scope({' '.join(needed)})"
    return with_async_form(require_scope_middleware, require_scope_waiting)
