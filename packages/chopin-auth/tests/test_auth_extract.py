"""``Auth[Claims]``, ``auth_errors``, the registry and custom error handlers.

In-process through chopin-core's TestClient (the real parser, router and
serialiser), and over real sockets with httpx against a served app.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from auth_apps.guarded import build_router
from auth_testing import SECRET
from chopin_auth import (
    AlreadyInitialized,
    Auth,
    AuthError,
    AuthRejected,
    Expired,
    InvalidToken,
    JwtManager,
    ManagerNotInitialized,
    MissingToken,
    Revoked,
    TokenBlacklist,
    bearer_token,
    extract,
    init_jwt_manager,
    jwt_manager,
    set_error_handler,
)
from chopin_core import Context, Response, Router, TestClient


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def manager() -> JwtManager:
    manager = JwtManager(SECRET)
    init_jwt_manager(manager)
    return manager


# -- header parsing ------------------------------------------------------------------------


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer  abc.def.ghi ") == "abc.def.ghi"  # scheme is case-insensitive
    with pytest.raises(MissingToken):
        bearer_token(None)
    with pytest.raises(MissingToken, match="'Basic'"):
        bearer_token("Basic dXNlcjpwYXNz")
    with pytest.raises(InvalidToken, match="empty"):
        bearer_token("Bearer ")
    with pytest.raises(InvalidToken, match="b64token"):
        bearer_token("Bearer abc def")


# -- registry ------------------------------------------------------------------------------


def test_init_twice_is_an_error(manager: JwtManager) -> None:
    assert jwt_manager() is manager
    with pytest.raises(AlreadyInitialized):
        init_jwt_manager(JwtManager(SECRET))
    with pytest.raises(TypeError, match="expected a JwtManager"):
        init_jwt_manager("not a manager")  # type: ignore[arg-type]


def test_no_manager() -> None:
    with pytest.raises(ManagerNotInitialized):
        jwt_manager()
    client = TestClient(build_router())
    response = client.get("/me", headers=bearer("a.b.c"))
    assert response.status == 500
    assert b"init_jwt_manager" not in response.body  # no configuration details to clients


def test_extract_refuses_other_markers(manager: JwtManager) -> None:
    def handler(ctx: Context) -> Response:
        extract(ctx, dict)  # type: ignore[arg-type]
        return Response.text("unreachable")

    router = Router()
    router.get("/", handler)
    assert TestClient(router).get("/").status == 500


# -- the extractor in handlers ----------------------------------------------------------------


def test_valid_token_gives_the_claims(manager: JwtManager) -> None:
    token = manager.encode({"sub": "alice", "role": "admin"})
    client = TestClient(build_router())
    body = client.get("/me", headers=bearer(token)).json()
    assert body["sub"] == "alice" and body["role"] == "admin" and body["jti"] == manager.decode(token)["jti"]
    claims = client.get("/me-dict", headers=bearer(token)).json()["claims"]
    assert claims["sub"] == "alice" and "exp" in claims


def test_missing_token_is_401_with_a_bare_challenge(manager: JwtManager) -> None:
    response = TestClient(build_router()).get("/me")
    assert response.status == 401
    assert response.header("WWW-Authenticate") == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("make_token", "description"),
    [
        (lambda m: "not-a-jwt", "malformed token"),
        (lambda m: JwtManager(SECRET + "x").encode({"sub": "a", "role": "r"}), "signature verification failed"),
        (lambda m: m.encode({"sub": "a", "role": "r", "exp": int(time.time()) - 60}), "token expired"),
        (lambda m: m.encode({"sub": "a"}), "claims do not fit Claims"),
    ],
)
def test_bad_tokens_are_401_invalid_token(
    manager: JwtManager, make_token: Callable[[JwtManager], str], description: str
) -> None:
    response = TestClient(build_router()).get("/me", headers=bearer(make_token(manager)))
    assert response.status == 401
    challenge = response.header("WWW-Authenticate") or ""
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')
    assert description in challenge


def test_without_the_error_layer_the_worker_answers_the_full_401(manager: JwtManager) -> None:
    response = TestClient(build_router(with_error_layer=False)).get("/me")
    assert response.status == 401
    # AuthRejected is an ExtractError carrying its response: the worker answers with it, headers included.
    assert response.header("WWW-Authenticate") == 'Bearer realm="api"'


def test_revoked_token_is_refused() -> None:
    blacklist = TokenBlacklist()
    manager = JwtManager(SECRET).with_blacklist(blacklist)
    init_jwt_manager(manager)
    token = manager.encode({"sub": "a", "role": "user"})
    client = TestClient(build_router())
    assert client.get("/me", headers=bearer(token)).status == 200
    payload = manager.decode(token)
    blacklist.revoke(payload["jti"], payload["exp"])
    response = client.get("/me", headers=bearer(token))
    assert response.status == 401
    assert "token revoked" in (response.header("WWW-Authenticate") or "")


def test_custom_error_handler(manager: JwtManager) -> None:
    seen: list[AuthError] = []

    def as_json(error: AuthError) -> Response:
        seen.append(error)
        kind = {Expired: "expired", Revoked: "revoked"}.get(type(error), "invalid")
        return Response.json({"error": kind}, error.status)

    set_error_handler(as_json)
    client = TestClient(build_router())
    expired = manager.encode({"sub": "a", "role": "r", "exp": int(time.time()) - 60})
    response = client.get("/me", headers=bearer(expired))
    assert (response.status, response.json()) == (401, {"error": "expired"})
    assert isinstance(seen[-1], Expired)
    response = client.get("/admin/panel", headers=bearer(manager.encode({"sub": "a", "role": "user"})))
    assert (response.status, response.json()) == (403, {"error": "invalid"})
    with pytest.raises(TypeError):
        set_error_handler("nope")  # type: ignore[arg-type]


def test_auth_rejected_is_a_chopin_extract_error(manager: JwtManager) -> None:
    from chopin_core import ExtractError

    assert issubclass(AuthRejected, ExtractError)
    try:
        bearer_token(None)
    except MissingToken as exc:
        rejected = AuthRejected(exc, Response.text("x", 401))
        assert rejected.status == 401 and rejected.error is exc


def test_auth_generic_shape(manager: JwtManager) -> None:
    auth = Auth({"sub": "a"}, {"sub": "a", "jti": "j", "exp": 5}, "t")
    assert (auth.jti, auth.expires_at, auth.token) == ("j", 5.0, "t")
    assert Auth("c", {}, "t").jti is None


# -- over a real socket ------------------------------------------------------------------------


def test_served_app_over_real_sockets(serve_auth_app: Callable[..., str]) -> None:
    base = serve_auth_app("auth_apps.guarded:router")
    token = JwtManager(SECRET).encode({"sub": "carol", "role": "admin", "scope": "reports:read reports:list"})
    with httpx.Client(base_url=base, timeout=10.0) as client:
        response = client.get("/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="api"'
        response = client.get("/me", headers=bearer(token))
        assert response.status_code == 200 and response.json()["sub"] == "carol"
        response = client.get("/me", headers=bearer(token[:-2] + "xx"))
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert client.get("/admin/panel", headers=bearer(token)).status_code == 200
        assert client.get("/reports", headers=bearer(token)).status_code == 200
