"""The exception hierarchy of chopin-auth.

Every error the package raises derives from :class:`AuthError`.  Errors a request
can cause carry the HTTP status they map to (``status``), so the default error
handler and custom ones never have to guess.
"""

from __future__ import annotations

from chopin_core import ExtractError, Response

__all__ = [
    "AlreadyInitialized",
    "AuthError",
    "AuthRejected",
    "BlacklistFull",
    "EncodingKeyMissing",
    "Expired",
    "Forbidden",
    "InvalidKey",
    "InvalidParameters",
    "InvalidToken",
    "JwksUnavailable",
    "MalformedHash",
    "ManagerNotInitialized",
    "MissingToken",
    "OAuthError",
    "PasswordTooLong",
    "RevocationUnavailable",
    "Revoked",
    "TokenEndpointError",
]


class AuthError(Exception):
    """Root of every exception raised by chopin-auth.

    Attributes:
        status: the HTTP status a request failing with this error is answered with.
    """

    status: int = 401


# -- tokens ---------------------------------------------------------------------


class InvalidToken(AuthError):
    """The token is malformed, badly signed, or fails a claim check (401).

    Attributes:
        reason: what was wrong (``signature verification failed``, ``wrong audience`` …).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid token: {reason}")
        self.reason = reason


class Expired(AuthError):
    """The token's ``exp`` is in the past, beyond the leeway (401)."""

    def __init__(self, message: str = "token expired") -> None:
        super().__init__(message)


class Revoked(AuthError):
    """The token's ``jti`` is in the revocation list (401)."""

    def __init__(self, jti: str = "") -> None:
        super().__init__("token revoked")
        self.jti = jti


class MissingToken(AuthError):
    """The request has no ``Authorization: Bearer`` header (401)."""

    def __init__(self, message: str = "no bearer token in the Authorization header") -> None:
        super().__init__(message)


class Forbidden(AuthError):
    """The token is valid but lacks a required role or scope (403).

    Attributes:
        missing_scopes: the scopes that were required and absent (empty for a role check).
    """

    status = 403

    def __init__(self, message: str, missing_scopes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing_scopes = missing_scopes


# -- configuration --------------------------------------------------------------


class EncodingKeyMissing(AuthError):
    """``encode`` was called on a verify-only manager (500)."""

    status = 500

    def __init__(self, message: str = "this JwtManager has no signing key (it was built verify-only)") -> None:
        super().__init__(message)


class InvalidKey(AuthError, ValueError):
    """A key cannot be used: unreadable PEM, wrong key type, too short (500)."""

    status = 500


class ManagerNotInitialized(AuthError):
    """A request needed the JWT manager before ``init_jwt_manager`` was called (500)."""

    status = 500

    def __init__(self, message: str = "init_jwt_manager(manager) was not called before serving") -> None:
        super().__init__(message)


class AlreadyInitialized(AuthError):
    """``init_jwt_manager`` was called a second time (500)."""

    status = 500


class RevocationUnavailable(AuthError):
    """The revocation list cannot be consulted (its database is unreachable); requests fail closed (503)."""

    status = 503


class JwksUnavailable(AuthError):
    """A provider's JWKS cannot be fetched or read and no fresh keys are cached; tokens are refused (503).

    Attributes:
        url: the JWKS URL.
    """

    status = 503

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"JWKS {url}: {reason}; tokens signed by this provider are refused until it answers")
        self.url = url
        self.reason = reason


class BlacklistFull(AuthError):
    """The revocation list holds ``max_entries`` unexpired entries (500)."""

    status = 500


# -- passwords ------------------------------------------------------------------


class InvalidParameters(AuthError, ValueError):
    """Argon2 parameters outside the accepted ranges."""

    status = 500


class MalformedHash(AuthError, ValueError):
    """A stored password hash is not an Argon2 PHC string."""

    status = 500


class PasswordTooLong(AuthError, ValueError):
    """A password is longer than ``max_password_bytes`` (400)."""

    status = 400


# -- OAuth ----------------------------------------------------------------------


class OAuthError(AuthError):
    """An OAuth flow failed: the authorization server refused, or the callback does not fit.

    Attributes:
        error: the RFC 6749 error code (``access_denied``, ``invalid_grant`` …) or a local one.
        description: the server's ``error_description``, or what was wrong.
    """

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


class TokenEndpointError(OAuthError):
    """The token endpoint answered with an error or with something that is not a token response.

    Attributes:
        http_status: the endpoint's status code (0 when no answer came).
    """

    def __init__(self, error: str, description: str = "", http_status: int = 0) -> None:
        super().__init__(error, description)
        self.http_status = http_status


# -- requests -------------------------------------------------------------------


class AuthRejected(AuthError, ExtractError):
    """Raised by the ``Auth[Claims]`` extractor: carries the response to answer with.

    It is also a chopin-core :class:`~chopin_core.ExtractError`, so without any middleware
    the worker answers with its status and message; the :func:`~chopin_auth.auth_errors`
    middleware (or :func:`~chopin_auth.require_role` / :func:`~chopin_auth.require_scope`)
    answers with :attr:`response` itself, headers included (``WWW-Authenticate``).

    Attributes:
        error: the :class:`AuthError` that caused it.
        response: the response the error handler made for it.
    """

    response: Response

    def __init__(self, error: AuthError, response: Response) -> None:
        ExtractError.__init__(self, str(error), response.status, response)
        self.error = error
        self.response = response
