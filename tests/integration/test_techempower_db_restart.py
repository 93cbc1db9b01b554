"""TechEmpower /db of benchmarks/techempower/app.py survives a PostgreSQL restart.

The app once kept one bare connection per worker: after a server restart every /db
answered 500 until the app itself was restarted.  Through the pool, the next checkout
finds the dead connection and opens a new one.  The cluster is private to this module
(chopin-testkit's ``PgCluster``), so restarting it disturbs no other test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from chopin_testkit import PgCluster

ROWS = 10_000  # /db reads a random id in 1..10000


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[PgCluster]:
    with PgCluster() as cluster:
        cluster.psql(
            "CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL);"
            f"INSERT INTO world SELECT i, 1 + (i * 7919) % 10000 FROM generate_series(1, {ROWS}) AS i;"
        )
        yield cluster


def first_ok(client: httpx.Client, path: str, within: float) -> tuple[float, list[int]]:
    """Request ``path`` until it answers 200; the seconds that took and the statuses seen before."""
    start = time.monotonic()
    failures: list[int] = []
    while True:
        try:
            status = client.get(path).status_code
        except httpx.TransportError:
            status = 0
        if status == 200:
            return time.monotonic() - start, failures
        failures.append(status)
        if time.monotonic() - start > within:
            pytest.fail(f"{path} did not answer 200 within {within} s after the restart: {failures[-5:]}")
        time.sleep(0.02)


@pytest.mark.parametrize("mode", ["blocking", "async"])
def test_db_answers_again_right_after_a_postgres_restart(private_cluster: PgCluster, serve_script, mode: str) -> None:
    env = {**private_cluster.libpq_env(), "CHOPIN_TE_MODE": mode}  # async: AsyncPool, handlers that wait
    base_url = serve_script("benchmarks/techempower/app.py", workers=2, extra_env=env)
    # No keep-alive: each request is a new connection, so both workers (SO_REUSEPORT) answer some.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base_url, timeout=5.0, limits=limits) as client:
        assert [client.get("/db").status_code for _ in range(20)] == [200] * 20
        private_cluster.restart()  # every worker's connection is now dead
        took, failures = first_ok(client, "/db", within=5.0)
        # Each worker's first checkout finds its dead connection and replaces it: no 500 at all.
        assert failures == [], f"answers before the first 200 ({took:.2f} s): {failures}"
        statuses = [client.get("/db").status_code for _ in range(20)]
        assert statuses == [200] * 20


def test_a_restart_under_load_fails_what_was_in_flight_and_nothing_hangs(
    private_cluster: PgCluster, serve_script
) -> None:
    import concurrent.futures
    import threading

    env = {**private_cluster.libpq_env(), "CHOPIN_TE_MODE": "async"}
    base_url = serve_script("benchmarks/techempower/app.py", workers=1, extra_env=env)
    stop = threading.Event()
    seen: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=base_url, timeout=10.0) as client:
            while not stop.is_set():
                try:
                    seen.append(client.get("/queries?queries=5").status_code)
                except httpx.TimeoutException:
                    seen.append(-1)  # a hang: the worker never answered
                except httpx.TransportError:
                    seen.append(0)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        jobs = [pool.submit(hammer) for _ in range(16)]
        time.sleep(1.0)
        private_cluster.restart()  # queries of waiting handlers are cut off mid-flight
        time.sleep(1.5)
        stop.set()
        for job in jobs:
            job.result(30)
    assert -1 not in seen and 0 not in seen, "a request hung or the connection broke"
    assert set(seen) <= {200, 500}  # 500: a query the restart cut off (seen: a handful of ~1,300)
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        assert [client.get("/db").status_code for _ in range(20)] == [200] * 20  # the pool reconnected
