"""The default responses for authentication failures (RFC 6750 section 3).

401 carries ``WWW-Authenticate: Bearer``: bare when no token came (3.1: no error
code then), with ``error="invalid_token"`` when one came and failed.  403 for a
missing scope carries ``error="insufficient_scope"`` and the ``scope`` needed.
Configuration errors are 500 and an unreachable revocation list 503, neither with
details in the body.
"""

from __future__ import annotations

from typing import Final

from chopin_core import Response

from .errors import AuthError, Forbidden, MissingToken

__all__ = ["REALM", "default_error_response", "www_authenticate"]

REALM: Final = "api"


def _quoted(text: str) -> str:
    """``text`` as an RFC 9110 quoted-string, limited to printable ASCII (6750 3: no ``"`` or ``\\``)."""
    cleaned = "".join(ch for ch in text if " " <= ch <= "~" and ch not in '"\\')
    return f'"{cleaned}"'


def www_authenticate(error: AuthError) -> str:
    """The ``WWW-Authenticate`` value for ``error``."""
    if isinstance(error, MissingToken):
        return f"Bearer realm={_quoted(REALM)}"
    if isinstance(error, Forbidden):
        scope = f", scope={_quoted(' '.join(error.missing_scopes))}" if error.missing_scopes else ""
        return f"Bearer realm={_quoted(REALM)}, error={_quoted('insufficient_scope')}{scope}"
    return f"Bearer realm={_quoted(REALM)}, error={_quoted('invalid_token')}, error_description={_quoted(str(error))}"


def default_error_response(error: AuthError) -> Response:
    """401/403 with ``WWW-Authenticate`` and the reason as text; 500/503 with a generic body."""
    status = error.status
    if status == 401:
        return Response.text(str(error), 401).with_header("WWW-Authenticate", www_authenticate(error))
    if status == 403:
        response = Response.text(str(error), 403)
        if isinstance(error, Forbidden) and error.missing_scopes:
            response = response.with_header("WWW-Authenticate", www_authenticate(error))
        return response
    if status == 503:
        return Response.text("Service Unavailable", 503).with_header("Retry-After", "1")
    return Response.server_error() if status >= 500 else Response.text(str(error), status)
