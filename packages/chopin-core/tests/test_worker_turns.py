"""Turns under pipelining (Settings.max_pipeline_depth) over real sockets."""

from __future__ import annotations

import json
import socket
import time

import pytest


def _read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """``count`` responses (each with Content-Length) read off ``sock``, bodies only."""
    data = b""
    bodies = []
    while len(bodies) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, (bodies, data)
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        while len(data) < length:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
        bodies.append(data[:length])
        data = data[length:]
    return bodies


def _order_with_a_rival(server, pipelined: int) -> list[str]:
    """Connection A pipelines ``pipelined`` requests, B sends one, both while the worker is busy: the order served."""
    addr = (server.host, server.port)
    with (
        socket.create_connection(addr, timeout=10) as busy,
        socket.create_connection(addr, timeout=10) as a,
        socket.create_connection(addr, timeout=10) as b,
    ):
        busy.sendall(b"GET /slow?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)  # the worker is in the slow handler: A's and B's bytes are both ready when it is back
        a.sendall(b"".join(b"GET /order?c=A HTTP/1.1\r\nHost: x\r\n\r\n" for _ in range(pipelined)))
        time.sleep(0.05)
        b.sendall(b"GET /order?c=B HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_answers(busy, 1) == [b"slow"]
        assert _read_answers(a, pipelined) == [b"noted"] * pipelined  # all answered, in order
        assert _read_answers(b, 1) == [b"noted"]
        busy.sendall(b"GET /order-log HTTP/1.1\r\nHost: x\r\n\r\n")
        return json.loads(_read_answers(busy, 1)[0])


@pytest.mark.parametrize(("depth", "b_served_after"), [(2, 2), (0, 20)])
def test_a_pipelining_connection_yields_after_max_pipeline_depth(serve, depth, b_served_after) -> None:
    server = serve("apps.clients_app:app", workers=1, max_pipeline_depth=depth)
    order = _order_with_a_rival(server, 20)
    assert order.count("A") == 20 and order.count("B") == 1
    # Depth 2: A gets two answers, then B its turn; no limit: A's twenty first.
    assert order.index("B") == b_served_after, order


def test_many_pipelined_requests_are_all_answered_in_turns(serve) -> None:
    server = serve("apps.clients_app:app", workers=1, max_pipeline_depth=3)
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"".join(b"GET /client HTTP/1.1\r\nHost: x\r\n\r\n" for _ in range(50))
            + b"GET /order-log HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        bodies = _read_answers(sock, 51)
    assert all(json.loads(body)["host"] == "127.0.0.1" for body in bodies[:50])


def test_max_pipeline_depth_setting() -> None:
    from chopin_core import Settings

    assert Settings().max_pipeline_depth == 64
    assert Settings.from_env({"CHOPIN_MAX_PIPELINE_DEPTH": "3"}).max_pipeline_depth == 3
