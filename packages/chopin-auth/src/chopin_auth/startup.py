"""The start-up check chopin-auth adds to chopin-core: ``Auth[...]`` routes need a JWT manager.

Without :func:`~chopin_auth.init_jwt_manager` every guarded request would answer
500; the check turns that into a refusal to start that names the missing call.
A route counts as guarded when chopin-auth middleware wraps it (``auth_errors``,
``require_role``, ``require_scope``) or when its handler's code refers to
``Auth``, ``extract`` or ``verified_payload`` from chopin-auth (directly or
through the ``chopin_auth`` module).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

from chopin_core import Router

from .errors import ManagerNotInitialized
from .registry import has_jwt_manager

__all__ = ["check_jwt_manager"]

# Middleware defined in these modules reads the token, so it needs the manager.
_MIDDLEWARE_MODULES = frozenset({"chopin_auth.extract", "chopin_auth.roles"})


def check_jwt_manager(router: Router) -> None:
    """Refuse to serve ``router`` when routes use chopin-auth and no JWT manager is installed.

    Raises:
        ManagerNotInitialized: naming :func:`~chopin_auth.init_jwt_manager` and the routes that need it.
    """
    if has_jwt_manager():
        return
    guarded = [f"{route.method} {route.path}" for route in router.routes if _guarded(route.handler, route.layers)]
    layers = [prefix or "/" for prefix, mw in router.layers if _is_auth_middleware(mw)]
    if not guarded and not layers:
        return
    where = ", ".join(guarded[:5]) + (f" and {len(guarded) - 5} more" if len(guarded) > 5 else "")
    if layers:
        where = (where + "; " if where else "") + "chopin-auth middleware on " + ", ".join(sorted(set(layers)))
    raise ManagerNotInitialized(
        f"init_jwt_manager(manager) was not called before serving, and routes need it ({where}): "
        "call chopin_auth.init_jwt_manager(JwtManager(...)) before app.serve()"
    )


def _guarded(handler: object, layers: tuple[object, ...]) -> bool:
    return any(_is_auth_middleware(mw) for mw in layers) or _refers_to_auth(handler)


def _is_auth_middleware(mw: object) -> bool:
    return getattr(mw, "__module__", None) in _MIDDLEWARE_MODULES


def _refers_to_auth(handler: object) -> bool:
    """Whether ``handler``'s code (nested functions included) names chopin-auth's token readers."""
    code = getattr(handler, "__code__", None)
    scope = getattr(handler, "__globals__", None)
    if not isinstance(code, types.CodeType) or not isinstance(scope, dict):
        return False
    package = sys.modules["chopin_auth"]
    readers = {id(getattr(package, name)) for name in ("Auth", "extract", "verified_payload")}
    readers.add(id(package))
    for block in _code_blocks(code):
        for name in block.co_names:
            if name in scope and id(scope[name]) in readers:
                return True
    return False


def _code_blocks(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_blocks(const)
