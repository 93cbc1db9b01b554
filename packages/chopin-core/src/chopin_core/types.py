"""Public protocols and aliases of chopin-core."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from .context import Context
    from .response import Response

__all__ = ["Handler", "Middleware"]

Handler: TypeAlias = "Callable[[Context], Response]"
"""A request handler: takes the request context, returns a response."""

Middleware: TypeAlias = "Callable[[Context, Handler], Response]"
"""Wraps a handler: ``mw(ctx, next)`` may answer itself or call ``next(ctx)``."""
