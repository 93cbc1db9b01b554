"""The blocking HttpClient over real sockets: a plain ``http.server`` upstream and a Chopin server."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest
from apps.early_upstream import early_upstream
from apps.http_upstream import free_port, pattern, running_upstream
from chopin_core.client import (
    ClientSettings,
    ConnectError,
    HttpClient,
    InvalidURL,
    ReadTimeout,
    ResponseTooLarge,
    UpstreamClosed,
    parse_url,
)
from chopin_core.errors import ChopinError, ConfigError


@pytest.fixture(scope="module")
def upstream():
    with running_upstream() as server:
        yield server


@pytest.fixture(scope="module")
def chopin(serve_module):
    return serve_module("apps.basic:app")


@pytest.fixture
def client():
    with HttpClient(ClientSettings(connect_timeout=5.0, read_timeout=10.0)) as c:
        yield c


def test_get_and_post(client, upstream):
    resp = client.request("GET", f"{upstream.url}/echo?q=1", [("X-Test", "yes")])
    assert resp.status == 200
    assert resp.header("content-type") == "application/json"
    info = json.loads(resp.body)
    assert info["path"] == "/echo?q=1"
    assert ["X-Test", "yes"] in info["headers"]
    assert ["Host", f"127.0.0.1:{upstream.server_address[1]}"] in info["headers"]
    posted = json.loads(client.request("POST", f"{upstream.url}/echo", body=b"a body").body)
    assert posted["method"] == "POST"
    assert posted["body"] == "a body"


def test_keep_alive_pool_reuses_one_connection(client, upstream):
    ports = {json.loads(client.request("GET", f"{upstream.url}/echo").body)["peer_port"] for _ in range(5)}
    assert len(ports) == 1
    assert client._pool.idle_count(("http", "127.0.0.1", upstream.server_address[1])) == 1


def test_a_stale_pooled_connection_is_replaced_for_idempotent_requests(client, upstream):
    assert client.request("GET", f"{upstream.url}/drop-after").body == b"dropped"
    time.sleep(0.2)  # the upstream has closed the pooled connection by now
    assert json.loads(client.request("GET", f"{upstream.url}/again").body)["path"] == "/again"


def test_chunked_and_close_delimited_bodies(client, upstream):
    assert client.request("GET", f"{upstream.url}/chunked?n=3").body == b"part0;part1;part2;"
    resp = client.request("GET", f"{upstream.url}/http10")
    assert not resp.http11
    assert resp.body == b"until-close body"


def test_stream_reads_as_it_arrives(client, chopin):
    size = 3 * 1024 * 1024
    with client.stream("GET", f"{chopin.url}/big?size={size}") as resp:
        assert resp.status == 200
        chunks = list(resp.iter_bytes())
    assert len(chunks) > 1
    assert b"".join(chunks) == pattern(size)
    with client.stream("GET", f"{chopin.url}/stream?n=10") as resp:
        assert resp.header("transfer-encoding") == "chunked"
        assert resp.body == b"".join(b"%06d|" % i for i in range(10))


def test_a_stream_closed_early_does_not_return_its_connection(client, chopin):
    key = ("http", "127.0.0.1", chopin.port)
    client.close()
    resp = client.stream("GET", f"{chopin.url}/big?size=1000000")
    next(iter(resp.iter_bytes()))
    resp.close()
    assert client._pool.idle_count(key) == 0
    assert client.request("GET", f"{chopin.url}/").body == b"hello"
    assert client._pool.idle_count(key) == 1


def test_head_and_no_content(client, chopin):
    head = client.request("HEAD", f"{chopin.url}/big?size=777")
    assert head.header("content-length") == "777"
    assert head.body == b""
    assert client.request("GET", f"{chopin.url}/nocontent").status == 204
    assert client.request("GET", f"{chopin.url}/").body == b"hello"  # the connection is in sync


def test_connection_refused_is_a_connect_error(client):
    with pytest.raises(ConnectError, match="cannot connect") as info:
        client.request("GET", f"http://127.0.0.1:{free_port()}/")
    assert isinstance(info.value, ChopinError)
    assert info.value.status == 502


def test_read_timeout(upstream):
    with HttpClient(ClientSettings(read_timeout=0.5)) as client:
        started = time.monotonic()
        with pytest.raises(ReadTimeout, match="sent nothing") as info:
            client.request("GET", f"{upstream.url}/slow?delay=3")
        assert time.monotonic() - started < 2.9
    assert info.value.status == 504


@pytest.mark.parametrize(("read_timeout", "delay"), [(0.3, 2.0), (2.5, 3.0)])
def test_read_timeout_is_kept_to_the_millisecond(upstream, read_timeout, delay):
    with HttpClient(ClientSettings(read_timeout=read_timeout)) as client:
        started = time.monotonic()
        with pytest.raises(ReadTimeout):
            client.request("GET", f"{upstream.url}/slow?delay={delay}")
        took = time.monotonic() - started
    assert read_timeout - 0.05 <= took < min(read_timeout + 0.6, delay), took


def test_body_limit(upstream):
    with HttpClient(ClientSettings(max_body_size=1000)) as client:
        with pytest.raises(ResponseTooLarge, match="max_body_size"):
            client.request("GET", f"{upstream.url}/big?size=5000")
        assert client.request("GET", f"{upstream.url}/big?size=1000").body == pattern(1000)


def test_upstream_closing_mid_body(client, upstream):
    with pytest.raises(UpstreamClosed, match="middle of the response body"):
        client.request("GET", f"{upstream.url}/truncated")


def test_upstream_resetting_mid_body_is_upstream_closed(client, upstream):
    # A reset (ECONNRESET) after the head was a bare ConnectionResetError, not a ClientError.
    with pytest.raises(UpstreamClosed, match="lost in the middle of the response body"):
        client.request("GET", f"{upstream.url}/reset", body=b"a GET's body")
    with client.stream("GET", f"{upstream.url}/reset") as resp:
        assert resp.status == 200
        with pytest.raises(UpstreamClosed, match="lost in the middle of the response body"):
            b"".join(resp.iter_bytes())
    assert client.request("GET", f"{upstream.url}/after-reset").status == 200


def test_an_upstream_that_reads_nothing_times_out_the_send():
    # The body cannot go out (the upstream never reads): the socket timeout fires in sendall,
    # which was a bare TimeoutError, not the client's ReadTimeout.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        with HttpClient(ClientSettings(read_timeout=0.5)) as client:
            started = time.monotonic()
            with pytest.raises(ReadTimeout, match="took no bytes"):
                client.request("GET", f"http://127.0.0.1:{port}/", body=bytes(32 * 1024 * 1024))
            assert time.monotonic() - started < 20
    finally:
        listener.close()


# -- answers that come while the request is still being sent (RFC 9112 9.5) ------------------

BIG = 8 * 1024 * 1024  # far more than the socket buffers hold


@pytest.mark.parametrize("ending", ["close", "reset", "hold"])
def test_an_early_refusal_of_a_large_body_is_returned(ending):
    # The upstream answers 413 once it has the head and reads none of the body; then it closes
    # (a reset: the body is unread), resets at once, or keeps the connection.  The client sent
    # the whole body before reading: "connection lost" (UpstreamClosed), or a ReadTimeout.
    with early_upstream() as server, HttpClient(ClientSettings(read_timeout=3.0)) as client:
        started = time.monotonic()
        resp = client.request("POST", f"{server.url}/refuse-{ending}", body=bytes(BIG))
        assert (resp.status, resp.body) == (413, b"too large")
        assert time.monotonic() - started < 2.5


def test_the_connection_of_an_early_refusal_is_not_reused(client):
    # The 413 keeps the connection (no Connection: close) but the request is half sent: reused,
    # the rest of the old body would be taken for the next request.  Small requests go out
    # at once as before and keep their connection.
    with early_upstream() as server:
        assert client.request("POST", f"{server.url}/refuse-hold", body=bytes(BIG)).status == 413
        assert client._pool.idle_count() == 0
        for body in (b"one", b"two"):
            assert client.request("POST", f"{server.url}/echo", body=body).body == body
        assert server.accepts == 2  # one for the refusal, one for both small requests


def test_an_upstream_that_echoes_while_it_reads_gets_the_whole_request():
    # Full duplex: the answer streams back as the body goes in.  The client read nothing until
    # it had sent all, the upstream stopped reading once its answer filled the buffers: a
    # deadlock until read_timeout.
    body = pattern(BIG)
    with early_upstream() as server, HttpClient(ClientSettings(read_timeout=3.0)) as client:
        for _ in range(2):
            resp = client.request("PUT", f"{server.url}/echo", body=body)
            assert resp.status == 200
            assert resp.body == body
        assert server.accepts == 1  # sent whole: the connection was pooled and reused
        (sock, _), *_ = client._pool._idle[("http", "127.0.0.1", int(server.url.rsplit(":", 1)[1]))]
        assert sock.gettimeout() == 3.0  # blocking again, with the read timeout


def test_an_early_refusal_is_streamed_too(client):
    with early_upstream() as server:
        with client.stream("POST", f"{server.url}/refuse-reset", body=bytes(BIG)) as resp:
            assert resp.status == 413
            assert b"".join(resp.iter_bytes()) == b"too large"


def test_garbage_response_is_a_protocol_error(client):
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"SMTP ready\r\n\r\n")

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        with pytest.raises(ChopinError, match=r"expected 'HTTP/1\.x NNN reason'"):
            client.request("GET", f"http://127.0.0.1:{listener.getsockname()[1]}/")
    finally:
        thread.join(10)
        listener.close()


def test_pool_belongs_to_one_process(client, chopin):
    client.request("GET", f"{chopin.url}/")
    assert client._pool.idle_count() == 1
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        try:
            fresh = client._pool_here().idle_count() == 0
            ok = client.request("GET", f"{chopin.url}/").body == b"hello"
            os._exit(0 if fresh and ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.request("GET", f"{chopin.url}/").body == b"hello"  # the parent's socket still works


def test_parse_url():
    assert parse_url("http://example.com") == ("example.com", 80, "/", "example.com")
    assert parse_url("http://127.0.0.1:8080/a/b?c=d") == ("127.0.0.1", 8080, "/a/b?c=d", "127.0.0.1:8080")
    assert parse_url("http://[::1]:81/") == ("::1", 81, "/", "[::1]:81")
    for bad, message in [
        ("https://x/", "https is not supported here"),
        ("ftp://x/", "http://"),
        ("http:///path", "no host"),
        ("http://x:99999/", "Port out of range"),
    ]:
        with pytest.raises(InvalidURL, match=message):
            parse_url(bad)


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="connect_timeout"):
        ClientSettings(connect_timeout=-1)
    with pytest.raises(ConfigError, match="finite"):
        ClientSettings(read_timeout=float("inf"))
    assert ClientSettings(max_idle_per_host=0).max_idle_per_host == 0
