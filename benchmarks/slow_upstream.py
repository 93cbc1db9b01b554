#!/usr/bin/env python3
"""A tiny HTTP/1.1 upstream on 127.0.0.1 that answers every request after a fixed delay (stdlib only).

    python3 benchmarks/slow_upstream.py --delay-ms 200 [--port 0]

benchmarks/db_latency.py starts it as the "slow payment API" that each app's ``/slow``
route calls. asyncio, so that hundreds of waiting requests cost nothing; keep-alive is
honoured (``Connection: close`` too). Prints ``ready <port>`` on stdout once listening.
"""

from __future__ import annotations

import os
import sys

# benchmarks/ holds json.py and http.py: keep the stdlib's first on sys.path.
if __name__ == "__main__" and sys.path[0] and os.path.samefile(sys.path[0], os.path.dirname(os.path.abspath(__file__))):
    sys.path.append(sys.path.pop(0))

import argparse
import asyncio
import signal

HOST = "127.0.0.1"
BODY = b"slow upstream says hi"


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lowered = head.lower()
            if b"content-length:" in lowered:  # the apps send GETs; skip a body anyway
                length = int(lowered.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
            await asyncio.sleep(delay)
            close = b"connection: close" in lowered
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s"
                % (len(BODY), b"Connection: close\r\n" if close else b"", BODY)
            )
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main_async(port: int, delay: float) -> None:
    server = await asyncio.start_server(lambda r, w: serve(r, w, delay), HOST, port, backlog=1024)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        asyncio.run(main_async(args.port, args.delay_ms / 1000))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
