"""Route decorators (``@get("/users")``) and the registry ``mount_all_routes`` reads.

The registry is the one deliberate piece of module-level state: decorators record
``(method, path, handler)`` as modules are imported, and each app copies what it
mounts into its own :class:`~chopin_core.router.Router`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .types import Handler

__all__ = ["delete", "get", "head", "options", "patch", "post", "put", "registered_routes", "route"]


class RegisteredRoute(NamedTuple):
    """A route found by a decorator."""

    method: str
    path: str
    handler: Handler
    module: str


_REGISTRY: list[RegisteredRoute] = []


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    """Mark ``handler`` as answering ``method`` ``path``; ``Chopin().mount_all_routes()`` mounts it."""

    def decorate(handler: Handler) -> Handler:
        _REGISTRY.append(RegisteredRoute(method.upper(), path, handler, handler.__module__))
        return handler

    return decorate


def get(path: str) -> Callable[[Handler], Handler]:
    """Decorator for a GET route."""
    return route("GET", path)


def post(path: str) -> Callable[[Handler], Handler]:
    """Decorator for a POST route."""
    return route("POST", path)


def put(path: str) -> Callable[[Handler], Handler]:
    """Decorator for a PUT route."""
    return route("PUT", path)


def patch(path: str) -> Callable[[Handler], Handler]:
    """Decorator for a PATCH route."""
    return route("PATCH", path)


def delete(path: str) -> Callable[[Handler], Handler]:
    """Decorator for a DELETE route."""
    return route("DELETE", path)


def head(path: str) -> Callable[[Handler], Handler]:
    """Decorator for a HEAD route."""
    return route("HEAD", path)


def options(path: str) -> Callable[[Handler], Handler]:
    """Decorator for an OPTIONS route."""
    return route("OPTIONS", path)


def registered_routes(package: str | None = None) -> list[RegisteredRoute]:
    """The decorated routes imported so far, optionally only those under ``package``."""
    if package is None:
        return list(_REGISTRY)
    return [r for r in _REGISTRY if r.module == package or r.module.startswith(package + ".")]
