"""Faults the worker must contain, over real sockets (issue 15, items 1, 10, 15 and 16).

A peer's bytes or an application's bug may end one request or one connection,
never the worker: each test runs one worker (in-process, no supervisor to
restart it) and checks that the same process serves a fresh connection afterwards.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import threading

import httpx
import pytest


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("apps.faults_app:app", workers=1)


@pytest.fixture(scope="module")
def tls_server(serve_module, chain):
    return serve_module("apps.faults_app:app", workers=1, env={"TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key)})


def assert_same_worker_serves(server, connect, pid: bytes) -> None:
    assert server.process.poll() is None, server.stderr_text()
    resp = connect(server).request("GET", "/pid")
    assert (resp.status, resp.body) == (200, pid)


def test_non_ascii_http_version_is_answered_and_the_worker_keeps_serving(server, connect):
    pid = connect(server).request("GET", "/pid").body
    conn = connect(server)
    conn.send(b"GET / HTTP/1\x801\r\nHost: a\r\n\r\n")
    resp = conn.read_response()
    assert resp.status == 505
    assert b"HTTP/1\\x801" in resp.body
    conn.assert_closed_by_server()
    assert_same_worker_serves(server, connect, pid)


def test_content_length_past_ints_digit_limit_is_413(server, connect):
    # int() refuses over 4300 digits with ValueError: that, too, once escaped the parser.
    pid = connect(server).request("GET", "/pid").body
    conn = connect(server)
    conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"1" * 5000 + b"\r\n\r\n")
    assert conn.read_response().status == 413
    conn.assert_closed_by_server()
    assert_same_worker_serves(server, connect, pid)


def test_if_modified_since_past_year_9999_never_takes_the_worker_down(server, connect):
    # Issue 15: parsedate_to_datetime raised OverflowError in files.not_modified and the
    # one-worker server exited.  Whatever answers it (a 200, or a closed connection),
    # the worker serves on.
    pid = connect(server).request("GET", "/pid").body
    conn = connect(server)
    conn.send(conn.build("GET", "/file", [("If-Modified-Since", "Mon, 01 Jan 99999999999999999999 00:00:00 GMT")]))
    try:
        assert conn.read_response().status in (200, 304)
    except ConnectionError:
        pass
    assert_same_worker_serves(server, connect, pid)


def test_stream_failing_before_its_first_chunk_is_a_500_between_pipelined_answers(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/") + conn.build("GET", "/stream/fails-at-once") + conn.build("GET", "/"))
    first, failed, last = (conn.read_response() for _ in range(3))
    assert (first.status, first.body) == (200, b"hello")
    assert (failed.status, failed.body) == (500, b"Internal Server Error")
    assert (last.status, last.body) == (200, b"hello")
    server.wait_for_stderr("RuntimeError: stream failed before its first chunk")
    assert conn.request("GET", "/").status == 200  # the connection itself carries on


def test_stream_failing_after_its_head_aborts_but_delivers_the_earlier_pipelined_answer(server, connect):
    conn = connect(server)
    conn.send(conn.build("GET", "/") + conn.build("GET", "/stream/fails-later") + conn.build("GET", "/"))
    first = conn.read_response()
    assert (first.status, first.body) == (200, b"hello")
    # The stream's head and first chunk come, then the connection ends without the terminal chunk.
    head = conn.read_head()
    assert head.status == 200 and head.header("transfer-encoding") == "chunked"
    rest = conn.read_until_close()
    assert rest == b"9\r\npart one|\r\n"
    server.wait_for_stderr("RuntimeError: stream failed after its first chunk")
    pid = connect(server).request("GET", "/pid").body
    assert_same_worker_serves(server, connect, pid)


def test_unexpected_worker_error_closes_only_that_connection(server, connect):
    pid = connect(server).request("GET", "/pid").body
    bystander = connect(server)
    assert bystander.request("GET", "/").status == 200
    victim = connect(server)
    victim.send(victim.build("GET", "/stream/bad-chunk"))
    rest = victim.read_until_close()  # closed: that answer cannot be completed
    assert not rest.endswith(b"0\r\n\r\n")
    stderr = server.wait_for_stderr("unexpected error on fd")
    assert "Traceback (most recent call last)" in stderr and "TypeError" in stderr
    # The other connection, open all along, is still served by the same worker.
    assert bystander.request("GET", "/pid").body == pid
    assert_same_worker_serves(server, connect, pid)


def test_status_outside_100_to_599_is_refused_with_a_500(server, connect):
    resp = connect(server).request("GET", "/status/999")
    assert resp.status == 500
    server.wait_for_stderr("ValueError: status: expected an integer in 100..599, got 999")


def test_5xx_from_an_extractor_error_is_logged_with_its_traceback(server, connect):
    resp = connect(server).request("GET", "/extract-500")
    assert resp.status == 500
    stderr = server.wait_for_stderr("ExtractError: extension not configured: secret detail")
    assert "worker 0: handler for GET /extract-500 failed" in stderr
    assert "Traceback (most recent call last)" in stderr


# -- the other paths: WebSocket, TLS, HTTP/2, the reverse proxy --------------------------------


def _masked(first: int, payload: bytes) -> bytes:
    mask = b"\x01\x80\xff\x7f"
    return bytes([first, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


BAD_FRAMES = [
    bytes([0x81, 0x03]) + b"abc",  # not masked
    _masked(0x81, b"\xc3\x28\x80\xff"),  # text that is not UTF-8
    _masked(0x83, b"x"),  # reserved opcode
    _masked(0xC1, b"x"),  # RSV1 set, no extension agreed
    _masked(0x88, b"\x03"),  # close with a 1-byte payload
    _masked(0x88, b"\x03\xe7"),  # close code 999
    _masked(0x88, b"\x03\xe8\xff\xfe"),  # close reason that is not UTF-8
    _masked(0x89, b"p" * 126)[:2] + b"\x00" * 8,  # a ping announcing 126 bytes, length form broken
]


@pytest.mark.parametrize("frame", BAD_FRAMES, ids=range(len(BAD_FRAMES)))
def test_malformed_websocket_frames_close_only_their_connection(server, connect, frame):
    pid = connect(server).request("GET", "/pid").body
    conn = connect(server)
    key = base64.b64encode(os.urandom(16)).decode()
    conn.send(
        conn.build(
            "GET",
            "/ws",
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", key),
                ("Sec-WebSocket-Version", "13"),
            ],
        )
    )
    assert conn.read_head().status == 101
    conn.send(frame)
    answer = conn.read_until_close()
    assert answer[:1] == b"\x88"  # a close frame, then the connection ends
    assert_same_worker_serves(server, connect, pid)


def _tls(conn, chain) -> None:
    context = ssl.create_default_context(cafile=str(chain.root))
    conn.sock = context.wrap_socket(conn.sock, server_hostname="localhost")


def test_tls_connections_fail_alone(tls_server, connect, chain):
    first = connect(tls_server)
    _tls(first, chain)
    pid = first.request("GET", "/pid").body
    bad_version = connect(tls_server)
    _tls(bad_version, chain)
    bad_version.send(b"GET / HTTP/1\x801\r\nHost: a\r\n\r\n")
    assert bad_version.read_response().status == 505
    bad_chunk = connect(tls_server)
    _tls(bad_chunk, chain)
    bad_chunk.send(bad_chunk.build("GET", "/stream/bad-chunk"))
    assert not bad_chunk.read_until_close().endswith(b"0\r\n\r\n")
    tls_server.wait_for_stderr("unexpected error on fd")
    assert first.request("GET", "/pid").body == pid  # open all along, same worker
    assert tls_server.process.poll() is None


def test_http2_connection_fails_alone(server, connect):
    pid = connect(server).request("GET", "/pid").body
    base = f"http://127.0.0.1:{server.port}"
    with httpx.Client(http1=False, http2=True, timeout=10.0) as h2c:  # prior knowledge (h2c)
        with pytest.raises(httpx.HTTPError):
            h2c.get(f"{base}/stream/bad-chunk")
    with httpx.Client(http1=False, http2=True, timeout=10.0) as h2c:
        resp = h2c.get(f"{base}/pid")
        assert (resp.http_version, resp.content) == ("HTTP/2", pid)
    assert_same_worker_serves(server, connect, pid)


def test_http2_stream_failing_before_its_first_chunk_is_a_500(server):
    with httpx.Client(http1=False, http2=True, timeout=10.0) as h2c:  # prior knowledge (h2c)
        failed = h2c.get(f"http://127.0.0.1:{server.port}/stream/fails-at-once")
        assert (failed.http_version, failed.status_code) == ("HTTP/2", 500)
        with pytest.raises(httpx.RemoteProtocolError, match="StreamReset"):  # after the first chunk: a reset
            h2c.get(f"http://127.0.0.1:{server.port}/stream/fails-later")
        assert h2c.get(f"http://127.0.0.1:{server.port}/").text == "hello"


def test_http2_non_token_method_is_a_400_on_its_stream_only(server):
    from apps.tls_support import H2Client

    client = H2Client("127.0.0.1", server.port)
    try:
        client.conn.config.validate_outbound_headers = False
        headers, body = client.response(client.request("/", method="G\x80T"))
        assert (headers[b":status"], body) == (b"400", b"request :method is not a token")
        headers, body = client.response(client.request("/"))  # the connection goes on
        assert (headers[b":status"], body) == (b"200", b"hello")
    finally:
        client.close()


GARBAGE_ANSWERS = [
    b"HTTP/1.1 2\x800 OK\r\n\r\n",
    b"HTTP/1\x801 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 \xff\xfe\r\nX-\x80: \x00\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: \xd9\xa3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\xd9\xa3\r\nabc\r\n",
    b"\x80\x81\x82\r\n\r\n",
]


def _garbage_upstream(answers: list[bytes]) -> tuple[socket.socket, threading.Thread]:
    """A TCP server answering its n-th connection with ``answers[n]``, then closing it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20.0)

    def run() -> None:
        for answer in answers:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            with sock:
                sock.settimeout(5.0)
                try:
                    sock.recv(65536)
                    sock.sendall(answer)
                except OSError:
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener, thread


def test_garbage_from_an_upstream_is_a_502_and_the_worker_lives(serve, connect):
    listener, thread = _garbage_upstream(GARBAGE_ANSWERS)
    with listener:
        upstream = f"http://127.0.0.1:{listener.getsockname()[1]}"
        proxy = serve("apps.faults_app:app", workers=1, env={"FAULTS_UPSTREAM": upstream})
        pid = connect(proxy).request("GET", "/pid").body
        for answer in GARBAGE_ANSWERS:
            resp = connect(proxy).request("GET", "/upstream")
            assert resp.status == 502, (answer, resp)
        thread.join(10.0)
    assert_same_worker_serves(proxy, connect, pid)
