"""A revocation made in one worker of a WORKERS=4 server is refused by every worker within a bound.

The server (``auth_apps.workers``) checks tokens against ``PgRevocations`` on the
machine's PostgreSQL.  Fresh connections are spread over the workers by
``SO_REUSEPORT``; the test opens new ones until it has heard from every worker
pid, before and after the revocation.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from auth_testing import SECRET
from chopin_auth import JwtManager
from chopin_pg import connect

WORKERS = 4
BOUND = 2.0  # seconds after the revoking request returned by which every worker must refuse
DEADLINE = 60.0  # to meet every worker at least once through fresh connections


@pytest.fixture
def table(local_pg) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"auth_workers_{uuid.uuid4().hex[:12]}"
    yield name
    with connect(local_pg.dsn()) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def fresh_get(base: str, token: str) -> tuple[int, int]:
    """One request on a new connection: (status, worker pid)."""
    with httpx.Client(base_url=base, timeout=10.0, headers={"Connection": "close"}) as client:
        response = client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    pid = response.json()["pid"] if response.status_code == 200 else int(response.headers["x-worker-pid"])
    return response.status_code, pid


def test_revocation_holds_in_every_worker(serve_auth_app: Callable[..., str], local_pg, table: str) -> None:  # type: ignore[no-untyped-def]
    env = {"AUTH_TEST_TABLE": table, **local_pg.libpq_env()}
    base = serve_auth_app("auth_apps.workers:router", workers=WORKERS, env=env)
    token = JwtManager(SECRET).encode({"sub": "alice"})

    # Every worker accepts the token (and so has its listener connection open).
    accepted: set[int] = set()
    deadline = time.monotonic() + DEADLINE
    while len(accepted) < WORKERS and time.monotonic() < deadline:
        status, pid = fresh_get(base, token)
        assert status == 200
        accepted.add(pid)
    assert len(accepted) == WORKERS, f"met only {len(accepted)} workers in {DEADLINE} s"

    # Revoke through one worker.
    with httpx.Client(base_url=base, timeout=10.0) as client:
        response = client.post("/revoke", headers={"Authorization": f"Bearer {token}"})
    revoked_at = time.monotonic()
    assert response.status_code == 200
    revoker = response.json()["pid"]

    # Meet every worker again on fresh connections: each must refuse, none may accept after the bound.
    refused: dict[int, float] = {}
    late_accepts: list[tuple[int, float]] = []
    deadline = time.monotonic() + DEADLINE
    while len(refused) < WORKERS and time.monotonic() < deadline:
        status, pid = fresh_get(base, token)
        elapsed = time.monotonic() - revoked_at
        if status == 401:
            refused.setdefault(pid, elapsed)
        else:
            assert status == 200
            if elapsed > BOUND:
                late_accepts.append((pid, elapsed))
    assert not late_accepts, f"workers accepted the revoked token after {BOUND} s: {late_accepts}"
    assert set(refused) == accepted, f"refused by {sorted(refused)}, workers {sorted(accepted)}"
    assert revoker in refused
