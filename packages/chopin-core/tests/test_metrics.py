"""Partitioned metrics: the shared block without sockets, then across real workers."""

from __future__ import annotations

import os
import signal
import socket
import time

import httpx
import pytest
from chopin_core import metrics
from chopin_core.metrics import STATUS_BASE, MetricsBlock, record, render_prometheus
from prometheus_client.parser import text_string_to_metric_families

OK = STATUS_BASE + 1  # the 2xx counter
PUBLISHED = 2.5  # seconds by which every worker has published its counts (once a second)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_slots_are_separate_cache_lines():
    # Whole 64-byte lines per slot (and for the header): no two workers share a line.
    assert metrics._SLOT_BYTES % 64 == 0
    assert metrics._HEADER_BYTES % 64 == 0
    block = MetricsBlock(3)
    record(block.slot(1), 200, 3_000)
    assert [block.slot(i)[OK] for i in range(3)] == [0, 1, 0]
    assert all(v == 0 for i in (0, 2) for v in block.slot(i))


def test_render_is_valid_prometheus_text():
    block = MetricsBlock(2)
    record(block.slot(0), 200, 500_000)
    record(block.slot(1), 404, 200_000_000)
    record(block.slot(1), 500, 2_000_000_000)
    values = samples(render_prometheus(block).decode())
    assert values[("chopin_requests_total", ())] == 3
    assert values[("chopin_responses_total", (("class", "2xx"),))] == 1
    assert values[("chopin_responses_total", (("class", "4xx"),))] == 1
    assert values[("chopin_responses_total", (("class", "5xx"),))] == 1
    assert values[("chopin_request_duration_seconds_count", ())] == 3
    assert values[("chopin_request_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert values[("chopin_request_duration_seconds_bucket", (("le", "0.000524"),))] == 1
    assert values[("chopin_request_duration_seconds_bucket", (("le", "0.268435"),))] == 2
    assert values[("chopin_request_duration_seconds_sum", ())] == pytest.approx(2.2005, rel=1e-3)


def test_counters_are_shared_with_forked_children():
    block = MetricsBlock(2)
    pid = os.fork()
    if pid == 0:
        record(block.slot(1), 200, 1_000_000)
        os._exit(0)
    os.waitpid(pid, 0)
    assert block.totals()[OK] == 1


# -- across real workers ------------------------------------------------------------


def fresh_get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_n_requests_across_workers_are_read_back_exactly(serve):
    server = serve("apps.metrics_app:app", workers=2)
    workers = server.wait_for_children(2)
    pids = set()
    n = 300
    for _ in range(n):
        pids.add(int(fresh_get(server.port, "/pid").split(b"\r\n\r\n", 1)[1]))
    assert pids == set(workers), "the load should reach both workers"
    # Each worker publishes its counts once a second; after that, one scrape (not
    # counted in its own answer) reads back exactly what was sent.
    time.sleep(PUBLISHED)
    values = samples(httpx.get(f"{server.url}/metrics", timeout=5.0).text)
    assert values[("chopin_requests_total", ())] == n
    assert values[("chopin_responses_total", (("class", "2xx"),))] == n
    assert values[("chopin_request_duration_seconds_count", ())] == n
    assert values[("chopin_bytes_sent_total", ())] > n * 100
    assert values[("chopin_active_connections", ())] >= 1  # the scrape's own connection
    assert values[("chopin_uptime_seconds", ())] > 0


def test_health(serve):
    server = serve("apps.metrics_app:app", workers=2)
    server.wait_for_children(2)
    for _ in range(10):
        fresh_get(server.port, "/")
    time.sleep(PUBLISHED)
    health = httpx.get(f"{server.url}/health", timeout=5.0).json()
    assert health["requests"] == 10
    assert health["status"] == "ok"
    assert health["workers"] == 2
    assert health["bytes_sent"] > 0
    assert health["uptime_secs"] >= 0
    assert health["active_connections"] >= 1


def test_a_restarted_worker_keeps_the_totals_monotonic(serve):
    server = serve("apps.metrics_app:app", workers=2)
    workers = server.wait_for_children(2)
    for _ in range(40):
        fresh_get(server.port, "/")
    before = httpx.get(f"{server.url}/health", timeout=5.0).json()["requests"]
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while len(set(server.children()) - {workers[0]}) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    after = httpx.get(f"{server.url}/health", timeout=5.0).json()["requests"]
    assert after >= before


def test_the_hot_path_lookup_tables_agree_with_the_arithmetic() -> None:
    # STATUS_SLOT / BUCKET_SLOT replace a division and a shift + comparison per request.
    for status in range(100, 600):
        assert metrics.STATUS_SLOT[status] == STATUS_BASE - 1 + status // 100
    for ns in [0, 1, 1023, 1024, 1025, 2047, 2048, 10**6, (1 << 30) - 1, 1 << 30, 1 << 31, 10**12, (1 << 64) - 1]:
        expected = metrics.BUCKET_BASE + min((ns >> 10).bit_length(), metrics.BUCKETS)
        assert metrics.BUCKET_SLOT[ns.bit_length()] == expected, ns
    # Every bucket bound files a duration just below it into its own bucket, at it into the next.
    for i, bound in enumerate(metrics.HISTOGRAM_BOUNDS):
        ns = round(bound * 1e9)
        assert metrics.BUCKET_SLOT[(ns - 1).bit_length()] == metrics.BUCKET_BASE + i
        assert metrics.BUCKET_SLOT[ns.bit_length()] == metrics.BUCKET_BASE + i + 1
