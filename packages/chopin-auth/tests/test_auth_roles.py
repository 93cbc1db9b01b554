"""``require_role`` and ``require_scope`` on ``layer_path``: 401 without a token, 403 without the grant."""

from __future__ import annotations

import pytest
from auth_apps.guarded import Role, build_router
from auth_testing import SECRET
from chopin_auth import JwtManager, granted_scopes, has_role, init_jwt_manager, require_role, require_scope
from chopin_core import TestClient


@pytest.fixture
def client() -> TestClient:
    init_jwt_manager(JwtManager(SECRET))
    return TestClient(build_router())


def get(client: TestClient, path: str, **claims: object) -> tuple[int, str | None]:
    token = JwtManager(SECRET).encode(claims)
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    return response.status, response.header("WWW-Authenticate")


def test_role_granted_and_refused(client: TestClient) -> None:
    assert get(client, "/admin/panel", sub="a", role="admin")[0] == 200
    assert get(client, "/admin/panel", sub="a", roles=["user", "admin"])[0] == 200
    status, challenge = get(client, "/admin/panel", sub="a", role="user")
    assert status == 403 and challenge is None
    assert get(client, "/admin/panel", sub="a")[0] == 403


def test_any_of_several_roles(client: TestClient) -> None:
    assert get(client, "/staff/panel", sub="a", role="user")[0] == 200
    assert get(client, "/staff/panel", sub="a", role="admin")[0] == 200
    assert get(client, "/staff/panel", sub="a", role="guest")[0] == 403


def test_claims_implementing_rolecheck_decide_themselves(client: TestClient) -> None:
    assert get(client, "/groups/admin", sub="a", groups=["group-admin"])[0] == 200
    assert get(client, "/groups/admin", sub="a", groups=["group-user"], role="admin")[0] == 403
    # claims that do not fit RoleClaims: 401, the token is unusable for this route
    assert get(client, "/groups/admin", sub="a")[0] == 401


def test_no_or_bad_token_is_401_not_403(client: TestClient) -> None:
    response = client.get("/admin/panel")
    assert response.status == 401 and response.header("WWW-Authenticate") == 'Bearer realm="api"'
    response = client.get("/reports", headers={"Authorization": "Bearer x.y.z"})
    assert response.status == 401


def test_scopes(client: TestClient) -> None:
    assert get(client, "/reports", sub="a", scope="reports:read reports:list other")[0] == 200
    assert get(client, "/reports", sub="a", scp=["reports:read", "reports:list"])[0] == 200
    status, challenge = get(client, "/reports", sub="a", scope="reports:read")
    assert status == 403
    assert challenge == 'Bearer realm="api", error="insufficient_scope", scope="reports:list"'


def test_other_routes_are_not_guarded(client: TestClient) -> None:
    assert client.get("/missing").status == 404


def test_default_role_check() -> None:
    assert has_role({"role": "admin"}, Role.ADMIN)
    assert has_role({"roles": ("a", "admin")}, "admin")
    assert not has_role({"role": "user"}, Role.ADMIN)
    assert not has_role({"roles": "admin"}, "admin")  # a string is not a list of roles
    assert granted_scopes({"scope": "a b", "scp": ["c", 1]}) == {"a", "b", "c"}


def test_factories_check_their_arguments() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        require_role()
    with pytest.raises(ValueError, match="at least one scope"):
        require_scope()
    with pytest.raises(ValueError, match="not a scope token"):
        require_scope("two words")
