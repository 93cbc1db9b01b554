#!/usr/bin/env python3
"""Fan-out benchmark: one publisher, N WebSocket subscribers on one topic; deliveries per second and latency.

    python benchmarks/fanout.py [--subscribers 100] [--messages 2000] [--rate 200] [--seconds 3]
                                [--only chopin,chopin-redis,...] [--peer-python PY] [--markdown-out FILE]

Rows: chopin (examples/chat.py, 2 workers, the sibling fan-out), chopin on a backplane
(two chat servers of one worker each, subscribers split between them, the publisher on
the first: every message crosses Redis or PostgreSQL), and the peers serving the same
room in one process: the ``websockets`` library (``websockets.broadcast``) and
socketify's pub/sub, each when importable by ``--peer-python`` (this interpreter by
default; socketify: ``pip install -r benchmarks/requirements.txt`` into a venv).  Two phases per row:
a burst of ``--messages`` messages sent at once (deliveries per second until every
subscriber has them all), then ``--rate`` messages per second for ``--seconds`` seconds
(p50/p99 from the publisher's write to each subscriber's read).  The client is one
Python process (stdlib selectors, raw RFC 6455 frames); only 127.0.0.1 is loaded.
Run it with an interpreter that imports chopin_core (and chopin_pg for the PostgreSQL
row); Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 for the backplane rows.
"""

from __future__ import annotations

import os
import sys

if sys.path and sys.path[0] and os.path.samefile(sys.path[0], os.path.dirname(os.path.abspath(__file__))):
    sys.path.append(sys.path.pop(0))  # benchmarks/json.py and http.py must not shadow the stdlib

import argparse
import base64
import datetime as dt
import selectors
import signal
import socket
import statistics
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import HERE, HOST, REPO, cpu_model, fmt_num, free_port, load_average, log, markdown_table, write_section

PEERS = HERE / "peers"
REDIS_URL = "redis://127.0.0.1:6379"
PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"


@dataclass
class Row:
    name: str
    what: str
    burst_rate: float | None = None
    burst_seconds: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    missing: int = 0
    skipped: str = ""


def start(argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv} exited with {proc.returncode}") from None
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"{argv} did not accept on {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# -- a raw WebSocket client (RFC 6455) ----------------------------------------------------


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head[:80].decode("latin-1"))
        self.buf = bytearray(head.split(b"\r\n\r\n", 1)[1])
        self.sock.setblocking(False)
        self.got = 0

    def messages(self) -> list[bytes]:
        """Read what is there; the whole text payloads it completes."""
        try:
            while data := self.sock.recv(1 << 20):
                self.buf += data
                if len(data) < 1 << 20:
                    break
        except BlockingIOError:
            pass
        out = []
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 2:
            size, head = buf[pos + 1] & 0x7F, 2
            if size == 126:
                if len(buf) - pos < 4:
                    break
                size, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif size == 127:
                if len(buf) - pos < 10:
                    break
                size, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if len(buf) - pos < head + size:
                break
            out.append(bytes(buf[pos + head : pos + head + size]))
            pos += head + size
        del buf[:pos]
        return out

    def send(self, texts: list[bytes]) -> None:
        frames = []
        for text in texts:
            mask = os.urandom(4)
            masked = bytes(b ^ mask[i & 3] for i, b in enumerate(text))
            frames.append(struct.pack("!BB", 0x81, 0x80 | len(text)) + mask + masked)
        data = b"".join(frames)
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)


def settle(subscribers: list[Client], publisher: Client, timeout: float = 10.0) -> bool:
    """Send probes until every subscriber hears one (backplane connections come up after start)."""
    deadline = time.monotonic() + timeout
    heard: set[int] = set()
    while time.monotonic() < deadline and len(heard) < len(subscribers):
        publisher.send([b"probe"])
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            publisher.messages()
            for index, sub in enumerate(subscribers):
                if sub.messages():
                    heard.add(index)
            time.sleep(0.01)
    time.sleep(0.3)
    for sub in (*subscribers, publisher):
        sub.messages()
    return len(heard) == len(subscribers)


def measure(ports: list[int], subscribers: int, messages: int, rate: int, seconds: float, row: Row) -> None:
    subs = [Client(ports[i % len(ports)]) for i in range(subscribers)]
    publisher = Client(ports[0])
    try:
        if not settle(subs, publisher):
            row.skipped = "not every subscriber heard the probes"
            return
        sel = selectors.DefaultSelector()
        for index, sub in enumerate(subs):
            sel.register(sub.sock, selectors.EVENT_READ, index)
        sel.register(publisher.sock, selectors.EVENT_READ, -1)
        # Burst: every message at once, then wait until each subscriber has them all.
        for sub in subs:
            sub.got = 0
        started = time.perf_counter()
        publisher.send([b"b%d" % i for i in range(messages)])
        done = 0
        deadline = started + 60
        while done < len(subs) and time.perf_counter() < deadline:
            for key, _ in sel.select(1.0):
                if key.data < 0:
                    publisher.messages()
                    continue
                sub = subs[key.data]
                before = sub.got
                sub.got += sum(1 for m in sub.messages() if m[:1] == b"b")
                if before < messages <= sub.got:
                    done += 1
        elapsed = time.perf_counter() - started
        delivered = sum(min(sub.got, messages) for sub in subs)
        row.missing += subscribers * messages - delivered
        row.burst_rate = delivered / elapsed
        row.burst_seconds = elapsed
        # Paced: latency from the publisher's write to each read.
        latencies: list[float] = []
        interval = 1.0 / rate
        next_send = time.perf_counter()
        end = next_send + seconds
        sent = 0
        while time.perf_counter() < end + 1.0:
            now = time.perf_counter()
            if now >= next_send and now < end:
                publisher.send([b"l%d" % time.perf_counter_ns()])
                sent += 1
                next_send += interval
            for key, _ in sel.select(max(0.0, min(next_send - time.perf_counter(), 0.01))):
                if key.data < 0:
                    publisher.messages()
                    continue
                arrived = time.perf_counter_ns()
                for m in subs[key.data].messages():
                    if m[:1] == b"l":
                        latencies.append((arrived - int(m[1:])) / 1e6)
        row.missing += sent * subscribers - len(latencies)
        if latencies:
            latencies.sort()
            row.p50_ms = statistics.median(latencies)
            row.p99_ms = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    finally:
        for client in (*subs, publisher):
            client.sock.close()


def can_import(module: str, python: str = sys.executable) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], check=False, capture_output=True).returncode == 0


def servers(name: str, peer_python: str) -> tuple[str, list[tuple[list[str], dict[str, str]]]] | str:
    """What a row runs: (description, [(argv, env)] one per server), or why it is skipped."""
    chat = [sys.executable, str(REPO / "examples" / "chat.py")]
    if name == "chopin":
        return "examples/chat.py, 2 workers (sibling fan-out)", [(chat, {"WORKERS": "2"})]
    if name in ("chopin-redis", "chopin-postgres"):
        url = REDIS_URL if name == "chopin-redis" else PG_URL
        if name == "chopin-postgres" and not can_import("chopin_pg"):
            return "chopin_pg is not importable"
        env = {"WORKERS": "1", "CHAT_BACKPLANE": url}
        return f"2 chat servers x 1 worker on {url.split(':')[0]}", [(chat, env), (chat, env)]
    if name == "websockets":
        if not can_import("websockets", peer_python):
            return "websockets is not importable"
        return "websockets.broadcast, 1 process (asyncio)", [([peer_python, str(PEERS / "fanout_websockets.py")], {})]
    if name == "socketify":
        if not can_import("socketify", peer_python):
            return "socketify is not importable"
        return "app.publish, 1 process", [([peer_python, str(PEERS / "fanout_socketify.py")], {})]
    return f"unknown row {name!r}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--only", default="chopin,chopin-redis,chopin-postgres,websockets,socketify")
    parser.add_argument("--peer-python", default=sys.executable, help="the interpreter that runs the peers")
    parser.add_argument("--markdown-out", type=Path)
    args = parser.parse_args()
    rows = []
    load = load_average()
    for name in args.only.split(","):
        plan = servers(name, args.peer_python)
        if isinstance(plan, str):
            rows.append(Row(name, "", skipped=plan))
            log(f"{name}: skipped ({plan})")
            continue
        what, launches = plan
        row = Row(name, what)
        procs = []
        try:
            ports = []
            for argv, env in launches:
                port = free_port()
                procs.append(start(argv, {**env, "PORT": str(port)}, port))
                ports.append(port)
            log(f"{name}: {what}")
            measure(ports, args.subscribers, args.messages, args.rate, args.seconds, row)
        except (OSError, RuntimeError) as exc:
            row.skipped = str(exc)
        finally:
            for proc in procs:
                stop(proc)
        rows.append(row)
        log(
            f"  {fmt_num(row.burst_rate)} deliveries/s, p50 {row.p50_ms} ms, p99 {row.p99_ms} ms, missing {row.missing}"
        )
    base = next((r.burst_rate for r in rows if r.name == "chopin" and r.burst_rate), None)
    table = markdown_table(
        ["server", "what", "deliveries/s (burst)", "vs chopin", "p50 ms", "p99 ms", "missing"],
        [
            [
                r.name,
                f"skipped: {r.skipped}" if r.skipped else r.what,
                fmt_num(r.burst_rate),
                f"{r.burst_rate / base:.2f}x" if base and r.burst_rate else "-",
                f"{r.p50_ms:.2f}" if r.p50_ms is not None else "-",
                f"{r.p99_ms:.2f}" if r.p99_ms is not None else "-",
                str(r.missing) if not r.skipped else "-",
            ]
            for r in rows
        ],
    )
    text = (
        f"## Fan-out (issue 18)\n\n`python benchmarks/fanout.py --subscribers {args.subscribers} --messages "
        f"{args.messages} --rate {args.rate} --seconds {args.seconds:g}` on {dt.date.today()}, {cpu_model()}, "
        f"load average {load:.1f} before the run (a shared 2-core machine: ratios, not absolute figures). "
        f"Burst: {args.messages} messages sent at once to {args.subscribers} subscribers; latency: {args.rate} "
        f"messages/s for {args.seconds:g} s, from the publisher's write to each subscriber's read. The client is one "
        "Python process and is the bottleneck of the faster rows.\n\n" + table + "\n"
    )
    print(text)
    if args.markdown_out:
        write_section(args.markdown_out, "fanout", text)


if __name__ == "__main__":
    main()
