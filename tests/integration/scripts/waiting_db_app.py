"""Handlers that wait on chopin_pg.AsyncPool, for tests/integration/test_waiting_db.py.

``/hold?s=N`` keeps a pinned transaction open for N seconds (pg_sleep); ``/pool`` reports
the worker's pool; ``/fail`` and ``/ok`` share the pool's connections.  Served by
``python tests/integration/scripts/waiting_db_app.py`` with ``DATABASE_URL`` set.
"""

from __future__ import annotations

from chopin_core import Chopin, Context, Response, Router
from chopin_pg import AsyncPool, PgError

router = Router()
pool = AsyncPool(size=2)  # DATABASE_URL; connects in the worker on first use


@router.get("/hold")
async def hold(ctx: Context) -> Response:
    seconds = float(ctx.req.query_params().get("s", "5"))
    async with pool.transaction() as conn:
        await conn.execute("SELECT pg_sleep($1::float8)", (seconds,))
    return Response.text("held")


@router.get("/pool")
async def state(ctx: Context) -> Response:
    await pool.query_scalar("SELECT 1")  # make sure it is open
    return Response.json({"connections": pool.connections, "pinned": pool.pinned, "pending": pool.pending})


@router.get("/ok")
async def ok(ctx: Context) -> Response:
    return Response.json(await pool.query_scalar("SELECT $1::int + 1", (41,)))


@router.get("/fail")
async def fail(ctx: Context) -> Response:
    try:
        await pool.query_scalar("SELECT 1 / 0")
    except PgError as exc:
        return Response.text(f"{type(exc).__name__}: {exc}", 422)
    return Response.text("no error?")


app = Chopin(router)

if __name__ == "__main__":
    app.serve()
