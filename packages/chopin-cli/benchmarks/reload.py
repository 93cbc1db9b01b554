"""How long `chopin` takes to start, and how long `chopin dev` takes from a saved edit to the new answer.

    python packages/chopin-cli/benchmarks/reload.py --edits 5 --starts 5

Prints medians and ranges; numbers depend heavily on machine load (each reload starts a
Python process that imports the app).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["NO_COLOR"] = "1"
    starts = []
    for _ in range(args.starts):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "chopin_cli", "--version"], check=True, capture_output=True, env=env)
        starts.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "chopin_cli", "new", "bench_app"], cwd=tmp, check=True, env=env)
        root = Path(tmp) / "bench_app"
        port = _free_port()
        url = f"http://127.0.0.1:{port}/"
        dev = subprocess.Popen(
            [sys.executable, "-m", "chopin_cli", "dev", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            t0 = time.perf_counter()
            while _get(url) is None:
                time.sleep(0.05)
            first = time.perf_counter() - t0
            handlers = root / "src/bench_app/handlers.py"
            reloads = []
            current = "Hello from bench_app"
            for i in range(args.edits):
                new = f"edit {i}"
                handlers.write_text(handlers.read_text().replace(current, new))
                t0 = time.perf_counter()
                while new not in (_get(url) or ""):
                    time.sleep(0.02)
                reloads.append(time.perf_counter() - t0)
                current = new
                time.sleep(0.5)
        finally:
            dev.send_signal(signal.SIGTERM)
            dev.wait(30)
    print(
        f"chopin --version: median {statistics.median(starts) * 1000:.0f} ms over {len(starts)} runs "
        f"(min {min(starts) * 1000:.0f}, max {max(starts) * 1000:.0f})"
    )
    print(f"chopin dev, first answer after start: {first * 1000:.0f} ms")
    print(
        f"chopin dev, save -> new answer: median {statistics.median(reloads) * 1000:.0f} ms over {len(reloads)} edits "
        f"(min {min(reloads) * 1000:.0f}, max {max(reloads) * 1000:.0f})"
    )


if __name__ == "__main__":
    main()
