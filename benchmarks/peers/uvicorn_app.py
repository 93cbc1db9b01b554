"""Raw ASGI peer for uvicorn (uvloop + httptools); uvicorn adds Server and Date.

Run from benchmarks/peers:
    uvicorn uvicorn_app:app --loop uvloop --http httptools --workers 1 \
        --no-access-log --log-level warning
"""

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PLAINTEXT_BODY = b"Hello, World!"
PLAINTEXT_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(PLAINTEXT_BODY)).encode()),
    ],
}
NOT_FOUND_START: Message = {
    "type": "http.response.start",
    "status": 404,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"0")],
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/plaintext":
        await send(PLAINTEXT_START)
        await send({"type": "http.response.body", "body": PLAINTEXT_BODY})
    elif path == "/json":
        body = orjson.dumps({"message": "Hello, World!"})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
    else:
        await send(NOT_FOUND_START)
        await send({"type": "http.response.body", "body": b""})
