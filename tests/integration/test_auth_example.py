"""The chopin-auth README example (packages/chopin-auth/examples/app.py), served with 4 workers.

It signs users in against Argon2id hashes in PostgreSQL (a private ``pg_cluster``),
issues tokens, guards ``/admin`` by role and revokes a token at ``/logout``.  A
keep-alive connection stays on one worker, so each fresh connection first asks
``/me`` with a token that stays valid (the answer names the worker's pid) and then
asks with the token under test: the test knows which worker answered each time,
and meets every worker before and after the revocation.
"""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

SCRIPT = "packages/chopin-auth/examples/app.py"
WORKERS = 4
DEADLINE = 60.0  # to meet every worker through fresh connections
BOUND = 2.0  # seconds after /logout returned by which every worker refuses the token


@pytest.fixture(scope="module")
def base_url(pg_cluster, serve_script) -> str:
    pg_cluster.psql("DROP TABLE IF EXISTS app_users; DROP TABLE IF EXISTS chopin_revoked_tokens;")
    env = {**pg_cluster.libpq_env(), "JWT_SECRET": secrets.token_hex(32)}
    return serve_script(SCRIPT, workers=WORKERS, extra_env=env)


def sign_in(base_url: str, name: str, password: str) -> httpx.Response:
    return httpx.post(f"{base_url}/login", json={"name": name, "password": password}, timeout=30.0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_of(base_url: str, name: str, password: str) -> str:
    response = sign_in(base_url, name, password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    return str(body["access_token"])


def per_worker(base_url: str, witness: str, token: str, path: str = "/me") -> dict[int, set[int]]:
    """Status codes for ``token`` at ``path``, by the pid of the worker that answered."""
    seen: dict[int, set[int]] = {}
    deadline = time.monotonic() + DEADLINE
    while len(seen) < WORKERS and time.monotonic() < deadline:
        with httpx.Client(base_url=base_url, timeout=30.0) as client:  # one connection: one worker
            who = client.get("/me", headers=bearer(witness))
            assert who.status_code == 200
            pid = who.json()["pid"]
            response = client.get(path, headers=bearer(token))
            assert who.json()["pid"] == pid
        seen.setdefault(pid, set()).add(response.status_code)
    assert len(seen) == WORKERS, f"met {len(seen)} of {WORKERS} workers in {DEADLINE} s"
    return seen


def test_passwords_are_argon2id_hashes_in_postgresql(base_url, pg_cluster) -> None:
    hashes = pg_cluster.psql("SELECT name || ' ' || hash FROM app_users ORDER BY name").splitlines()
    assert [line.split()[0] for line in hashes] == ["alice", "bob"]
    assert all(line.split()[1].startswith("$argon2id$v=19$m=65536,t=3,p=4$") for line in hashes)


def test_sign_in_refusals(base_url) -> None:
    assert sign_in(base_url, "alice", "wrong").status_code == 401
    assert sign_in(base_url, "nobody", "alice-password").status_code == 401
    response = httpx.post(f"{base_url}/login", content=b"{not json", timeout=30.0)
    assert response.status_code == 400
    assert httpx.post(f"{base_url}/login", json={"name": "alice"}, timeout=30.0).status_code == 422


def test_me_needs_a_token(base_url) -> None:
    response = httpx.get(f"{base_url}/me", timeout=30.0)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    response = httpx.get(f"{base_url}/me", headers=bearer("not.a.token"), timeout=30.0)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    body = httpx.get(f"{base_url}/me", headers=bearer(token_of(base_url, "bob", "bob-password")), timeout=30.0)
    assert body.json()["sub"] == "bob" and body.json()["role"] == "user"


def test_admin_route_is_guarded_by_role_in_every_worker(base_url) -> None:
    alice = token_of(base_url, "alice", "alice-password")
    bob = token_of(base_url, "bob", "bob-password")
    assert all(codes == {200} for codes in per_worker(base_url, bob, alice, "/admin/report").values())
    assert all(codes == {403} for codes in per_worker(base_url, bob, bob, "/admin/report").values())
    report = httpx.get(f"{base_url}/admin/report", headers=bearer(alice), timeout=30.0).json()
    assert report["users"] == 2
    assert httpx.get(f"{base_url}/admin/report", timeout=30.0).status_code == 401


def test_logout_revokes_the_token_in_every_worker(base_url) -> None:
    alice = token_of(base_url, "alice", "alice-password")
    bob = token_of(base_url, "bob", "bob-password")
    assert all(codes == {200} for codes in per_worker(base_url, bob, alice).values())
    response = httpx.post(f"{base_url}/logout", headers=bearer(alice), timeout=30.0)
    assert response.status_code == 204
    revoked_at = time.monotonic()
    # Each worker must refuse; one may still accept only until the revocation's notification
    # has reached it, which the bound allows for (it takes well under a millisecond when idle).
    refused: set[int] = set()
    deadline = revoked_at + DEADLINE
    while len(refused) < WORKERS and time.monotonic() < deadline:
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            pid = client.get("/me", headers=bearer(bob)).json()["pid"]
            status = client.get("/me", headers=bearer(alice)).status_code
        if status == 401:
            refused.add(pid)
        else:
            assert status == 200 and time.monotonic() - revoked_at < BOUND, (pid, status)
    assert len(refused) == WORKERS, f"refused by {len(refused)} of {WORKERS} workers"
    response = httpx.get(f"{base_url}/me", headers=bearer(alice), timeout=30.0)
    assert "token revoked" in response.headers["www-authenticate"]
    # a new sign-in gets a new token that works again
    again = token_of(base_url, "alice", "alice-password")
    assert httpx.get(f"{base_url}/me", headers=bearer(again), timeout=30.0).status_code == 200
