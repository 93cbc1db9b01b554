"""Rate limiting: the shared bucket table without sockets (and across forked processes), then real servers."""

from __future__ import annotations

import os
import socket
import struct
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from chopin_core import Response, Router, TestClient, rate_limit
from chopin_core.ratelimit import PROBE, BucketTable, client_key

KEY_A = client_key("192.0.2.1")
KEY_B = client_key("192.0.2.2")

# -- the table, sans sockets ------------------------------------------------------------


def test_a_bucket_allows_burst_then_refills_at_the_rate() -> None:
    table = BucketTable(per_second=2.0, burst=3, size=64)
    got = [table.take(KEY_A, 100.0) for _ in range(4)]
    assert [d.allowed for d in got] == [True, True, True, False]
    assert [d.remaining for d in got] == [2, 1, 0, 0]
    assert got[-1].retry_after == pytest.approx(0.5)
    assert got[2].reset == pytest.approx(1.5)  # 3 tokens missing at 2 a second
    assert table.take(KEY_B, 100.0).allowed  # another client has its own bucket
    assert not table.take(KEY_A, 100.4).allowed
    assert table.take(KEY_A, 100.5).allowed  # one token back after half a second
    # Long idle: never more than burst.
    assert [table.take(KEY_A, 1000.0).allowed for _ in range(4)] == [True, True, True, False]


def test_a_full_table_forgets_the_least_recent_client() -> None:
    # size 1: every key hashes to slot 0 and shares one window of PROBE buckets.
    table = BucketTable(per_second=0.01, burst=1, size=1)
    keys = [client_key(f"198.51.100.{i}") for i in range(PROBE + 1)]
    for i, key in enumerate(keys[:PROBE]):
        assert table.take(key, 10.0 + i).allowed
    assert table.take(keys[PROBE], 18.0).allowed  # no bucket has refilled: keys[0], the least recent, goes
    assert not table.take(keys[1], 18.0).allowed  # remembered: refused
    assert table.take(keys[0], 18.0).allowed  # forgotten: a full bucket again (what eviction costs)


def test_a_full_table_reuses_a_refilled_bucket_before_the_least_recent() -> None:
    table = BucketTable(per_second=1.0, burst=3, size=1)
    keys = [client_key(f"198.51.100.{i}") for i in range(PROBE + 1)]
    assert [table.take(keys[0], 10.0).allowed for _ in range(3)] == [True, True, True]
    for key in keys[1:PROBE]:
        assert table.take(key, 11.0).remaining == 2
    # At 12.0 keys[1] is full again (forgetting it loses nothing); keys[0], older, is not (2 of 3).
    assert table.take(keys[PROBE], 12.0).allowed
    assert table.take(keys[0], 12.0).remaining == 1  # still remembered: 2 tokens back, one taken


def test_client_keys() -> None:
    assert client_key("192.0.2.1") == client_key("::ffff:192.0.2.1")
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1")  # one /64
    assert client_key("2001:db8::1", 128) != client_key("2001:db8::2", 128)
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert len(client_key("testclient")) == 16 and client_key("testclient") != client_key("testclient2")


def test_factory_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="per_second must be a positive number"):
        rate_limit(per_second=0, burst=1)
    with pytest.raises(ValueError, match="burst must be >= 1"):
        rate_limit(per_second=1, burst=0)
    with pytest.raises(ValueError, match=r"ipv6_prefix must be 1\.\.128"):
        rate_limit(per_second=1, burst=1, ipv6_prefix=0)
    with pytest.raises(ValueError, match="table size must be >= 1"):
        rate_limit(per_second=1, burst=1, table_size=0)


def test_exact_across_forked_processes() -> None:
    """Four processes take from one bucket at once: exactly burst tokens are handed out in all."""
    table = BucketTable(per_second=0.001, burst=300, size=1024)
    readers = []
    children = []
    for _ in range(4):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(r)
            allowed = sum(table.take(KEY_A).allowed for _ in range(200))
            os.write(w, struct.pack("=I", allowed))
            os._exit(0)
        os.close(w)
        readers.append(r)
        children.append(pid)
    total = 0
    for r, pid in zip(readers, children, strict=True):
        total += struct.unpack("=I", os.read(r, 4))[0]
        os.close(r)
        assert os.waitpid(pid, 0)[1] == 0
    assert total == 300  # 800 tries, 300 tokens


def test_testclient_sync_and_async_handlers() -> None:
    router = Router()
    router.get("/", lambda ctx: Response.text("ok"))

    async def waits(ctx):
        return Response.text("ok")

    router.get("/async", waits)
    router.layer(rate_limit(per_second=1 / 60, burst=2))
    client = TestClient(router)
    first = client.get("/")
    assert first.status == 200
    assert (first.header("RateLimit-Limit"), first.header("RateLimit-Remaining")) == ("2", "1")
    assert first.header("RateLimit-Reset") == "60"  # one token missing at one a minute
    assert client.get("/async").status == 200  # the same client, the same bucket
    refused = client.get("/async", headers={"Accept": "application/json"})
    assert refused.status == 429
    assert refused.header("Retry-After") == "60" and refused.header("RateLimit-Remaining") == "0"
    assert refused.json() == {"error": "Too Many Requests: try again in 60 s"}
    assert client.get("/").status == 429


# -- real servers -----------------------------------------------------------------------


def _get(port: int, path: str) -> tuple[int, str]:
    """One request on a new connection (so SO_REUSEPORT spreads them over the workers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


@pytest.mark.parametrize("workers", [2, 4])
def test_exact_limit_across_workers(serve, workers) -> None:
    burst = 24
    server = serve("apps.clients_app:app", workers=workers, env={"RATE_BURST": str(burst)})
    server.wait_for_children(workers)
    for path in ("/limited", "/async-limited"):
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(_get, [server.port] * 3 * burst, [path] * 3 * burst))
        allowed = [body for status, body in got if status == 200]
        assert len(allowed) == burst, got
        assert {status for status, _ in got} == {200, 429}
        # The allowed ones were answered by more than one worker: the limit is the server's, not a worker's.
        assert len({body.split()[1] for body in allowed}) > 1


def test_headers_over_http11_and_http2(serve) -> None:
    server = serve("apps.clients_app:app", workers=2, env={"RATE_BURST": "3"})
    with httpx.Client(base_url=server.url, timeout=10.0) as h1:
        got = h1.get("/limited")
        assert got.status_code == 200
        assert got.headers["ratelimit-limit"] == "3" and got.headers["ratelimit-remaining"] == "2"
    with httpx.Client(http1=False, http2=True, base_url=server.url, timeout=20.0) as h2:
        answers = [h2.get("/limited") for _ in range(3)]
    assert answers[0].http_version == "HTTP/2"
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[-1]
    assert 990 <= int(refused.headers["retry-after"]) <= 1000  # a token a thousand seconds (RATE_PER_SECOND)
    assert refused.headers["ratelimit-remaining"] == "0"


def test_limit_follows_the_forwarded_client_behind_a_trusted_proxy(serve) -> None:
    server = serve("apps.clients_app:app", workers=2, env={"RATE_BURST": "2", "CHOPIN_TRUSTED_PROXIES": "127.0.0.1"})
    with httpx.Client(base_url=server.url, timeout=10.0) as client:

        def status(who: str) -> int:
            return client.get("/limited", headers={"X-Forwarded-For": who}).status_code

        assert [status("198.51.100.1") for _ in range(3)] == [200, 200, 429]
        assert [status("198.51.100.2") for _ in range(3)] == [200, 200, 429]  # another client behind the proxy
