"""The fan-out room of benchmarks/fanout.py served by the `websockets` library (one process, asyncio)."""

from __future__ import annotations

import asyncio
import os

import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOM: set[ServerConnection] = set()


async def member(ws: ServerConnection) -> None:
    ROOM.add(ws)
    try:
        async for message in ws:
            broadcast(ROOM, message)  # every member, the sender included, as examples/chat.py
    except websockets.ConnectionClosed:
        pass
    finally:
        ROOM.discard(ws)


async def main() -> None:
    async with serve(member, "127.0.0.1", int(os.environ["PORT"]), compression=None, max_queue=None) as server:
        await server.serve_forever()


asyncio.run(main())
