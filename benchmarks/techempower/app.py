"""Chopin TechEmpower app: /plaintext, /json, /db and /queries on chopin-pg, /fortunes and /updates on chopin-orm.

Run with `PORT=8080 WORKERS=1 python benchmarks/techempower/app.py`. Chopin adds the
Server and Date headers itself. /db, /queries and /updates read the World table (id
1..10000, randomnumber) from the PostgreSQL server the libpq variables name (PGHOST,
PGPORT, PGUSER, PGDATABASE); benchmarks/pg.py loads it. /fortunes reads the Fortune
table, which a worker creates and fills with TechEmpower's 12 rows when it is missing.

Each worker has its own PgPool of one connection (handlers run one at a time in a
worker), filled after the fork; every request checks it out and returns it. Through the
pool a PostgreSQL restart costs one failed request at most: the next checkout finds the
dead connection and opens a new one (a bare connection kept per worker answered 500
until the app was restarted).

``CHOPIN_TE_MODE=async`` serves /db, /queries, /fortunes and /updates with ``async def``
handlers on ``chopin_pg.AsyncPool`` (a few connections per worker, queries from
concurrent requests pipelined on them; ``POOL_SIZE``, default 4), which the worker
drives on its own loop while it serves other requests. ``CHOPIN_TE_MODE=blocking``, the
default, is the variant above. With ``SLOW_URL`` set, ``/slow`` calls that URL (the slow
upstream of benchmarks/db_latency.py): blocking, with ``HttpClient``; async, with
``AsyncHttpClient``.
"""

from __future__ import annotations

import html
import os
import random
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

from chopin_core import Chopin, Context, Response, Router
from fortune_rows import FORTUNE_ROWS  # beside this file: run as a script, its folder is on sys.path

router = Router()
WORLD_SQL = "SELECT id, randomnumber FROM world WHERE id = $1"
UPDATE_SQL = "UPDATE world SET randomnumber = $2 WHERE id = $1"
FORTUNE_SQL = "SELECT id, message FROM fortune"
db: dict[str, Any] = {}  # this worker's pool, set by open_pool
MODE = os.environ.get("CHOPIN_TE_MODE", "blocking")
SLOW_URL = os.environ.get("SLOW_URL", "")
if MODE not in ("blocking", "async"):
    raise SystemExit(f"CHOPIN_TE_MODE must be blocking or async, not {MODE!r}")


def plaintext(ctx: Context) -> Response:
    return Response.text_static(b"Hello, World!")


def json_(ctx: Context) -> Response:
    # Serialized per request, as TechEmpower requires.
    return Response.json({"message": "Hello, World!"})


def _world(conn: Any) -> dict[str, int]:
    row = conn.query(WORLD_SQL, (random.randint(1, 10000),))[0]
    return {"id": row[0], "randomNumber": row[1]}


def single_query(ctx: Context) -> Response:
    with db["pool"].get() as conn:
        return Response.json(_world(conn))


def queries(ctx: Context) -> Response:
    # TechEmpower: a missing or malformed count is 1, and it is clamped to 1..500.
    raw = ctx.req.query_params().get("queries", "1")
    count = min(max(int(raw), 1), 500) if raw.isdigit() else 1
    # N separate queries, sent on one pipeline: one round trip instead of N.
    with db["pool"].get() as conn, conn.pipeline() as pipe:
        pending = [pipe.query(WORLD_SQL, (random.randint(1, 10000),)) for _ in range(count)]
    return Response.json([{"id": row[0], "randomNumber": row[1]} for row in (p.rows()[0] for p in pending)])


try:
    from chopin_orm import column, model
except ImportError:  # /fortunes and /updates need chopin-orm; the other routes do not
    model = None


if model is not None:

    @model(table="fortune")
    @dataclass
    class Fortune:
        id: int = column(primary_key=True)
        message: str = ""

    @model(table="world")
    @dataclass
    class World:
        id: int = column(primary_key=True)
        randomnumber: int = 0


FORTUNES_HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>"
)
FORTUNES_TAIL = "</table></body></html>"
EXTRA_FORTUNE = "Additional fortune added at request time."


def fortunes(ctx: Context) -> Response:
    # TechEmpower: every row, plus one added at request time, sorted by message, HTML-escaped.
    with db["pool"].get() as conn:
        rows = Fortune.query().all(conn)
    rows.append(Fortune(0, EXTRA_FORTUNE))
    rows.sort(key=attrgetter("message"))
    escape = html.escape
    body = "".join([f"<tr><td>{f.id}</td><td>{escape(f.message)}</td></tr>" for f in rows])
    return Response.html(FORTUNES_HEAD + body + FORTUNES_TAIL)


def updates(ctx: Context) -> Response:
    raw = ctx.req.query_params().get("queries", "1")
    count = min(max(int(raw), 1), 500) if raw.isdigit() else 1
    # Each world is read by its own query (the rules), the N reads pipelined in one round
    # trip (get_many), then the N updates likewise (update_many, in id order).
    with db["pool"].get() as conn:
        worlds = World.get_many(conn, [random.randint(1, 10000) for _ in range(count)])
        for world in worlds:
            world.randomnumber = random.randint(1, 10000)
        World.update_many(conn, worlds)
    return Response.json([{"id": w.id, "randomNumber": w.randomnumber} for w in worlds])


def ensure_fortunes(conn: Any) -> None:
    """Create and fill the Fortune table if it is missing (an advisory lock keeps workers from racing)."""
    with conn.transaction():
        conn.query("SELECT pg_advisory_xact_lock(hashtext('chopin techempower fortune'))")
        conn.execute("CREATE TABLE IF NOT EXISTS fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL)")
        if conn.query_scalar("SELECT count(*) FROM fortune") == 0:
            Fortune.insert_many(conn, [Fortune(i, m) for i, m in FORTUNE_ROWS])


def query_count(ctx: Context) -> int:
    # TechEmpower: a missing or malformed count is 1, and it is clamped to 1..500.
    raw = ctx.req.query_params().get("queries", "1")
    return min(max(int(raw), 1), 500) if raw.isdigit() else 1


def fortunes_page(rows: list[tuple[int, str]]) -> Response:
    rows.append((0, EXTRA_FORTUNE))
    rows.sort(key=itemgetter(1))
    escape = html.escape
    body = "".join([f"<tr><td>{i}</td><td>{escape(m)}</td></tr>" for i, m in rows])
    return Response.html(FORTUNES_HEAD + body + FORTUNES_TAIL)


def slow(ctx: Context) -> Response:
    # Blocking: the worker waits for the upstream and serves nobody else meanwhile.
    return Response.text(db["http"].request("GET", SLOW_URL).body)


# -- the non-blocking variant (CHOPIN_TE_MODE=async) --------------------------------


def async_support() -> str:
    """What this chopin-core and chopin-pg lack for the async variant ("" when nothing)."""
    import chopin_core

    try:
        import chopin_pg
    except ImportError:
        return "chopin_pg is not installed"
    missing = [name for name, ok in (
        ("chopin_pg.AsyncPool", hasattr(chopin_pg, "AsyncPool")),
        ("chopin_core.sleep", hasattr(chopin_core, "sleep")),
    ) if not ok]  # fmt: skip
    return ", ".join(missing) + " not there yet" if missing else ""


def async_pool() -> Any:
    """The worker-local AsyncPool: made at import, it connects lazily in each worker after the fork."""
    import chopin_pg

    env = os.environ.get
    url = (
        f"postgresql://{env('PGUSER', 'postgres')}@{env('PGHOST', '127.0.0.1')}:{env('PGPORT', '5432')}"
        f"/{env('PGDATABASE', 'test')}"
    )
    return chopin_pg.AsyncPool(url, size=int(env("POOL_SIZE", "4")))


async def single_query_async(ctx: Context) -> Response:
    row = await apool.query_one(WORLD_SQL, (random.randint(1, 10000),))
    return Response.json({"id": row[0], "randomNumber": row[1]})


async def _read_worlds(count: int) -> list[Any]:
    # N separate queries (the rules), awaited together: the pool pipelines them, one round trip.
    from chopin_core import gather

    return await gather(*(apool.query_one(WORLD_SQL, (random.randint(1, 10000),)) for _ in range(count)))


async def queries_async(ctx: Context) -> Response:
    rows = await _read_worlds(query_count(ctx))
    return Response.json([{"id": row[0], "randomNumber": row[1]} for row in rows])


async def fortunes_async(ctx: Context) -> Response:
    if model is not None:  # through chopin-orm, as the blocking variant
        found = await Fortune.query().aall(apool)
        return fortunes_page([(f.id, f.message) for f in found])
    rows = await apool.query(FORTUNE_SQL)
    return fortunes_page([(row[0], row[1]) for row in rows])


async def updates_async(ctx: Context) -> Response:
    rows = await _read_worlds(query_count(ctx))
    worlds = [{"id": row[0], "randomNumber": random.randint(1, 10000)} for row in rows]
    # In id order, as the blocking variant and the peers: concurrent requests lock rows in one order.
    # A stable sort by id: an id drawn twice keeps its last value, as in the answer.
    await apool.executemany(UPDATE_SQL, sorted(((w["id"], w["randomNumber"]) for w in worlds), key=itemgetter(0)))
    return Response.json(worlds)


async def slow_async(ctx: Context) -> Response:
    import chopin_core

    if "client" not in db:
        db["client"] = chopin_core.AsyncHttpClient()  # this worker's keep-alive pool, made on first use
    response = await db["client"].request("GET", SLOW_URL)
    return Response.text(response.body)


router.get("/plaintext", plaintext)
router.get("/json", json_)
if MODE == "async":
    if missing := async_support():
        raise SystemExit(f"CHOPIN_TE_MODE=async needs {missing}; use CHOPIN_TE_MODE=blocking (the default)")
    apool = async_pool()
    router.get("/db", single_query_async)
    router.get("/queries", queries_async)
    router.get("/fortunes", fortunes_async)
    router.get("/updates", updates_async)
    if SLOW_URL:
        router.get("/slow", slow_async)
else:
    router.get("/db", single_query)
    router.get("/queries", queries)
    if model is not None:
        router.get("/fortunes", fortunes)
        router.get("/updates", updates)
    if SLOW_URL:
        router.get("/slow", slow)
app = Chopin(router)
if os.environ.get("METRICS") == "1":  # benchmarks/http.py measures the overhead of metrics with it
    app.with_metrics("/metrics")


@app.on_worker_start
def open_pool(index: int) -> None:
    if SLOW_URL and MODE == "blocking":
        from chopin_core import HttpClient

        db["http"] = HttpClient()
    try:
        import chopin_pg
    except ImportError:  # /plaintext and /json need no database
        return
    if MODE == "async":  # the AsyncPool connects by itself; the Fortune table is made once, blocking, at start
        if model is not None:
            try:
                with chopin_pg.connect(chopin_pg.PgConfig.from_env()) as conn:
                    ensure_fortunes(conn)
            except chopin_pg.PgError as exc:
                print(f"worker {index}: database not ready ({exc}); /fortunes answers 500 until the table exists")
        return
    # One connection: a worker runs one handler at a time.  reset("none"): these handlers
    # change no session state (no SET, temporary table, LISTEN or session lock), so the
    # DISCARD ALL of the default reset, and preparing every statement again after it,
    # would only cost round trips.
    settings = chopin_pg.PgPoolConfig().max_size(1).min_size(1).checkout_timeout(5.0).reset("none")
    pool = db["pool"] = chopin_pg.PgPool(chopin_pg.PgConfig.from_env(), settings)  # PGHOST, PGPORT, ...
    try:
        pool.fill()
        if model is not None:
            with pool.get() as conn:
                ensure_fortunes(conn)
    except chopin_pg.PgError as exc:
        # The pool stays: each request tries to connect again, so the routes work once the server is up.
        print(f"worker {index}: database not ready ({exc}); database routes answer 500 until it is")


if __name__ == "__main__":
    app.serve()
