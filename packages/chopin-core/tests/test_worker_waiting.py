"""Handlers that wait (``async def``) on a real server: the worker serves others meanwhile.

Every test runs the app of ``apps/waiting_app.py`` in a subprocess with one worker
and talks to it over real sockets (raw, or httpx).
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable

import httpx
import pytest
from conftest import HOST, RawConnection, ServerPool, ServerProcess, wait_until

Connect = Callable[..., RawConnection]

APP = "apps.waiting_app:app"


@pytest.fixture(scope="module")
def server(serve_module: ServerPool) -> ServerProcess:
    return serve_module(APP)


def _get(server: ServerProcess, path: str, timeout: float = 10.0) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", timeout=timeout)


def _stats(server: ServerProcess) -> dict[str, int]:
    result: dict[str, int] = _get(server, "/stats").json()
    return result


def test_an_async_handler_that_does_not_wait_answers_at_once(server: ServerProcess) -> None:
    resp = _get(server, "/at-once")
    assert resp.status_code == 200
    assert resp.text == "answered without waiting"


def test_many_waiting_handlers_wait_together_and_others_are_served_meanwhile(
    server: ServerProcess, connect: Connect
) -> None:
    socks = []
    started = time.monotonic()
    for _ in range(100):
        sock = socket.create_connection((HOST, server.port), timeout=10)
        sock.sendall(RawConnection.build("GET", "/sleep?ms=2000"))
        socks.append(sock)
    probe = connect(server)
    before = time.monotonic()
    resp = probe.request("GET", "/plaintext")
    probe_ms = (time.monotonic() - before) * 1000
    assert resp.status == 200
    for sock in socks:
        data = b""
        while b"slept 2000" not in data:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed early: {data!r}"
            data += chunk
        sock.close()
    elapsed = time.monotonic() - started
    # One at a time, 100 handlers of 2 s would take 200 s.
    assert elapsed < 10.0, f"100 waits of 2 s took {elapsed:.1f} s"
    assert probe_ms < 1500, f"/plaintext took {probe_ms:.0f} ms while 100 handlers waited"


def test_a_blocking_call_on_the_thread_pool_does_not_hold_the_worker(server: ServerProcess, connect: Connect) -> None:
    waiting = socket.create_connection((HOST, server.port), timeout=10)
    try:
        waiting.sendall(RawConnection.build("GET", "/thread?s=1.0"))
        time.sleep(0.1)
        assert connect(server).request("GET", "/plaintext").status == 200
        waiting.setblocking(False)
        with pytest.raises(BlockingIOError):
            waiting.recv(1)  # answered while the thread still sleeps
        waiting.settimeout(10)
        data = b""
        while b"thread 42" not in data:
            chunk = waiting.recv(4096)
            assert chunk
            data += chunk
    finally:
        waiting.close()


def test_gather_runs_coroutines_side_by_side(server: ServerProcess) -> None:
    before = time.monotonic()
    resp = _get(server, "/gather")
    assert resp.json() == [i * i for i in range(10)]
    assert time.monotonic() - before < 1.5  # ten sleeps of 0.2 s, together


def test_pipelined_requests_are_answered_in_order_around_a_waiting_handler(
    server: ServerProcess, connect: Connect
) -> None:
    conn = connect(server)
    conn.send(
        RawConnection.build("GET", "/sleep?ms=300")
        + RawConnection.build("GET", "/plaintext")
        + RawConnection.build("GET", "/sleep?ms=100")
        + RawConnection.build("GET", "/at-once")
    )
    bodies = [conn.read_response().body for _ in range(4)]
    assert bodies == [b"slept 300", b"Hello, World!", b"slept 100", b"answered without waiting"]


def test_an_exception_after_waiting_is_a_logged_500_and_the_connection_goes_on(
    server: ServerProcess, connect: Connect
) -> None:
    conn = connect(server)
    failed = conn.request("GET", "/raise")
    assert failed.status == 500
    assert conn.request("GET", "/plaintext").status == 200  # same connection, kept alive
    server.wait_for_stderr("failed after waiting")


def test_a_waiting_handler_that_returns_no_response_is_a_500(server: ServerProcess) -> None:
    assert _get(server, "/not-a-response").status_code == 500
    server.wait_for_stderr("returned str, expected Response")


def test_awaiting_an_asyncio_object_is_a_500_that_says_why(server: ServerProcess) -> None:
    assert _get(server, "/asyncio").status_code == 500
    server.wait_for_stderr("chopin runs handlers on its own loop")


def test_a_client_that_leaves_cancels_its_handler(server: ServerProcess) -> None:
    cancelled = _stats(server)["cancelled"]
    sock = socket.create_connection((HOST, server.port), timeout=5)
    sock.sendall(RawConnection.build("GET", "/sleep?ms=30000"))
    time.sleep(0.2)
    sock.close()
    assert wait_until(lambda: _stats(server)["cancelled"] == cancelled + 1, 5.0)
    assert _get(server, "/plaintext").status_code == 200


def test_middleware_wraps_handlers_that_wait(server: ServerProcess) -> None:
    resp = httpx.get(f"{server.url}/layered/sleep", headers={"Origin": "https://app.example"}, timeout=5)
    assert resp.text == "layered"
    assert resp.headers["x-tag"] == "waited"  # the layer's async form ran
    assert int(resp.headers["x-waited-ms"]) >= 40
    assert resp.headers["access-control-allow-origin"] == "https://app.example"
    sync = httpx.get(f"{server.url}/layered/sync", timeout=5)
    assert sync.text == "sync under async middleware"
    assert sync.headers["x-tag"] == "waited"


def test_past_the_cap_a_request_gets_503_with_retry_after(serve: ServerPool, connect: Connect) -> None:
    server = serve(APP, max_waiting_handlers=2)
    socks = []
    for _ in range(2):
        sock = socket.create_connection((HOST, server.port), timeout=5)
        sock.sendall(RawConnection.build("GET", "/sleep?ms=1500"))
        socks.append(sock)
    time.sleep(0.3)
    conn = connect(server)
    refused = conn.request("GET", "/sleep?ms=10")
    assert refused.status == 503
    assert refused.header("retry-after") == "1"
    assert conn.request("GET", "/plaintext").status == 200  # the worker stays responsive
    for sock in socks:
        assert b"slept 1500" in sock.recv(4096)
        sock.close()
    assert _get(server, "/sleep?ms=10").text == "slept 10"  # room again


def test_a_handler_past_its_deadline_gets_504(serve: ServerPool) -> None:
    server = serve(APP, handler_timeout=1.0)
    before = time.monotonic()
    resp = _get(server, "/sleep?ms=20000")
    assert resp.status_code == 504
    assert time.monotonic() - before < 4.0
    polite = _get(server, "/patient")
    assert (polite.status_code, polite.text) == (503, "gave up politely")  # it caught HandlerTimeout


def test_a_graceful_stop_lets_waiting_handlers_finish(serve: ServerPool, connect: Connect) -> None:
    server = serve(APP)
    conn = connect(server)
    conn.send(RawConnection.build("GET", "/sleep?ms=800"))
    time.sleep(0.2)
    server.process.send_signal(signal.SIGTERM)
    resp = conn.read_response()
    assert (resp.status, resp.body) == (200, b"slept 800")
    assert resp.header("connection") == "close"
    assert server.process.wait(10) == 0


def test_stats_are_json(server: ServerProcess) -> None:
    assert set(json.loads(_get(server, "/stats").text)) == {"cancelled", "finished"}


def test_metrics_show_the_handlers_waiting(serve: ServerPool) -> None:
    server = serve(APP)
    socks = []
    for _ in range(3):
        sock = socket.create_connection((HOST, server.port), timeout=5)
        sock.sendall(RawConnection.build("GET", "/sleep?ms=4000"))
        socks.append(sock)

    def waiting() -> int:
        for line in _get(server, "/metrics").text.splitlines():
            if line.startswith("chopin_waiting_handlers "):
                return int(line.split()[1])
        raise AssertionError("no chopin_waiting_handlers line")

    assert wait_until(lambda: waiting() == 3, 3.0)
    for sock in socks:
        sock.close()
    assert wait_until(lambda: waiting() == 0, 3.0)


def test_over_http2_waiting_handlers_share_one_connection_and_the_worker(serve: ServerPool) -> None:
    import h2.events
    from apps.tls_support import H2Client

    server = serve(APP, http2=True)
    client = H2Client(HOST, server.port)  # h2c, prior knowledge
    started = time.monotonic()
    sleepers = [client.request("/sleep?ms=1000") for _ in range(30)]
    time.sleep(0.2)
    probe = client.request("/plaintext")  # the same connection, while 30 handlers wait
    ended: dict[int, float] = {}

    def all_ended(events: list[object]) -> bool:
        for event in events:
            if isinstance(event, h2.events.StreamEnded) and event.stream_id not in ended:
                ended[event.stream_id] = time.monotonic() - started
        return len(ended) == 31

    try:
        client.until(all_ended, 20.0)
    finally:
        client.sock.close()
    first_sleeper = min(ended[i] for i in sleepers)
    assert ended[probe] < first_sleeper, f"/plaintext at {ended[probe]:.2f} s, a 1 s handler at {first_sleeper:.2f} s"
    assert max(ended[i] for i in sleepers) < 6.0  # 30 waits of 1 s together, not one after another


def test_over_http2_a_reset_stream_cancels_its_handler(serve: ServerPool) -> None:
    import asyncio

    server = serve(APP, http2=True)

    async def run() -> None:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=30.0) as client:
            with pytest.raises(httpx.TimeoutException):
                await client.get(f"{server.url}/sleep?ms=30000", timeout=0.5)  # httpx resets the stream

    asyncio.run(run())
    assert wait_until(lambda: _stats(server)["cancelled"] == 1, 5.0)


def test_over_http2_a_handler_that_answers_without_waiting_is_answered_once(serve: ServerPool) -> None:
    server = serve(APP, http2=True)
    with httpx.Client(http1=False, http2=True, timeout=10) as client:  # h2c, prior knowledge
        for _ in range(3):
            resp = client.get(f"{server.url}/at-once")
            assert (resp.http_version, resp.text) == ("HTTP/2", "answered without waiting")
    assert "failed" not in server.stderr_text()


def test_background_work_runs_after_the_answer_is_sent(server: ServerProcess) -> None:
    before = time.monotonic()
    assert _get(server, "/defer").text == "accepted"
    assert time.monotonic() - before < 0.4  # the answer did not wait for the 0.5 s of background work
    assert wait_until(lambda: "mail sent" in _get(server, "/deferred").json(), 5.0)
