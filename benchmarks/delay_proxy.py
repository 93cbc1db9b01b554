#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that delays every byte by a fixed time in each direction (stdlib only).

    python3 benchmarks/delay_proxy.py --upstream 127.0.0.1:5432 --delay-ms 0.5 [--port 0] [--control-port 0]

benchmarks/db_latency.py puts it in front of PostgreSQL so that the database is
about a millisecond away round trip (the kernel here has no netem). Once listening it
prints ``ready <port> <control_port>`` on stdout.

How it works: one thread, one ``select.select`` loop (microsecond timeouts; epoll's
are whole milliseconds, too coarse for a 0.5 ms delay). Whatever is read from one side
is stamped ``due = now + delay`` and queued for that direction; the loop sleeps until
the earliest due time and then writes it to the other side. A direction is a FIFO
queue, not a sleep per read, so ordering is kept and many chunks are in flight at
once: throughput is not limited by the delay (a pipelined burst arrives ``delay``
later, all of it). TCP_NODELAY is set on every socket, so the proxy adds no Nagle
waits of its own. A direction with more than ``MAX_QUEUED`` bytes waiting stops
reading its source until it drains (back-pressure). Connecting to the upstream is not
delayed (pools connect once).

The control port answers one line per connection: ``stats`` returns a JSON object
(``open``: upstream connections open now, ``peak``: most open at once since the last
reset, ``opened``: opened since the last reset, ``bytes_up`` / ``bytes_down``);
``reset`` returns the same and then starts a new period (peak = open now);
``delay <ms>`` sets the one-way delay (benchmarks/db_latency.py calibrates with it so that
``SELECT 1`` through the proxy takes the asked round trip more than it does directly).
"""

from __future__ import annotations

import os
import sys

# benchmarks/ holds json.py: move it to the end of sys.path so that `import json` finds the stdlib's.
if __name__ == "__main__" and sys.path[0] and os.path.samefile(sys.path[0], os.path.dirname(os.path.abspath(__file__))):
    sys.path.append(sys.path.pop(0))

import argparse
import ctypes
import json
import select
import signal
import socket
import time
from collections import deque
from typing import Any

HOST = "127.0.0.1"
RECV_SIZE = 256 * 1024
MAX_QUEUED = 4 * 1024 * 1024  # bytes waiting in one direction before its source is no longer read
PR_SET_TIMERSLACK = 29  # prctl(2): the kernel may otherwise wake a timed select up to 50 us late


class Direction:
    """One way of one proxied connection: bytes read from ``src`` wait ``delay`` and go to ``dst``."""

    __slots__ = ("dst", "eof_read", "eof_sent", "pair", "pending", "queued", "reading", "src", "unsent")

    def __init__(self, src: socket.socket, dst: socket.socket, pair: Pair) -> None:
        self.src, self.dst, self.pair = src, dst, pair
        self.pending: deque[bytes] = deque()  # chunks not yet due, oldest first (b"" is EOF)
        self.unsent: deque[memoryview] = deque()  # due chunks the socket did not take yet
        self.queued = 0  # bytes in pending + unsent
        self.reading = True
        self.eof_read = False  # the source closed its side: never read it again
        self.eof_sent = False


class Pair:
    """A client connection and its upstream connection."""

    __slots__ = ("closed", "down", "up")

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.up = Direction(client, upstream, self)
        self.down = Direction(upstream, client, self)
        self.closed = False


class DelayProxy:
    """The proxy's state and loop; ``run()`` never returns (stop it with SIGTERM)."""

    def __init__(self, upstream: tuple[str, int], delay_s: float, port: int = 0, control_port: int = 0) -> None:
        self.upstream = upstream
        self.delay = delay_s
        self.listener = self._listen(port)
        self.control = self._listen(control_port)
        self.port: int = self.listener.getsockname()[1]
        self.control_port: int = self.control.getsockname()[1]
        self.readers: dict[int, Direction] = {}  # fd -> the direction that reads it
        self.writers: dict[int, Direction] = {}  # fd -> the direction blocked writing to it
        self.timeline: deque[tuple[float, Direction]] = deque()  # due times never decrease: one FIFO for all
        self.open = self.peak = self.opened = 0
        self.bytes_up = self.bytes_down = 0

    @staticmethod
    def _listen(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(512)
        sock.setblocking(False)
        return sock

    # -- the loop ------------------------------------------------------------------

    def run(self) -> None:
        listen_fd, control_fd = self.listener.fileno(), self.control.fileno()
        while True:
            timeout = None
            if self.timeline:
                timeout = max(0.0, self.timeline[0][0] - time.monotonic())
            readable, writable, _ = select.select(
                [listen_fd, control_fd, *self.readers], list(self.writers), [], timeout
            )
            now = time.monotonic()
            for fd in readable:
                if fd == listen_fd:
                    self._accept()
                elif fd == control_fd:
                    self._answer_control()
                elif (direction := self.readers.get(fd)) is not None:
                    self._read(direction, now)
            for fd in writable:
                if (direction := self.writers.get(fd)) is not None:
                    self._flush(direction)
            self._deliver_due(time.monotonic())

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5.0)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = Pair(client, upstream)
        self.readers[client.fileno()] = pair.up
        self.readers[upstream.fileno()] = pair.down
        self.open += 1
        self.opened += 1
        self.peak = max(self.peak, self.open)

    def _read(self, direction: Direction, now: float) -> None:
        try:
            data = direction.src.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self._close(direction.pair)
            return
        if direction is direction.pair.up:
            self.bytes_up += len(data)
        else:
            self.bytes_down += len(data)
        direction.pending.append(data)
        direction.queued += len(data)
        self.timeline.append((now + self.delay, direction))
        direction.eof_read = not data
        if not data or direction.queued > MAX_QUEUED:
            # EOF (nothing more will come) or back-pressure: stop reading this source for now.
            direction.reading = False
            self.readers.pop(direction.src.fileno(), None)

    def _deliver_due(self, now: float) -> None:
        timeline = self.timeline
        while timeline and timeline[0][0] <= now:
            _, direction = timeline.popleft()
            if direction.pair.closed:
                continue
            # b"", the EOF marker, keeps its place in line too.
            direction.unsent.append(memoryview(direction.pending.popleft()))
            self._flush(direction)

    def _flush(self, direction: Direction) -> None:
        """Write what is due to ``dst``; wait for writability when the socket takes less."""
        while direction.unsent:
            chunk = direction.unsent[0]
            if not chunk:  # EOF marker: everything before it was written
                direction.unsent.popleft()
                self._send_eof(direction)
                return
            try:
                sent = direction.dst.send(chunk)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._close(direction.pair)
                return
            direction.queued -= sent
            if sent < len(chunk):
                direction.unsent[0] = chunk[sent:]
                self.writers[direction.dst.fileno()] = direction
                return
            direction.unsent.popleft()
        self.writers.pop(direction.dst.fileno(), None)
        if not direction.reading and not direction.eof_read and direction.queued <= MAX_QUEUED // 2:
            direction.reading = True
            self.readers[direction.src.fileno()] = direction

    def _send_eof(self, direction: Direction) -> None:
        direction.eof_sent = True
        self.writers.pop(direction.dst.fileno(), None)
        pair = direction.pair
        if pair.up.eof_sent and pair.down.eof_sent:
            self._close(pair)
            return
        try:
            direction.dst.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(pair)

    def _close(self, pair: Pair) -> None:
        if pair.closed:
            return
        pair.closed = True
        for direction in (pair.up, pair.down):
            for table in (self.readers, self.writers):
                fd = direction.src.fileno()
                if fd >= 0 and table.get(fd) is not None and table[fd].pair is pair:
                    del table[fd]
        for sock in (pair.up.src, pair.down.src):
            sock.close()
        self.open -= 1

    # -- control -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "peak": self.peak,
            "opened": self.opened,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "delay_ms": self.delay * 1000,
        }

    def _answer_control(self) -> None:
        try:
            conn, _ = self.control.accept()
        except BlockingIOError:
            return
        with conn:
            conn.settimeout(2.0)
            try:
                command = conn.recv(64).strip().decode("ascii", "replace")
                conn.sendall(json.dumps(self.stats()).encode() + b"\n")
            except OSError:
                return
            if command == "reset":
                self.peak, self.opened = self.open, 0
                self.bytes_up = self.bytes_down = 0
            elif command.startswith("delay "):
                try:
                    self.delay = max(0.0, float(command.split()[1]) / 1000)
                except ValueError:
                    pass


def control(port: int, command: str = "stats", timeout: float = 5.0) -> dict[str, Any]:
    """Send ``command`` (``stats``, ``reset`` or ``delay <ms>``) to a proxy's control port; its JSON answer."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", default="127.0.0.1:5432", help="host:port to forward to")
    parser.add_argument("--delay-ms", type=float, default=0.5, help="one-way delay, each direction (ms)")
    parser.add_argument("--port", type=int, default=0, help="listening port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--control-port", type=int, default=0)
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    if host != HOST:
        sys.exit(f"only {HOST} is ever proxied")
    proxy = DelayProxy((host, int(port)), args.delay_ms / 1000, args.port, args.control_port)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    print(f"ready {proxy.port} {proxy.control_port}", flush=True)
    try:
        proxy.run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
