"""The default error responses and their ``WWW-Authenticate`` challenges (RFC 6750 3)."""

from __future__ import annotations

import pytest
from chopin_auth import (
    AuthError,
    AuthRejected,
    EncodingKeyMissing,
    Expired,
    Forbidden,
    InvalidToken,
    ManagerNotInitialized,
    MissingToken,
    RevocationUnavailable,
    Revoked,
    default_error_response,
)
from chopin_auth.responses import www_authenticate
from chopin_core import Response, Router, TestClient


def header(response: Response, name: str) -> str | None:
    """``name`` as a client reads it, once the response went through chopin-core's serialiser."""
    router = Router()
    router.get("/", lambda ctx: response)
    return TestClient(router).get("/").header(name)


def test_missing_token_challenge_has_no_error_code() -> None:
    assert www_authenticate(MissingToken()) == 'Bearer realm="api"'


@pytest.mark.parametrize("error", [Expired(), Revoked("j"), InvalidToken("signature verification failed")])
def test_token_errors_are_401_invalid_token(error: AuthError) -> None:
    response = default_error_response(error)
    assert response.status == 401
    challenge = header(response, "WWW-Authenticate") or ""
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')


def test_description_cannot_break_out_of_the_quoted_string() -> None:
    challenge = www_authenticate(InvalidToken('evil" injected="1\\\r\nX: y'))
    assert challenge.count('"') == 6  # realm, error, description: three quoted strings
    assert "\r" not in challenge and "\n" not in challenge and "\\" not in challenge


def test_forbidden() -> None:
    response = default_error_response(Forbidden("requires role 'admin'"))
    assert response.status == 403 and header(response, "WWW-Authenticate") is None
    response = default_error_response(Forbidden("requires scope a b", missing_scopes=("a", "b")))
    assert header(response, "WWW-Authenticate") == 'Bearer realm="api", error="insufficient_scope", scope="a b"'


@pytest.mark.parametrize(
    ("error", "status"),
    [(ManagerNotInitialized(), 500), (EncodingKeyMissing(), 500), (RevocationUnavailable("x"), 503)],
)
def test_server_side_errors_tell_nothing(error: AuthError, status: int) -> None:
    response = default_error_response(error)
    assert response.status == status
    assert str(error).encode() not in response.body


def test_auth_rejected_is_in_both_hierarchies() -> None:
    from chopin_core import ExtractError

    rejected = AuthRejected(MissingToken(), Response.text("x", 401))
    assert isinstance(rejected, AuthError) and isinstance(rejected, ExtractError)
    assert rejected.status == 401 and rejected.message == str(MissingToken())
