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
    """Serve ``requests`` x ``pipelined`` requests in this process; seconds per request."""
    import socket
    import time

    from chopin_core import Response, Router, Settings
    from chopin_core.connection import Connection
    from chopin_core.metrics import MetricsBlock
    from chopin_core.parser import RequestParser
    from chopin_core.worker import Worker

    router = Router()
    router.get("/plaintext", lambda ctx: Response.text("Hello, World!"))
    worker = Worker(router.compile(), Settings(), 0, None, MetricsBlock(1) if metrics else None)
    client, server = socket.socketpair()
    server.setblocking(False)
    conn = Connection(server, RequestParser(worker._limits), 0)
    worker.conns[conn.fd] = conn
    payload = REQUEST * pipelined
    started = time.perf_counter()
    for _ in range(requests):
        client.send(payload)
        worker._woke = time.perf_counter_ns()  # what the loop does on each wake-up
        worker._on_readable(conn)
        client.recv(1 << 16)
    return (time.perf_counter() - started) / (requests * pipelined)


def run_child(python: str, metrics: bool, requests: int, pipelined: int, wrap: list[str] | None = None) -> str:
    cmd = [*(wrap or []), python, __file__, "--child", "on" if metrics else "off", str(requests), str(pipelined)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def instructions(python: str, metrics: bool, requests: int, pipelined: int, tmp: Path) -> int:
    out = tmp / f"cg.{metrics}.{requests}.{pipelined}"
    text = run_child(
        python, metrics, requests, pipelined, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    )
    match = re.search(r"Collected : (\d+)", text)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{text[-500:]}")
    return int(match.group(1))


def per_request_instructions(python: str, metrics: bool, args: argparse.Namespace, pipelined: int, tmp: Path) -> float:
    short = max(args.requests // 5, 1)
    long_run = instructions(python, metrics, args.requests, pipelined, tmp)
    short_run = instructions(python, metrics, short, pipelined, tmp)
    return (long_run - short_run) / ((args.requests - short) * pipelined)


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(child(sys.argv[2] == "on", int(sys.argv[3]), int(sys.argv[4])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests per callgrind run (and per timed run)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating timed rounds per mode")
    parser.add_argument("--python", default=str(VENV_PY) if VENV_PY.exists() else sys.executable)
    parser.add_argument("--markdown-out", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="chopin-metrics-cost-") as tmp:
        for pipelined in (1, 16):
            n = max(args.requests // pipelined, 1)
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.rounds):
                for metrics in (False, True):
                    times[metrics].append(float(run_child(args.python, metrics, n, pipelined)))
            off, on = (statistics.median(times[m]) * 1e6 for m in (False, True))
            row = [f"plaintext{' pipelined 16' if pipelined > 1 else ''}", f"{off:.2f}", f"{on:.2f}",
                   f"{(on / off - 1) * 100:.1f} %"]  # fmt: skip
            if shutil.which("valgrind"):
                sub = argparse.Namespace(requests=max(args.requests // 4, 500))
                i_off = per_request_instructions(args.python, False, sub, pipelined, Path(tmp))
                i_on = per_request_instructions(args.python, True, sub, pipelined, Path(tmp))
                row += [f"{i_off:,.0f}", f"{i_on:,.0f}", f"{(i_on / i_off - 1) * 100:.1f} %"]
            else:
                row += ["n/a", "n/a", "n/a"]
            print("  ".join(row), flush=True)
            rows.append(row)
    header = ["request", "µs off", "µs on", "time added", "instructions off", "instructions on", "instructions added"]
    table = "\n".join("| " + " | ".join(cells) + " |" for cells in [header, ["---"] + ["---:"] * 6, *rows])
    command = shlex.join(["python3", "benchmarks/metrics_cost.py", *sys.argv[1:]])
    body = (
        f"### Metrics cost inside one worker (`{command}`)\n\n{table}\n\n"
        "A real Worker answering over a socketpair in one process, with and without a MetricsBlock; time: "
        f"median of {args.rounds} alternating fresh-process rounds; instructions: callgrind, the difference "
        "between a long and a short run per extra request (repeatable on a busy machine).\n"
    )
    print(body)
    if args.markdown_out:
        import benchlib  # benchmarks/ is on sys.path, last

        benchlib.write_section(args.markdown_out, "metrics", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
