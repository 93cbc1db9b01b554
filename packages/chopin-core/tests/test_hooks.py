"""Lifecycle hooks over real sockets: refuse peers, answer before routing, drop, count."""

from __future__ import annotations

import json
import socket
import struct
import time

import pytest


@pytest.fixture
def server(serve):
    return serve("apps.hooks_app:app")


def test_setup_hook_refuses_some_peers(server, connect):
    refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with refused:
        refused.settimeout(5.0)
        refused.bind(("127.0.0.2", 0))  # another loopback address: the hook drops it
        refused.connect((server.host, server.port))
        try:
            refused.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert refused.recv(4096) == b""
        except ConnectionResetError:
            pass  # closed before the request arrived
    assert connect(server).request("GET", "/").body == b"hello"


def test_pre_routing_hook_answers_505_for_http10(server, connect):
    conn = connect(server)
    old = conn.request("GET", "/", version="HTTP/1.0")
    assert old.status == 505
    assert old.body == b"HTTP/1.1 only"
    assert connect(server).request("GET", "/").status == 200


def test_pre_routing_drop_closes_after_what_was_answered(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/") + conn.build("GET", "/drop") + conn.build("GET", "/"))
    assert conn.read_response().body == b"hello"
    conn.assert_closed_by_server()


def test_counting_hooks(server, connect):
    watcher = connect(server)  # one keep-alive connection to read the counts
    reads = 0

    def counts() -> dict[str, int]:
        nonlocal reads
        reads += 1
        return json.loads(watcher.request("GET", "/counts").body)

    before = counts()
    reads = 0  # each later read passes the pre-routing hook once
    for _ in range(5):
        with socket.create_connection((server.host, server.port), timeout=5.0) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            while sock.recv(4096):
                pass
    reset = socket.create_connection((server.host, server.port), timeout=5.0)
    reset.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    reset.recv(4096)
    # SO_LINGER 0: close() sends a RST, which the server reads as an error.
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset.close()
    deadline = time.monotonic() + 5.0
    while True:
        after = counts()
        if after["teardown"] - before["teardown"] >= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after["setup"] - before["setup"] == 6
    assert after["teardown"] - before["teardown"] == 6
    assert after["errors"] - before["errors"] == 1
    assert after["pre_routing"] - before["pre_routing"] == 6 + reads


# -- start-up checks (the extensions' hook) ------------------------------------------------------


def test_startup_checks_run_before_serving_and_can_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    from chopin_core import Chopin, ConfigError, Response, Router, hooks

    monkeypatch.setattr(hooks, "_STARTUP_CHECKS", [])
    seen: list[list[str]] = []

    def check(router: Router) -> None:
        seen.append([f"{r.method} {r.path}" for r in router.routes])
        if any(prefix == "/admin" for prefix, _ in router.layers):
            raise ConfigError("the /admin layer needs set-up first")

    assert hooks.add_startup_check(check) is check
    hooks.add_startup_check(check)  # once only
    router = Router()
    router.get("/", lambda ctx: Response.text("ok"))
    Chopin(router).compile()
    assert seen == [["GET /"]]
    router.layer_path("/admin", lambda ctx, nxt: nxt(ctx))
    with pytest.raises(ConfigError, match="needs set-up first"):
        Chopin(router).compile()
    router.compile()  # the router alone (TestClient) runs no check
