"""WebSocket endpoints in the worker loop, driven by the `websockets` client and raw sockets."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import struct
import time
import zlib

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect as ws_connect


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("apps.ws_app:app")


def url(server, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def closes(server) -> list[list[object]]:
    return httpx.get(f"{server.url}/closes", timeout=5.0).json()


def test_echo_text_and_binary(server):
    with ws_connect(url(server, "/echo"), open_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\xffbinary")
        assert ws.recv(timeout=5) == b"\x00\xffbinary"
        ws.send("é" * 10_000)
        assert ws.recv(timeout=5) == "é" * 10_000


def test_fragmented_message_is_reassembled(server):
    with ws_connect(url(server, "/echo"), open_timeout=5) as ws:
        ws.send(["frag", "mented ", "message"])
        assert ws.recv(timeout=5) == "fragmented message"
        ws.send([b"a", b"b", b"c"])
        assert ws.recv(timeout=5) == b"abc"


def test_ping_gets_pong(server):
    with ws_connect(url(server, "/echo"), open_timeout=5) as ws:
        pong = ws.ping(b"are you there")
        assert pong.wait(timeout=5)


def test_close_handshake_reaches_the_handler(server):
    with ws_connect(url(server, "/echo"), open_timeout=5) as ws:
        ws.send("x")
        ws.recv(timeout=5)
        ws.close(code=1000, reason="done")
    deadline = time.monotonic() + 5
    while ["/echo", 1000, "done"] not in closes(server):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_server_side_close(server):
    with ws_connect(url(server, "/echo"), open_timeout=5) as ws:
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "asked to leave")


def test_oversize_message_closes_with_1009(server):
    with ws_connect(url(server, "/small"), open_timeout=5, max_size=None) as ws:
        ws.send("a" * 1000)
        assert ws.recv(timeout=5) == "a" * 1000
        ws.send("a" * 2000)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009


def test_handler_exception_closes_with_1011_and_the_worker_lives(server):
    with ws_connect(url(server, "/echo"), open_timeout=5) as ws:
        ws.send("boom")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1011
    assert "handler failed" in server.stderr_text()
    assert httpx.get(f"{server.url}/closes", timeout=5.0).status_code == 200


def test_subprotocol_is_negotiated(server):
    with ws_connect(url(server, "/room/a"), subprotocols=["other", "superchat"], open_timeout=5) as ws:
        assert ws.subprotocol == "superchat"
        assert ws.recv(timeout=5) == "joined superchat"


def test_topic_broadcast_within_the_worker(server):
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(ws_connect(url(server, "/room/music"), open_timeout=5)) for _ in range(3)]
        other = stack.enter_context(ws_connect(url(server, "/room/sport"), open_timeout=5))
        for ws in [*clients, other]:
            assert ws.recv(timeout=5).startswith("joined")
        clients[0].send("nocturne")
        assert clients[1].recv(timeout=5) == "nocturne"
        assert clients[2].recv(timeout=5) == "nocturne"
        with pytest.raises(TimeoutError):
            other.recv(timeout=0.3)
        with pytest.raises(TimeoutError):
            clients[0].recv(timeout=0.3)  # publish leaves the sender out by default


def test_many_concurrent_clients(server):
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(ws_connect(url(server, "/echo"), open_timeout=5)) for _ in range(100)]
        for i, ws in enumerate(clients):
            ws.send(f"client {i}")
        for i, ws in enumerate(clients):
            assert ws.recv(timeout=5) == f"client {i}"


# -- raw sockets: what a well-behaved client never sends ------------------------------


def raw_upgrade(server, path: str = "/echo", version: str = "13") -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=5.0)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n".encode()
    )
    return sock


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    return data.partition(b"\r\n\r\n")[0]


def read_close_code(sock: socket.socket) -> int:
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    assert data[0] == 0x88, data  # FIN + close
    return int(struct.unpack("!H", data[2:4])[0])


def masked(opcode: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def test_unmasked_frame_closes_with_1002(server):
    with raw_upgrade(server) as sock:
        assert read_head(sock).startswith(b"HTTP/1.1 101")
        sock.sendall(bytes([0x81, 0x02]) + b"hi")
        assert read_close_code(sock) == 1002


def test_invalid_utf8_closes_with_1007(server):
    with raw_upgrade(server) as sock:
        assert read_head(sock).startswith(b"HTTP/1.1 101")
        sock.sendall(masked(0x1, b"\xff\xfe"))
        assert read_close_code(sock) == 1007


def test_frames_sent_with_the_upgrade_request_are_not_lost(server):
    sock = socket.create_connection((server.host, server.port), timeout=5.0)
    with sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            + masked(0x1, b"early")
        )
        data = b""
        while not data.endswith(b"early"):
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 101")


def test_bad_upgrades_are_refused(server):
    plain = httpx.get(f"{server.url}/echo", timeout=5.0)
    assert plain.status_code == 400
    with raw_upgrade(server, version="8") as sock:
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 426")
        assert b"Sec-WebSocket-Version: 13" in head


def test_shutdown_closes_websockets_with_1001(serve):
    server = serve("apps.ws_app:app")
    with ws_connect(url(server, "/echo"), open_timeout=5) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
        os.kill(server.pid, signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1001
    server.process.wait(timeout=10)
    assert server.process.returncode == 0


@pytest.mark.parametrize("code", [1012, 1013, 1014])
def test_iana_registered_close_codes_complete_the_handshake(server, code: int):
    # Service Restart / Try Again Later / Bad Gateway: valid on the wire (IANA registry),
    # so the server echoes the code instead of failing the connection with 1002.
    with ws_connect(url(server, "/echo"), open_timeout=5) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
        ws.close(code=code, reason="restarting")
    assert ws.protocol.close_rcvd is not None  # the server answered the close, not a 1002
    assert ws.protocol.close_rcvd.code == code
    deadline = time.monotonic() + 5
    while ["/echo", code, "restarting"] not in closes(server):
        assert time.monotonic() < deadline
        time.sleep(0.05)


# -- permessage-deflate (RFC 7692) -------------------------------------------------------


def test_compression_is_negotiated_and_echo_works(server):
    text = "nocturne in e minor " * 5000
    with ws_connect(url(server, "/echo"), open_timeout=5) as ws:  # offers permessage-deflate by default
        assert ws.response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
        assert [type(e).__name__ for e in ws.protocol.extensions] == ["PerMessageDeflate"]
        for _ in range(3):  # context takeover both ways: later messages reuse the window
            ws.send(text)
            assert ws.recv(timeout=5) == text
            ws.send(b"\x00\x01" * 40_000)
            assert ws.recv(timeout=5) == b"\x00\x01" * 40_000
        ws.send(["frag", "mented"])
        assert ws.recv(timeout=5) == "fragmented"


@pytest.mark.parametrize(
    ("params", "answer"),
    [
        (
            {"server_no_context_takeover": True, "client_no_context_takeover": True},
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        ({"server_max_window_bits": 10, "client_max_window_bits": 9}, "permessage-deflate; server_max_window_bits=10"),
    ],
)
def test_compression_honours_the_clients_parameters(server, params, answer):
    factory = ClientPerMessageDeflateFactory(**params)
    with ws_connect(url(server, "/echo"), open_timeout=5, compression=None, extensions=[factory]) as ws:
        assert ws.response.headers["Sec-WebSocket-Extensions"] == answer
        for size in (1, 5000, 200_000):
            ws.send("ab" * size)
            assert ws.recv(timeout=5) == "ab" * size


def test_compression_can_be_turned_off_per_endpoint(server):
    with ws_connect(url(server, "/plain"), open_timeout=5) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []
        ws.send("hello " * 100)
        assert ws.recv(timeout=5) == "hello " * 100


def test_compressed_bomb_closes_with_1009_and_the_worker_keeps_serving(server):
    deflater = zlib.compressobj(wbits=-15)
    bomb = deflater.compress(b"\x00" * 1_000_000) + deflater.flush(zlib.Z_SYNC_FLUSH)
    bomb = bomb[:-4]  # RFC 7692 7.2.1: the sender strips the empty block's tail
    assert len(bomb) < 1024  # under /small's limit on the wire, 1000 times over it inflated
    with socket.create_connection((server.host, server.port), timeout=5.0) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /small HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n".encode()
        )
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 101")
        assert b"\r\nSec-WebSocket-Extensions: permessage-deflate" in head
        mask = b"\x01\x02\x03\x04"
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(bomb))
        sock.sendall(bytes([0xC2, 0x80 | 126]) + struct.pack("!H", len(bomb)) + mask + body)  # FIN+RSV1, binary
        assert read_close_code(sock) == 1009
    with ws_connect(url(server, "/echo"), open_timeout=5) as ws:
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_an_upgraded_connection_leaves_the_http_table_for_a_channel_and_back_out_on_close():
    # The engine's shape (issue 16): an upgraded fd is served by a WebSocketChannel in the
    # loop's channel table, not as an HTTP/1.1 connection; closing it empties both tables.
    import threading

    from chopin_core import Router, Settings, WebSocketHandler
    from chopin_core._engine.ws_channel import WebSocketChannel
    from chopin_core.connection import open_listener
    from chopin_core.worker import Worker

    class Echo(WebSocketHandler):
        def on_message(self, ws, message):
            ws.send(message)

    router = Router()
    router.websocket("/echo", Echo)
    listener = open_listener("127.0.0.1", 0)
    worker = Worker(router.compile(), Settings(), listener=listener)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()

    class Addr:
        host = "127.0.0.1"
        port = listener.getsockname()[1]

    def channels() -> list[WebSocketChannel]:
        return [c for c in list(worker.channels.values()) if isinstance(c, WebSocketChannel)]

    try:
        with raw_upgrade(Addr) as sock:
            assert read_head(sock).startswith(b"HTTP/1.1 101")
            sock.sendall(masked(0x1, b"ping me"))
            data = b""
            while not data.endswith(b"ping me"):
                chunk = sock.recv(4096)
                assert chunk, data
                data += chunk
            assert len(channels()) == 1
            assert channels()[0].fd not in worker.conns
            assert not worker.conns
            sock.sendall(masked(0x8, struct.pack("!H", 1000)))
            assert read_close_code(sock) == 1000
        deadline = time.monotonic() + 5.0
        while channels():
            assert time.monotonic() < deadline, "the WebSocket channel outlived its close handshake"
            time.sleep(0.02)
        assert not worker.conns
    finally:
        worker.request_stop()
        thread.join(timeout=10.0)
    assert not thread.is_alive()
