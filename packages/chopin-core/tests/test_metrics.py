"""Partitioned metrics: the shared block without sockets, then across real workers."""

from __future__ import annotations

import array
import os
import shutil
import signal
import socket
import sysconfig
import time

import httpx
import pytest
from chopin_core import metrics
from chopin_core.metrics import (
    ACTIVE,
    BUCKET_BASE,
    BUCKET_SLOT,
    BUCKETS,
    BYTES_SENT,
    DURATION_SUM_NS,
    FOLD_AT,
    SENT,
    STATUS_BASE,
    MetricsBlock,
    WorkerMetrics,
    record,
    render_prometheus,
)
from prometheus_client.parser import text_string_to_metric_families

OK = STATUS_BASE + 1  # the 2xx counter
PUBLISHED = 2.5  # seconds by which every worker has published its counts (once a second)
# Workers count with the C accelerator, or in pure Python (CHOPIN_PURE_PYTHON=1): both are tested.
COUNTING = [pytest.param({}, id="c"), pytest.param({"CHOPIN_PURE_PYTHON": "1"}, id="pure-python")]


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


@pytest.mark.parametrize("counting", COUNTING)
def test_n_requests_across_workers_are_read_back_exactly(serve, counting):
    server = serve("apps.metrics_app:app", workers=2, env=counting)
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


@pytest.mark.parametrize("counting", COUNTING)
def test_statuses_outside_100_to_599_count_as_5xx_and_the_worker_lives_on(serve, counting):
    server = serve("apps.metrics_app:app", workers=1, env=counting)
    answers = [fresh_get(server.port, f"/status/{code}").split(b"\r\n", 1)[0] for code in (799, 600, 204, 404)]
    assert answers == [b"HTTP/1.1 799 Unknown", b"HTTP/1.1 600 Unknown", b"HTTP/1.1 204 No Content",
                       b"HTTP/1.1 404 Not Found"]  # fmt: skip
    time.sleep(PUBLISHED)
    values = samples(httpx.get(f"{server.url}/metrics", timeout=5.0).text)
    assert values[("chopin_responses_total", (("class", "5xx"),))] == 2
    assert values[("chopin_responses_total", (("class", "2xx"),))] == 1
    assert values[("chopin_responses_total", (("class", "4xx"),))] == 1
    assert values[("chopin_requests_total", ())] == 4


@pytest.mark.parametrize("counting", COUNTING)
def test_health(serve, counting):
    server = serve("apps.metrics_app:app", workers=2, env=counting)
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


@pytest.mark.parametrize("counting", COUNTING)
def test_a_restarted_worker_keeps_the_totals_monotonic(serve, counting):
    server = serve("apps.metrics_app:app", workers=2, env=counting)
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


def test_the_lookup_tables_agree_with_the_arithmetic() -> None:
    # STATUS_SLOT / BUCKET_SLOT (the tally's classes, fold's buckets) stand for this arithmetic.
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


# -- WorkerMetrics: the C accelerator and the pure-Python fallback --------------------


def can_compile() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None and os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))


@pytest.mark.skipif(not can_compile(), reason="no C compiler or Python headers: pure Python is expected")
def test_the_c_accelerator_is_built() -> None:
    # The package's build hook compiles chopin_core._tally wherever a C compiler is (here, CI):
    # a silent fallback to pure Python would cost every request more (benchmarks/metrics_cost.py).
    assert metrics.ACCELERATED
    assert MetricsBlock(1).attach(0).accelerated


def count(worker: WorkerMetrics, status: int, duration_ns: int) -> tuple[int, int]:
    """Count a request that started ``duration_ns`` ago; the durations it may have been counted with."""
    started = time.monotonic_ns() - duration_ns
    low = time.monotonic_ns() - started
    worker.tally[status](started)
    return low, time.monotonic_ns() - started


@pytest.mark.parametrize("accelerated", [True, False], ids=["c", "pure-python"])
def test_worker_metrics_count_what_record_counts(accelerated: bool) -> None:
    block = MetricsBlock(2)
    worker = block.attach(1, accelerated)
    assert worker.accelerated is accelerated
    cases = [(200, 0), (200, 700), (201, 3_000), (204, 1_536_000), (301, 90_000), (404, 200_000_000)]
    cases += [(503, 5_000_000_000), (101, 40_000), (299, 12_000_000), (600, 1_000), (999, 1_000), (0, 1_000)]
    low_sum = high_sum = 0
    buckets_either: list[tuple[int, int]] = []
    for status, ns in cases:
        low, high = count(worker, status, ns)
        low_sum, high_sum = low_sum + low, high_sum + high
        buckets_either.append((BUCKET_SLOT[low.bit_length()], BUCKET_SLOT[high.bit_length()]))
    worker.tally[SENT](1234)
    worker.tally[SENT](66)
    block.publish()
    slot = list(block.slot(1))
    assert slot[BYTES_SENT] == 1300
    # Status classes: 1xx .. 5xx; codes outside 100..599 count as 5xx.
    assert slot[STATUS_BASE : STATUS_BASE + 5] == [1, 5, 1, 1, 4]
    assert low_sum <= slot[DURATION_SUM_NS] <= high_sum
    # Each duration is filed in its bucket (or, when the clock moved across a bucket's edge
    # while counting, in one from its lower bound's to its upper bound's).
    buckets = slot[BUCKET_BASE : BUCKET_BASE + BUCKETS + 1]
    assert sum(buckets) == len(cases)
    assert buckets[BUCKETS] >= 1  # 5 s: above the last bound
    for bucket in range(BUCKET_BASE, BUCKET_BASE + BUCKETS + 1):
        certain = sum(1 for low, high in buckets_either if low == high == bucket)
        possible = sum(1 for low, high in buckets_either if low <= bucket <= high)
        assert certain <= buckets[bucket - BUCKET_BASE] <= possible, bucket
    assert block.slot(0).tolist() == [0] * len(slot)  # the other worker's slot is untouched


@pytest.mark.parametrize("accelerated", [True, False], ids=["c", "pure-python"])
def test_worker_metrics_start_from_the_slot_and_publish_on_request(accelerated: bool) -> None:
    block = MetricsBlock(1)
    record(block.slot(0), 200, 5_000)  # what a predecessor in this slot counted
    block.slot(0)[ACTIVE] = 3
    worker = block.attach(0, accelerated)
    assert worker.counts[OK] == 1 and worker.counts[ACTIVE] == 3
    for _ in range(FOLD_AT + 10):  # past the pure-Python fold threshold
        count(worker, 200, 2_000)
    assert block.slot(0)[OK] == 1  # not published yet
    assert block.totals()[OK] == FOLD_AT + 11  # a scrape publishes this worker's counts first
    assert block.slot(0)[ACTIVE] == 3


@pytest.mark.skipif(not metrics.ACCELERATED, reason="the C accelerator is not built")
def test_the_c_tally_refuses_bad_buffers_and_indices() -> None:
    from chopin_core._tally import Tally

    with pytest.raises(TypeError):
        Tally([0] * 40, 2, 7, 8, 21, 0)  # a list is not a buffer
    with pytest.raises(TypeError):
        Tally(array.array("l", [0] * 40), 2, 7, 8, 21, 0)  # not uint64
    with pytest.raises(BufferError):
        Tally(bytes(320), 2, 7, 8, 21, 0)  # read-only
    with pytest.raises(ValueError):
        Tally(array.array("Q", [0] * 20), 2, 7, 8, 21, 0)  # buckets outside the buffer
    counts = array.array("Q", [0] * 30)
    tally = Tally(counts, 3, 7, 8, 21, 0)
    with pytest.raises(OverflowError):
        tally.request(1 << 70)
    with pytest.raises(TypeError):
        tally.request("now")
    tally.request(time.monotonic_ns() + 10**9)  # a start in the future counts as 0 ns
    assert counts[3] == 1 and counts[8] == 1 and counts[7] == 0
    with pytest.raises(BufferError):
        counts.append(0)  # exported to the Tally: the buffer cannot move under it
    with pytest.raises(OverflowError):
        tally.sent(-1)
    tally.sent(10)
    assert counts[0] == 10
