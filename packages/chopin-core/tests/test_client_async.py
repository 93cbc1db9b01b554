"""``AsyncHttpClient`` over real sockets: under ``run_blocking`` (a script), and from ``async def``
handlers of a real chopin worker (``apps/client_app.py`` in a subprocess) calling a slow upstream
(``apps/waiting_app.py``, another worker) while the caller's worker stays responsive.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import httpx
import pytest
from apps.early_upstream import early_upstream
from apps.http_upstream import Upstream, pattern, running_upstream
from apps.tls_support import Chain
from chopin_core import gather, run_blocking, sleep
from chopin_core.client import (
    AsyncHttpClient,
    ClientSettings,
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    ReadTimeout,
    ResponseTooLarge,
    UpstreamClosed,
)
from conftest import HOST, RawConnection, ServerPool, ServerProcess, wait_until


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_upstream() as server:
        yield server


def run(coro_fn, settings: ClientSettings | None = None):  # type: ignore[no-untyped-def]
    """``run_blocking(coro_fn(client))`` with a fresh client, closed afterwards."""

    async def main():  # type: ignore[no-untyped-def]
        async with AsyncHttpClient(settings or ClientSettings(read_timeout=10.0)) as client:
            return await coro_fn(client)

    return run_blocking(main())


# -- under run_blocking ------------------------------------------------------------------


def test_get_post_and_the_body_framings(upstream: Upstream) -> None:
    async def calls(api: AsyncHttpClient):  # type: ignore[no-untyped-def]
        got = await api.get(f"{upstream.url}/echo?q=1", [("X-Test", "yes")])
        posted = await api.post(f"{upstream.url}/echo", b"a body")
        chunked = await api.get(f"{upstream.url}/chunked?n=3")
        until_close = await api.get(f"{upstream.url}/http10")
        head = await api.request("HEAD", f"{upstream.url}/big?size=10")
        return got, posted, chunked, until_close, head

    got, posted, chunked, until_close, head = run(calls)
    info = json.loads(got.body)
    assert (got.status, info["path"]) == (200, "/echo?q=1")
    assert ["X-Test", "yes"] in info["headers"]
    assert got.header("x-kept") == "yes"
    assert json.loads(posted.body)["body"] == "a body"
    assert chunked.body == b"part0;part1;part2;"
    assert (until_close.http11, until_close.body) == (False, b"until-close body")
    assert (head.status, head.body) == (200, b"")


def test_keep_alive_reuses_one_connection_and_counts_it(upstream: Upstream) -> None:
    async def calls(api: AsyncHttpClient):  # type: ignore[no-untyped-def]
        ports = {json.loads((await api.get(f"{upstream.url}/echo")).body)["peer_port"] for _ in range(10)}
        return ports, api.connections_opened, api.idle_count()

    ports, opened, idle = run(calls)
    assert (len(ports), opened, idle) == (1, 1, 1)


def test_a_pooled_connection_the_upstream_closed_is_replaced_for_an_idempotent_request(upstream: Upstream) -> None:
    async def calls(api: AsyncHttpClient):  # type: ignore[no-untyped-def]
        first = await api.get(f"{upstream.url}/drop-after")  # answered, then closed without saying so
        await sleep(0.1)
        second = await api.get(f"{upstream.url}/echo")
        return first.body, second.status, api.connections_opened

    assert run(calls) == (b"dropped", 200, 2)


def test_concurrent_requests_wait_together_and_fill_the_pool(upstream: Upstream) -> None:
    async def calls(api: AsyncHttpClient):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        answers = await gather(*(api.get(f"{upstream.url}/slow?delay=0.2") for _ in range(20)))
        elapsed = time.monotonic() - started
        again = await gather(*(api.get(f"{upstream.url}/echo") for _ in range(20)))
        return answers, elapsed, again, api.connections_opened, api.idle_count()

    answers, elapsed, again, opened, idle = run(calls)
    assert all(a.status == 200 for a in answers + again)
    assert elapsed < 3.0, f"20 requests of 0.2 s took {elapsed:.2f} s"  # one at a time: 4 s; 1.7 s seen under load
    assert opened == 20  # the second round reused the first round's connections
    assert idle == 20


def test_stream_reads_the_body_as_it_comes_and_pools_only_a_finished_one(upstream: Upstream) -> None:
    async def calls(api: AsyncHttpClient):  # type: ignore[no-untyped-def]
        sizes = []
        async with await api.stream("GET", f"{upstream.url}/big?size=1000000") as resp:
            with pytest.raises(RuntimeError, match=r"await resp\.read"):
                resp.body  # noqa: B018  not read yet
            async for chunk in resp.aiter_bytes():
                sizes.append(len(chunk))
        pooled_after_end = api.idle_count()
        async with await api.stream("GET", f"{upstream.url}/big?size=1000000") as early:
            async for _ in early.aiter_bytes():
                break  # stop after the first chunk: the rest is never read
        pooled_after_early = api.idle_count()
        whole = await (await api.stream("GET", f"{upstream.url}/chunked?n=2")).read()
        return sizes, pooled_after_end, pooled_after_early, whole, api.connections_opened

    sizes, pooled_after_end, pooled_after_early, whole, opened = run(calls)
    assert sum(sizes) == 1_000_000 and len(sizes) > 1
    assert (pooled_after_end, pooled_after_early) == (1, 0)  # the early-closed one was closed, not pooled
    assert whole == b"part0;part1;"
    assert opened == 2


def test_read_timeout(upstream: Upstream) -> None:
    started = time.monotonic()
    with pytest.raises(ReadTimeout, match=r"sent nothing for 0\.3 s"):
        run(lambda api: api.get(f"{upstream.url}/slow?delay=2"), ClientSettings(read_timeout=0.3))
    assert 0.25 <= time.monotonic() - started < 1.5


def test_connect_timeout_against_a_full_accept_queue() -> None:
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        # Nobody accepts: once the queue is full the kernel drops further SYNs and connect hangs.
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((HOST, port))
            fillers.append(filler)
        time.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(ConnectTimeout, match=rf"connecting to 127\.0\.0\.1:{port} took longer than 0\.3 s"):
            run(lambda api: api.get(f"http://127.0.0.1:{port}/"), ClientSettings(connect_timeout=0.3))
        assert 0.25 <= time.monotonic() - started < 1.5
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_refused_unresolvable_and_bad_urls() -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(ConnectError, match=rf"cannot connect to 127\.0\.0\.1:{port}: Connection refused"):
            run(lambda api: api.get(f"http://127.0.0.1:{port}/"))
    with pytest.raises(ConnectError, match=r"cannot resolve 'no-such-host\.invalid'"):
        run(lambda api: api.get("http://no-such-host.invalid/"))
    with pytest.raises(InvalidURL, match="expected an http:// or https:// URL"):
        run(lambda api: api.get("ftp://x/"))


def test_limits_and_truncation_close_the_connection(upstream: Upstream) -> None:
    with pytest.raises(ResponseTooLarge):
        run(lambda api: api.get(f"{upstream.url}/big?size=5000"), ClientSettings(max_body_size=1000))
    with pytest.raises(UpstreamClosed, match="in the middle of the response body"):
        run(lambda api: api.get(f"{upstream.url}/truncated"))


def test_upstream_resetting_mid_body_is_upstream_closed(upstream: Upstream) -> None:
    # A reset (ECONNRESET) after the head was a bare ConnectionResetError, not a ClientError.
    with pytest.raises(UpstreamClosed, match="lost in the middle of the response body"):
        run(lambda api: api.request("GET", f"{upstream.url}/reset", body=b"a GET's body"))


# -- answers that come while the request is still being sent (RFC 9112 9.5) ------------------

BIG = 8 * 1024 * 1024  # far more than the socket buffers hold


@pytest.mark.parametrize("ending", ["close", "reset", "hold"])
def test_an_early_refusal_of_a_large_body_is_returned(ending: str) -> None:
    # The upstream answers 413 once it has the head and reads none of the body; then it closes
    # (a reset: the body is unread), resets at once, or keeps the connection.  The client sent
    # the whole body before reading: "connection lost" (UpstreamClosed), or a ReadTimeout.
    with early_upstream() as server:
        started = time.monotonic()
        resp = run(lambda api: api.post(f"{server.url}/refuse-{ending}", bytes(BIG)), ClientSettings(read_timeout=3.0))
        assert (resp.status, resp.body) == (413, b"too large")
        assert time.monotonic() - started < 2.5


def test_the_connection_of_an_early_refusal_is_not_reused() -> None:
    # The 413 keeps the connection (no Connection: close) but the request is half sent: reused,
    # the rest of the old body would be taken for the next request.  Small requests go out
    # at once as before and keep their connection.
    async def calls(api: AsyncHttpClient):  # type: ignore[no-untyped-def]
        refused = await api.post(f"{server.url}/refuse-hold", bytes(BIG))
        pooled = api.idle_count()
        small = [(await api.post(f"{server.url}/echo", body)).body for body in (b"one", b"two")]
        return refused.status, pooled, small, api.connections_opened

    with early_upstream() as server:
        assert run(calls) == (413, 0, [b"one", b"two"], 2)
        assert server.accepts == 2  # one for the refusal, one for both small requests


def test_an_upstream_that_echoes_while_it_reads_gets_the_whole_request() -> None:
    # Full duplex: the answer streams back as the body goes in.  The client read nothing until
    # it had sent all, the upstream stopped reading once its answer filled the buffers: a
    # deadlock until read_timeout.
    body = pattern(BIG)

    async def calls(api: AsyncHttpClient):  # type: ignore[no-untyped-def]
        answers = [await api.request("PUT", f"{server.url}/echo", body=body) for _ in range(2)]
        return [(a.status, a.body == body) for a in answers], api.connections_opened

    with early_upstream() as server:
        assert run(calls, ClientSettings(read_timeout=3.0)) == ([(200, True)] * 2, 1)
        assert server.accepts == 1  # sent whole: the connection was pooled and reused


def test_an_early_refusal_is_streamed_too() -> None:
    async def calls(api: AsyncHttpClient):  # type: ignore[no-untyped-def]
        async with await api.stream("POST", f"{server.url}/refuse-reset", body=bytes(BIG)) as resp:
            return resp.status, await resp.read()

    with early_upstream() as server:
        assert run(calls, ClientSettings(read_timeout=3.0)) == (413, b"too large")


def test_a_cancelled_request_closes_its_connection_instead_of_pooling_it(upstream: Upstream) -> None:
    async def calls(api: AsyncHttpClient):  # type: ignore[no-untyped-def]
        async def give_up() -> None:
            await sleep(0.1)
            raise LookupError("gave up")

        with pytest.raises(LookupError):
            await gather(api.get(f"{upstream.url}/slow?delay=1"), give_up())  # the request is closed mid-wait
        return api.connections_opened, api.idle_count()

    assert run(calls) == (1, 0)


def test_https_with_the_async_client_against_a_chopin_tls_server(serve_module: ServerPool, chain: Chain) -> None:
    server = serve_module("apps.tls_app:app", env={"TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key)})
    settings = ClientSettings(verify=str(chain.root))

    async def calls(api: AsyncHttpClient):  # type: ignore[no-untyped-def]
        hello = await api.get(f"https://localhost:{server.port}/")
        echoed = await api.request(
            "POST", f"https://localhost:{server.port}/echo?x=1", [("X-Custom", "y")], b"p" * 100_000
        )
        big = await api.get(f"https://localhost:{server.port}/big?size=2000000")
        return hello, echoed, big, api.connections_opened

    hello, echoed, big, opened = run(calls, settings)
    assert (hello.status, hello.body) == (200, b"hello")
    assert (echoed.body, echoed.header("x-query"), echoed.header("x-custom")) == (b"p" * 100_000, "x=1", "y")
    assert len(big.body) == 2_000_000
    assert opened == 1


def test_the_pool_belongs_to_one_process(upstream: Upstream) -> None:
    api = AsyncHttpClient()
    try:
        assert run_blocking(api.get(f"{upstream.url}/echo")).status == 200
        assert api.idle_count() == 1
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            try:
                fresh = api.idle_count() == 0
                ok = run_blocking(api.get(f"{upstream.url}/echo")).status == 200
                os._exit(0 if fresh and ok else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert run_blocking(api.get(f"{upstream.url}/echo")).status == 200  # the parent's socket still works
        assert api.connections_opened == 1
    finally:
        api.close()


def test_a_plain_script_runs_it_with_run_blocking(upstream: Upstream) -> None:
    script = textwrap.dedent(
        f"""
        from chopin_core import AsyncHttpClient, run_blocking

        async def main() -> int:
            async with AsyncHttpClient() as api:
                return (await api.get("{upstream.url}/echo")).status

        print(run_blocking(main()))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout.strip()) == (0, "200"), done.stderr


# -- from async def handlers of a real worker --------------------------------------------


@pytest.fixture(scope="module")
def slow_upstream(serve_module: ServerPool) -> ServerProcess:
    return serve_module("apps.waiting_app:app")  # /sleep?ms=N answers after N ms without holding its worker


@pytest.fixture(scope="module")
def caller(serve_module: ServerPool, slow_upstream: ServerProcess) -> ServerProcess:
    return serve_module("apps.client_app:app", env={"UPSTREAM": slow_upstream.url})


def _stats(server: ServerProcess) -> dict[str, int]:
    result: dict[str, int] = httpx.get(f"{server.url}/stats", timeout=10).json()
    return result


def _read_all(socks: list[socket.socket], marker: bytes) -> None:
    for sock in socks:
        data = b""
        while marker not in data:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed early: {data!r}"
            data += chunk
        sock.close()


def test_fifty_handlers_call_a_slow_upstream_while_plaintext_stays_fast(caller: ServerProcess) -> None:
    before_stats = _stats(caller)
    for round_number in range(2):
        socks = []
        started = time.monotonic()
        for _ in range(50):
            sock = socket.create_connection((HOST, caller.port), timeout=10)
            sock.sendall(RawConnection.build("GET", "/call?path=/sleep%3Fms%3D200"))
            socks.append(sock)
        probes = []
        with httpx.Client(timeout=10) as probe:
            for _ in range(5):
                t0 = time.monotonic()
                assert probe.get(f"{caller.url}/plaintext").text == "Hello, World!"
                probes.append((time.monotonic() - t0) * 1000)
        _read_all(socks, b"slept 200")
        elapsed = time.monotonic() - started
        # One at a time, 50 calls of 200 ms would take 10 s.
        assert elapsed < 2.5, f"round {round_number}: 50 calls of 200 ms took {elapsed:.2f} s"
        assert max(probes) < 150, f"/plaintext took {max(probes):.0f} ms while 50 handlers waited"
        print(f"round {round_number}: 50 calls in {elapsed * 1000:.0f} ms; /plaintext {sorted(probes)} ms")
    after = _stats(caller)
    # The second round found the first round's 50 connections idle in the worker's pool.
    assert after["opened"] - before_stats["opened"] == 50
    assert after["idle"] == 50


def test_an_upstream_error_reaches_the_handler_as_a_client_error(serve: ServerPool) -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
        server = serve("apps.client_app:app", env={"UPSTREAM": f"http://127.0.0.1:{port}"})
        resp = httpx.get(f"{server.url}/call", timeout=10)
    assert resp.status_code == 502
    assert resp.text.startswith("ConnectError: cannot connect to 127.0.0.1:")


def test_a_handler_calls_an_https_upstream(serve: ServerPool, chain: Chain) -> None:
    tls = serve("apps.tls_app:app", env={"TLS_CERT": str(chain.chain), "TLS_KEY": str(chain.key)})
    server = serve(
        "apps.client_app:app", env={"UPSTREAM": f"https://localhost:{tls.port}", "CLIENT_CA": str(chain.root)}
    )
    assert httpx.get(f"{server.url}/call?path=/", timeout=10).text == "hello"
    assert httpx.get(f"{server.url}/call?path=/", timeout=10).text == "hello"
    assert _stats(server) == {"opened": 1, "idle": 1}
    # The same app trusting only the system's CAs refuses the test CA, and says why.
    strict = serve("apps.client_app:app", env={"UPSTREAM": f"https://localhost:{tls.port}"})
    refused = httpx.get(f"{strict.url}/call?path=/", timeout=10)
    assert refused.status_code == 502
    assert refused.text == (
        "CertificateVerifyError: certificate verify failed: unable to get local issuer certificate"
        f" for host localhost:{tls.port}"
    )


def test_a_handler_past_its_deadline_or_left_by_its_client_closes_its_upstream_connection(serve: ServerPool) -> None:
    upstream = serve("apps.waiting_app:app")
    server = serve("apps.client_app:app", env={"UPSTREAM": upstream.url}, handler_timeout=1.0)

    def upstream_cancelled() -> int:
        count: int = httpx.get(f"{upstream.url}/stats", timeout=10).json()["cancelled"]
        return count

    before = time.monotonic()
    resp = httpx.get(f"{server.url}/call?path=/sleep%3Fms%3D20000", timeout=10)
    assert resp.status_code == 504  # HandlerTimeout, thrown in at the client's wait
    assert time.monotonic() - before < 4.0
    # The interrupted call closed its connection: the upstream saw its client leave.
    assert wait_until(lambda: upstream_cancelled() == 1, 5.0)
    sock = socket.create_connection((HOST, server.port), timeout=5)
    sock.sendall(RawConnection.build("GET", "/call?path=/sleep%3Fms%3D20000"))
    time.sleep(0.3)
    sock.close()  # the caller's client leaves: its handler is cancelled, and so is the upstream call
    assert wait_until(lambda: upstream_cancelled() == 2, 5.0)
    assert _stats(server)["idle"] == 0
    assert httpx.get(f"{server.url}/call?path=/sleep%3Fms%3D10", timeout=10).text == "slept 10"
