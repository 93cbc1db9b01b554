"""HTTP/2 over TLS (ALPN) and cleartext (prior knowledge): httpx, curl and raw h2 clients."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import h2.errors
import h2.events
import h2.settings
import hpack
import httpx
import hyperframe.frame
import pytest
from apps.tls_app import pattern
from apps.tls_support import Chain, H2Client, client_context
from chopin_core.http2 import PREFACE, _CachingDecoder, preface_rest

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "big.bin"
    path.write_bytes(pattern(1_500_000))
    return path


@pytest.fixture(scope="module")
def tls_server(serve_module, chain, big_file):
    env = {"TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key), "TLS_APP_FILE": str(big_file)}
    return serve_module("apps.tls_app:app", env=env)


@pytest.fixture(scope="module")
def h2c_server(serve_module, big_file):
    return serve_module("apps.tls_app:app", env={"TLS_APP_FILE": str(big_file)})


def tls_client(chain: Chain) -> httpx.Client:
    return httpx.Client(http2=True, verify=ssl.create_default_context(cafile=str(chain.root)), timeout=20.0)


# -- the preface seen by the HTTP/1.1 parser (no sockets) ------------------------------


def test_preface_rest_rebuilds_the_connection_bytes() -> None:
    frames = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    whole = PREFACE + frames
    head_end = len(b"PRI * HTTP/2.0\r\n\r\n")
    for split in range(head_end):  # the parser got whole[:split] in earlier reads
        assert preface_rest(whole[split:]) == whole
    assert preface_rest(b"GET / HTTP/1.1\r\n\r\n") is None


# -- real clients ------------------------------------------------------------------------------


def test_cached_header_blocks_follow_the_dynamic_table() -> None:
    """A block of indexed fields repeats; its fields change when the table under it does."""
    encoder = hpack.Encoder()
    decoder = _CachingDecoder(65536)
    first = [(b"x-a", b"1")]
    assert decoder.decode(encoder.encode(first), raw=True) == first  # inserts x-a: 1 at index 62
    indexed = b"\xbe"  # index 62
    for _ in range(2):  # the second from the cache
        assert decoder.decode(indexed, raw=True) == first
    second = [(b"x-b", b"2")]
    assert decoder.decode(encoder.encode(second), raw=True) == second  # now x-b: 2 is 62
    assert decoder.decode(indexed, raw=True) == second
    assert decoder.decode(b"\x20", raw=True) == []  # a size update to 0 empties the table
    with pytest.raises(hpack.HPACKDecodingError):
        decoder.decode(indexed, raw=True)
    assert decoder.decode(b"\x3f\xe1\x1f", raw=True) == []  # back to 4096 (RFC 7541 6.3)
    assert decoder.decode(hpack.Encoder().encode(first), raw=True) == first
    assert decoder.decode(indexed, raw=True) == first
    decoder.max_header_list_size = 4  # a cached block is checked against the bound it was decoded under
    with pytest.raises(hpack.OversizedHeaderListError):
        decoder.decode(indexed, raw=True)


def test_httpx_h2_over_tls(tls_server, chain: Chain) -> None:
    with tls_client(chain) as client:
        resp = client.get(f"https://localhost:{tls_server.port}/")
        assert (resp.status_code, resp.text, resp.http_version) == (200, "hello", "HTTP/2")
        assert resp.headers["server"] == "chopin"
        assert "date" in resp.headers
        echoed = client.post(
            f"https://localhost:{tls_server.port}/echo?a=b", content=b"x" * 100_000, headers={"X-Custom": "v"}
        )
        assert echoed.content == b"x" * 100_000
        # The Request a handler sees is the one the HTTP/1.1 parser would build.
        assert echoed.headers["x-method"] == "POST"
        assert echoed.headers["x-path"] == "/echo"
        assert echoed.headers["x-query"] == "a=b"
        assert echoed.headers["x-host"] == f"localhost:{tls_server.port}"
        assert echoed.headers["x-custom"] == "v"
        assert echoed.headers["x-version"] == "HTTP/2"  # only the version says which protocol carried it


def test_many_concurrent_streams_on_one_connection(tls_server, chain: Chain) -> None:
    async def run() -> list[httpx.Response]:
        ctx = ssl.create_default_context(cafile=str(chain.root))
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(http2=True, verify=ctx, limits=limits, timeout=30.0) as client:
            base = f"https://localhost:{tls_server.port}"
            jobs = [client.get(f"{base}/big?size={1000 * (i + 1)}") for i in range(60)]
            jobs += [client.get(f"{base}/stream?n={i + 1}") for i in range(20)]
            return await asyncio.gather(*jobs)

    responses = asyncio.run(run())
    for i, resp in enumerate(responses[:60]):
        assert resp.http_version == "HTTP/2"
        assert resp.content == pattern(1000 * (i + 1))
    for i, resp in enumerate(responses[60:]):
        assert resp.content == b"".join(b"chunk %06d|" % k for k in range(i + 1))


def test_streams_interleave_on_one_raw_connection(h2c_server) -> None:
    client = H2Client(HOST, h2c_server.port)
    try:
        ids = [client.conn.get_next_available_stream_id()]
        # Twenty requests in one write: every one is answered on the same connection.
        for i in range(20):
            stream_id = client.conn.get_next_available_stream_id()
            head = [(":method", "GET"), (":path", f"/big?size={70_000 + i}"), (":scheme", "http"), (":authority", "t")]
            client.conn.send_headers(stream_id, head, end_stream=True)
            ids.append(stream_id)
        client.flush()
        for i, stream_id in enumerate(ids[1:]):
            headers, body = client.response(stream_id, timeout=30.0)
            assert headers[b":status"] == b"200"
            assert body == pattern(70_000 + i)
    finally:
        client.close()


def test_curl_http2_and_prior_knowledge(tls_server, h2c_server, chain: Chain) -> None:
    runs = [
        ["--http2", "--cacert", str(chain.root), f"https://localhost:{tls_server.port}/stream?n=5"],
        ["--http2-prior-knowledge", f"http://127.0.0.1:{h2c_server.port}/stream?n=5"],
    ]
    for args in runs:
        done = subprocess.run(
            ["curl", "-sS", "--max-time", "20", "-w", "|%{http_version}", *args],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == b"".join(b"chunk %06d|" % i for i in range(5)) + b"|2"
    # The same cleartext port still speaks HTTP/1.1 to everyone else.
    assert httpx.get(f"http://127.0.0.1:{h2c_server.port}/", timeout=10.0).http_version == "HTTP/1.1"


def test_file_and_large_body_respect_flow_control(tls_server, h2c_server, chain: Chain, big_file: Path) -> None:
    expected = hashlib.sha256(big_file.read_bytes()).digest()
    with tls_client(chain) as client:
        got = client.get(f"https://localhost:{tls_server.port}/file")
        assert got.http_version == "HTTP/2"
        assert hashlib.sha256(got.content).digest() == expected
    # httpx speaks h2c (prior knowledge) when told http1=False.
    with httpx.Client(http1=False, http2=True, timeout=20.0) as h2c:
        got = h2c.get(f"http://127.0.0.1:{h2c_server.port}/file")
        assert got.http_version == "HTTP/2"
        assert hashlib.sha256(got.content).digest() == expected
        big = h2c.get(f"http://127.0.0.1:{h2c_server.port}/big?size=3000000")
        assert big.content == pattern(3_000_000)


def test_server_never_sends_past_the_window(h2c_server) -> None:
    window = 1000
    client = H2Client(HOST, h2c_server.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    try:
        client.auto_ack = False
        client.until(lambda evs: any(isinstance(e, h2.events.SettingsAcknowledged) for e in evs))
        stream_id = client.request("/big?size=50000")
        client.until(lambda evs: client.data_received(stream_id) >= window)
        with pytest.raises(TimeoutError):
            client.receive(timeout=1.0)  # the window is spent: nothing more may come
        assert client.data_received(stream_id) == window
        client.auto_ack = True
        client.conn.acknowledge_received_data(window, stream_id)
        client.flush()
        _, body = client.response(stream_id, timeout=30.0)
        assert body == pattern(50_000)
    finally:
        client.close()


def test_handler_error_is_500_and_a_failed_stream_is_reset(h2c_server) -> None:
    client = H2Client(HOST, h2c_server.port)
    try:
        headers, body = client.response(client.request("/boom"))
        assert (headers[b":status"], body) == (b"500", b"Internal Server Error")
        broken = client.request("/stream-boom")
        client.until(lambda evs: any(isinstance(e, h2.events.StreamReset) and e.stream_id == broken for e in evs))
        reset = next(e for e in client.events if isinstance(e, h2.events.StreamReset))
        assert reset.error_code == h2.errors.ErrorCodes.INTERNAL_ERROR
        assert client.data_received(broken) == len(b"first")
        headers, body = client.response(client.request("/"))  # the connection goes on
        assert body == b"hello"
    finally:
        client.close()
    assert "response stream failed" in h2c_server.stderr_text()


def test_settings_are_advertised(serve, big_file: Path) -> None:
    server = serve(
        "apps.tls_app:app",
        env={"TLS_APP_FILE": str(big_file)},
        h2_max_concurrent_streams=7,
        h2_initial_window_size=200_000,
        h2_max_frame_size=32768,
        h2_max_header_list_size=4096,
    )
    client = H2Client(HOST, server.port)
    try:
        client.until(lambda evs: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in evs))
        remote = client.conn.remote_settings
        assert remote.max_concurrent_streams == 7
        assert remote.initial_window_size == 200_000
        assert remote.max_frame_size == 32768
        assert remote.max_header_list_size == 4096
        assert remote.enable_push == 0
    finally:
        client.close()


def test_request_body_over_the_limit_is_413(serve, big_file: Path) -> None:
    server = serve("apps.tls_app:app", env={"TLS_APP_FILE": str(big_file)}, max_body_size=10_000)
    client = H2Client(HOST, server.port)
    try:
        headers, _ = client.response(client.request("/echo", "POST", b"y" * 50_000))
        assert headers[b":status"] == b"413"
        headers, body = client.response(client.request("/echo", "POST", b"y" * 5_000))
        assert (headers[b":status"], body) == (b"200", b"y" * 5_000)
    finally:
        client.close()


def test_bodies_buffered_across_streams_are_bounded(serve, big_file: Path) -> None:
    server = serve(
        "apps.tls_app:app", env={"TLS_APP_FILE": str(big_file)}, max_body_size=40_000, h2_max_request_buffer=70_000
    )
    client = H2Client(HOST, server.port)
    try:
        # The server's SETTINGS (1 MiB stream windows) and connection WINDOW_UPDATE first.
        client.until(lambda evs: any(isinstance(e, h2.events.WindowUpdated) and e.stream_id == 0 for e in evs))
        client.until(lambda evs: client.conn.remote_settings.initial_window_size > 65535)
        # Three unfinished uploads of 30 kB each: the third takes the connection past 70 kB.
        ids = []
        for _ in range(3):
            stream_id = client.conn.get_next_available_stream_id()
            head = [(":method", "POST"), (":path", "/echo"), (":scheme", "http"), (":authority", "t")]
            client.conn.send_headers(stream_id, head)
            client.conn.send_data(stream_id, b"z" * 15_000)
            client.conn.send_data(stream_id, b"z" * 15_000)
            ids.append(stream_id)
        client.flush()
        client.until(lambda evs: any(isinstance(e, h2.events.ResponseReceived) for e in evs))
        refused = [e for e in client.events if isinstance(e, h2.events.ResponseReceived)]
        assert [e.stream_id for e in refused] == [ids[2]]
        assert dict(refused[0].headers)[b":status"] == b"413"
        # The first two finish normally; their bytes leave the budget once answered.
        for stream_id in ids[:2]:
            client.conn.end_stream(stream_id)
        client.flush()
        for stream_id in ids[:2]:
            headers, body = client.response(stream_id)
            assert (headers[b":status"], len(body)) == (b"200", 30_000)
        headers, body = client.response(client.request("/echo", "POST", b"q" * 35_000))
        assert (headers[b":status"], len(body)) == (b"200", 35_000)
    finally:
        client.close()


def test_head_304_and_websocket_routes_on_http2(h2c_server, big_file: Path) -> None:
    client = H2Client(HOST, h2c_server.port)
    try:
        headers, body = client.response(client.request("/big?size=1234", "HEAD"))
        assert (headers[b":status"], headers[b"content-length"], body) == (b"200", b"1234", b"")
        headers, _ = client.response(client.request("/file"))
        etag = headers[b"etag"].decode()
        headers, body = client.response(client.request("/file", headers=[("if-none-match", etag)]))
        assert (headers[b":status"], body) == (b"304", b"")
        assert b"content-length" not in headers
        headers, _ = client.response(client.request("/ws"))
        assert headers[b":status"] in (b"400", b"426", b"501")  # WebSocket needs HTTP/1.1 here
    finally:
        client.close()


def test_if_range_with_a_stale_etag_sends_the_whole_file_on_http2(h2c_server, big_file: Path) -> None:
    """Issue 15 item 8 on the HTTP/2 path (a Host contradicting :authority is refused by h2 itself)."""
    data = big_file.read_bytes()
    client = H2Client(HOST, h2c_server.port)
    try:
        headers, _ = client.response(client.request("/file", "HEAD"))
        etag = headers[b"etag"].decode()
        ranged = [("range", "bytes=10-19")]
        headers, body = client.response(client.request("/file", headers=[*ranged, ("if-range", etag)]))
        assert (headers[b":status"], body) == (b"206", data[10:20])
        headers, body = client.response(client.request("/file", headers=[*ranged, ("if-range", '"stale"')]))
        assert (headers[b":status"], headers[b"content-length"]) == (b"200", str(len(data)).encode())
        assert b"content-range" not in headers
        assert body == data
    finally:
        client.close()


def test_hooks_run_for_http2_connections(serve) -> None:
    server = serve("apps.hooks_app:app")
    with httpx.Client(timeout=10.0) as plain:
        before = plain.get(f"http://127.0.0.1:{server.port}/counts").json()
        client = H2Client(HOST, server.port)
        try:
            _, body = client.response(client.request("/"))
            assert body == b"hello"
            dropped = client.request("/drop")  # pre-routing DROP: the stream is refused
            client.until(lambda evs: any(isinstance(e, h2.events.StreamReset) for e in evs))
            reset = next(e for e in client.events if isinstance(e, h2.events.StreamReset))
            assert (reset.stream_id, reset.error_code) == (dropped, h2.errors.ErrorCodes.REFUSED_STREAM)
        finally:
            client.close()

        def counts() -> dict[str, int]:
            return plain.get(f"http://127.0.0.1:{server.port}/counts").json()  # type: ignore[no-any-return]

        deadline = time.monotonic() + 10.0
        while counts()["teardown"] == before["teardown"] and time.monotonic() < deadline:
            time.sleep(0.05)
        after = counts()
    assert after["setup"] == before["setup"] + 1
    assert after["teardown"] == before["teardown"] + 1
    assert after["pre_routing"] >= before["pre_routing"] + 3  # two h2 streams, one /counts


def test_idle_http2_connection_gets_goaway_and_is_closed(serve, big_file: Path) -> None:
    server = serve("apps.tls_app:app", env={"TLS_APP_FILE": str(big_file)}, keepalive_timeout=1.0)
    client = H2Client(HOST, server.port)
    try:
        _, body = client.response(client.request("/"))
        assert body == b"hello"
        started = time.monotonic()
        client.until(lambda evs: client.closed, timeout=15.0)
        assert time.monotonic() - started >= 0.9  # not before the timeout
        goaway = client.goaway()
        assert goaway is not None and goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    finally:
        client.close()


# -- abuse -----------------------------------------------------------------------------------


def test_rapid_reset_gets_goaway_enhance_your_calm(serve, big_file: Path) -> None:
    server = serve("apps.tls_app:app", env={"TLS_APP_FILE": str(big_file)}, h2_max_resets_per_second=50)
    client = H2Client(HOST, server.port)
    try:
        for _ in range(400):
            stream_id = client.conn.get_next_available_stream_id()
            head = [(":method", "GET"), (":path", "/slow?ms=1"), (":scheme", "http"), (":authority", "t")]
            client.conn.send_headers(stream_id, head, end_stream=True)
            client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        try:
            client.flush()
        except OSError:
            pass  # the server may already have closed
        client.until(lambda evs: client.goaway() is not None, timeout=20.0)
        goaway = client.goaway()
        assert goaway is not None
        assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    finally:
        client.close()
    # The handler ran for far fewer streams than were opened, and the server goes on.
    assert httpx.get(f"http://127.0.0.1:{server.port}/", timeout=10.0).text == "hello"


def _rapid_resets(client: H2Client, count: int) -> int:
    """Open and at once reset ``count`` streams, then ask for ``/``; return that request's stream id."""
    for _ in range(count):
        stream_id = client.conn.get_next_available_stream_id()
        head = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "t")]
        client.conn.send_headers(stream_id, head, end_stream=True)
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    try:
        return client.request("/")
    except OSError:
        return -1  # the server already closed


def test_rapid_reset_across_connections_meets_the_worker_budget(serve, big_file: Path) -> None:
    # Each connection stays under its own budget (60 < 100 a second); together they pass
    # the worker's (4 x 60 > 150): the connections resetting past it get ENHANCE_YOUR_CALM.
    server = serve(
        "apps.tls_app:app",
        env={"TLS_APP_FILE": str(big_file)},
        h2_max_resets_per_second=100,
        h2_worker_max_resets_per_second=150,
    )
    clients = [H2Client(HOST, server.port) for _ in range(4)]
    try:
        calm = 0
        for client in clients:
            last = _rapid_resets(client, 60)
            client.until(
                lambda evs, client=client, last=last: (
                    client.goaway() is not None
                    or any(isinstance(e, h2.events.StreamEnded) and e.stream_id == last for e in evs)
                ),
                timeout=20.0,
            )
            goaway = client.goaway()
            if goaway is not None:
                assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM  # 0xb
                calm += 1
        assert calm >= 1
    finally:
        for client in clients:
            client.close()
    server.wait_for_stderr("this worker's HTTP/2 clients reset over 150 streams a second")
    # A client that does not reset is served, on a new connection and over HTTP/1.1.
    other = H2Client(HOST, server.port)
    try:
        assert other.response(other.request("/"))[1] == b"hello"
    finally:
        other.close()
    assert httpx.get(f"http://127.0.0.1:{server.port}/", timeout=10.0).text == "hello"


def test_rapid_reset_flood_is_cut_off_before_the_whole_read_is_parsed(h2c_server) -> None:
    # 2,400 streams opened and reset in one write (~62 KB, one read for the server).  h2
    # parses what it is handed before any event is seen, so the read is handed over in
    # slices: GOAWAY comes once the budget (200) is spent, ~300 streams in, not 2,400.
    client = H2Client(HOST, h2c_server.port)
    try:
        client.until(lambda evs: any(isinstance(e, h2.events.SettingsAcknowledged) for e in evs))
        _rapid_resets(client, 2400)
        client.until(lambda evs: client.goaway() is not None, timeout=20.0)
        goaway = client.goaway()
        assert goaway is not None
        assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert goaway.last_stream_id < 1000  # stream ids are odd: fewer than 500 streams parsed
    finally:
        client.close()
    assert httpx.get(f"http://127.0.0.1:{h2c_server.port}/", timeout=10.0).text == "hello"


def test_concurrent_streams_are_bounded_before_settings_are_acknowledged(serve, big_file: Path) -> None:
    server = serve("apps.tls_app:app", env={"TLS_APP_FILE": str(big_file)}, h2_max_concurrent_streams=5)
    client = H2Client(HOST, server.port)
    try:
        # Sent before reading the server's SETTINGS, so h2 on the server has no ACK yet
        # and would not count these against its MAX_CONCURRENT_STREAMS of 5.
        ids = []
        for _ in range(8):
            stream_id = client.conn.get_next_available_stream_id()
            head = [(":method", "POST"), (":path", "/echo"), (":scheme", "http"), (":authority", "t")]
            client.conn.send_headers(stream_id, head)  # the uploads stay open
            ids.append(stream_id)
        client.flush()
        client.until(lambda evs: sum(isinstance(e, h2.events.StreamReset) for e in evs) >= 3)
        refused = [e for e in client.events if isinstance(e, h2.events.StreamReset)]
        assert [e.stream_id for e in refused] == ids[5:]
        assert {e.error_code for e in refused} == {h2.errors.ErrorCodes.REFUSED_STREAM}
        client.conn.send_data(ids[0], b"fine", end_stream=True)
        client.flush()
        headers, body = client.response(ids[0])
        assert (headers[b":status"], body) == (b"200", b"fine")
    finally:
        client.close()


def test_zero_window_client_does_not_make_the_server_hold_bodies(serve, big_file: Path) -> None:
    mib = 1 << 20
    server = serve(
        "apps.tls_app:app", env={"TLS_APP_FILE": str(big_file)}, h2_max_pending_output=2 * mib, keepalive_timeout=60.0
    )
    client = H2Client(HOST, server.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    try:
        client.auto_ack = False
        client.until(lambda evs: any(isinstance(e, h2.events.SettingsAcknowledged) for e in evs))
        before = server.rss_kib()
        ids = [client.request(f"/big?size={mib}") for _ in range(60)]
        client.until(lambda evs: sum(isinstance(e, h2.events.ResponseReceived) for e in evs) >= 3)
        with pytest.raises(TimeoutError):
            for _ in range(100):
                client.receive(timeout=0.5)  # until nothing more comes
        assert not client.closed
        # Held: the bodies of the streams answered so far (2 MiB bound, plus the one that
        # passed it); the other 57 requests wait, their handlers not run.
        answered = [e.stream_id for e in client.events if isinstance(e, h2.events.ResponseReceived)]
        assert answered == ids[:3]
        grown = server.rss_kib() - before
        assert grown < 25 * 1024, f"the server grew by {grown} KiB holding 60 MiB of unsent bodies"
        # Windows open: every body arrives whole.
        client.auto_ack = True
        client.conn.increment_flow_control_window(61 * mib)
        for stream_id in ids:
            client.conn.increment_flow_control_window(mib, stream_id)
        client.flush()
        for stream_id in ids:
            headers, body = client.response(stream_id, timeout=30.0)
            assert headers[b":status"] == b"200"
            assert body == pattern(mib)
    finally:
        client.close()


def test_header_list_over_the_limit_is_refused(serve, big_file: Path) -> None:
    server = serve("apps.tls_app:app", env={"TLS_APP_FILE": str(big_file)}, h2_max_header_list_size=4096)
    client = H2Client(HOST, server.port)
    try:
        client.until(lambda evs: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in evs))
        # The client's own h2 would refuse to send past the advertised size: forget it.
        client.conn.remote_settings = h2.settings.Settings(client=False)
        stream_id = client.request("/", headers=[(f"x-flood-{i}", "v" * 100) for i in range(100)])
        client.until(
            lambda evs: (
                client.goaway() is not None
                or any(isinstance(e, (h2.events.ResponseReceived, h2.events.StreamReset)) for e in evs)
            ),
        )
        goaway = client.goaway()
        # hpack stops decoding past the limit: the whole connection goes, not just the stream.
        assert goaway is not None
        assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert not any(isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id for e in client.events)
    finally:
        client.close()
    assert httpx.get(f"http://127.0.0.1:{server.port}/", timeout=10.0).text == "hello"


def test_continuation_flood_is_cut_off(h2c_server) -> None:
    with socket.create_connection((HOST, h2c_server.port), timeout=10.0) as sock:
        settings = hyperframe.frame.SettingsFrame(0)
        head = hyperframe.frame.HeadersFrame(1)
        head.data = b"\x82\x84"  # :method GET, :path / (HPACK static table), no END_HEADERS
        sock.sendall(PREFACE + settings.serialize() + head.serialize())
        frame = hyperframe.frame.ContinuationFrame(1)
        frame.data = b""
        flood = frame.serialize() * 2000  # empty CONTINUATION frames, never END_HEADERS
        received = b""
        try:
            sock.sendall(flood)
            sock.settimeout(10.0)
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
    # The server answered with GOAWAY and closed: it did not buffer the flood.
    assert _has_goaway(received)
    assert httpx.get(f"http://127.0.0.1:{h2c_server.port}/", timeout=10.0).text == "hello"


def test_client_goaway_with_requests_in_the_same_write(h2c_server) -> None:
    # What h2load does at the end of a run: requests and GOAWAY arrive together.
    for _ in range(3):
        client = H2Client(HOST, h2c_server.port)
        try:
            for _ in range(10):
                stream_id = client.conn.get_next_available_stream_id()
                head = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "t")]
                client.conn.send_headers(stream_id, head, end_stream=True)
            client.conn.close_connection()
            client.flush()
            _drain(client.sock)  # the server closes once it has read the GOAWAY
        finally:
            client.close()
    assert httpx.get(f"http://127.0.0.1:{h2c_server.port}/", timeout=10.0).text == "hello"
    assert h2c_server.process.poll() is None


def test_frames_after_the_client_goaway_are_no_protocol_error(h2c_server) -> None:
    # RFC 9113 6.8: the sender of a GOAWAY may go on sending (a PING here, as h2spec's
    # generic/3.8/1 does).  h2 refuses every frame after a received GOAWAY; in the same
    # read as the GOAWAY that refusal used to go out as GOAWAY PROTOCOL_ERROR.
    for _ in range(3):
        with socket.create_connection((HOST, h2c_server.port), timeout=10.0) as sock:
            goaway = hyperframe.frame.GoAwayFrame(0)
            ping = hyperframe.frame.PingFrame(0)
            ping.opaque_data = b"h2spec\x00\x00"
            settings = hyperframe.frame.SettingsFrame(0)
            sock.sendall(PREFACE + settings.serialize() + goaway.serialize() + ping.serialize())
            received = b""
            sock.settimeout(10.0)
            try:
                while chunk := sock.recv(65536):
                    received += chunk
            except ConnectionResetError:
                pass
        codes = _goaway_codes(received)
        assert codes in ([], [h2.errors.ErrorCodes.NO_ERROR]), codes
    assert httpx.get(f"http://127.0.0.1:{h2c_server.port}/", timeout=10.0).text == "hello"


def _goaway_codes(received: bytes) -> list[int]:
    """The error codes of the GOAWAY frames in ``received`` (whole frames only)."""
    codes, at = [], 0
    while at + 9 <= len(received):
        length = int.from_bytes(received[at : at + 3])
        if received[at + 3] == 0x7 and at + 9 + 8 <= len(received):
            codes.append(int.from_bytes(received[at + 13 : at + 17]))
        at += 9 + length
    return codes


def _drain(sock: socket.socket) -> None:
    sock.settimeout(10.0)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass


def test_header_value_with_crlf_is_refused(h2c_server) -> None:
    client = H2Client(HOST, h2c_server.port)
    try:
        client.conn.config.validate_outbound_headers = False  # send what a well-behaved client never would
        client.conn.config.normalize_outbound_headers = False
        stream_id = client.request("/echo", headers=[("x-custom", "a\r\nx-injected: 1")])
        client.until(
            lambda evs: (
                client.goaway() is not None
                or any(isinstance(e, (h2.events.ResponseReceived, h2.events.StreamReset)) for e in evs)
            )
        )
        assert not any(isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id for e in client.events)
    finally:
        client.close()
    assert httpx.get(f"http://127.0.0.1:{h2c_server.port}/", timeout=10.0).text == "hello"


def test_garbage_after_the_preface_closes_only_that_connection(h2c_server) -> None:
    with socket.create_connection((HOST, h2c_server.port), timeout=10.0) as sock:
        sock.sendall(PREFACE + b"\xff" * 64)
        sock.settimeout(10.0)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    assert _has_goaway(received)
    assert httpx.get(f"http://127.0.0.1:{h2c_server.port}/", timeout=10.0).text == "hello"


def _has_goaway(received: bytes) -> bool:
    at = 0
    while at + 9 <= len(received):
        length = int.from_bytes(received[at : at + 3])
        if received[at + 3] == 0x7:  # GOAWAY
            return True
        at += 9 + length
    return False


def test_preface_split_across_reads(h2c_server) -> None:
    with socket.create_connection((HOST, h2c_server.port), timeout=10.0) as sock:
        for piece in (PREFACE[:5], PREFACE[5:16], PREFACE[16:20], PREFACE[20:]):
            sock.sendall(piece)
            time.sleep(0.05)
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        client.initiate_connection()
        client.data_to_send()  # our preface already went out by hand
        sock.sendall(hyperframe.frame.SettingsFrame(0).serialize())
        client.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "t")], True)
        sock.sendall(client.data_to_send())
        body = b""
        ended = False
        while not ended:
            data = sock.recv(65536)
            assert data, "closed before the response ended"
            for event in client.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    body += event.data
                ended = ended or isinstance(event, h2.events.StreamEnded)
        assert body == b"hello"


def test_goaway_on_graceful_shutdown_lets_open_streams_finish(serve, big_file: Path) -> None:
    server = serve("apps.tls_app:app", env={"TLS_APP_FILE": str(big_file)}, shutdown_grace=20.0)
    window = 1000
    client = H2Client(HOST, server.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    try:
        client.auto_ack = False
        client.until(lambda evs: any(isinstance(e, h2.events.SettingsAcknowledged) for e in evs))
        stream_id = client.request("/big?size=30000")
        client.until(lambda evs: client.data_received(stream_id) >= window)
        server.process.send_signal(signal.SIGTERM)
        client.until(lambda evs: client.goaway() is not None, timeout=20.0)
        goaway = client.goaway()
        assert goaway is not None
        assert goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
        assert goaway.last_stream_id == stream_id
        # h2 as a client takes no frame after a GOAWAY, so the rest is read frame by frame.
        credit = hyperframe.frame.WindowUpdateFrame(stream_id)
        credit.window_increment = 1 << 20
        client.sock.sendall(credit.serialize())
        body = b""
        for frame in _raw_frames(client.sock):
            if isinstance(frame, hyperframe.frame.DataFrame) and frame.stream_id == stream_id:
                body += frame.data
                if "END_STREAM" in frame.flags:
                    break
        assert client.data_received(stream_id) + len(body) == 30_000
    finally:
        client.close()
    assert server.process.wait(20.0) == 0


def _raw_frames(sock: socket.socket) -> Iterator[hyperframe.frame.Frame]:
    """Frames read off ``sock`` with hyperframe, until it closes."""
    sock.settimeout(20.0)
    buf = b""
    while True:
        while len(buf) >= 9:
            frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + length:
                break
            frame.parse_body(memoryview(buf[9 : 9 + length]))
            buf = buf[9 + length :]
            yield frame
        data = sock.recv(65536)
        if not data:
            return
        buf += data


def test_http2_off_answers_the_preface_with_505(serve, big_file: Path) -> None:
    server = serve("apps.tls_app:app", env={"TLS_APP_FILE": str(big_file), "CHOPIN_HTTP2": "0"})
    with socket.create_connection((HOST, server.port), timeout=10.0) as sock:
        sock.sendall(PREFACE)
        assert sock.recv(4096).startswith(b"HTTP/1.1 505 ")


def test_tls_h2_client_helper_checks_alpn(tls_server, chain: Chain) -> None:
    client = H2Client(HOST, tls_server.port, tls=client_context(chain.root))
    try:
        headers, body = client.response(client.request("/"))
        assert (headers[b":status"], body) == (b"200", b"hello")
    finally:
        client.close()
