"""The worker over real sockets: framing, pipelining, limits, timeouts, back-pressure.

Each test talks to ``apps/basic.py`` served in a subprocess (``conftest.py``),
with httpx and curl as real clients and raw sockets where every byte matters.
"""

from __future__ import annotations

import email.utils
import os
import re
import select
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from chopin_core.connection import open_listener

CURL = "/usr/bin/curl"
# RFC 9110 5.6.7: IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}"
    r" \d{2}:\d{2}:\d{2} GMT"
)
_PATTERN = bytes(range(256))


def pattern(size: int) -> bytes:
    """The body of ``GET /big?size=<size>`` (as ``apps.basic.pattern``)."""
    return (_PATTERN * (size // 256 + 1))[:size]


def stream_body(count: int) -> bytes:
    """The body of ``GET /stream?n=<count>`` (as ``apps.basic.stream_chunk``)."""
    return b"".join(b"%06d|" % i for i in range(count))


def assert_serves(server) -> None:
    """A fresh connection to ``server`` is answered."""
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        resp = client.get("/")
    assert resp.status_code == 200
    assert resp.text == "hello"


@pytest.fixture(scope="module")
def server(serve_module):
    """The basic app, one worker, default limits."""
    return serve_module("apps.basic:app")


@pytest.fixture(scope="module")
def limited(serve_module):
    """The basic app with a 1000-byte body limit and a 2 s header timeout."""
    return serve_module("apps.basic:app", env={"CHOPIN_MAX_BODY_SIZE": "1000", "CHOPIN_HEADER_TIMEOUT": "2"})


# -- plain requests and connection management ------------------------------------------


def test_get_with_httpx(server):
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        resp = client.get("/")
        again = client.get("/user/42")
    assert resp.status_code == 200
    assert resp.content == b"hello"
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.headers["content-length"] == "5"
    assert resp.http_version == "HTTP/1.1"
    assert again.json() == {"id": "42"}


def test_get_with_curl(server):
    done = subprocess.run(
        [CURL, "--silent", "--show-error", "--include", "--max-time", "5", f"{server.url}/"],
        capture_output=True,
        timeout=10,
        check=True,
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 5" in head
    assert body == b"hello"


def test_post_chunked_and_expect_with_curl(server, tmp_path):
    payload = pattern(300_000)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(payload)
    done = subprocess.run(
        [
            CURL,
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--header",
            "Transfer-Encoding: chunked",
            "--header",
            "Expect: 100-continue",
            "--data-binary",
            f"@{upload}",
            f"{server.url}/echo",
        ],
        capture_output=True,
        timeout=15,
        check=True,
    )
    assert done.stdout == payload


def test_keepalive_two_requests_on_one_socket(server, connect):
    conn = connect(server)
    first = conn.request("GET", "/")
    second = conn.request("GET", "/user/7")
    assert (first.status, first.body) == (200, b"hello")
    assert (second.status, second.body) == (200, b'{"id":"7"}')
    assert first.header("connection") is None  # keep-alive is the HTTP/1.1 default


def test_http10_without_keepalive_closes(server, connect):
    conn = connect(server)
    resp = conn.request("GET", "/", version="HTTP/1.0")
    assert resp.status == 200
    assert resp.body == b"hello"
    assert resp.header("connection") == "close"
    conn.assert_closed_by_server()


def test_http10_with_keepalive_stays_open(server, connect):
    conn = connect(server)
    first = conn.request("GET", "/", [("Connection", "keep-alive")], version="HTTP/1.0")
    assert first.status == 200
    assert first.header("connection") == "keep-alive"
    second = conn.request("GET", "/user/1", [("Connection", "keep-alive")], version="HTTP/1.0")
    assert (second.status, second.body) == (200, b'{"id":"1"}')


def test_connection_close_is_honoured(server, connect):
    conn = connect(server)
    # The second request rides in the same packet, after the close: it is not answered.
    conn.send(conn.build("GET", "/", [("Connection", "close")]) + conn.build("GET", "/user/1"))
    resp = conn.read_response()
    assert resp.status == 200
    assert resp.header("connection") == "close"
    conn.assert_closed_by_server()


def test_half_closed_client_still_gets_its_answer(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/user/5"))
    conn.sock.shutdown(socket.SHUT_WR)  # like `nc -N`: request sent, then EOF
    resp = conn.read_response()
    assert (resp.status, resp.body) == (200, b'{"id":"5"}')
    conn.assert_closed_by_server()


def test_many_concurrent_keepalive_connections(server, connect):
    conns = [connect(server) for _ in range(50)]
    for round_ in range(3):
        for i, conn in enumerate(conns):
            conn.send(conn.build("GET", f"/user/{round_}-{i}"))
        for i, conn in enumerate(conns):
            assert conn.read_response().body == b'{"id":"%d-%d"}' % (round_, i)


def test_large_request_body_across_many_reads(server):
    payload = pattern(5 * 1024 * 1024 + 17)
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        resp = client.post("/echo", content=payload)
    assert resp.status_code == 200
    assert resp.headers["x-body-length"] == str(len(payload))
    assert resp.content == payload


# -- pipelining ----------------------------------------------------------------------


def test_pipelined_burst_is_answered_in_order(server, connect):
    conn = connect(server)
    requests = []
    expected = []
    for i in range(16):
        kind = i % 4
        if kind == 0:
            requests.append(conn.build("GET", f"/user/{i}"))
            expected.append((200, b'{"id":"%d"}' % i))
        elif kind == 1:
            body = b"body-%d-" % i * (i + 1)
            requests.append(conn.build("POST", "/echo", body=body))
            expected.append((200, body))
        elif kind == 2:
            requests.append(conn.build("GET", f"/target?i={i}"))
            expected.append((200, None))
        else:
            requests.append(conn.build("GET", f"/missing/{i}"))
            expected.append((404, b"Not Found"))
    conn.send(b"".join(requests))
    for i, (status, body) in enumerate(expected):
        resp = conn.read_response()
        assert resp.status == status, f"response {i}"
        if body is None:
            assert httpx.Response(200, content=resp.body).json()["query"] == f"i={i}"
        else:
            assert resp.body == body, f"response {i}"
    # Nothing extra arrived and the connection still works.
    assert conn.buffer == b""
    assert conn.request("GET", "/").status == 200


def test_pipelined_handler_error_does_not_break_the_burst(server, connect):
    targets = ["/", "/user/2", "/boom", "/user/4", "/", "/user/6"]
    conn = connect(server)
    conn.send(b"".join(conn.build("GET", t) for t in targets))
    statuses = [conn.read_response().status for _ in targets]
    assert statuses == [200, 200, 500, 200, 200, 200]
    assert conn.request("GET", "/").status == 200


def test_pipelined_requests_after_a_stream_wait_for_it(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/stream?n=20000") + conn.build("GET", "/user/9"))
    streamed = conn.read_response()
    after = conn.read_response()
    assert streamed.chunked
    assert streamed.body == stream_body(20000)
    assert (after.status, after.body) == (200, b'{"id":"9"}')


# -- HEAD, Expect, chunked bodies, request targets ---------------------------------------------


def test_pipelined_requests_and_bad_input_after_a_stream(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/stream?n=20000") + conn.build("GET", "/user/9") + b"BROKEN\r\n\r\n")
    streamed = conn.read_response()
    assert streamed.body == stream_body(20000)
    after = conn.read_response()
    assert (after.status, after.body) == (200, b'{"id":"9"}')
    assert conn.read_response().status == 400
    conn.assert_closed_by_server()


def test_head_has_get_headers_and_no_body(server, connect):
    conn = connect(server)
    get = conn.request("GET", "/big?size=5000")
    # The HEAD answer must end at its blank line: the next pipelined response follows directly.
    conn.send(conn.build("HEAD", "/big?size=5000") + conn.build("GET", "/"))
    head = conn.read_response(head=True)
    after = conn.read_response()
    assert head.status == 200
    assert head.body == b""
    assert head.header("content-length") == "5000"
    ignore = {"date"}
    assert [h for h in head.headers if h[0] not in ignore] == [h for h in get.headers if h[0] not in ignore]
    assert (after.status, after.body) == (200, b"hello")


def test_expect_100_continue(server, connect):
    conn = connect(server)
    conn.send(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n",
    )
    interim = conn.read_response()
    assert (interim.version, interim.status, interim.reason) == ("HTTP/1.1", 100, "Continue")
    conn.send(b"hello world")
    final = conn.read_response()
    assert (final.status, final.body) == (200, b"hello world")


def test_expect_100_continue_with_too_large_body_gets_413(server, connect):
    conn = connect(server)
    too_big = 11 * 1024 * 1024
    conn.send(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n" % too_big,
    )
    resp = conn.read_response()
    assert resp.status == 413  # and no 100 Continue before it
    assert resp.header("connection") == "close"
    conn.assert_closed_by_server()


def test_chunked_request_body_is_echoed(server, connect):
    conn = connect(server)
    conn.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
    # Several chunks in several packets, a chunk extension, a size split across
    # packets, then a trailer field.
    for piece in (b"5;name=value\r\nhello\r\n", b"1\r\n \r\n", b"1", b"0\r\n0123456789abcdef\r\n", b"0\r\n"):
        conn.send(piece)
        time.sleep(0.02)
    conn.send(b"X-Checksum: abc\r\n\r\n")
    resp = conn.read_response()
    assert resp.status == 200
    assert resp.body == b"hello 0123456789abcdef"
    assert resp.header("x-body-length") == "22"
    assert conn.request("GET", "/").status == 200


def test_absolute_form_target(server, connect):
    conn = connect(server)
    resp = conn.request("GET", f"http://{server.host}:{server.port}/target?x=1")
    assert resp.status == 200
    answer = httpx.Response(200, content=resp.body).json()
    assert answer["path"] == "/target"
    assert answer["query"] == "x=1"
    assert answer["target"] == f"http://{server.host}:{server.port}/target?x=1"


def test_absolute_form_target_authority_wins_over_host(server, connect):
    """Issue 15 item 4b: the handler sees the target's host, not the Host field (RFC 9112 3.2.2)."""
    conn = connect(server)
    conn.send(b"GET http://evil.example/target?x=1 HTTP/1.1\r\nHost: good.example\r\n\r\n")
    resp = conn.read_response()
    assert resp.status == 200
    answer = httpx.Response(200, content=resp.body).json()
    assert (answer["host"], answer["path"], answer["query"]) == ("evil.example", "/target", "x=1")
    # Userinfo in the target is refused (RFC 9110 4.2.4); a new connection still works.
    refused = connect(server)
    refused.send(b"GET http://good.example@evil.example/target HTTP/1.1\r\nHost: good.example\r\n\r\n")
    assert refused.read_response().status == 400
    assert connect(server).request("GET", "/").status == 200


def test_options_asterisk(server, connect):
    conn = connect(server)
    resp = conn.request("OPTIONS", "*")
    assert resp.status == 200
    assert resp.header("allow") == "GET, HEAD, OPTIONS, POST"
    assert resp.body == b""
    assert conn.request("GET", "/").status == 200


def test_no_content_response_has_no_body_or_length(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/nocontent") + conn.build("GET", "/"))
    empty = conn.read_response()
    after = conn.read_response()
    assert empty.status == 204
    assert empty.header("content-length") is None
    assert (after.status, after.body) == (200, b"hello")


# -- bad input: answered, then the connection is closed ------------------------------------------

_HEAD = b"GET / HTTP/1.1\r\nHost: test\r\n"

BAD_INPUT = [
    pytest.param(b"GET/ HTTP/1.1\r\nHost: test\r\n\r\n", 400, id="malformed-request-line"),
    pytest.param(b"GET / HTTP/1.1 extra\r\nHost: test\r\n\r\n", 400, id="request-line-four-parts"),
    pytest.param(_HEAD + b"X-Big: " + b"a" * (17 * 1024) + b"\r\n\r\n", 431, id="head-over-16k"),
    pytest.param(_HEAD + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n", 431, id="101-headers"),
    pytest.param(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: test\r\n\r\n", 414, id="uri-9000-bytes"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n", 501, id="te-gzip"),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n",
        400,
        id="cl-and-te",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
        id="differing-content-lengths",
    ),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
        id="bad-chunk-size",
    ),
    pytest.param(_HEAD + b"X-Folded: a\r\n b\r\n\r\n", 400, id="obs-fold"),
    pytest.param(b"GET / HTTP/1.1\r\nHost : test\r\n\r\n", 400, id="whitespace-before-colon"),
    pytest.param(b"GET / HTTP/2.0\r\nHost: test\r\n\r\n", 505, id="http-2.0"),
    pytest.param(b"GET / HTTP/1.1\r\nX-No-Host: 1\r\n\r\n", 400, id="http11-without-host"),
    pytest.param(b"GET / HTTP/1.1\nHost: test\n\n", 400, id="bare-lf"),
]


@pytest.mark.parametrize(("raw", "status"), BAD_INPUT)
def test_bad_input_is_answered_and_closed(server, connect, raw, status):
    conn = connect(server)
    conn.send(raw)
    resp = conn.read_response()
    assert resp.status == status, resp.body
    assert resp.header("connection") == "close"
    assert resp.header("content-type") == "text/plain; charset=utf-8"
    assert resp.body  # says what was wrong
    conn.assert_closed_by_server()
    assert_serves(server)


def test_bad_input_after_good_pipelined_requests(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/") + conn.build("GET", "/user/3") + b"BROKEN\r\n\r\n")
    assert conn.read_response().status == 200
    assert conn.read_response().status == 200
    assert conn.read_response().status == 400
    conn.assert_closed_by_server()


def test_body_over_limit_gets_413_before_the_body_is_sent(limited, connect):
    conn = connect(limited)
    # Only the head and a tenth of the declared body go out; the answer must not wait for the rest.
    conn.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5000\r\n\r\n" + b"x" * 500)
    resp = conn.read_response(timeout=3.0)
    assert resp.status == 413
    assert resp.header("connection") == "close"
    conn.assert_closed_by_server()
    assert_serves(limited)


def test_body_at_limit_is_accepted(limited, connect):
    conn = connect(limited)
    resp = conn.request("POST", "/echo", body=b"y" * 1000)
    assert (resp.status, resp.body) == (200, b"y" * 1000)


def test_chunked_body_over_limit_gets_413(limited, connect):
    conn = connect(limited)
    conn.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
    conn.send(b"200\r\n" + b"z" * 0x200 + b"\r\n" + b"200\r\n" + b"z" * 0x200 + b"\r\n")
    resp = conn.read_response(timeout=3.0)
    assert resp.status == 413
    conn.assert_closed_by_server()


# -- timeouts and capacity ---------------------------------------------------------------


def test_slowloris_is_closed_while_others_are_served(limited, connect):
    slow = connect(limited)
    slow.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ")
    started = time.monotonic()
    closed_after = None
    received = b""
    served_meanwhile = False
    while time.monotonic() - started < 6.0:
        readable, _, _ = select.select([slow.sock], [], [], 0.3)
        if readable:
            try:
                data = slow.sock.recv(4096)
            except ConnectionResetError:
                data = b""
            received += data
            if not data:
                closed_after = time.monotonic() - started
                break
            continue
        if not served_meanwhile and time.monotonic() - started > 1.0:
            t0 = time.monotonic()
            assert_serves(limited)
            assert time.monotonic() - t0 < 1.0
            served_meanwhile = True
        try:
            slow.sock.send(b"a")
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.monotonic() - started
            break
    assert served_meanwhile
    assert closed_after is not None, "a client trickling its head was never cut off"
    assert closed_after < 4.5
    assert received == b"" or received.startswith(b"HTTP/1.1 408 ")


def test_slow_head_is_closed_when_keepalive_is_short(serve, connect):
    # The same slowloris with the keep-alive timeout no longer than the header
    # timeout: the header timeout is then checked in time.
    server = serve("apps.basic:app", env={"CHOPIN_HEADER_TIMEOUT": "2", "CHOPIN_KEEPALIVE_TIMEOUT": "2"})
    slow = connect(server)
    slow.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ")
    started = time.monotonic()
    received = b""
    closed = False
    while not closed and time.monotonic() - started < 6.0:
        if select.select([slow.sock], [], [], 0.3)[0]:
            try:
                data = slow.sock.recv(4096)
            except ConnectionResetError:
                data = b""
            received += data
            closed = not data
            continue
        try:
            slow.sock.send(b"a")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
    elapsed = time.monotonic() - started
    assert closed
    assert 1.0 < elapsed < 4.5
    assert received == b"" or received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert_serves(server)


def test_idle_keepalive_connection_is_closed(serve, connect):
    server = serve("apps.basic:app", env={"CHOPIN_KEEPALIVE_TIMEOUT": "2"})
    conn = connect(server)
    assert conn.request("GET", "/").status == 200
    started = time.monotonic()
    conn.assert_closed_by_server(timeout=4.5)
    assert time.monotonic() - started > 0.5
    assert_serves(server)


def test_capacity_limit_answers_503(serve, connect):
    server = serve("apps.basic:app", env={"CHOPIN_SLAB_CAPACITY": "3"})
    held = []
    for _ in range(3):
        # One at a time, so the server has also dropped its start-up probe connection.
        held.append(connect(server))
        assert held[-1].request("GET", "/").status == 200
    extra = connect(server)
    busy = extra.read_response()
    assert busy.status == 503
    assert busy.header("connection") == "close"
    extra.assert_closed_by_server()
    # The held connections are unaffected, and freeing one makes room.
    assert held[1].request("GET", "/").status == 200
    held[0].close()

    deadline = time.monotonic() + 3.0
    while connect(server).request("GET", "/").status != 200:
        assert time.monotonic() < deadline, "no room for a new connection after one closed"
        time.sleep(0.1)


# -- handler errors ---------------------------------------------------------------------


def test_handler_exception_gives_500_and_logs_the_traceback(server, connect):
    conn = connect(server)
    resp = conn.request("GET", "/boom")
    assert resp.status == 500
    assert resp.body == b"Internal Server Error"
    assert resp.header("connection") is None
    stderr = server.wait_for_stderr("RuntimeError: boom: secret detail")
    assert "Traceback (most recent call last)" in stderr
    # The worker and this very connection carry on.
    assert conn.request("GET", "/").status == 200
    assert_serves(server)


# -- large and streamed responses, back-pressure ----------------------------------------------


def test_large_body_read_slowly_arrives_complete(server, connect):
    size = 8 * 1024 * 1024
    # A small receive window makes the server's writes partial, so it must wait for EPOLLOUT.
    conn = connect(server, rcvbuf=16 * 1024)
    conn.send(conn.build("GET", f"/big?size={size}"))
    head = conn.read_head()
    assert head.status == 200
    assert head.header("content-length") == str(size)
    body = bytearray(conn.buffer)
    conn.buffer.clear()
    deadline = time.monotonic() + 30.0
    while len(body) < size:
        assert time.monotonic() < deadline, f"only {len(body)} of {size} bytes after 30 s"
        data = conn.sock.recv(64 * 1024)
        assert data, f"closed after {len(body)} of {size} bytes"
        body += data
        time.sleep(0.0005)
    assert len(body) == size
    assert body == pattern(size)
    assert conn.request("GET", "/").status == 200


def test_stream_response_with_httpx(server):
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        resp = client.get("/stream", params={"n": 5000})
    assert resp.status_code == 200
    assert resp.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in resp.headers
    assert resp.content == stream_body(5000)


def test_stream_response_raw_framing(server, connect):
    conn = connect(server)
    resp = conn.request("GET", "/stream?n=3")
    assert resp.chunked
    assert resp.body == b"000000|000001|000002|"
    assert resp.header("content-type") == "text/plain; charset=utf-8"
    assert conn.request("GET", "/").status == 200


def test_stream_response_has_one_transfer_encoding(server, connect):
    conn = connect(server)
    resp = conn.request("GET", "/stream?n=3")
    assert resp.header_all("transfer-encoding") == ["chunked"]


def test_stream_response_to_http10_is_close_delimited(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/stream?n=3", version="HTTP/1.0"))
    head = conn.read_head()
    rest = conn.read_until_close()
    assert head.status == 200
    assert head.header("connection") == "close"
    assert rest == b"000000|000001|000002|"
    assert head.header("transfer-encoding") is None


def test_stalled_stream_reader_does_not_grow_server_memory(server, connect):
    before = server.rss_kib()
    stalled = connect(server)
    stalled.send(stalled.build("GET", "/endless"))
    assert stalled.read_head().status == 200  # then never read again
    # Meanwhile another client is served promptly, again and again.
    for _ in range(6):
        t0 = time.monotonic()
        assert_serves(server)
        assert time.monotonic() - t0 < 1.0
        time.sleep(0.25)
    grown_mib = (server.rss_kib() - before) / 1024
    assert grown_mib < 64, f"server RSS grew by {grown_mib:.0f} MiB behind a stalled reader"
    stalled.close()
    assert_serves(server)


# -- headers every response carries --------------------------------------------------------


def test_server_and_date_headers(server, connect):
    conn = connect(server)
    for target in ("/", "/missing", "/boom"):
        resp = conn.request("GET", target)
        assert resp.header("server") == "chopin"
        date = resp.header("date")
        assert date is not None
        assert IMF_FIXDATE.fullmatch(date), date
        assert abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) < 5.0
    # Error answers carry them too.
    conn.send(b"GET / HTTP/2.0\r\nHost: test\r\n\r\n")
    bad = conn.read_response()
    assert bad.header("server") == "chopin"
    assert IMF_FIXDATE.fullmatch(bad.header("date") or "")


def test_accepted_sockets_inherit_tcp_nodelay():
    listener = open_listener("127.0.0.1", 0)
    client = socket.create_connection(listener.getsockname(), timeout=5.0)
    try:
        select.select([listener], [], [], 5.0)
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        client.close()
        listener.close()


def test_pipelined_large_responses_wait_behind_the_high_water_mark(serve, connect):
    # 32 pipelined 4 MiB responses that the client does not read: answered all at
    # once they would hold 128 MiB in the worker; behind write_high_water only a
    # response or two is built ahead of what the socket takes.
    server = serve("apps.basic:app", write_high_water=1024 * 1024)
    size, count = 4 * 1024 * 1024, 32
    conn = connect(server, rcvbuf=16 * 1024, timeout=30.0)
    assert conn.request("GET", "/").status == 200
    baseline = server.rss_kib()
    conn.send(b"".join(conn.build("GET", f"/big?size={size}") for _ in range(count)))
    time.sleep(1.5)
    grown = server.rss_kib() - baseline
    assert grown < 40 * 1024, f"worker grew by {grown} KiB with {count * size >> 20} MiB requested"
    for _ in range(count):
        response = conn.read_response(timeout=60.0)
        assert response.status == 200
        assert len(response.body) == size
    assert conn.request("GET", "/").status == 200


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_file_descriptors_pauses_accepts_instead_of_spinning(serve):
    # The worker may open only 40 files; 60 clients push accept() into EMFILE.
    server = serve("apps.fdlimit:app")
    clients = []
    try:
        for _ in range(60):
            client = socket.create_connection((server.host, server.port), timeout=5.0)
            clients.append(client)
            client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        server.wait_for_stderr("accept failed")
        before = _cpu_seconds(server.pid)
        time.sleep(1.0)
        used = _cpu_seconds(server.pid) - before
        assert used < 0.5, f"worker used {used:.2f} s of CPU in 1 s while out of descriptors"
    finally:
        for client in clients:
            client.close()
    deadline = time.monotonic() + 10.0
    while _fresh_get(server.port) != 200:
        assert time.monotonic() < deadline, "the worker did not serve again after the clients left"
        time.sleep(0.1)


def _fresh_get(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2.0).status_code
    except httpx.HTTPError:
        return 0


def test_worker_keeps_within_cpythons_fast_attribute_layout():
    # CPython keeps at most 29 instance attributes in the shared-key layout whose
    # loads specialize (LOAD_ATTR_INSTANCE_VALUE); a 30th slows every `self.x` on the
    # hot path (measured: +1,072 callgrind instructions per plaintext request when
    # the body budget became the 30th).  New worker state goes into `_ext`.
    from chopin_core import Router, Settings
    from chopin_core.worker import Worker

    worker = Worker(Router().compile(), Settings(), 0, None, None)
    assert len(vars(worker)) <= 29, sorted(vars(worker))
