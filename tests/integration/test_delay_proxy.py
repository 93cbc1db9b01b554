"""benchmarks/delay_proxy.py, the TCP proxy that puts PostgreSQL ~1 ms away for benchmarks/db_latency.py.

The proxy runs as its own process in front of a threaded echo server on 127.0.0.1,
with a delay large enough (5 ms each way) to tell apart from loopback noise.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "delay_proxy.py"
DELAY_MS = 5.0
RTT_S = 2 * DELAY_MS / 1000

_spec = importlib.util.spec_from_file_location("delay_proxy", SCRIPT)
assert _spec is not None and _spec.loader is not None
delay_proxy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(delay_proxy)


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def proxy() -> Iterator[tuple[int, int]]:
    echo = EchoServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--upstream", f"127.0.0.1:{echo.server_address[1]}", "--delay-ms", str(DELAY_MS)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        ready, port, control_port = process.stdout.readline().split()
        assert ready == "ready"
        yield int(port), int(control_port)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        echo.shutdown()
        echo.server_close()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "closed early"
        data += chunk
    return data


def stats(control_port: int, command: str = "stats") -> dict[str, Any]:
    answer: dict[str, Any] = delay_proxy.control(control_port, command)
    return answer


def test_a_round_trip_takes_the_delay_both_ways(proxy):
    port, _ = proxy
    with connect(port) as sock:
        sock.sendall(b"x")
        recv_exactly(sock, 1)  # the first exchange also connects upstream
        times = []
        for _ in range(10):
            start = time.perf_counter()
            sock.sendall(b"ping")
            assert recv_exactly(sock, 4) == b"ping"
            times.append(time.perf_counter() - start)
    assert min(times) >= RTT_S * 0.95
    assert sorted(times)[5] < RTT_S + 0.02  # median: the delay, not a multiple of it


def test_messages_in_flight_are_not_serialised(proxy):
    # 20 messages sent back to back arrive one delay later, all of them: a queue per
    # direction, not a sleep per read (which would take 20 round trips).
    port, _ = proxy
    with connect(port) as sock:
        sock.sendall(b"x")
        recv_exactly(sock, 1)
        start = time.perf_counter()
        for i in range(20):
            sock.sendall(b"%02d" % i)
            time.sleep(0.0005)
        assert recv_exactly(sock, 40) == b"".join(b"%02d" % i for i in range(20))
        elapsed = time.perf_counter() - start
    assert RTT_S * 0.95 <= elapsed < 8 * RTT_S  # serialised: 20 * RTT_S


def test_bulk_data_keeps_its_order(proxy):
    port, _ = proxy
    payload = os.urandom(3 * 1024 * 1024)
    received = bytearray()
    with connect(port) as sock:
        reader = threading.Thread(target=lambda: received.extend(recv_exactly(sock, len(payload))))
        reader.start()
        sock.sendall(payload)
        reader.join(timeout=30)
    assert bytes(received) == payload


def wait_until_open(control_port: int, count: int) -> dict[str, Any]:
    """The proxy's stats once ``count`` connections are open (closing takes a delay each way)."""
    deadline = time.monotonic() + 5
    while (answer := stats(control_port))["open"] != count and time.monotonic() < deadline:
        time.sleep(0.02)
    return answer


def test_eof_travels_through_and_connections_are_counted(proxy):
    port, control_port = proxy
    wait_until_open(control_port, 0)  # the other tests' connections are gone
    before = stats(control_port, "reset")
    assert before["delay_ms"] == pytest.approx(DELAY_MS)
    with connect(port) as first, connect(port) as second:
        for sock in (first, second):
            sock.sendall(b"hi")
            recv_exactly(sock, 2)
        during = stats(control_port)
        assert (during["open"], during["opened"], during["peak"]) == (2, 2, 2)
        first.shutdown(socket.SHUT_WR)  # the echo server sees EOF, closes, and that comes back
        assert first.recv(10) == b""
        assert wait_until_open(control_port, 1)["open"] == 1
    after = wait_until_open(control_port, 0)
    assert (after["open"], after["opened"], after["peak"]) == (0, 2, 2)
