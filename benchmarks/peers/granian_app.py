"""RSGI peer for granian; granian adds Date, the app adds Server.

Run from benchmarks/peers:
    granian --interface rsgi --workers 1 --runtime-threads 1 --runtime-mode st \
        --http 1 --no-ws --loop uvloop --log-level warning granian_app:app
"""

from typing import Any

import orjson

PLAINTEXT_HEADERS = [("server", "granian"), ("content-type", "text/plain")]
JSON_HEADERS = [("server", "granian"), ("content-type", "application/json")]
NOT_FOUND_HEADERS = [("server", "granian"), ("content-type", "text/plain")]


async def app(scope: Any, proto: Any) -> None:
    path = scope.path
    if path == "/plaintext":
        proto.response_bytes(200, PLAINTEXT_HEADERS, b"Hello, World!")
    elif path == "/json":
        body = orjson.dumps({"message": "Hello, World!"})
        proto.response_bytes(200, JSON_HEADERS, body)
    else:
        proto.response_empty(404, NOT_FOUND_HEADERS)
