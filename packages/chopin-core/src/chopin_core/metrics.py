"""Partitioned counters in shared memory, and the /metrics and /health answers.

How it works: before forking, the supervisor maps one anonymous shared block
with a slot per worker.  On the hot path a worker only adds to a plain Python
list of its own (the cheapest counter CPython has); once a second, and right
before it answers a scrape, it copies that list into its slot (one ``uint64``
memoryview store, no lock, no other worker's cache line: slots are padded to
whole cache lines).  Whichever worker answers ``/metrics`` or ``/health`` sums
every slot, so other workers' figures are at most a second old.  A restarted worker
keeps its slot's counters, so totals stay monotonic as Prometheus expects; only
its active-connections gauge is reset.
"""

from __future__ import annotations

import array
import mmap
import time
from typing import Final

__all__ = ["HISTOGRAM_BOUNDS", "MetricsBlock", "render_prometheus"]

# Slot layout, in uint64 words.  Requests are not counted on their own: the total
# is the sum of the status classes (one increment less per request).
BYTES_SENT: Final = 0
ACTIVE: Final = 1
STATUS_BASE: Final = 2  # 2..6: 1xx..5xx (index STATUS_BASE + status // 100 - 1)
DURATION_SUM_NS: Final = 7
BUCKET_BASE: Final = 8
# Handler duration buckets: the hot path takes ns >> 10 (units of 1.024 us, a shift
# instead of a float division) and files it by bit length: bucket i holds durations
# below 2**i * 1.024 us, i = 0 .. 20 (~1.07 s), then +Inf.
BUCKETS: Final = 21
HISTOGRAM_BOUNDS: Final = tuple((1 << i) * 1024 / 1e9 for i in range(BUCKETS))
_WORDS: Final = BUCKET_BASE + BUCKETS + 1
# The hot path looks its words up instead of computing them (a tuple index costs less
# than a division or a shift and a comparison on Python ints): STATUS_SLOT[status] is
# the word of the status's class; BUCKET_SLOT[ns.bit_length()] the duration's bucket,
# min((ns >> 10).bit_length(), BUCKETS) above BUCKET_BASE.
STATUS_SLOT: Final = tuple(STATUS_BASE - 1 + status // 100 for status in range(600))
BUCKET_SLOT: Final = tuple(BUCKET_BASE + min(max(bits - 10, 0), BUCKETS) for bits in range(65))
_SLOT_BYTES: Final = -(-_WORDS * 8 // 64) * 64  # whole cache lines
_HEADER_BYTES: Final = 64


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

    def attach(self, index: int) -> list[int]:
        """In a worker: the local counters to add to (starting from its slot's), kept for :meth:`publish`."""
        self._local = list(self.slot(index))
        self._local_index = index
        return self._local

    def publish(self) -> None:
        """In a worker: copy the local counters into its slot."""
        local = getattr(self, "_local", None)
        if local is not None:
            self.slot(self._local_index)[:] = array.array("Q", local)

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
    """Count one answered request (the worker inlines the same steps on its hot path)."""
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
        "bytes_sent": t[BYTES_SENT],
    }
