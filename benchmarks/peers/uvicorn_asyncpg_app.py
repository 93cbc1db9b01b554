"""Raw ASGI peer for TechEmpower's /db, /queries, /fortunes and /updates: uvicorn (uvloop + httptools), asyncpg.

Run from benchmarks/peers (benchmarks/pg.py does):
    PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGDATABASE=test POOL_SIZE=32 \
    uvicorn uvicorn_asyncpg_app:app --loop uvloop --http httptools --workers 1 \
        --no-access-log --log-level warning

Follows TechEmpower's rules: one query per random World row (ids 1..10000),
`queries` clamped to 1..500 (anything unparsable is 1), JSON serialized per request;
/fortunes adds one fortune at request time, sorts by message and HTML-escapes; /updates
reads each row by its own query and writes the new numbers in one executemany.
"""

import html
import os
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import orjson

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

READ_ROW_SQL = "SELECT id, randomnumber FROM world WHERE id = $1"
UPDATE_SQL = "UPDATE world SET randomnumber = $2 WHERE id = $1"
FORTUNES_SQL = "SELECT id, message FROM fortune"
JSON_HEADERS = [(b"content-type", b"application/json")]
HTML_HEADERS = [(b"content-type", b"text/html; charset=utf-8")]
FORTUNES_HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>"
)
FORTUNES_TAIL = "</table></body></html>"
EXTRA_FORTUNE = "Additional fortune added at request time."
NOT_FOUND_START: Message = {
    "type": "http.response.start",
    "status": 404,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"0")],
}


async def create_pool() -> asyncpg.Pool:
    size = int(os.environ.get("POOL_SIZE", "32"))
    return await asyncpg.create_pool(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=int(os.environ.get("PGPORT", "5432")),
        user=os.environ.get("PGUSER", "postgres"),
        database=os.environ.get("PGDATABASE", "test"),
        min_size=size,
        max_size=size,
        ssl=False,
    )


def query_count(query_string: bytes) -> int:
    values = parse_qs(query_string.decode("latin-1")).get("queries")
    try:
        count = int(values[0]) if values else 1
    except ValueError:
        return 1
    return min(max(count, 1), 500)


async def send_body(send: Send, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, payload: Any) -> None:
    await send_body(send, JSON_HEADERS, orjson.dumps(payload))


async def single_query(pool: asyncpg.Pool, send: Send) -> None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(READ_ROW_SQL, random.randint(1, 10000))
    await send_json(send, {"id": row[0], "randomNumber": row[1]})


async def read_worlds(conn: asyncpg.Connection, scope: Scope) -> list[dict[str, int]]:
    """`queries` random World rows, each read by its own query (the rules)."""
    statement = await conn.prepare(READ_ROW_SQL)
    worlds = []
    for _ in range(query_count(scope["query_string"])):
        row = await statement.fetchrow(random.randint(1, 10000))
        worlds.append({"id": row[0], "randomNumber": row[1]})
    return worlds


async def multiple_queries(pool: asyncpg.Pool, scope: Scope, send: Send) -> None:
    async with pool.acquire() as conn:
        worlds = await read_worlds(conn, scope)
    await send_json(send, worlds)


async def fortunes(pool: asyncpg.Pool, send: Send) -> None:
    async with pool.acquire() as conn:
        rows = [(row[0], row[1]) for row in await conn.fetch(FORTUNES_SQL)]
    rows.append((0, EXTRA_FORTUNE))
    rows.sort(key=lambda row: row[1])
    escape = html.escape
    body = FORTUNES_HEAD + "".join([f"<tr><td>{i}</td><td>{escape(m)}</td></tr>" for i, m in rows]) + FORTUNES_TAIL
    await send_body(send, HTML_HEADERS, body.encode())


async def updates(pool: asyncpg.Pool, scope: Scope, send: Send) -> None:
    async with pool.acquire() as conn:
        worlds = await read_worlds(conn, scope)
        for world in worlds:
            world["randomNumber"] = random.randint(1, 10000)
        # Sorted by id, as the Chopin app writes them: concurrent requests lock rows in one order.
        await conn.executemany(UPDATE_SQL, sorted((w["id"], w["randomNumber"]) for w in worlds))
    await send_json(send, worlds)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Lifespan state: uvicorn hands a copy of this dict to every request.
                scope["state"]["pool"] = await create_pool()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await scope["state"]["pool"].close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/db":
        await single_query(scope["state"]["pool"], send)
    elif path == "/queries":
        await multiple_queries(scope["state"]["pool"], scope, send)
    elif path == "/fortunes":
        await fortunes(scope["state"]["pool"], send)
    elif path == "/updates":
        await updates(scope["state"]["pool"], scope, send)
    else:
        await send(NOT_FOUND_START)
        await send({"type": "http.response.body", "body": b""})
