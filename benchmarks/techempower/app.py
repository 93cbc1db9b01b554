"""Chopin TechEmpower app: /plaintext, /json, and /db and /queries on chopin-pg.

Run with `PORT=8080 WORKERS=1 python benchmarks/techempower/app.py`. Chopin adds the
Server and Date headers itself. /db and /queries read the World table (id 1..10000,
randomnumber) from the PostgreSQL server the libpq variables name (PGHOST, PGPORT,
PGUSER, PGDATABASE); benchmarks/pg.py loads it. Handlers run one at a time in a
worker, so each worker needs exactly one connection, opened after the fork.
"""

from __future__ import annotations

import os
import random
from typing import Any

from chopin_core import Chopin, Context, Response, Router

router = Router()
WORLD_SQL = "SELECT id, randomnumber FROM world WHERE id = $1"
db: dict[str, Any] = {}  # this worker's connection, set by open_connection


def plaintext(ctx: Context) -> Response:
    return Response.text_static(b"Hello, World!")


def json_(ctx: Context) -> Response:
    # Serialized per request, as TechEmpower requires.
    return Response.json({"message": "Hello, World!"})


def _world(conn: Any) -> dict[str, int]:
    row = conn.query(WORLD_SQL, (random.randint(1, 10000),))[0]
    return {"id": row[0], "randomNumber": row[1]}


def single_query(ctx: Context) -> Response:
    return Response.json(_world(db["conn"]))


def queries(ctx: Context) -> Response:
    # TechEmpower: a missing or malformed count is 1, and it is clamped to 1..500.
    raw = ctx.req.query_params().get("queries", "1")
    count = min(max(int(raw), 1), 500) if raw.isdigit() else 1
    # N separate queries, sent on one pipeline: one round trip instead of N.
    with db["conn"].pipeline() as pipe:
        pending = [pipe.query(WORLD_SQL, (random.randint(1, 10000),)) for _ in range(count)]
    return Response.json([{"id": row[0], "randomNumber": row[1]} for row in (p.rows()[0] for p in pending)])


router.get("/plaintext", plaintext)
router.get("/json", json_)
router.get("/db", single_query)
router.get("/queries", queries)
app = Chopin(router)
if os.environ.get("METRICS") == "1":  # benchmarks/http.py measures the overhead of metrics with it
    app.with_metrics("/metrics")


@app.on_worker_start
def open_connection(index: int) -> None:
    try:
        import chopin_pg
    except ImportError:  # /plaintext and /json need no database
        return
    try:
        db["conn"] = chopin_pg.connect()  # PGHOST, PGPORT, PGUSER, PGDATABASE
    except chopin_pg.PgError as exc:
        print(f"worker {index}: no database ({exc}); /db and /queries will answer 500")


if __name__ == "__main__":
    app.serve()
