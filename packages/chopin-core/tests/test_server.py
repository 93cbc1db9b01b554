"""The process layer over real sockets: forked workers, restarts, graceful stop, settings.

Every server here is started for its test (``serve``), since the tests kill
workers or stop the server themselves.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from chopin_core import Response, Router, Settings
from chopin_core.connection import open_listener
from chopin_core.errors import ConfigError
from chopin_core.server import parse_address
from chopin_core.worker import Worker
from conftest import wait_until

HOST = "127.0.0.1"
TESTS_DIR = Path(__file__).resolve().parent
# A second server in a subprocess: apps.basic (GET /pid tells who answered) on sys.argv[1].
_SECOND_SERVER = """\
import sys
sys.path.insert(0, sys.argv[2])
from apps.basic import app
app.serve(sys.argv[1])
"""


def get_pid(port: int) -> int:
    """The pid of the worker that answers a fresh connection to ``port``."""
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 5.0
        while chunk := sock.recv(4096):
            data += chunk
            assert time.monotonic() < deadline
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return int(body)


def pids_seen(port: int, want: set[int], attempts: int = 400) -> set[int]:
    """Worker pids answering fresh connections, until all of ``want`` were seen (at most ``attempts``)."""
    seen: set[int] = set()
    for _ in range(attempts):
        seen.add(get_pid(port))
        if want <= seen:
            break
    return seen


def refused(port: int) -> bool:
    """Whether a connection to ``port`` is refused."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


def test_two_workers_fork_and_share_the_load(serve):
    server = serve("apps.basic:app", workers=2)
    workers = server.wait_for_children(2)
    assert server.pid not in workers
    # SO_REUSEPORT hashes the 4-tuple: fresh connections (fresh source ports) spread.
    assert pids_seen(server.port, set(workers)) == set(workers)
    assert "2 workers" in server.wait_for_stderr("chopin serving on")


def test_a_killed_worker_is_replaced(serve):
    server = serve("apps.basic:app", workers=2)
    workers = server.wait_for_children(2)
    victim, survivor = workers
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while True:
        now = set(server.children())
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, f"no replacement worker after 5 s: {now}"
        time.sleep(0.05)
    (replacement,) = now - {survivor}
    assert survivor in now
    server.wait_for_stderr(f"(pid {victim}) exited with -9; restarting")
    # Every request is answered, by both the survivor and the new worker.
    assert pids_seen(server.port, {survivor, replacement}) == {survivor, replacement}
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        for _ in range(20):
            assert client.get("/").status_code == 200


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "forked"])
def test_sigterm_finishes_in_flight_requests_then_exits_0(serve, connect, workers):
    server = serve("apps.basic:app", workers=workers, env={"CHOPIN_SHUTDOWN_GRACE": "5"})
    if workers == 1:
        assert server.children() == []  # no fork in single-worker mode
    else:
        server.wait_for_children(2)
    idle = connect(server)
    assert idle.request("GET", "/").status == 200
    busy = connect(server)
    busy.send(busy.build("GET", "/sleep?s=1.5"))
    time.sleep(0.3)  # the handler is running now
    stopped_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)

    resp = busy.read_response(timeout=5.0)
    assert (resp.status, resp.body) == (200, b"slept")
    assert resp.header("connection") == "close"  # no keep-alive while stopping
    busy.assert_closed_by_server()
    idle.assert_closed_by_server(timeout=3.0)

    deadline = time.monotonic() + 3.0
    while not refused(server.port):
        assert time.monotonic() < deadline, "new connections still accepted 3 s after the in-flight request ended"
        time.sleep(0.05)
    assert server.process.wait(timeout=8.0) == 0
    assert time.monotonic() - stopped_at < 5.0
    assert server.children() == []


def test_sigterm_when_idle_exits_promptly(serve):
    server = serve("apps.basic:app", workers=2)
    server.wait_for_children(2)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=5.0) == 0
    assert time.monotonic() - started < 3.0


def test_sigterm_answers_every_request_sent_before_it(serve, connect):
    # Issue 15 item 12: requests waiting in the accept queue, or unread on an idle
    # keep-alive connection behind a busy handler, were reset when the listener closed.
    server = serve("apps.basic:app", workers=1)  # the default 10 s grace
    keepalive = connect(server)
    assert keepalive.request("GET", "/").status == 200
    fresh = connect(server)  # accepted while the worker is idle; its request comes later
    time.sleep(2.1)  # both idle for over a second: with nothing to read, they would be closed
    busy = connect(server)
    busy.send(busy.build("GET", "/sleep?s=0.3"))
    time.sleep(0.1)  # the handler is running now: connections from here on queue behind it
    queued = [connect(server) for _ in range(6)]
    for conn in [keepalive, fresh, *queued]:
        conn.send(conn.build("GET", "/sleep?s=0.2"))
    stopped_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)

    for number, conn in enumerate([busy, keepalive, fresh, *queued]):
        resp = conn.read_response(timeout=10.0)
        assert (number, resp.status, resp.body) == (number, 200, b"slept")
        assert resp.header("connection") == "close"
        conn.assert_closed_by_server(timeout=5.0)
    assert server.process.wait(timeout=10.0) == 0
    assert time.monotonic() - stopped_at < 10.0  # within the grace period
    assert refused(server.port)


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (an orphan's zombie may wait for a reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def test_workers_exit_when_the_supervisor_is_killed(serve):
    # Issue 15 item 13: after SIGKILL of the supervisor its workers served on as orphans.
    server = serve("apps.basic:app", workers=2)
    workers = server.wait_for_children(2)
    assert get_pid(server.port) in workers
    try:
        server.process.kill()
        assert server.process.wait(timeout=5.0) == -signal.SIGKILL
        deadline = time.monotonic() + 5.0
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, f"workers {workers} still running 5 s after the supervisor died"
            time.sleep(0.05)
        assert refused(server.port)
    finally:
        serve.servers.remove(server)  # its -9 exit is the point of this test
        try:
            os.killpg(server.pid, signal.SIGKILL)  # whatever outlived it
        except ProcessLookupError:
            pass


def test_a_worker_stops_once_its_supervisor_is_no_longer_its_parent(caplog):
    # The once-a-second check behind PR_SET_PDEATHSIG (other systems, a failed prctl): a
    # worker in a thread of this process, told its supervisor is this process, which is
    # not its parent.
    router = Router()
    router.get("/", lambda ctx: Response.text("hi"))  # never asked: the worker stops at its first tick
    listener = open_listener(HOST, 0)
    port = listener.getsockname()[1]
    worker = Worker(router.compile(), Settings(), listener=listener)  # run() closes the listener
    thread = threading.Thread(target=worker.run, kwargs={"supervisor": os.getpid()})
    thread.start()
    try:
        thread.join(timeout=5.0)
        assert not thread.is_alive(), "the worker still runs 5 s after its supervisor was gone"
    finally:
        worker.request_stop()
        thread.join(timeout=5.0)
    assert refused(port)
    assert f"supervisor {os.getpid()} is gone; stopping" in caplog.text


def start_second_server(
    port: int, workers: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """apps.basic on ``127.0.0.1:port`` in its own process group, its output in ``log``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHOPIN_") and k not in ("PORT", "WORKERS")}
    environ.update(WORKERS=str(workers), PYTHONUNBUFFERED="1", **(env or {}))
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", _SECOND_SERVER, f"{HOST}:{port}", str(TESTS_DIR)],
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and its workers, and wait for it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=5.0)


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "forked"])
def test_a_second_server_on_a_taken_port_refuses_to_start(serve, tmp_path, workers):
    # Issue 15 item 3: with SO_REUSEPORT a second server started and took half the traffic.
    first = serve("apps.basic:app", workers=2)
    mine = set(first.wait_for_children(2))
    second = start_second_server(first.port, workers, tmp_path / "second.log")
    try:
        second.wait(timeout=15.0)
    finally:
        stop_group(second)
    text = (tmp_path / "second.log").read_text(errors="replace")
    assert second.returncode != 0, text
    assert f"{HOST}:{first.port}" in text
    assert "already listening" in text
    assert "CHOPIN_REUSE_PORT_SHARED" in text
    assert {get_pid(first.port) for _ in range(20)} <= mine  # the first server still has the port to itself


def test_reuse_port_shared_lets_a_second_server_share_the_port(serve, tmp_path):
    first = serve("apps.basic:app", workers=1)
    second = start_second_server(first.port, 1, tmp_path / "second.log", {"CHOPIN_REUSE_PORT_SHARED": "1"})
    try:
        deadline = time.monotonic() + 10.0
        while "chopin serving" not in (tmp_path / "second.log").read_text(errors="replace"):
            assert second.poll() is None, (tmp_path / "second.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "the second server did not start within 10 s"
            time.sleep(0.05)
        # Fresh connections (fresh source ports) reach both servers.
        assert pids_seen(first.port, {first.pid, second.pid}) == {first.pid, second.pid}
    finally:
        stop_group(second)


def test_port_env_overrides_the_address_port(serve):
    # The decoy port stays bound (not listening) for the whole test, so no other process can
    # take it meanwhile; a server that bound it instead of PORT could not start at all.
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        decoy = probe.getsockname()[1]
        # serve("127.0.0.1:<decoy>") with PORT=<server.port>: PORT wins.
        server = serve("apps.basic:app", addr=f"{HOST}:{decoy}")
        with httpx.Client(base_url=server.url, timeout=5.0) as client:
            assert client.get("/").status_code == 200
        assert refused(decoy)


def test_settings_from_env_and_overrides(serve, connect):
    server = serve(
        "apps.basic:app",
        env={"CHOPIN_MAX_URI_LENGTH": "100", "CHOPIN_MAX_BODY_SIZE": "10", "CHOPIN_MAX_HEAD_SIZE": "2048"},
        max_header_count=5,
    )

    def status_of(raw: bytes) -> int:
        conn = connect(server)
        conn.send(raw)
        return conn.read_response().status

    assert status_of(b"GET /" + b"a" * 99 + b" HTTP/1.1\r\nHost: test\r\n\r\n") == 404
    assert status_of(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: test\r\n\r\n") == 414
    assert status_of(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n0123456789") == 200
    assert status_of(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\n0123456789a") == 413
    four = b"".join(b"X-%d: v\r\n" % i for i in range(4))
    assert status_of(b"GET / HTTP/1.1\r\nHost: test\r\n" + four + b"\r\n") == 200
    assert status_of(b"GET / HTTP/1.1\r\nHost: test\r\n" + four + b"X-5: v\r\n\r\n") == 431
    assert status_of(b"GET / HTTP/1.1\r\nHost: test\r\nX-Long: " + b"b" * 2100 + b"\r\n\r\n") == 431


def test_workers_env_sets_the_process_count(serve):
    server = serve("apps.basic:app", workers=3)
    workers = server.wait_for_children(3)
    assert len(set(workers)) == 3
    assert get_pid(server.port) in workers


def test_pinned_workers_each_run_on_one_cpu(serve):
    cpus = sorted(os.sched_getaffinity(0))
    assert len(cpus) >= 2, "this test needs two CPUs, as the project's machines have"
    server = serve("apps.basic:app", workers=2, env={"CHOPIN_PIN_WORKERS": "1"})
    workers = server.wait_for_children(2)
    affinities = sorted(tuple(sorted(os.sched_getaffinity(pid))) for pid in workers)
    assert affinities == [(cpus[0],), (cpus[1],)]
    assert len(os.sched_getaffinity(server.pid)) == len(cpus)  # the supervisor is not pinned
    assert get_pid(server.port) in workers


def test_spin_poll_mode_serves(serve):
    server = serve("apps.basic:app", env={"CHOPIN_EPOLL_TIMEOUT_MS": "0"})
    response = httpx.get(f"{server.url}/", timeout=5.0)
    assert response.status_code == 200
    assert response.text == "hello"


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        (":9000", ("0.0.0.0", 9000)),
        ("[::1]:8443", ("::1", 8443)),
    ],
)
def test_parse_address(addr, expected):
    assert parse_address(addr) == expected


@pytest.mark.parametrize("addr", ["8080", "host:http", "host:70000", "host:-1"])
def test_parse_address_refuses_malformed_addresses(addr):
    with pytest.raises(ConfigError, match="address"):
        parse_address(addr)


def test_on_worker_stop_runs_in_each_worker_when_it_stops(serve, tmp_path) -> None:
    marker = tmp_path / "stopped.txt"
    server = serve("apps.clients_app:app", workers=2, env={"STOP_MARKER": str(marker)})
    pids = server.wait_for_children(2)
    assert wait_until(lambda: marker.exists() and len(marker.read_text().splitlines()) == 2, 10.0)
    time.sleep(0.5)  # past the start hooks, into the loops (a worker stopped while starting skips its stop hooks)
    assert server.stop() is None
    lines = [line for line in marker.read_text().splitlines() if not line.startswith("start")]
    # Each worker ran both hooks, the last registered first.
    assert len(lines) == 4, (lines, server.stderr_text())
    for index in (0, 1):
        mine = [line for line in lines if line.split()[1] == str(index)]
        assert [line.split()[0] for line in mine] == ["first", "stop"], lines
    assert {int(line.split()[2]) for line in lines if line.startswith("stop")} == set(pids)
