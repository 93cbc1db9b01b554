"""Server-sent events: the event format (no sockets), then ``Response.sse`` on a real server.

The server tests run ``apps/sse_app.py`` with one worker and read it with curl,
httpx and raw sockets; timestamps taken as the bytes arrive show the events were
sent as they were produced, not batched.
"""

from __future__ import annotations

import itertools
import socket
import struct
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest
from apps.tls_support import Chain, client_context
from chopin_core import Context, Response, Router, TestClient, sleep
from chopin_core._wire import sse as wire
from chopin_core.compress import is_compressible
from chopin_core.sse import ServerSentEvent, last_event_id
from conftest import HOST, RawConnection, ServerPool, ServerProcess, wait_until

Connect = Callable[..., RawConnection]

# -- the format (WHATWG HTML 9.2.5), no sockets ----------------------------------------------


def test_an_event_has_its_fields_then_an_empty_line() -> None:
    assert ServerSentEvent("hi", event="greeting", id="7", retry=2500).encode() == (
        b"event: greeting\nid: 7\nretry: 2500\ndata: hi\n\n"
    )
    assert wire.event("plain") == b"data: plain\n\n"


@pytest.mark.parametrize("data", ["one\ntwo\nthree", "one\r\ntwo\r\nthree", "one\rtwo\nthree"])
def test_multi_line_data_is_one_data_line_per_line_whatever_the_line_break(data: str) -> None:
    assert wire.event(data) == b"data: one\ndata: two\ndata: three\n\n"


def test_empty_lines_and_leading_spaces_in_data_survive() -> None:
    # The client strips one space after the colon: "data:  x" gives " x".
    assert wire.event("\n x\n") == b"data: \ndata:  x\ndata: \n\n"


def test_data_is_utf8() -> None:
    assert wire.event("café ☕") == "data: café ☕\n\n".encode()


def test_an_event_without_data_only_sets_fields() -> None:
    assert wire.event(id="42") == b"id: 42\n\n"
    assert wire.event(retry=0) == b"retry: 0\n\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": "x", "id": "a\nb"}, "line break or NUL"),
        ({"data": "x", "id": "a\x00b"}, "line break or NUL"),
        ({"data": "x", "event": "a\rb"}, "line break"),
        ({"data": "x", "retry": -1}, "non-negative"),
        ({}, "at least one"),
    ],
)
def test_fields_that_would_break_the_stream_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wire.event(**kwargs)  # type: ignore[arg-type]


def test_comments_and_the_keep_alive() -> None:
    assert wire.comment("hello\nthere") == b": hello\n: there\n\n"
    assert wire.KEEPALIVE == b": keep-alive\n\n"


def test_event_streams_are_never_compressed() -> None:
    assert not is_compressible("text/event-stream")
    assert is_compressible("text/plain; charset=utf-8")
    with pytest.raises(ValueError, match="uncompressed"):
        Response.sse(["x"]).gzip()


def test_response_sse_head_fields() -> None:
    resp = Response.sse(["a"])
    assert resp.content_type == "text/event-stream"
    assert ("Cache-Control", "no-cache") in resp.headers
    assert ("X-Accel-Buffering", "no") in resp.headers
    with pytest.raises(ValueError, match="keepalive"):
        Response.sse(["a"], keepalive=-1)


def test_sse_in_process_with_the_test_client() -> None:
    router = Router()

    @router.get("/sync")
    def sync_events(ctx: Context) -> Response:
        return Response.sse(["one", ServerSentEvent("two", id="2")], retry=100)

    @router.get("/async")
    async def async_events(ctx: Context) -> Response:
        async def produce():  # type: ignore[no-untyped-def]
            for i in range(2):
                await sleep(0.01)
                yield ServerSentEvent(f"n{i}", id=str(i))

        return Response.sse(produce())

    @router.get("/resume")
    def resume(ctx: Context) -> Response:
        return Response.text(repr(last_event_id(ctx.req)))

    client = TestClient(router)
    sync = client.get("/sync")
    assert sync.status == 200 and sync.header("content-type") == "text/event-stream"
    assert sync.text == "retry: 100\n\ndata: one\n\nid: 2\ndata: two\n\n"
    assert client.get("/async").text == "id: 0\ndata: n0\n\nid: 1\ndata: n1\n\n"
    assert client.get("/resume", headers={"Last-Event-ID": "17"}).text == "'17'"
    assert client.get("/resume", headers={"Last-Event-ID": ""}).text == "None"
    assert client.get("/resume").text == "None"


# -- on a real server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(serve_module: ServerPool) -> ServerProcess:
    return serve_module("apps.sse_app:app", workers=1)


def _stats(server: ServerProcess) -> dict[str, int]:
    result: dict[str, int] = httpx.get(f"{server.url}/stats", timeout=5).json()
    return result


def test_curl_receives_each_event_as_it_is_produced(server: ServerProcess) -> None:
    started = time.monotonic()
    arrivals: list[tuple[float, str]] = []
    command = ["curl", "-sN", "--max-time", "10", f"{server.url}/ticks?n=5&every=0.3"]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                arrivals.append((time.monotonic() - started, line))
        assert proc.wait(10) == 0
    assert [line for _, line in arrivals] == [f"data: tick {i}" for i in range(5)]
    times = [at for at, _ in arrivals]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Produced 0.3 s apart: received 0.3 s apart (batched, they would come together at the end).
    assert all(gap > 0.15 for gap in gaps), f"events were batched: arrivals {times}"
    assert times[0] < 1.0, f"the first event came after {times[0]:.2f} s"


def test_httpx_streams_the_events_with_their_fields(server: ServerProcess) -> None:
    lines: list[tuple[float, str]] = []
    with httpx.stream("GET", f"{server.url}/ticks?n=3&every=0.3", timeout=10) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        assert resp.headers["cache-control"] == "no-cache"
        assert "content-encoding" not in resp.headers  # the compression layer left it alone
        started = time.monotonic()
        for line in resp.iter_lines():
            lines.append((time.monotonic() - started, line))
    text = [line for _, line in lines]
    assert text[:2] == ["retry: 1500", ""]
    expected = [["event: tick", f"id: {i}", f"data: tick {i}", ""] for i in range(3)]
    assert text[2:] == [line for event in expected for line in event]
    data_times = [at for at, line in lines if line.startswith("data:")]
    assert data_times[2] - data_times[0] > 0.4, f"events were batched: {data_times}"


def test_last_event_id_resumes_after_the_event_the_client_saw(server: ServerProcess, connect: Connect) -> None:
    conn = connect(server)
    conn.send(conn.build("GET", "/ticks?n=5&every=0.05", [("Last-Event-ID", "2")]))
    resp = conn.read_response()
    assert resp.status == 200 and resp.chunked
    assert resp.body == b"retry: 1500\n\n" + b"".join(
        b"event: tick\nid: %d\ndata: tick %d\n\n" % (i, i) for i in (3, 4)
    )


def test_keep_alive_comments_while_the_producer_waits(server: ServerProcess) -> None:
    with httpx.stream("GET", f"{server.url}/quiet?wait=1.2&keepalive=0.3", timeout=10) as resp:
        body = b"".join(resp.iter_raw())
    keepalives = body.count(b": keep-alive\n\n")
    assert 2 <= keepalives <= 5, body
    assert body.endswith(b"data: after the silence\n\n")


def test_no_keep_alive_when_events_come_often_enough(server: ServerProcess) -> None:
    with httpx.stream("GET", f"{server.url}/ticks?n=4&every=0.1", timeout=10) as resp:
        body = b"".join(resp.iter_raw())
    assert b"keep-alive" not in body


def test_a_client_that_leaves_closes_the_generator(server: ServerProcess, connect: Connect) -> None:
    before = _stats(server)
    conn = connect(server)
    conn.send(conn.build("GET", "/forever"))
    head = conn.read_head()
    assert head.status == 200
    while conn.buffer.count(b"data: event") < 3:
        conn._fill(time.monotonic() + 5)  # read a few events as they come
    conn.close()  # mid-stream, between two events
    assert wait_until(lambda: _stats(server)["closed"] > before["closed"], 5), "the generator's finally did not run"
    assert _stats(server)["forever_started"] == before["forever_started"] + 1


def test_a_client_that_resets_mid_event_closes_the_generator(server: ServerProcess) -> None:
    before = _stats(server)
    sock = socket.create_connection((HOST, server.port), timeout=5)
    sock.sendall(RawConnection.build("GET", "/forever"))
    sock.recv(100)  # the head and part of the first event: then the client is gone at once
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST
    assert wait_until(lambda: _stats(server)["closed"] > before["closed"], 5), "the generator's finally did not run"
    assert httpx.get(f"{server.url}/", timeout=5).text == "hello"


def test_many_event_streams_at_once_do_not_hold_the_worker(server: ServerProcess, connect: Connect) -> None:
    listeners = [connect(server) for _ in range(50)]
    for conn in listeners:
        conn.send(conn.build("GET", "/ticks?n=3&every=0.5"))
    probe = time.monotonic()
    assert httpx.get(f"{server.url}/", timeout=5).text == "hello"
    assert time.monotonic() - probe < 1.0
    for conn in listeners:
        assert conn.read_response(timeout=10).body.count(b"data: tick") == 3


def test_head_of_an_event_stream_never_starts_the_producer(server: ServerProcess, connect: Connect) -> None:
    before = _stats(server)
    conn = connect(server)
    resp = conn.request("HEAD", "/forever")
    assert resp.status == 200 and resp.header("content-type") == "text/event-stream"
    assert conn.request("GET", "/").body == b"hello"
    assert _stats(server)["forever_started"] == before["forever_started"]


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_events_over_tls_as_a_browser_gets_them(serve: ServerPool, chain: Chain, http2: bool) -> None:
    server = serve("apps.sse_app:app", workers=1, env={"TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key)})
    alpn = ("h2", "http/1.1") if http2 else ("http/1.1",)
    url = f"https://127.0.0.1:{server.port}/ticks?n=3&every=0.3"
    arrivals = []
    with httpx.Client(http2=http2, verify=client_context(chain.root, alpn), timeout=10) as client:
        with client.stream("GET", url) as resp:
            assert resp.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            assert resp.headers["content-type"] == "text/event-stream"
            started = time.monotonic()
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    arrivals.append((time.monotonic() - started, line))
    assert [line for _, line in arrivals] == [f"data: tick {i}" for i in range(3)]
    assert arrivals[2][0] - arrivals[0][0] > 0.4, f"events were batched: {arrivals}"
