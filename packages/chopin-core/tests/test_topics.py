"""Topics: the hub and subscriptions in process, then across the workers of a real server.

The server tests use ``apps/topics_app.py``: a WebSocket on ``/ws`` first tells the
client its worker's pid, then carries topic ``t`` both ways; ``/say``, ``/flood`` and
``/later`` publish from plain and ``async def`` handlers.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import struct
import threading
import time
from contextlib import ExitStack

import httpx
import pytest
from chopin_core import run_blocking, topics
from chopin_core._engine.fanout import Inbox, SiblingMesh, SiblingRelay
from chopin_core.topics import MAX_MESSAGE_SIZE, Hub, MessageTooLarge, Subscription
from conftest import wait_until
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

# -- in process -------------------------------------------------------------------------


class Collector:
    def __init__(self, accept: bool = True) -> None:
        self.got: list[str | bytes] = []
        self.accept = accept

    def send(self, message: str | bytes) -> bool:
        if self.accept:
            self.got.append(message)
        return self.accept


def test_hub_delivers_to_subscribers_of_the_topic_only_and_skips_the_publisher() -> None:
    hub = Hub()
    a, b, other = Collector(), Collector(), Collector()
    hub.subscribe("t", a)
    hub.subscribe("t", b)
    hub.subscribe("u", other)
    assert hub.publish("t", "one") == 2
    assert hub.publish("t", b"two", skip=a) == 1
    assert a.got == ["one"] and b.got == ["one", b"two"] and other.got == []
    hub.unsubscribe("t", a)
    hub.unsubscribe("t", b)
    hub.unsubscribe("t", b)  # twice: no error
    assert "t" not in hub.members
    assert hub.publish("t", "nobody") == 0


def test_a_subscriber_that_refuses_is_not_counted() -> None:
    hub = Hub()
    hub.subscribe("t", Collector(accept=False))
    hub.subscribe("t", Collector())
    assert hub.publish("t", "x") == 1


def test_too_large_message_or_topic_raises_before_anyone_gets_it() -> None:
    hub = Hub()
    member = Collector()
    hub.subscribe("t", member)
    assert hub.publish("t", "é" * (MAX_MESSAGE_SIZE // 2)) == 1  # exactly the limit, in UTF-8 bytes
    with pytest.raises(MessageTooLarge) as caught:
        hub.publish("t", "é" * (MAX_MESSAGE_SIZE // 2) + "x")
    assert (caught.value.size, caught.value.limit) == (MAX_MESSAGE_SIZE + 1, MAX_MESSAGE_SIZE)
    assert "at most 65536" in str(caught.value)
    with pytest.raises(MessageTooLarge, match="topic name of 256 bytes"):
        hub.publish("x" * 256, "hi")
    with pytest.raises(MessageTooLarge):
        hub.publish("", "hi")
    assert len(member.got) == 1


def test_module_publish_uses_the_process_hub_outside_a_worker() -> None:
    hub = Hub()
    previous = topics.install(hub)
    try:
        member = Collector()
        hub.subscribe("t", member)
        assert topics.current() is hub
        assert topics.publish("t", "hello") == 1
        assert member.got == ["hello"]
    finally:
        assert topics.install(previous) is hub


def test_subscription_is_iterated_by_a_waiting_coroutine() -> None:
    hub = Hub()
    sub = Subscription(hub, ["t", "u"])
    hub.publish("t", "first")

    async def read(n: int) -> list[str | bytes]:
        got = []
        async for message in sub:
            got.append(message)
            if len(got) == n:
                break
        return got

    assert run_blocking(read(1)) == ["first"]

    # Nothing queued: the coroutine waits until a thread publishes (the loop is woken).
    def later() -> None:
        time.sleep(0.05)
        hub.publish("u", b"second")

    threading.Thread(target=later).start()
    assert run_blocking(read(1)) == [b"second"]
    sub.close()
    assert hub.members == {}
    assert run_blocking(read(5)) == []  # closed: the iteration ends
    assert not sub.send("after")


def test_subscription_that_falls_behind_is_dropped_and_its_iteration_ends() -> None:
    hub = Hub()
    with Subscription(hub, ["t"], max_pending=3) as sub:
        assert [hub.publish("t", str(i)) for i in range(5)] == [1, 1, 1, 0, 0]
        assert sub.dropped and sub.closed and len(sub) == 3
        assert hub.members == {}

        async def rest() -> list[str | bytes]:
            return [m async for m in sub]

        assert run_blocking(rest()) == ["0", "1", "2"]  # what was queued is still read
    assert "dropped" in repr(sub)


def test_sibling_mesh_carries_frames_between_workers_in_order() -> None:
    mesh = SiblingMesh(3)
    try:
        links = [mesh.link(i) for i in range(3)]
        assert [len(link.outboxes) for link in links] == [2, 2, 2]
        assert len({link.origin for link in links}) == 1
        relay = SiblingRelay(links[0].outboxes)
        for i in range(100):
            relay.send(links[0].origin, "t", f"m{i}")
        relay.send(links[0].origin, "t", b"\x00bin")

        class FakeWebSockets:
            def cork(self) -> bool:
                return False

        class FakeLoop:
            index = 1
            websockets = FakeWebSockets()

            def detach(self, channel: object) -> None:
                pass

        for link in links[1:]:
            hub = Hub()
            member = Collector()
            hub.subscribe("t", member)
            inbox = Inbox(FakeLoop(), link.inbox, hub, "sibling")  # type: ignore[arg-type]
            inbox.on_event(1)
            assert member.got == [f"m{i}" for i in range(100)] + [b"\x00bin"]
        assert relay.dropped == 0
    finally:
        mesh.close()


def test_a_sibling_that_does_not_read_costs_dropped_messages_not_memory() -> None:
    mesh = SiblingMesh(2)
    try:
        link = mesh.link(0)
        relay = SiblingRelay(link.outboxes)
        big = "x" * 60_000
        for _ in range(1000):  # 60 MB into a socket buffer of a few MiB
            relay.send(link.origin, "t", big)
        assert relay.dropped > 500
    finally:
        mesh.close()


# -- over real sockets -----------------------------------------------------------------


def ws_url(server: object, path: str = "/ws") -> str:
    return f"ws://{server.host}:{server.port}{path}"  # type: ignore[attr-defined]


def join(server: object, stack: ExitStack, **kwargs: object) -> tuple[ClientConnection, int]:
    """A client on ``/ws`` and the pid of the worker serving it."""
    ws = stack.enter_context(ws_connect(ws_url(server), open_timeout=5, **kwargs))  # type: ignore[arg-type]
    hello = ws.recv(timeout=5)
    assert isinstance(hello, str) and hello.startswith("pid ")
    return ws, int(hello[4:])


def clients_on_workers(
    server: object, stack: ExitStack, want: int, most: int = 40
) -> list[tuple[ClientConnection, int]]:
    """Connect until the clients span ``want`` workers (the kernel spreads connections by hash)."""
    clients = []
    while len(clients) < most:
        clients.append(join(server, stack))
        if len({pid for _, pid in clients}) >= want and len(clients) >= 2 * want:
            return clients
    pytest.fail(f"{most} clients landed on {len({pid for _, pid in clients})} workers, wanted {want}")


def receive(ws: ClientConnection, count: int, timeout: float = 5.0) -> list[str | bytes]:
    got: list[str | bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        got.append(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
    return got


@pytest.fixture(scope="module")
def four(serve_module: object) -> object:
    return serve_module("apps.topics_app:app", workers=4)  # type: ignore[operator]


def test_every_websocket_client_on_every_worker_gets_every_message(four: object) -> None:
    with ExitStack() as stack:
        clients = clients_on_workers(four, stack, want=3)
        for index, (ws, _) in enumerate(clients):
            ws.send(f"from {index}")
        for ws, _ in clients:
            got = receive(ws, len(clients))
            assert sorted(got) == sorted(f"from {i}" for i in range(len(clients)))  # type: ignore[type-var]


def test_messages_of_one_publisher_arrive_in_order_everywhere(four: object) -> None:
    with ExitStack() as stack:
        clients = clients_on_workers(four, stack, want=3)
        sender = clients[0][0]
        for i in range(200):
            sender.send(f"{i}")
        for ws, _ in clients:
            assert receive(ws, 200) == [f"{i}" for i in range(200)]


def test_handlers_middleware_and_thread_jobs_publish_to_every_worker(four: object) -> None:
    with ExitStack() as stack:
        clients = clients_on_workers(four, stack, want=3)
        base = four.url  # type: ignore[attr-defined]
        limits = httpx.Limits(max_keepalive_connections=0)  # each POST on a new connection: any worker
        with httpx.Client(base_url=base, timeout=5.0, limits=limits) as http:
            assert http.post("/say", content="said").status_code == 204
            assert http.post("/later").status_code == 204
            binary = http.post("/say", content=b"\x00\x01", headers={"content-type": "application/octet-stream"})
            assert binary.status_code == 204
            assert http.post("/from-thread").status_code == 204
            assert http.get("/announced", headers={"x-announce": "from middleware"}).status_code == 200
        for ws, _ in clients:
            assert receive(ws, 5) == ["said", "later", b"\x00\x01", "from a thread", "from middleware"]


def test_a_message_past_the_limit_is_refused_with_413_and_reaches_nobody(four: object) -> None:
    with ExitStack() as stack:
        ws, _ = join(four, stack)
        with httpx.Client(base_url=four.url, timeout=5.0) as http:  # type: ignore[attr-defined]
            assert http.post("/say", content="x" * (MAX_MESSAGE_SIZE + 1)).status_code == 413
            assert http.post("/say", content="y" * MAX_MESSAGE_SIZE).status_code == 204
        assert receive(ws, 1) == ["y" * MAX_MESSAGE_SIZE]


def test_a_flooding_publisher_is_delivered_in_order_and_workers_stay_up(four: object) -> None:
    pids = sorted(four.children())  # type: ignore[attr-defined]
    with ExitStack() as stack:
        clients = clients_on_workers(four, stack, want=2, most=40)[:6]
        flooder = stack.enter_context(ws_connect(ws_url(four), open_timeout=5))
        flooder.recv(timeout=5)
        # 5,000 messages as fast as one socket takes them, while the readers read.
        for i in range(5000):
            flooder.send(f"{i}")
        for ws, _ in clients:
            got = receive(ws, 5000, timeout=30.0)
            assert got == [f"{i}" for i in range(5000)]
    assert sorted(four.children()) == pids  # type: ignore[attr-defined]


def stuck_client(server: object) -> tuple[socket.socket, int]:
    """A WebSocket client that completes the handshake, reads its first message, then reads nothing."""
    sock = socket.create_connection((server.host, server.port), timeout=10)  # type: ignore[attr-defined]
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(1)
    head = sock.recv(2, socket.MSG_WAITALL)  # the "pid N" text frame: short, unmasked
    assert head[0] == 0x81, head
    return sock, int(sock.recv(head[1] & 0x7F, socket.MSG_WAITALL)[4:])


def last_frame(sock: socket.socket) -> tuple[int, bytes]:
    """Read to the end of the stream; the opcode and payload of the last whole frame (RFC 6455 5.2)."""
    data = bytearray()
    while chunk := sock.recv(1 << 20):
        data += chunk
    pos, found = 0, (0, b"")
    while pos + 2 <= len(data):
        opcode, size = data[pos] & 0x0F, data[pos + 1] & 0x7F
        head = 2
        if size == 126:
            size, head = struct.unpack_from("!H", data, pos + 2)[0], 4
        elif size == 127:
            size, head = struct.unpack_from("!Q", data, pos + 2)[0], 10
        if pos + head + size > len(data):
            break
        found = (opcode, bytes(data[pos + head : pos + head + size]))
        pos += head + size
    return found


def test_a_subscriber_that_never_reads_is_closed_with_1008_and_the_worker_stays_up(serve: object) -> None:
    # Output past 8 x 64 KiB pending drops a client; the readers keep getting messages.
    # (header_timeout: how long a dropped client has to read what was queued before its close.)
    server = serve("apps.topics_app:app", workers=2, write_high_water=64 * 1024, header_timeout=30.0)  # type: ignore[operator]
    pids = sorted(server.children())
    with ExitStack() as stack:
        stuck, stuck_pid = stuck_client(server)
        stack.callback(stuck.close)
        reader, _ = join(server, stack)
        rss = server.rss_kib(stuck_pid)
        got: list[str | bytes] = []
        with httpx.Client(base_url=server.url, timeout=20.0) as http:
            for _ in range(3):  # 300 x 64 KiB (19 MB): far past the socket buffers and the bound
                assert http.post("/flood", params={"n": "100", "size": str(64 * 1024 - 16)}).status_code == 204
                got += receive(reader, 100, timeout=20)
        assert got == [f"{i}:".ljust(64 * 1024 - 16, "x") for _ in range(3) for i in range(100)]
        server.wait_for_stderr("closing it with 1008", timeout=10)
        assert server.rss_kib(stuck_pid) - rss < 16 * 1024  # bounded: not the 19 MB published
        # Reading now, the slow client gets what was queued for it, then the close frame.
        opcode, payload = last_frame(stuck)
        assert opcode == 8 and struct.unpack("!H", payload[:2])[0] == 1008, (opcode, payload[:40])
        assert sorted(server.children()) == pids
        assert httpx.get(f"{server.url}/pid", timeout=5).status_code == 200


def test_an_sse_subscriber_that_never_reads_is_dropped_and_the_worker_stays_up(serve: object) -> None:
    server = serve("apps.topics_app:app", workers=1, write_high_water=64 * 1024)  # type: ignore[operator]
    with socket.create_connection((server.host, server.port), timeout=10) as stuck:
        stuck.sendall(b"GET /events?pending=16 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: httpx.get(f"{server.url}/members", timeout=5).text == "1", 5)
        rss = server.rss_kib(server.pid)
        with httpx.Client(base_url=server.url, timeout=20.0) as http:
            for _ in range(3):  # 300 x 64 KiB: the stream stops being pulled, its queue passes 16
                assert http.post("/flood", params={"n": "100", "size": str(64 * 1024 - 16)}).status_code == 204
            # Dropped: it left the topic (its stream ends), and the worker holds no more of it.
            assert http.get("/members").text == "0"
            assert server.rss_kib(server.pid) - rss < 16 * 1024
            assert http.get("/pid").text == str(server.pid)


def test_a_restarted_worker_rejoins_the_fan_out(serve: object) -> None:
    server = serve("apps.topics_app:app", workers=2)  # type: ignore[operator]
    old = server.wait_for_children(2)
    victim = old[0]
    os.kill(victim, signal.SIGKILL)
    seen: list[set[int]] = []

    def replaced() -> bool:
        # One listing per check: two calls could see the victim gone before its replacement exists.
        kids = set(server.children())
        seen.append(kids)
        return len(kids) == 2 and victim not in kids and bool(kids - set(old))

    assert wait_until(replaced, 10)
    (new,) = seen[-1] - set(old)
    with ExitStack() as stack:
        clients: list[tuple[ClientConnection, int]] = []
        while {new, old[1]} - {pid for _, pid in clients}:
            assert len(clients) < 60, f"no client landed on both workers: {[p for _, p in clients]}"
            clients.append(join(server, stack))
        on_new = next(ws for ws, pid in clients if pid == new)
        on_old = next(ws for ws, pid in clients if pid == old[1])
        on_new.send("from the new worker")
        on_old.send("from the old worker")
        for ws, _ in clients:
            assert sorted(receive(ws, 2)) == ["from the new worker", "from the old worker"]  # type: ignore[type-var]


def test_a_closed_websocket_leaves_its_topics(four: object) -> None:
    with ExitStack() as stack:
        ws, _ = join(four, stack)
        ws.close()
    # Every worker ends with no member once the close has been handled.
    assert wait_until(
        lambda: all(
            httpx.get(f"{four.url}/members", timeout=5, headers={"connection": "close"}).text == "0"  # type: ignore[attr-defined]
            for _ in range(8)
        ),
        5,
    )
