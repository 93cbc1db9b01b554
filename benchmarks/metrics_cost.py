#!/usr/bin/env python3
"""What metrics cost per request, measured inside one worker without wrk's noise.

    python3 benchmarks/metrics_cost.py [--requests 20000] [--rounds 7] [--markdown-out FILE]

Drives a real chopin-core ``Worker`` over a socketpair: the test sends the TechEmpower
plaintext request, the worker's own ``_on_readable`` parses, routes, answers and writes
it, the test reads the answer; once with ``with_metrics`` counting (a ``MetricsBlock``)
and once without. Two measurements, both in fresh processes:

- instructions per request under ``valgrind --tool=callgrind`` (repeatable whatever else
  the machine does): the difference between a long and a short run, divided by the extra
  requests, so start-up cancels out;
- wall-clock time per request, the two modes alternated ``--rounds`` times (medians).

The server-level figure (wrk, alternating server starts) is in benchmarks/http.py.
"""

from __future__ import annotations

import os
import sys

# benchmarks/ holds http.py and json.py: keep the standard library's first on sys.path.
if sys.path and sys.path[0] and os.path.samefile(sys.path[0], os.path.dirname(os.path.abspath(__file__))):
    sys.path.append(sys.path.pop(0))

import argparse
import re
import shlex
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_PY = HERE / ".venv" / "bin" / "python"  # made by benchmarks/http.py, chopin-core installed
REQUEST = (
    b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n"
    b"Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"
    b"Connection: keep-alive\r\n\r\n"
)


def child(metrics: bool, requests: int, pipelined: int) -> float:
    # metrics on: counted by the C accelerator, or in pure Python when the parent set CHOPIN_PURE_PYTHON=1
    """Serve ``requests`` x ``pipelined`` requests in this process; seconds per request."""
    import socket
    import time

    from chopin_core import Response, Router, Settings
    from chopin_core._wire.h1_request import RequestParser
    from chopin_core.connection import Connection
    from chopin_core.metrics import FOLD_AT, STATUS_BASE, MetricsBlock
    from chopin_core.worker import Worker

    router = Router()
    router.get("/plaintext", lambda ctx: Response.text("Hello, World!"))
    worker = Worker(router.compile(), Settings(), 0, None, MetricsBlock(1) if metrics else None)
    client, server = socket.socketpair()
    server.setblocking(False)
    conn = Connection(server, RequestParser(worker.limits), 0)
    worker.conns[conn.fd] = conn
    payload = REQUEST * pipelined
    clock = time.monotonic_ns
    counters = worker._metrics
    timed = counters is not None
    folding = counters is not None and not counters.accelerated
    pending = counters.pending if counters is not None else []
    started = time.perf_counter()
    for _ in range(requests):
        client.send(payload)
        # What Worker.run's loop does on each wake-up, in both modes.
        now = clock()
        if timed:
            worker.woke = now
            if folding and len(pending) >= FOLD_AT and counters is not None:
                counters.fold()
        worker._on_readable(conn)
        client.recv(1 << 16)
    if counters is not None:
        counters.publish()  # the loop's once-a-second step; here once, and the counts are checked
        assert sum(counters.counts[STATUS_BASE : STATUS_BASE + 5]) == requests * pipelined
    return (time.perf_counter() - started) / (requests * pipelined)


def run_child(python: str, mode: str, requests: int, pipelined: int, wrap: list[str] | None = None) -> str:
    """Run a child: mode "off" (no metrics), "c" (the C accelerator) or "py" (pure Python)."""
    cmd = [*(wrap or []), python, __file__, "--child", "off" if mode == "off" else "on", str(requests), str(pipelined)]
    env = {k: v for k, v in os.environ.items() if k != "CHOPIN_PURE_PYTHON"}
    if mode == "py":
        env["CHOPIN_PURE_PYTHON"] = "1"
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return done.stdout + done.stderr


def instructions(python: str, mode: str, requests: int, pipelined: int, tmp: Path) -> int:
    out = tmp / f"cg.{mode}.{requests}.{pipelined}"
    text = run_child(python, mode, requests, pipelined, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
    match = re.search(r"Collected : (\d+)", text)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{text[-500:]}")
    return int(match.group(1))


def per_request_instructions(python: str, mode: str, requests: int, pipelined: int, tmp: Path) -> float:
    short = max(requests // 5, 1)
    long_run = instructions(python, mode, requests, pipelined, tmp)
    short_run = instructions(python, mode, short, pipelined, tmp)
    return (long_run - short_run) / ((requests - short) * pipelined)


MODES = ("off", "c", "py")


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(child(sys.argv[2] == "on", int(sys.argv[3]), int(sys.argv[4])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests per timed run (callgrind: a quarter)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating timed rounds per mode")
    parser.add_argument("--python", default=str(VENV_PY) if VENV_PY.exists() else sys.executable)
    parser.add_argument("--markdown-out", type=Path)
    args = parser.parse_args()
    accelerated = subprocess.run(
        [args.python, "-c", "from chopin_core.metrics import ACCELERATED; print(ACCELERATED)"],
        capture_output=True, text=True, check=True, env={k: v for k, v in os.environ.items() if k != "CHOPIN_PURE_PYTHON"},
    ).stdout.strip()  # fmt: skip
    if accelerated != "True":
        print("chopin_core._tally is not built in this environment: the C column would be pure Python", file=sys.stderr)
        return 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="chopin-metrics-cost-") as tmp:
        for pipelined in (1, 16):
            n = max(args.requests // pipelined, 1)
            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            for _ in range(args.rounds):
                for mode in MODES:
                    times[mode].append(float(run_child(args.python, mode, n, pipelined)))
            us = {mode: statistics.median(times[mode]) * 1e6 for mode in MODES}
            row = [f"plaintext{' pipelined 16' if pipelined > 1 else ''}", f"{us['off']:.2f}"]
            row += [f"{us[m]:.2f} ({(us[m] / us['off'] - 1) * 100:+.1f} %)" for m in ("c", "py")]
            if shutil.which("valgrind"):
                count = max(args.requests // 4, 500)
                ins = {mode: per_request_instructions(args.python, mode, count, pipelined, Path(tmp)) for mode in MODES}
                row.append(f"{ins['off']:,.0f}")
                row += [f"{ins[m]:,.0f} ({(ins[m] / ins['off'] - 1) * 100:+.1f} %)" for m in ("c", "py")]
            else:
                row += ["n/a", "n/a", "n/a"]
            print("  ".join(row), flush=True)
            rows.append(row)
    header = ["request", "µs off", "µs on (C)", "µs on (pure Python)", "instructions off", "instructions on (C)",
              "instructions on (pure Python)"]  # fmt: skip
    table = "\n".join("| " + " | ".join(cells) + " |" for cells in [header, ["---"] + ["---:"] * 6, *rows])
    command = shlex.join(["python3", "benchmarks/metrics_cost.py", *sys.argv[1:]])
    body = (
        f"### Metrics cost inside one worker (`{command}`)\n\n{table}\n\n"
        "A real Worker answering over a socketpair in one process, one read (one loop wake-up) per request or "
        "per batch of 16, without metrics, with metrics counted by the C accelerator (chopin_core._tally), and "
        "with metrics counted in pure Python (CHOPIN_PURE_PYTHON=1). Time: median of "
        f"{args.rounds} alternating fresh-process rounds; instructions: callgrind, user space only, the "
        "difference between a long and a short run per extra request (repeatable on a busy machine; times "
        "on a shared machine move by tens of percent between rounds, so the instructions decide).\n"
    )
    print(body)
    if args.markdown_out:
        import benchlib  # benchmarks/ is on sys.path, last

        benchlib.write_section(args.markdown_out, "metrics", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
