"""Raw ASGI peer of benchmarks/db_latency.py, served by uvicorn and by granian: asyncpg, plus /plaintext and /slow.

Run from benchmarks/peers (db_latency.py does):
    PGHOST=127.0.0.1 PGPORT=<proxy> PGUSER=postgres PGDATABASE=chopin_latency POOL_SIZE=32 \
    SLOW_URL=http://127.0.0.1:<port>/ uvicorn asgi_db_latency_app:app --loop uvloop --http httptools ...
    (or: granian --interface asgi ... asgi_db_latency_app:app)

/db, /queries, /fortunes and /updates are uvicorn_asyncpg_app's (TechEmpower's rules).
The pool (POOL_SIZE connections, opened at once) is made at lifespan start-up when the
server sends lifespan events, else by the first request; it is a module global because
each server here runs one worker process. /slow makes one GET to SLOW_URL (the slow
upstream, ~200 ms) over a fresh connection and answers with its body.
"""

import asyncio
import os
from urllib.parse import urlsplit

import asyncpg
from uvicorn_asyncpg_app import (
    NOT_FOUND_START,
    Receive,
    Scope,
    Send,
    create_pool,
    fortunes,
    multiple_queries,
    send_body,
    single_query,
    updates,
)

PLAINTEXT_HEADERS = [(b"content-type", b"text/plain")]
SLOW = urlsplit(os.environ.get("SLOW_URL", "http://127.0.0.1:9/"))

_pool: asyncpg.Pool | None = None
_pool_lock = asyncio.Lock()


async def get_pool() -> asyncpg.Pool:
    global _pool  # noqa: PLW0603 - one worker process, one pool
    if _pool is None:
        async with _pool_lock:
            if _pool is None:
                _pool = await create_pool()
    return _pool


async def slow(send: Send) -> None:
    reader, writer = await asyncio.open_connection(SLOW.hostname, SLOW.port)
    try:
        writer.write(f"GET {SLOW.path or '/'} HTTP/1.1\r\nHost: {SLOW.netloc}\r\nConnection: close\r\n\r\n".encode())
        response = await reader.read(-1)
    finally:
        writer.close()
    status = int(response.split(b" ", 2)[1])
    body = response.partition(b"\r\n\r\n")[2]
    if status != 200:
        raise RuntimeError(f"slow upstream answered {status}")
    await send_body(send, PLAINTEXT_HEADERS, body)


async def lifespan(receive: Receive, send: Send) -> None:
    global _pool  # noqa: PLW0603
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await get_pool()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
                _pool = None
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path = scope["path"]
    if path == "/plaintext":
        await send_body(send, PLAINTEXT_HEADERS, b"Hello, World!")
    elif path == "/slow":
        await slow(send)
    elif path == "/db":
        await single_query(await get_pool(), send)
    elif path == "/queries":
        await multiple_queries(await get_pool(), scope, send)
    elif path == "/fortunes":
        await fortunes(await get_pool(), send)
    elif path == "/updates":
        await updates(await get_pool(), scope, send)
    else:
        await send(NOT_FOUND_START)
        await send({"type": "http.response.body", "body": b""})
