"""TechEmpower /db and /queries of benchmarks/techempower/app.py: chopin-core on chopin-pg.

The World table is loaded into a private PostgreSQL cluster (chopin-testkit's
``pg_cluster``), and the app reaches it through the libpq variables, as in the
benchmark; each of two workers fills its own pool (one connection) after the fork.
"""

from __future__ import annotations

import httpx
import pytest

ROWS = 10_000


def expected(world_id: int) -> int:
    return 1 + (world_id * 7919) % 10_000


@pytest.fixture(scope="module", params=["blocking", "async"])
def base_url(request, pg_cluster, serve_script) -> str:
    """The app served both ways: blocking handlers, and async def handlers on chopin_pg.AsyncPool."""
    pg_cluster.psql(
        "DROP TABLE IF EXISTS world;"
        "CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL);"
        f"INSERT INTO world SELECT i, 1 + (i * 7919) % 10000 FROM generate_series(1, {ROWS}) AS i;"
    )
    env = {**pg_cluster.libpq_env(), "CHOPIN_TE_MODE": request.param}
    return serve_script("benchmarks/techempower/app.py", workers=2, extra_env=env)


def test_db_returns_one_world_row(base_url):
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        for _ in range(20):
            response = client.get("/db")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            world = response.json()
            assert set(world) == {"id", "randomNumber"}
            assert 1 <= world["id"] <= ROWS
            assert world["randomNumber"] == expected(world["id"])


@pytest.mark.parametrize(("raw", "count"), [("20", 20), ("1", 1), ("0", 1), ("501", 500), ("abc", 1), ("", 1)])
def test_queries_count_is_clamped(base_url, raw, count):
    response = httpx.get(f"{base_url}/queries?queries={raw}", timeout=10.0)
    assert response.status_code == 200
    worlds = response.json()
    assert len(worlds) == count
    assert all(w["randomNumber"] == expected(w["id"]) for w in worlds)
