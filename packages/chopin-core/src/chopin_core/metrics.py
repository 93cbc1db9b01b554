"""Partitioned counters in shared memory, and the /metrics and /health answers.

How it works: before forking, the supervisor maps one anonymous shared block
with a slot per worker.  Each worker counts into an ``array('Q')`` of its own
(:class:`WorkerMetrics`); once a second, and right before it answers a scrape,
it copies that array into its slot (one ``uint64`` memoryview store, no lock,
no other worker's cache line: slots are padded to whole cache lines).
Whichever worker answers ``/metrics`` or ``/health`` sums every slot, so other
workers' figures are at most a second old.  A restarted worker keeps its slot's
counters, so totals stay monotonic as Prometheus expects; only its
active-connections gauge is reset.

The per-request step is ``tally[status](started_ns)``, one call:

- with the C accelerator (``chopin_core._tally``, compiled when the package is
  installed) it is a C method that reads the clock and adds to the status
  class, the duration sum and the bucket, allocating nothing;
- without it (no compiler, or ``CHOPIN_PURE_PYTHON=1``) it appends the duration
  to a list for the status's class, and :meth:`WorkerMetrics.fold` counts those
  lists with C-speed built-ins (``len``, ``sum``, ``bytes.count``) when the
  loop finds ``FOLD_AT`` pending, once a second, and before a scrape.

Both give the same counts (the tests run against both).
``benchmarks/metrics_cost.py`` measures what each costs per request.
"""

from __future__ import annotations

import array
import mmap
import os
import time
from collections.abc import Callable
from typing import Final

__all__ = ["ACCELERATED", "HISTOGRAM_BOUNDS", "MetricsBlock", "WorkerMetrics", "render_prometheus"]

try:
    if os.environ.get("CHOPIN_PURE_PYTHON"):
        raise ImportError("CHOPIN_PURE_PYTHON is set")
    from ._tally import Tally
except ImportError:
    Tally = None  # type: ignore[assignment,misc]
# Whether workers count with the C accelerator (chopin_core._tally).
ACCELERATED: Final = Tally is not None

# Slot layout, in uint64 words.  Requests are not counted on their own: the total
# is the sum of the status classes (one increment less per request).
BYTES_SENT: Final = 0
ACTIVE: Final = 1
STATUS_BASE: Final = 2  # 2..6: 1xx..5xx (index STATUS_BASE + status // 100 - 1)
DURATION_SUM_NS: Final = 7
BUCKET_BASE: Final = 8
# Duration buckets, filed by bit length: bucket i holds durations below 2**i * 1.024 us
# (2**(10 + i) ns), i = 0 .. 20 (~1.07 s), then +Inf.
BUCKETS: Final = 21
HISTOGRAM_BOUNDS: Final = tuple((1 << i) * 1024 / 1e9 for i in range(BUCKETS))
# async def handlers waiting (a gauge, sampled once a second).
WAITING: Final = BUCKET_BASE + BUCKETS + 1
_WORDS: Final = WAITING + 1
# STATUS_SLOT[status] is the word of the status's class; BUCKET_SLOT[ns.bit_length()] the
# duration's bucket, min((ns >> 10).bit_length(), BUCKETS) above BUCKET_BASE (_tally.c
# files the same way).
# Statuses outside 100..599 (RFC 9110 has none; Response does not refuse them) count as 5xx.
STATUS_SLOT: Final = tuple(STATUS_BASE - 1 + (status // 100 if 100 <= status < 600 else 5) for status in range(1000))
BUCKET_SLOT: Final = tuple(BUCKET_BASE + min(max(bits - 10, 0), BUCKETS) for bits in range(65))
_SLOT_BYTES: Final = -(-_WORDS * 8 // 64) * 64  # whole cache lines
_HEADER_BYTES: Final = 64
# fold() files durations by bit length: _BUCKET_OF_BITS maps a bit length (a byte) to
# its bucket (a byte, 0 .. BUCKETS), _BUCKET_MARKS[i] is bucket i's byte.
_BUCKET_OF_BITS: Final = bytes(BUCKET_SLOT[bits] - BUCKET_BASE if bits < 65 else BUCKETS for bits in range(256))
_BUCKET_MARKS: Final = tuple(bytes([i]) for i in range(BUCKETS + 1))
# tally[SENT](n) counts n bytes written (tally[0..999] are by status code).
SENT: Final = 1000
# Pure Python: the worker's loop folds the logs once the 2xx log holds this many
# durations (about 150 KB of ints); other classes wait for the next second's fold.
FOLD_AT: Final = 4096


class WorkerMetrics:
    """One worker's counters, and the calls its hot path counts with.

    ``tally[status](started_ns)`` counts an answered request that started at
    ``started_ns`` (``time.monotonic_ns``; index: the status code, 0..999), and
    ``tally[SENT](n)`` a write of ``n`` bytes.  ``counts[ACTIVE]`` is the
    open-connections gauge.  :meth:`publish` copies the counts into the worker's
    shared slot (folding the pure-Python logs first).

    Args:
        slot: the worker's slot in the shared block (its counts start from it, so a
            restarted worker's totals go on from where its predecessor's stopped).
        accelerated: count with the C accelerator; default: when it is built.
    """

    __slots__ = ("_durations", "_sent", "_slot", "accelerated", "counts", "pending", "tally")

    def __init__(self, slot: memoryview, accelerated: bool | None = None) -> None:
        if accelerated is None:
            accelerated = ACCELERATED
        elif accelerated and Tally is None:
            raise RuntimeError("chopin_core._tally is not built (or CHOPIN_PURE_PYTHON is set)")
        self.accelerated = accelerated
        self._slot = slot
        self.counts = array.array("Q", slot)
        self._durations: tuple[list[int], ...] = tuple([] for _ in range(5))  # pure Python: 1xx .. 5xx
        self._sent: list[int] = []
        per_class: list[Callable[[int], None]]
        if accelerated:
            assert Tally is not None
            tallies = [Tally(self.counts, word, DURATION_SUM_NS, BUCKET_BASE, BUCKETS, BYTES_SENT) for word in _CLASSES]
            per_class = [t.request for t in tallies]
            sent: Callable[[int], None] = tallies[0].sent
        else:
            per_class = [_logger(log) for log in self._durations]
            sent = self._sent.append
        self.tally: tuple[Callable[[int], None], ...] = (
            *(per_class[word - STATUS_BASE] for word in STATUS_SLOT),
            sent,
        )
        # The loop folds once this log holds FOLD_AT (accelerated: it stays empty).
        self.pending: list[int] = self._durations[1]

    def fold(self) -> None:
        """Pure Python: add the logged requests and writes to the counts and empty the logs."""
        counts = self.counts
        for word, log in zip(_CLASSES, self._durations, strict=True):
            if log:
                counts[word] += len(log)
                counts[DURATION_SUM_NS] += sum(log)
                # Each duration's bucket as one byte (a C loop), then a C-level count of each
                # bucket present (`in` is a memchr).
                buckets = bytes(map(int.bit_length, log)).translate(_BUCKET_OF_BITS)
                for bucket, mark in enumerate(_BUCKET_MARKS, BUCKET_BASE):
                    if mark in buckets:
                        counts[bucket] += buckets.count(mark)
                log.clear()
        if self._sent:
            counts[BYTES_SENT] += sum(self._sent)
            self._sent.clear()

    def publish(self) -> None:
        """Fold, then copy the counts into the worker's shared slot."""
        self.fold()
        self._slot[:] = self.counts


_CLASSES: Final = range(STATUS_BASE, STATUS_BASE + 5)


def _logger(log: list[int]) -> Callable[[int], None]:
    """Pure Python: the per-class step, logging the duration for :meth:`WorkerMetrics.fold`."""
    append = log.append

    def request(started: int, clock: Callable[[], int] = time.monotonic_ns) -> None:
        append(clock() - started)

    return request


class MetricsBlock:
    """The shared block: a header (start time) and one slot per worker.

    Args:
        workers: how many slots.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._map = mmap.mmap(-1, _HEADER_BYTES + workers * _SLOT_BYTES)  # MAP_SHARED | MAP_ANONYMOUS
        self._words = memoryview(self._map).cast("Q")
        self._started = memoryview(self._map)[:8].cast("d")
        self._started[0] = time.time()

    @property
    def started(self) -> float:
        """When the server started (epoch seconds)."""
        return float(self._started[0])

    def slot(self, index: int) -> memoryview:
        """Worker ``index``'s counters, as a ``uint64`` memoryview only it writes."""
        start = (_HEADER_BYTES + index * _SLOT_BYTES) // 8
        return self._words[start : start + _WORDS]

    def attach(self, index: int, accelerated: bool | None = None) -> WorkerMetrics:
        """In a worker: its own counters (starting from its slot's), kept for :meth:`publish`."""
        self._local = WorkerMetrics(self.slot(index), accelerated)
        return self._local

    def publish(self) -> None:
        """In a worker: fold its logs and copy its counters into its slot."""
        local: WorkerMetrics | None = getattr(self, "_local", None)
        if local is not None:
            local.publish()

    def reset_gauges(self, index: int) -> None:
        """Zero the gauges of a worker that died (its counters stay)."""
        self.slot(index)[ACTIVE] = 0

    def totals(self) -> list[int]:
        """Every word summed over the workers (this worker's own counts published first)."""
        self.publish()
        sums = [0] * _WORDS
        for index in range(self.workers):
            for word, value in enumerate(self.slot(index)):
                sums[word] += value
        return sums


def record(counts: list[int] | memoryview, status: int, duration_ns: int) -> None:
    """Count one answered request: what :meth:`WorkerMetrics.fold` does for each logged one."""
    counts[STATUS_SLOT[status]] += 1
    counts[DURATION_SUM_NS] += duration_ns
    counts[BUCKET_SLOT[duration_ns.bit_length()]] += 1


def render_prometheus(block: MetricsBlock) -> bytes:
    """All workers' counters in the Prometheus text format 0.0.4."""
    t = block.totals()
    lines = [
        "# HELP chopin_requests_total Requests answered.",
        "# TYPE chopin_requests_total counter",
        f"chopin_requests_total {_requests(t)}",
        "# HELP chopin_responses_total Responses by status class.",
        "# TYPE chopin_responses_total counter",
    ]
    for cls in range(1, 6):
        lines.append(f'chopin_responses_total{{class="{cls}xx"}} {t[STATUS_BASE + cls - 1]}')
    lines += [
        "# HELP chopin_active_connections Open client connections.",
        "# TYPE chopin_active_connections gauge",
        f"chopin_active_connections {t[ACTIVE]}",
        "# HELP chopin_waiting_handlers Handlers (async def) waiting, sampled once a second.",
        "# TYPE chopin_waiting_handlers gauge",
        f"chopin_waiting_handlers {t[WAITING]}",
        "# HELP chopin_bytes_sent_total Response bytes written to sockets.",
        "# TYPE chopin_bytes_sent_total counter",
        f"chopin_bytes_sent_total {t[BYTES_SENT]}",
        "# HELP chopin_uptime_seconds Seconds since the server started.",
        "# TYPE chopin_uptime_seconds gauge",
        f"chopin_uptime_seconds {time.time() - block.started:.3f}",
        "# HELP chopin_request_duration_seconds Time spent in handlers.",
        "# TYPE chopin_request_duration_seconds histogram",
    ]
    cumulative = 0
    for i, bound in enumerate(HISTOGRAM_BOUNDS):
        # Bucket i holds durations of bit_length i: below 2**i microseconds.
        cumulative += t[BUCKET_BASE + i]
        lines.append(f'chopin_request_duration_seconds_bucket{{le="{bound:.6f}"}} {cumulative}')
    cumulative += t[BUCKET_BASE + BUCKETS]
    lines.append(f'chopin_request_duration_seconds_bucket{{le="+Inf"}} {cumulative}')
    lines.append(f"chopin_request_duration_seconds_sum {t[DURATION_SUM_NS] / 1e9:.6f}")
    lines.append(f"chopin_request_duration_seconds_count {cumulative}")
    return ("\n".join(lines) + "\n").encode()


def _requests(totals: list[int]) -> int:
    return sum(totals[STATUS_BASE : STATUS_BASE + 5])


def health(block: MetricsBlock) -> dict[str, object]:
    """The /health document."""
    t = block.totals()
    return {
        "status": "ok",
        "uptime_secs": int(time.time() - block.started),
        "workers": block.workers,
        "requests": _requests(t),
        "active_connections": t[ACTIVE],
        "waiting_handlers": t[WAITING],
        "bytes_sent": t[BYTES_SENT],
    }
