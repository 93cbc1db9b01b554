"""Async response streams (``Response.stream(async_generator)``) on a real server.

How the worker drives them (``chopin_core._engine.stream_pump``): chunks leave as
they are produced, pipelined requests wait their turn, a producer that fails is a
500 before its first wait and a broken stream after, and a reader that does not
read stops the producer.  One worker (``apps/sse_app.py``), raw sockets and httpx.
"""

from __future__ import annotations

import gzip
import itertools
import select
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from chopin_core import sleep
from chopin_core._engine.stream_pump import StreamPump
from chopin_core._engine.tasks import Scheduler
from chopin_core.response import AsyncStream
from conftest import RawConnection, ServerPool, ServerProcess, wait_until

Connect = Callable[..., RawConnection]

# -- the pump on a scheduler of its own, no sockets --------------------------------------------


@pytest.fixture
def tasks() -> Iterator[Scheduler]:
    ep = select.epoll()
    scheduler = Scheduler(ep, lambda: None, 1)
    yield scheduler
    scheduler.close()
    ep.close()


def _run(tasks: Scheduler, until: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the condition did not come true"
        for fd, events in tasks.ep.poll(tasks.wait_time(0.05)):
            tasks.on_event(fd, events)
        tasks.run_ready()


def test_a_chunk_produced_without_waiting_is_ready_at_once(tasks: Scheduler) -> None:
    async def produce() -> AsyncIterator[bytes | str]:
        yield "text"
        yield b""
        yield b"bytes"

    pump = StreamPump(AsyncStream(produce()), tasks)
    woken: list[int] = []
    pump.wake = lambda: woken.append(1)
    pump.start()
    assert pump.take() == b"text" and not pump.producing
    pump.start()  # the empty chunk: nothing to take, ask again
    assert pump.take() is None and not pump.producing
    pump.start()
    assert pump.take() == b"bytes"
    pump.start()
    assert pump.ended and pump.take() is None
    assert woken == []  # produced inline: the caller looks, no wake


def test_a_producer_that_waits_wakes_the_worker_once_it_has_produced(tasks: Scheduler) -> None:
    async def produce() -> AsyncIterator[bytes]:
        await sleep(0.05)
        yield b"later"

    pump = StreamPump(AsyncStream(produce()), tasks)
    woken: list[int] = []
    pump.wake = lambda: woken.append(1)
    pump.start()
    assert pump.producing and pump.take() is None
    _run(tasks, lambda: bool(woken))
    assert pump.take() == b"later" and not pump.producing


def test_closing_while_the_producer_waits_runs_its_finally_at_once(tasks: Scheduler) -> None:
    seen: list[str] = []

    async def produce() -> AsyncIterator[bytes]:
        try:
            await sleep(10)
            yield b"never"
        finally:
            seen.append("finally")

    source = produce()
    pump = StreamPump(AsyncStream(source), tasks)
    pump.start()
    pump.close()
    assert seen == ["finally"]
    # Closed for good, not left marked running (Python 3.11's asend.close() would).
    assert not source.ag_running and source.ag_frame is None


def test_closing_between_chunks_acloses_the_producer_whose_finally_may_wait(tasks: Scheduler) -> None:
    seen: list[str] = []

    async def produce() -> AsyncIterator[bytes]:
        try:
            yield b"one"
            yield b"two"
        finally:
            await sleep(0.01)  # allowed here: aclose is driven on the scheduler
            seen.append("finally")

    pump = StreamPump(AsyncStream(produce()), tasks)
    pump.start()
    assert pump.take() == b"one"
    pump.close()
    _run(tasks, lambda: bool(seen))


def test_keep_alive_chunks_while_the_producer_waits(tasks: Scheduler) -> None:
    async def produce() -> AsyncIterator[bytes]:
        await sleep(0.35)
        yield b"event"

    pump = StreamPump(AsyncStream(produce(), 0.1, b":\n\n"), tasks)
    taken: list[bytes] = []

    def wake() -> None:
        while (chunk := pump.take()) is not None:
            taken.append(chunk)

    pump.wake = wake
    pump.start()
    _run(tasks, lambda: b"event" in taken)
    assert 2 <= taken.count(b":\n\n") <= 3, taken
    pump.close()


@pytest.mark.parametrize(
    ("body", "error"),
    [("raises", "RuntimeError: boom"), ("number", "TypeError: an async response stream yielded int")],
)
def test_what_the_producer_did_wrong_is_kept_for_the_worker(tasks: Scheduler, body: str, error: str) -> None:
    async def produce() -> AsyncIterator[object]:
        await sleep(0.01)
        if body == "raises":
            raise RuntimeError("boom")
        yield 42

    pump = StreamPump(AsyncStream(produce()), tasks)  # type: ignore[arg-type]
    pump.wake = lambda: None
    pump.start()
    _run(tasks, lambda: pump.error is not None)
    assert f"{type(pump.error).__name__}: {pump.error}".startswith(error)


# -- on a real server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(serve_module: ServerPool) -> ServerProcess:
    # A small high water, so the back-pressure test needs little memory.
    return serve_module("apps.sse_app:app", workers=1, write_high_water=32 * 1024)


def _stats(server: ServerProcess) -> dict[str, int]:
    result: dict[str, int] = httpx.get(f"{server.url}/stats", timeout=5).json()
    return result


def test_chunks_leave_as_they_are_produced(server: ServerProcess) -> None:
    arrivals = []
    with httpx.stream("GET", f"{server.url}/async-text", headers={"Accept-Encoding": "identity"}, timeout=10) as resp:
        assert resp.headers["transfer-encoding"] == "chunked"
        started = time.monotonic()
        for line in resp.iter_lines():
            arrivals.append((time.monotonic() - started, line))
    assert [line for _, line in arrivals] == ["line 0", "line 1", "line 2"]
    assert arrivals[2][0] - arrivals[0][0] > 0.4, f"chunks were batched: {arrivals}"


def test_a_sync_generator_s_chunks_leave_as_they_are_produced(server: ServerProcess) -> None:
    """Each chunk is written before the generator is asked for the next (no 64 KiB batching)."""
    arrivals = []
    with httpx.stream("GET", f"{server.url}/sync-text", headers={"Accept-Encoding": "identity"}, timeout=10) as resp:
        assert resp.headers["transfer-encoding"] == "chunked"
        started = time.monotonic()
        for line in resp.iter_lines():
            arrivals.append((time.monotonic() - started, line))
    assert [line for _, line in arrivals] == ["line 0", "line 1", "line 2"]
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) > 0.2, f"chunks were batched: {arrivals}"


def test_an_async_stream_under_the_compression_layer_is_gzipped_chunk_by_chunk(server: ServerProcess) -> None:
    with httpx.stream("GET", f"{server.url}/async-text", headers={"Accept-Encoding": "gzip"}, timeout=10) as resp:
        assert resp.headers["content-encoding"] == "gzip"
        raw = b"".join(resp.iter_raw())
    assert gzip.decompress(raw) == b"line 0\nline 1\nline 2\n"


def test_pipelined_requests_behind_an_async_stream_are_answered_in_order(
    server: ServerProcess, connect: Connect
) -> None:
    conn = connect(server)
    conn.send(conn.build("GET", "/") + conn.build("GET", "/ticks?n=3&every=0.1") + conn.build("GET", "/"))
    first, streamed, last = (conn.read_response() for _ in range(3))
    assert first.body == b"hello"
    assert streamed.chunked and streamed.body.count(b"data: tick") == 3
    assert last.body == b"hello"
    assert conn.request("GET", "/").body == b"hello"  # the connection carries on


def test_an_async_stream_to_http10_is_close_delimited(server: ServerProcess, connect: Connect) -> None:
    conn = connect(server)
    conn.send(conn.build("GET", "/ticks?n=2&every=0.05", version="HTTP/1.0"))
    head = conn.read_head()
    assert head.status == 200 and head.header("transfer-encoding") is None
    body = conn.read_until_close()
    assert body == b"retry: 1500\n\n" + b"".join(b"event: tick\nid: %d\ndata: tick %d\n\n" % (i, i) for i in (0, 1))


def test_a_producer_failing_before_its_first_chunk_is_a_500_between_pipelined_answers(
    server: ServerProcess, connect: Connect
) -> None:
    conn = connect(server)
    conn.send(conn.build("GET", "/") + conn.build("GET", "/async-fails-at-once") + conn.build("GET", "/"))
    first, failed, last = (conn.read_response() for _ in range(3))
    assert (first.status, first.body) == (200, b"hello")
    assert (failed.status, failed.body) == (500, b"Internal Server Error")
    assert (last.status, last.body) == (200, b"hello")
    server.wait_for_stderr("RuntimeError: async stream failed before its first chunk")


def test_a_producer_failing_after_its_head_aborts_but_delivers_the_earlier_pipelined_answer(
    server: ServerProcess, connect: Connect
) -> None:
    conn = connect(server)
    conn.send(conn.build("GET", "/") + conn.build("GET", "/async-fails-later") + conn.build("GET", "/"))
    first = conn.read_response()
    assert (first.status, first.body) == (200, b"hello")
    head = conn.read_head()
    assert head.status == 200 and head.header("transfer-encoding") == "chunked"
    # The chunk produced before the failure, then the connection ends: no terminal chunk, no third answer.
    assert conn.read_until_close() == b"9\r\npart one|\r\n"
    stderr = server.wait_for_stderr("RuntimeError: async stream failed after waiting")
    assert "response stream failed after its head" in stderr
    assert httpx.get(f"{server.url}/", timeout=5).text == "hello"


def test_a_producer_yielding_something_else_than_bytes_aborts_the_stream(
    server: ServerProcess, connect: Connect
) -> None:
    conn = connect(server)
    conn.send(conn.build("GET", "/async-bad-chunk"))
    assert conn.read_head().status == 200
    rest = conn.read_until_close()
    assert rest == b"3\r\nok|\r\n"
    server.wait_for_stderr("TypeError: an async response stream yielded int, expected bytes or str")


def test_a_reader_that_does_not_read_stops_the_producer(server: ServerProcess, connect: Connect) -> None:
    before = _stats(server)["big_pulled"]
    conn = connect(server, rcvbuf=16 * 1024)
    conn.send(conn.build("GET", "/big"))

    def pulled() -> int:
        return _stats(server)["big_pulled"] - before

    # The socket buffers fill, then the producer is asked for nothing more.
    assert wait_until(lambda: pulled() > 0, 5)
    settled = pulled()
    for _ in range(20):
        time.sleep(0.2)
        now = pulled()
        if now == settled:
            break
        settled = now
    time.sleep(0.5)
    assert pulled() == settled, "the producer kept being pulled while nobody read"
    # What was produced is what the kernel's buffers and the 32 KiB high water hold, not more.
    assert settled * 65536 < 16 * 1024 * 1024, f"{settled} chunks of 64 KiB produced for a reader that never read"
    # Reading resumes the producer.
    received = 0
    deadline = time.monotonic() + 10
    while pulled() == settled:
        conn._fill(deadline)  # read what is there
        received += len(conn.buffer)
        conn.buffer.clear()
    assert received <= (settled + 1) * (65536 + 16), "more bytes came than were produced"
    closed = _stats(server)["closed"]
    conn.close()
    assert wait_until(lambda: _stats(server)["closed"] > closed, 5), "the producer was not closed"


def test_an_idle_event_stream_outlives_the_keep_alive_timeout(serve: ServerPool, connect: Connect) -> None:
    # keepalive_timeout closes idle connections; a stream whose producer waits is not idle.
    server = serve("apps.sse_app:app", workers=1, keepalive_timeout=1.0)
    conn = connect(server)
    conn.send(conn.build("GET", "/quiet?wait=3.2&keepalive=0"))
    resp = conn.read_response(timeout=10)
    assert resp.body == b"data: after the silence\n\n"


def test_http2_streams_events_as_they_are_produced_and_closes_the_producer_on_reset(
    server: ServerProcess,
) -> None:
    pytest.importorskip("h2")
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        arrivals = []
        with client.stream("GET", f"{server.url}/ticks?n=3&every=0.3") as resp:
            assert resp.http_version == "HTTP/2"
            assert resp.headers["content-type"] == "text/event-stream"
            started = time.monotonic()
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    arrivals.append((time.monotonic() - started, line))
        assert [line for _, line in arrivals] == [f"data: tick {i}" for i in range(3)]
        assert arrivals[2][0] - arrivals[0][0] > 0.4, f"events were batched: {arrivals}"
        assert client.get(f"{server.url}/async-fails-at-once").status_code == 500
        assert client.get(f"{server.url}/").text == "hello"


def test_http2_reset_of_an_event_stream_closes_its_producer(server: ServerProcess) -> None:
    pytest.importorskip("h2")
    import h2.errors
    import h2.events
    from apps.tls_support import H2Client

    closed = _stats(server)["closed"]
    client = H2Client(server.host, server.port)
    try:
        stream_id = client.request("/forever")
        client.until(lambda evs: sum(isinstance(e, h2.events.DataReceived) for e in evs) >= 3)
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        client.flush()
        assert wait_until(lambda: _stats(server)["closed"] > closed, 5), "the producer was not closed"
        other = client.request("/")
        assert client.response(other)[1] == b"hello"  # the connection carries on
    finally:
        client.close()


def test_a_graceful_stop_ends_event_streams_cleanly(serve: ServerPool, connect: Connect) -> None:
    server = serve("apps.sse_app:app", workers=1)
    conn = connect(server)
    conn.send(conn.build("GET", "/forever"))
    assert conn.read_head().status == 200
    started = time.monotonic()
    assert server.stop() is None
    body = conn.read_until_close(timeout=5)
    assert body.endswith(b"0\r\n\r\n"), body[-100:]  # the terminal chunk: the client reconnects elsewhere
    assert time.monotonic() - started < 4.0


def test_a_graceful_stop_ends_http2_event_streams_cleanly(serve: ServerPool) -> None:
    pytest.importorskip("h2")
    import h2.events
    from apps.tls_support import H2Client

    server = serve("apps.sse_app:app", workers=1)
    client = H2Client(server.host, server.port)
    try:
        stream_id = client.request("/forever")
        client.until(lambda evs: sum(isinstance(e, h2.events.DataReceived) for e in evs) >= 2)
        started = time.monotonic()
        assert server.stop() is None
        assert time.monotonic() - started < 4.0
        events = client.until(lambda evs: any(isinstance(e, h2.events.StreamEnded) for e in evs), timeout=5)
        assert any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id for e in events)
        assert not any(isinstance(e, h2.events.StreamReset) for e in events)
    finally:
        client.close()
