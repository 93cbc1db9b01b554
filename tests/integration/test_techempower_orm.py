"""TechEmpower /fortunes and /updates of benchmarks/techempower/app.py: chopin-core on chopin-orm.

A private PostgreSQL cluster (chopin-testkit's ``pg_cluster``) gets its own database with
the World table; the app creates and fills the Fortune table itself at worker start. Each
answer is checked against what the database holds.
"""

from __future__ import annotations

import html

import chopin_pg
import httpx
import pytest

ROWS = 10_000
DATABASE = "techempower_orm"
HEAD = "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>"
TAIL = "</table></body></html>"


@pytest.fixture(scope="module")
def database(pg_cluster) -> str:
    pg_cluster.psql(f"DROP DATABASE IF EXISTS {DATABASE}")
    pg_cluster.psql(f"CREATE DATABASE {DATABASE}")
    pg_cluster.psql(
        "CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL);"
        f"INSERT INTO world SELECT i, 1 + (i * 7919) % 10000 FROM generate_series(1, {ROWS}) AS i;",
        database=DATABASE,
    )
    return pg_cluster.dsn(database=DATABASE)


@pytest.fixture(scope="module", params=["blocking", "async"])
def base_url(request, pg_cluster, database, serve_script) -> str:
    """The app served both ways: blocking handlers, and async def handlers on chopin_pg.AsyncPool."""
    env = {**pg_cluster.libpq_env(), "PGDATABASE": DATABASE, "CHOPIN_TE_MODE": request.param}
    return serve_script("benchmarks/techempower/app.py", workers=2, extra_env=env)


def test_fortunes_are_the_table_plus_one_sorted_and_escaped(base_url, database):
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        response = client.get("/fortunes")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        body = response.text
        again = client.get("/fortunes").text  # the other worker (or the same one) answers the same
    with chopin_pg.connect(database) as conn:
        rows = [(r[0], r[1]) for r in conn.query("SELECT id, message FROM fortune")]
    assert len(rows) == 12  # TechEmpower's rows, loaded once although two workers started
    rows.append((0, "Additional fortune added at request time."))
    rows.sort(key=lambda r: r[1])
    expected = HEAD + "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td></tr>" for i, m in rows) + TAIL
    assert body == expected and again == expected
    assert "&lt;script&gt;alert(&quot;This should not be displayed" in body
    assert "<script>" not in body
    assert "フレームワークのベンチマーク" in body


@pytest.mark.parametrize(("raw", "count"), [("20", 20), ("1", 1), ("0", 1), ("501", 500), ("abc", 1), ("", 1)])
def test_updates_write_what_they_return(base_url, database, raw, count):
    response = httpx.get(f"{base_url}/updates?queries={raw}", timeout=20.0)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    worlds = response.json()
    assert len(worlds) == count
    assert all(set(w) == {"id", "randomNumber"} and 1 <= w["id"] <= ROWS for w in worlds)
    assert all(1 <= w["randomNumber"] <= 10_000 for w in worlds)
    last = {w["id"]: w["randomNumber"] for w in worlds}  # an id drawn twice keeps its last value
    with chopin_pg.connect(database) as conn:
        stored = dict(conn.query("SELECT id, randomnumber FROM world WHERE id = ANY($1)", (list(last),)))
    assert stored == last
