"""The process-wide JWT manager and error handler the extractor and middleware use.

A deliberate registry (as chopin-core's route decorators): set once at start-up,
before the server forks, so every worker inherits it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import AlreadyInitialized, ManagerNotInitialized
from .responses import default_error_response

if TYPE_CHECKING:
    from chopin_core import Response

    from .errors import AuthError
    from .tokens import JwtManager
    from .types import ErrorHandler

__all__ = ["error_handler", "has_jwt_manager", "init_jwt_manager", "jwt_manager", "respond_to", "set_error_handler"]

log = logging.getLogger("chopin_auth")


class _Registry:
    __slots__ = ("error_handler", "manager")

    def __init__(self) -> None:
        self.manager: JwtManager | None = None
        self.error_handler: ErrorHandler = default_error_response

    def clear(self) -> None:
        """Forget the manager and the error handler (for tests that start over)."""
        self.manager = None
        self.error_handler = default_error_response


_REGISTRY = _Registry()


def init_jwt_manager(manager: JwtManager) -> None:
    """Install ``manager`` for :class:`~chopin_auth.Auth` and the role/scope middleware; once per process.

    Raises:
        AlreadyInitialized: a manager was installed before.
        TypeError: ``manager`` is not a :class:`~chopin_auth.JwtManager`.
    """
    from .tokens import JwtManager

    if not isinstance(manager, JwtManager):
        raise TypeError(f"init_jwt_manager: expected a JwtManager, got {type(manager).__name__}")
    if _REGISTRY.manager is not None:
        raise AlreadyInitialized("init_jwt_manager was already called; the manager is set once, at start-up")
    _REGISTRY.manager = manager


def jwt_manager() -> JwtManager:
    """The installed manager.

    Raises:
        ManagerNotInitialized: :func:`init_jwt_manager` was not called.
    """
    manager = _REGISTRY.manager
    if manager is None:
        raise ManagerNotInitialized()
    return manager


def has_jwt_manager() -> bool:
    """Whether :func:`init_jwt_manager` was called in this process."""
    return _REGISTRY.manager is not None


def set_error_handler(handler: ErrorHandler) -> None:
    """Answer authentication failures with ``handler(error)`` instead of the default responses."""
    if not callable(handler):
        raise TypeError(f"set_error_handler: expected a callable, got {type(handler).__name__}")
    _REGISTRY.error_handler = handler


def error_handler() -> ErrorHandler:
    """The handler that turns an :class:`~chopin_auth.AuthError` into a response."""
    return _REGISTRY.error_handler


def respond_to(error: AuthError) -> Response:
    """The error handler's response to ``error``; a 5xx (a server-side fault) is logged with its traceback."""
    if error.status >= 500:
        log.error("authentication failed on the server side: %s", error, exc_info=error)
    return _REGISTRY.error_handler(error)
