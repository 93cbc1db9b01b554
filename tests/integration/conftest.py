"""Serve a repository script (``python <script>`` with ``PORT``/``WORKERS``) for the integration tests.

A deliberately small runner, independent of the package test suites: the
script gets a free port in ``PORT``, must accept a connection within 10 s, and
must exit 0 on SIGTERM at the end of the test module.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def serve_script(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """``serve_script("examples/demo.py", workers, extra_env)`` starts it and returns its base URL."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(script: str, workers: int = 1, extra_env: dict[str, str] | None = None) -> str:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHOPIN_", "PG"))}
        env.update(PORT=str(port), WORKERS=str(workers), PYTHONUNBUFFERED="1")
        env.update(extra_env or {})
        log_path = tmp_path_factory.mktemp("server") / "stderr.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(REPO / script)],
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        started.append((process, log_path))
        deadline = time.monotonic() + 10.0
        while True:
            if process.poll() is not None:
                pytest.fail(f"{script} exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    return f"http://{HOST}:{port}"
            except OSError:
                pass
            if time.monotonic() >= deadline:
                pytest.fail(f"{script} did not accept on port {port} within 10 s:\n{log_path.read_text()}")
            time.sleep(0.05)

    yield start
    problems = []
    for process, log_path in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15.0)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5.0)
        if process.returncode != 0:
            problems.append(f"{process.args} exited with {process.returncode}:\n{log_path.read_text()}")
    if problems:
        pytest.fail("\n".join(problems))
