"""The reverse proxy over real sockets: a Chopin proxy (one worker, in a subprocess) in front of a
plain ``http.server`` upstream (a thread here) and of a second Chopin server, with httpx,
curl and raw sockets as clients.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import httpx
import pytest
from apps.early_upstream import early_upstream
from apps.http_upstream import free_port, pattern, running_upstream
from apps.tls_support import write_chain
from chopin_core import Context, Request, Response, Router, Settings, TestClient
from chopin_core.client import ClientSettings
from chopin_core.connection import open_listener
from chopin_core.errors import ConfigError
from chopin_core.proxy import Upstream, forwarded_target, mount_proxy, plan_for, proxy
from chopin_core.worker import Worker

CURL = "/usr/bin/curl"


@pytest.fixture(scope="module")
def upstream():
    with running_upstream() as server:
        yield server


@pytest.fixture(scope="module")
def chopin_upstream(serve_module):
    return serve_module("apps.basic:app")


@pytest.fixture(scope="module")
def gateway(serve_module, upstream, chopin_upstream):
    """The proxy app, one worker, with a live, a Chopin and a dead upstream."""
    env = {
        "PROXY_UPSTREAM": upstream.url,
        "PROXY_CHOPIN_UPSTREAM": chopin_upstream.url,
        "PROXY_DEAD_UPSTREAM": f"http://127.0.0.1:{free_port()}",
    }
    return serve_module("apps.proxy_app:app", env=env)


def echo(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return json.loads(resp.content)


def headers_of(info: dict) -> dict[str, str]:
    return {k.lower(): v for k, v in info["headers"]}


# -- forwarding -----------------------------------------------------------------------------


def test_forwards_method_path_query_and_body(gateway):
    with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
        got = echo(client.post("/api/things/7?x=1&y=%20z", content=b"payload", headers={"X-Custom": "kept"}))
        raw = echo(client.get("/raw/keep/prefix"))
    assert got["method"] == "POST"
    assert got["path"] == "/things/7?x=1&y=%20z"  # the /api prefix is stripped, the query kept as sent
    assert got["body"] == "payload"
    headers = headers_of(got)
    assert headers["content-length"] == "7"
    assert headers["x-custom"] == "kept"
    assert raw["path"] == "/raw/keep/prefix"


def test_hop_by_hop_fields_are_dropped_and_forwarding_fields_added(gateway, connect, upstream):
    conn = connect(gateway)
    resp = conn.request(
        "GET",
        "/api/echo",
        [
            ("Connection", "keep-alive, X-Private"),
            ("X-Private", "must not pass"),
            ("Keep-Alive", "timeout=9"),
            ("TE", "trailers"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
            ("X-Forwarded-For", "203.0.113.9"),
            ("Via", "1.0 edge"),
            ("X-End-To-End", "yes"),
        ],
    )
    assert resp.status == 200
    headers = headers_of(json.loads(resp.body))
    for name in ("connection", "x-private", "keep-alive", "te", "proxy-authorization"):
        assert name not in headers, name
    assert headers["x-end-to-end"] == "yes"
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "test"  # the client's Host
    assert headers["host"] == f"127.0.0.1:{upstream.server_address[1]}"  # the upstream's own name
    assert headers["via"] == "1.0 edge, 1.1 chopin"
    # The upstream's hop-by-hop fields do not reach the client either.
    assert resp.header("x-secret") is None
    assert resp.header("keep-alive") is None
    assert resp.header("x-kept") == "yes"
    assert resp.header("via") == "1.1 chopin"
    assert resp.header("connection") is None  # HTTP/1.1 keep-alive, nothing to say


def test_chunked_request_body_is_forwarded_with_a_length(gateway):
    done = subprocess.run(
        [
            CURL,
            "-sS",
            "--max-time",
            "10",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "abc" * 1000,
            f"{gateway.url}/api/upload",
        ],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["body"] == "abc" * 1000
    assert headers_of(info)["content-length"] == "3000"
    assert "transfer-encoding" not in headers_of(info)


def test_chunked_upstream_body_is_rechunked_for_http11(gateway, connect):
    conn = connect(gateway)
    resp = conn.request("GET", "/api/chunked?n=20")
    assert resp.status == 200
    assert resp.chunked
    assert resp.body == b"".join(b"part%d;" % i for i in range(20))
    assert resp.header("trailer") is None  # hop-by-hop; the upstream's trailers are not passed on
    # The connection is still usable.
    assert conn.request("GET", "/fast").body == b"fast"


def test_chunked_upstream_body_to_http10_client_ends_with_close(gateway, connect):
    conn = connect(gateway)
    resp = conn.request("GET", "/api/chunked?n=3", version="HTTP/1.0")
    assert resp.header("transfer-encoding") is None
    assert resp.header("connection") == "close"
    assert resp.body == b"part0;part1;part2;"
    conn.assert_closed_by_server()


def test_close_delimited_upstream_body_reaches_the_client_complete(gateway, connect):
    conn = connect(gateway)
    resp = conn.request("GET", "/api/http10")
    assert resp.status == 200
    assert resp.chunked
    assert resp.body == b"until-close body"
    assert conn.request("GET", "/fast").body == b"fast"


def test_head_keeps_the_upstream_length_and_sends_no_body(gateway, connect):
    conn = connect(gateway)
    resp = conn.request("HEAD", "/api/big?size=12345")
    assert resp.status == 200
    assert resp.header("content-length") == "12345"
    assert conn.request("GET", "/fast").body == b"fast"  # no stray body bytes in between


def test_status_without_body_is_forwarded(gateway, connect):
    conn = connect(gateway)
    resp = conn.request("GET", "/api/status?code=204")
    assert resp.status == 204
    assert resp.body == b""
    assert conn.request("GET", "/api/status?code=404").status == 404


def test_large_body_from_a_chopin_upstream(gateway):
    size = 5 * 1024 * 1024 + 17
    with httpx.Client(base_url=gateway.url, timeout=30.0) as client:
        resp = client.get(f"/chopin/big?size={size}")
        target = client.get("/chopin/target?a=b")
        streamed = client.get("/chopin/stream?n=50")
    assert resp.status_code == 200
    assert resp.headers["content-length"] == str(size)
    assert resp.content == pattern(size)
    info = target.json()
    assert info["path"] == "/target"
    assert info["query"] == "a=b"
    assert streamed.headers["transfer-encoding"] == "chunked"
    assert streamed.content == b"".join(b"%06d|" % i for i in range(50))


def test_pipelined_requests_are_answered_in_order(gateway, connect):
    conn = connect(gateway)
    conn.send(conn.build("GET", "/api/slow?delay=0.5") + conn.build("GET", "/fast") + conn.build("GET", "/api/one"))
    first = conn.read_response()
    second = conn.read_response()
    third = conn.read_response()
    assert json.loads(first.body)["path"] == "/slow?delay=0.5"
    assert second.body == b"fast"
    assert json.loads(third.body)["path"] == "/one"


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("first", ["/api/echo", "/chopin/", "/dead", "/fast"])
def test_get_with_a_body_and_a_pipelined_request_are_both_answered(gateway, connect, first, split):
    # A GET may carry a body (RFC 9110 9.3.1): it is consumed (and forwarded), and the
    # request behind it on the same connection is answered too, in order.
    conn = connect(gateway)
    request = conn.build("GET", first, body=b"hello")
    behind = conn.build("GET", "/api/after")
    if split:
        conn.send(request[:-2])
        time.sleep(0.05)
        conn.send(request[-2:] + behind)
    else:
        conn.send(request + behind)
    answer = conn.read_response()
    after = conn.read_response()
    if first == "/api/echo":
        got = json.loads(answer.body)
        assert (got["method"], got["body"]) == ("GET", "hello")
    elif first == "/dead":
        assert answer.status == 502
    else:
        assert answer.status == 200
    assert after.status == 200
    assert json.loads(after.body)["path"] == "/after"
    assert conn.request("GET", "/fast").body == b"fast"  # the connection is still open


def test_get_with_a_body_to_an_upstream_that_answers_before_reading_it(gateway, connect):
    # A streaming upstream sends its head before it has read the whole request body (RFC 9112
    # 9.3 lets it).  The proxy stopped sending the body at that head, so the upstream waited
    # for the rest and the proxy for the answer, until the read timeout cut the client's
    # message short; directly, both requests were answered.
    body = pattern(8 * 1024 * 1024 + 5)  # far more than the socket buffers hold
    conn = connect(gateway)
    conn.send(conn.build("GET", "/api/duplex", body=body) + conn.build("GET", "/api/after"))
    answer = conn.read_response(timeout=60.0)
    after = conn.read_response()
    assert answer.status == 200
    assert answer.body == body
    assert json.loads(after.body)["path"] == "/after"
    assert conn.request("GET", "/api/reuse").status == 200  # the connection is still open


def test_an_early_refusal_that_resets_reaches_the_client(gateway, connect):
    # The upstream answers 413 before reading the body and resets (the body unread).  The
    # proxy's next send failed first and the answer waiting in its socket was dropped for a
    # 502; it is read before the failure counts.
    conn = connect(gateway)
    conn.send(conn.build("GET", "/api/refuse", body=bytes(8 * 1024 * 1024)) + conn.build("GET", "/api/after"))
    answer = conn.read_response(timeout=30.0)
    after = conn.read_response()
    assert (answer.status, answer.body) == (413, b"too large")
    assert json.loads(after.body)["path"] == "/after"


@pytest.mark.parametrize("ending", ["close", "half-close", "http/1.0"])
@pytest.mark.parametrize("first", ["/api/echo", "/chopin/"])
def test_get_with_a_body_and_a_pipelined_request_that_ends_the_connection(gateway, connect, first, ending):
    # The same pair, with the connection ending after the second answer: by the second
    # request's "Connection: close", by the client shutting its sending side once both are
    # out, or by HTTP/1.0 (keep-alive asked on the first only).  Both are answered, then the
    # proxy closes cleanly: a FIN after the last answer, never a reset.
    conn = connect(gateway)
    if ending == "http/1.0":
        request = conn.build("GET", first, [("Connection", "keep-alive")], b"hello", version="HTTP/1.0")
        behind = conn.build("GET", "/api/after", version="HTTP/1.0")
    else:
        request = conn.build("GET", first, body=b"hello")
        behind = conn.build("GET", "/api/after", [("Connection", "close")] if ending == "close" else [])
    conn.send(request + behind)
    if ending == "half-close":
        conn.sock.shutdown(socket.SHUT_WR)
    answer = conn.read_response()
    after = conn.read_response()
    assert answer.status == 200
    if first == "/api/echo":
        assert json.loads(answer.body)["body"] == "hello"
    assert after.status == 200
    assert json.loads(after.body)["path"] == "/after"
    assert not conn.buffer
    conn.sock.settimeout(10.0)
    assert conn.sock.recv(1) == b""  # a ConnectionResetError here is the reset of issue 15 item 20


def test_get_with_a_body_to_an_upstream_that_resets_mid_body_through_the_loop(gateway, connect):
    # The upstream resets (RST, as one does that closes with a GET's body unread) after part of
    # its body: the client gets what came, then the end of the connection (an incomplete
    # message), and the worker goes on serving.
    conn = connect(gateway)
    conn.send(conn.build("GET", "/api/reset", body=b"hello") + conn.build("GET", "/fast"))
    head = conn.read_head()
    assert head.status == 200
    assert head.header("content-length") == "1000"
    assert len(conn.read_until_close(timeout=10.0)) == 100
    assert connect(gateway).request("GET", "/fast").body == b"fast"


def test_get_with_a_body_to_an_upstream_that_resets_in_process_is_a_502_and_the_request_behind_is_answered(upstream):
    # The blocking forwarder (TestClient, no loop) buffers the whole answer, so a reset in the
    # middle of the upstream's body is still a 502.  It was a bare ConnectionResetError out of
    # TestClient.raw: the client's body reader let the OSError through (not a ClientError).
    router = Router()
    mount_proxy(router, "/api", upstream.url)

    @router.get("/fast")
    def fast(ctx: Context) -> Response:
        return Response.text("fast")

    client = TestClient(router)
    request = b"GET /api/reset HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    answer, after = client.raw(request + b"GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
    assert answer.status == 502
    assert after.status == 200
    assert after.body == b"fast"


def test_upstream_connections_are_kept_alive_and_reused(gateway):
    with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
        ports = {echo(client.get(f"/api/reuse/{i}"))["peer_port"] for i in range(5)}
    assert len(ports) == 1  # one worker, sequential requests: one upstream connection


def test_a_pooled_connection_the_upstream_closed_is_replaced(gateway):
    with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
        first = client.get("/api/drop-after")  # the upstream closes after answering, without saying so
        time.sleep(0.2)
        second = client.get("/api/after-drop")
    assert first.status_code == 200
    assert first.content == b"dropped"
    assert echo(second)["path"] == "/after-drop"


def test_curl_through_the_proxy(gateway):
    done = subprocess.run(
        [CURL, "-sS", "--max-time", "10", "-i", f"{gateway.url}/chopin/user/42"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"\r\nVia: 1.1 chopin" in head
    assert json.loads(body) == {"id": "42"}


def test_large_request_body_goes_out_as_the_upstream_takes_it(gateway):
    body = pattern(6 * 1024 * 1024 + 3)  # far more than one socket buffer: partial writes, EPOLLOUT
    with httpx.Client(base_url=gateway.url, timeout=30.0) as client:
        resp = client.post("/chopin/echo", content=body)
    assert resp.status_code == 200
    assert resp.headers["x-body-length"] == str(len(body))
    assert resp.content == body


def test_proxy_with_forked_workers(serve, upstream):
    server = serve("apps.proxy_app:app", workers=2, env={"PROXY_UPSTREAM": upstream.url})
    server.wait_for_children(2)
    for _ in range(6):
        with httpx.Client(base_url=server.url, timeout=10.0) as client:  # a new connection each time
            assert echo(client.get("/api/forked"))["path"] == "/forked"


def test_shutdown_lets_a_proxied_request_finish(serve, upstream):
    server = serve("apps.proxy_app:app", env={"PROXY_UPSTREAM": upstream.url})
    result: dict[str, httpx.Response] = {}

    def slow() -> None:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            result["resp"] = client.get("/api/slow?delay=2")

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.7)
    server.process.send_signal(signal.SIGTERM)
    thread.join(30)
    assert result["resp"].status_code == 200
    assert echo(result["resp"])["path"] == "/slow?delay=2"
    assert server.process.wait(15) == 0


# -- the loop is never blocked ------------------------------------------------------------------


def test_a_slow_upstream_does_not_stall_other_connections(gateway):
    slow_result: dict[str, object] = {}

    def slow() -> None:
        with httpx.Client(base_url=gateway.url, timeout=30.0) as client:
            slow_result["resp"] = client.get("/api/slow?delay=6")
            slow_result["done"] = time.monotonic()

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        time.sleep(0.5)  # the slow request is in flight at the single worker
        answered = []
        for _ in range(5):
            with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
                answered.append(client.get("/fast").text)
                answered.append(echo(client.get("/api/quick"))["path"])
        fast_done = time.monotonic()
        assert thread.is_alive(), "the slow request finished before the others: nothing was shown"
    finally:
        thread.join(30)
    assert answered == ["fast", "/quick"] * 5
    assert slow_result["resp"].status_code == 200  # type: ignore[attr-defined]
    assert fast_done < slow_result["done"]  # type: ignore[operator]


def test_a_slow_client_pauses_the_upstream_instead_of_buffering_it(gateway, connect):
    conn = connect(gateway, rcvbuf=16 * 1024)
    conn.send(conn.build("GET", "/chopin/endless"))  # 4 GiB of 64 KiB chunks from the Chopin upstream
    head = conn.read_head()
    assert head.status == 200
    assert head.header("transfer-encoding") == "chunked"
    before = gateway.rss_kib()
    time.sleep(3)  # the client reads nothing: unpaused, the proxy would buffer hundreds of MiB by now
    grown = gateway.rss_kib() - before
    assert grown < 32 * 1024, f"proxy grew by {grown} KiB while the client was not reading"
    with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
        assert client.get("/fast").text == "fast"
    # Reading again resumes the flow.
    received = bytearray(conn.buffer)
    deadline = time.monotonic() + 20
    while len(received) < 4 * 1024 * 1024 and time.monotonic() < deadline:
        received += conn.sock.recv(1 << 20)
    assert len(received) >= 4 * 1024 * 1024
    assert b"000000000000010\n" in received  # the 11th 64 KiB chunk of the upstream


# -- failures --------------------------------------------------------------------------------


def test_unreachable_upstream_is_502_and_the_connection_stays_usable(gateway, connect):
    conn = connect(gateway)
    resp = conn.request("GET", "/dead")
    assert resp.status == 502
    assert resp.body == b"Bad Gateway"
    assert conn.request("GET", "/fast").body == b"fast"
    gateway.wait_for_stderr("proxy GET /dead")


def test_slow_upstream_is_504(serve, upstream):
    server = serve("apps.proxy_app:app", env={"PROXY_UPSTREAM": upstream.url, "PROXY_READ_TIMEOUT": "1"})
    started = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=20.0) as client:
        resp = client.get("/api/slow?delay=6")
        took = time.monotonic() - started
        after = client.get("/fast")
    assert resp.status_code == 504
    assert resp.text == "Gateway Timeout"
    assert took < 5.5  # far below the upstream's 6 s
    assert after.text == "fast"


@pytest.mark.parametrize(("read_timeout", "delay"), [(0.3, 2.0), (2.5, 3.0)])
def test_read_timeout_is_kept_to_the_millisecond(serve, upstream, read_timeout, delay):
    # Deadlines used to be whole-second ticks plus one: 0.3 s answered after 1-2 s, and
    # 2.5 s never fired before a 3 s upstream answered.
    env = {"PROXY_UPSTREAM": upstream.url, "PROXY_READ_TIMEOUT": str(read_timeout)}
    server = serve("apps.proxy_app:app", env=env)
    with httpx.Client(base_url=server.url, timeout=20.0) as client:
        assert client.get("/fast").text == "fast"  # the worker is up and idle
        started = time.monotonic()
        resp = client.get(f"/api/slow?delay={delay}")
        took = time.monotonic() - started
        after = client.get("/api/one")  # the same connection goes on through the proxy
    assert resp.status_code == 504
    assert read_timeout - 0.05 <= took < min(read_timeout + 0.6, delay), took
    assert json.loads(after.content)["path"] == "/one"


def test_the_read_timeout_counts_from_the_upstreams_last_progress_while_the_request_goes_out(serve):
    # An upstream that takes a large request body slowly, a piece at a time well within
    # read_timeout, but the whole of it over several read_timeouts: the exchange goes on
    # while the body is taken, then answers.  The deadline used to run from the connect,
    # so the still-moving upload ended as a 504.  The proxy's socket buffer holds megabytes,
    # so most of the progress is only seen as that buffer drains (SIOCOUTQ).
    body = b"x" * (8 * 1024 * 1024)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by the accepted socket
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(20)
    seen: list[int] = []

    def slow_reader() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(20)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            head, _, got = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"content-length: *(\d+)", head, re.IGNORECASE).group(1))
            received = len(got)
            while received < length:
                time.sleep(0.002)  # at most 4096 bytes a read (SO_RCVBUF): under 2 MB/s
                piece = conn.recv(65536)
                if not piece:
                    return
                received += len(piece)
            seen.append(received)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndone")

    thread = threading.Thread(target=slow_reader)
    thread.start()
    try:
        env = {"PROXY_UPSTREAM": f"http://127.0.0.1:{listener.getsockname()[1]}", "PROXY_READ_TIMEOUT": "0.3"}
        server = serve("apps.proxy_app:app", env=env)
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            started = time.monotonic()
            resp = client.post("/api/upload", content=body)
            took = time.monotonic() - started
    finally:
        listener.close()
        thread.join(30)
    assert (resp.status_code, resp.text) == (200, "done"), took
    assert took > 0.6, "the upload must outlast two read_timeouts to test anything"
    assert seen == [len(body)]


def test_an_upstream_that_stops_taking_a_large_request_is_504(serve):
    # The other side of the test above: progress moves the deadline, a stall does not.
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    release = threading.Event()

    def stalled_reader() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)  # the head and a little of the body, then nothing more
            release.wait(20)

    thread = threading.Thread(target=stalled_reader)
    thread.start()
    try:
        env = {"PROXY_UPSTREAM": f"http://127.0.0.1:{listener.getsockname()[1]}", "PROXY_READ_TIMEOUT": "0.5"}
        server = serve("apps.proxy_app:app", env=env)
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            started = time.monotonic()
            resp = client.post("/api/upload", content=b"x" * (8 * 1024 * 1024))
            took = time.monotonic() - started
            after = client.get("/fast")
    finally:
        release.set()
        listener.close()
        thread.join(30)
    assert resp.status_code == 504
    assert took < 3.0, took
    assert after.text == "fast"


def test_connect_timeout_is_504(serve):
    # A listener whose accept queue is full: the kernel drops further SYNs, so connecting hangs.
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        server = serve(
            "apps.proxy_app:app",
            env={"PROXY_UPSTREAM": f"http://127.0.0.1:{listener.getsockname()[1]}", "PROXY_CONNECT_TIMEOUT": "1"},
        )
        started = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=20.0) as client:
            resp = client.get("/api/x")
        assert resp.status_code == 504
        assert time.monotonic() - started < 8.0
        server.wait_for_stderr("longer than 1.0 s")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_malformed_upstream_answer_is_502(serve):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    answers = [b"SMTP ready\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"]

    def garbage() -> None:
        for answer in answers:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=garbage)
    thread.start()
    try:
        server = serve("apps.proxy_app:app", env={"PROXY_UPSTREAM": f"http://127.0.0.1:{listener.getsockname()[1]}"})
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            assert client.get("/api/one").status_code == 502
            assert client.get("/api/two").status_code == 502
            assert client.get("/fast").text == "fast"
        server.wait_for_stderr("Content-Length: expected one decimal number")
    finally:
        listener.close()
        thread.join(20)


def test_the_next_address_is_tried_when_one_refuses(upstream):
    target = Upstream(upstream.url)
    target.addresses.insert(0, (socket.AF_INET, ("127.0.0.1", free_port())))  # refuses: nothing listens
    router = Router()
    router.get("/x", proxy(target))
    listener = open_listener("127.0.0.1", 0)
    port = listener.getsockname()[1]
    worker = Worker(router.compile(), Settings(), listener=listener)  # its loop, in a thread of this process
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        with httpx.Client(timeout=10.0) as client:
            resp = client.get(f"http://127.0.0.1:{port}/x")
    finally:
        worker.request_stop()
        thread.join(15)
    assert not thread.is_alive()
    assert echo(resp)["path"] == "/x"


def test_upstream_closing_mid_body_closes_the_client_connection(gateway, connect):
    conn = connect(gateway)
    conn.send(conn.build("GET", "/api/truncated"))
    head = conn.read_head()
    assert head.status == 200
    assert head.header("content-length") == "1000"
    rest = conn.read_until_close(timeout=10.0)
    assert len(rest) == 100  # what came, then the connection closed: never a complete-looking message


def test_upstream_closing_mid_chunked_body_leaves_no_final_chunk(gateway, connect):
    conn = connect(gateway)
    conn.send(conn.build("GET", "/api/truncated-chunked"))
    head = conn.read_head()
    assert head.header("transfer-encoding") == "chunked"
    rest = conn.read_until_close(timeout=10.0)
    assert rest == b"5\r\nhello\r\n"  # no "0\r\n\r\n": the client sees the message is incomplete


def test_a_client_closing_early_does_not_break_the_worker(gateway, connect):
    conn = connect(gateway)
    conn.send(conn.build("GET", "/api/slow?delay=1"))
    conn.close()
    time.sleep(1.5)
    with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
        assert client.get("/fast").text == "fast"
        assert echo(client.get("/api/after-close"))["path"] == "/after-close"


def test_proxied_responses_are_counted_by_their_final_status(serve, upstream):
    env = {
        "PROXY_UPSTREAM": upstream.url,
        "PROXY_DEAD_UPSTREAM": f"http://127.0.0.1:{free_port()}",
        "PROXY_METRICS": "1",
    }
    server = serve("apps.proxy_app:app", env=env)
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        assert client.get("/api/status?code=404").status_code == 404
        assert client.get("/dead").status_code == 502
        assert client.get("/api/ok").status_code == 200

        def counted() -> str:
            return client.get("/metrics").text

        deadline = time.monotonic() + 10
        text = counted()
        while 'chopin_responses_total{class="5xx"} 1' not in text and time.monotonic() < deadline:
            time.sleep(0.3)  # workers publish their counters once a second
            text = counted()
    assert 'chopin_responses_total{class="4xx"} 1' in text
    assert 'chopin_responses_total{class="5xx"} 1' in text
    # /api/ok, plus the /metrics answers already published.
    assert int(re.search(r'chopin_responses_total\{class="2xx"\} (\d+)', text)[1]) >= 1  # type: ignore[index]


def test_proxy_behind_tls_forwards_https_and_refuses_h2_clearly(serve, upstream, tmp_path):
    chain = write_chain(tmp_path)
    env = {"PROXY_UPSTREAM": upstream.url, "TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key)}
    server = serve("apps.proxy_app:app", env=env)
    verify = ssl.create_default_context(cafile=str(chain.root))
    with httpx.Client(verify=verify, timeout=10.0) as client:
        resp = client.get(f"https://localhost:{server.port}/api/over-tls?q=1")
        assert resp.http_version == "HTTP/1.1"
        info = echo(resp)
    assert info["path"] == "/over-tls?q=1"
    assert headers_of(info)["x-forwarded-proto"] == "https"
    with httpx.Client(http2=True, verify=verify, timeout=10.0) as client:
        h2 = client.get(f"https://localhost:{server.port}/api/over-h2")
        direct = client.get(f"https://localhost:{server.port}/fast")
    assert h2.http_version == "HTTP/2"
    assert h2.status_code == 501  # not done: the upstream exchange is driven for HTTP/1.1 connections only
    assert h2.text == "the reverse proxy needs HTTP/1.1"
    assert direct.text == "fast"


def test_test_client_forwards_blocking(upstream):
    router = Router()
    mount_proxy(router, "/api", upstream.url)
    router.get("/dead", proxy(f"http://127.0.0.1:{free_port()}"))
    client = TestClient(router)
    resp = client.post("/api/in-process?a=1", body=b"data", headers={"X-Custom": "1"})
    assert resp.status == 200
    assert resp.header("via") == "1.1 chopin"
    assert resp.header("x-secret") is None  # named in the upstream's Connection: hop-by-hop
    info = resp.json()
    assert info["path"] == "/in-process?a=1"
    assert info["body"] == "data"
    assert headers_of(info)["x-custom"] == "1"
    assert client.get("/dead").status == 502


def test_test_client_forwards_an_early_refusal_of_a_large_body():
    # The upstream answers 413 once it has the head, then closes with the body unread (a reset).
    # The blocking forwarder sent the whole body before reading: the reset made it a 502.
    with early_upstream() as server:
        router = Router()
        forward = proxy(server.url, settings=ClientSettings(read_timeout=3.0))
        router.post("/refuse-close", forward)
        router.put("/echo", forward)
        client = TestClient(router)
        resp = client.post("/refuse-close", body=bytes(8 * 1024 * 1024))
        assert (resp.status, resp.body) == (413, b"too large")
        body = pattern(8 * 1024 * 1024)  # and an upstream that answers as it reads (was a 504)
        echoed = client.put("/echo", body=body)
        assert (echoed.status, echoed.body == body) == (200, True)


# -- building the forwarded request without sockets ---------------------------------------------


def _request(target: str, *headers: bytes) -> Request:
    path, _, query = target.partition("?")
    return Request("GET", target, path, query or None, True, True, (b"Host: front.example", *headers))


def test_forwarded_target_joins_base_path_and_strips_prefix():
    base = Upstream("http://127.0.0.1:9/v1/")
    bare = Upstream("http://127.0.0.1:9")
    assert forwarded_target(base, _request("/api/users?x=1"), "/api") == "/v1/users?x=1"
    assert forwarded_target(base, _request("/api"), "/api") == "/v1/"
    assert forwarded_target(bare, _request("/api"), "/api") == "/"
    assert forwarded_target(bare, _request("/apix/y"), "/api") == "/apix/y"  # not at a segment boundary
    assert forwarded_target(bare, _request("/a/b"), "") == "/a/b"


def test_plan_sets_host_and_keeps_client_host_on_request():
    up = Upstream("http://127.0.0.1:9")
    plan = plan_for(up, _request("/x"))
    assert plan.headers[0] == ("Host", "127.0.0.1:9")
    assert ("X-Forwarded-Host", "front.example") in plan.headers
    kept = plan_for(up, _request("/x"), preserve_host=True)
    assert kept.headers[0] == ("Host", "front.example")
    assert ("X-Forwarded-For", "10.0.0.1") in plan.request_headers(("10.0.0.1", 5555))


def test_bad_proxy_configuration_is_refused():
    with pytest.raises(ConfigError, match="strip_prefix"):
        proxy("http://127.0.0.1:9", strip_prefix="api/")
    with pytest.raises(ValueError, match="http://"):
        proxy("https://127.0.0.1:9")
    with pytest.raises(ConfigError, match="query"):
        Upstream("http://127.0.0.1:9/?a=b")
    with pytest.raises(ConfigError, match="cannot resolve"):
        Upstream("http://no-such-host.invalid:9")
    with pytest.raises(ConfigError, match="prefix"):
        mount_proxy(Router(), "api", "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="read_timeout"):
        ClientSettings(read_timeout=0)
