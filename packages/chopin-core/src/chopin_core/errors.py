"""The exception hierarchy of chopin-core.

Every error the engine raises derives from :class:`ChopinError`.  Protocol errors
(:class:`ProtocolError` and its subclasses) carry the HTTP status code the server
answers with (like h11's ``error_status_hint``), so the worker never has to guess.
"""

from __future__ import annotations

import errno

__all__ = [
    "AddressInUse",
    "BadRequest",
    "BodyTooLarge",
    "ChopinError",
    "ConfigError",
    "ExtractError",
    "HandlerTimeout",
    "HeadTooLarge",
    "ProtocolError",
    "RouteConflict",
    "UnsupportedTransferCoding",
    "UnsupportedVersion",
    "UriTooLong",
]


class ChopinError(Exception):
    """Root of every exception raised by chopin-core."""


class ConfigError(ChopinError, ValueError):
    """A setting or environment variable holds a value the engine cannot use."""


class AddressInUse(ChopinError, OSError):
    """Another process already listens on the address a server was asked to serve.

    Raised at start-up unless ``Settings.reuse_port_shared`` asks to share the port.
    An ``OSError`` too (``errno`` is ``EADDRINUSE``, ``strerror`` the reason), like the
    bind failure it stands for.

    Attributes:
        address: ``host:port`` as the server was asked to bind it.
    """

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(errno.EADDRINUSE, reason)
        self.address = address

    def __str__(self) -> str:
        return f"cannot listen on {self.address}: {self.strerror}"


class RouteConflict(ChopinError, ValueError):
    """Two routes claim the same method and path, or a pattern is malformed."""


class ProtocolError(ChopinError):
    """The peer broke HTTP/1.1 framing or exceeded a limit.

    Attributes:
        status: the status code the server answers with before closing.
        message: a human-readable reason (sent as the response body).
    """

    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(ProtocolError):
    """Malformed request line, header or framing (400)."""

    status = 400


class HeadTooLarge(ProtocolError):
    """The request head is larger than ``max_request_head_size`` or has too many headers (431)."""

    status = 431


class UriTooLong(ProtocolError):
    """The request target is longer than ``max_uri_length`` (414)."""

    status = 414


class BodyTooLarge(ProtocolError):
    """The request body is larger than ``max_body_size`` (413)."""

    status = 413


class UnsupportedTransferCoding(ProtocolError):
    """A transfer-coding other than ``chunked`` was sent (501)."""

    status = 501


class UnsupportedVersion(ProtocolError):
    """An HTTP version other than 1.0 or 1.1 (505)."""

    status = 505


class HandlerTimeout(ChopinError, TimeoutError):
    """An ``async def`` handler passed ``Settings.handler_timeout``; raised where it waits.

    Left uncaught it is answered 504 (the handler's upstream did not answer in time).
    """

    status = 504


class ExtractError(ChopinError):
    """A request could not be turned into the type a handler asked for.

    Attributes:
        status: 400 for unreadable input, 422 for input that fails validation.
        message: what was expected, what came, and where.
        detail: ``(JSON path, message)`` pairs (kowito-json's), for JSON error bodies.
    """

    # Set: the worker answers with this Response, headers included.  Typed object so the
    # error hierarchy imports nothing above it; the worker checks the type.
    response: object | None = None

    def __init__(
        self,
        message: str,
        status: int = 422,
        response: object | None = None,
        detail: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail
        if response is not None:
            self.response = response
