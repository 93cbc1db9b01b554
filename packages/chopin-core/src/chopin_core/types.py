"""Public protocols and aliases of chopin-core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from .context import Context
    from .response import Response

__all__ = ["AsyncHandler", "AsyncMiddleware", "Handler", "Middleware"]

Handler: TypeAlias = "Callable[[Context], Response]"
"""A request handler: takes the request context, returns a response."""

Middleware: TypeAlias = "Callable[[Context, Handler], Response]"
"""Wraps a handler: ``mw(ctx, next)`` may answer itself or call ``next(ctx)``."""

AsyncHandler: TypeAlias = "Callable[[Context], Awaitable[Response]]"
"""A handler that waits: ``async def handler(ctx) -> Response``, driven by the worker's loop."""

AsyncMiddleware: TypeAlias = "Callable[[Context, AsyncHandler], Awaitable[Response]]"
"""Middleware of handlers that wait: ``async def mw(ctx, call_next)`` awaits ``call_next(ctx)``."""
