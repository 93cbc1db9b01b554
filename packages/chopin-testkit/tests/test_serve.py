"""`python -m chopin_testkit serve`, run as a newcomer runs it: a real subprocess, then psql."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from chopin_testkit._pgbin import clean_env, find_bin_dir

START_DEADLINE = 120.0  # initdb and a start on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chopin_testkit", "serve", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )


def _psql(url: str, sql: str) -> str:
    done = subprocess.run(
        [str(find_bin_dir() / "psql"), "--no-psqlrc", "-XAtc", sql, url],
        capture_output=True, text=True, timeout=60, check=False, env=clean_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def test_serve_runs_a_server_on_the_port_until_sigterm_then_deletes_it() -> None:
    port = _free_port()
    with _serve(port) as process:  # closes the pipes
        try:
            _check_serving(process, port)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def _check_serving(process: subprocess.Popen[str], port: int) -> None:
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()  # blocks until the server accepts connections, or the command ends
    assert line.startswith("DATABASE_URL="), line + process.stderr.read()
    url = line.removeprefix("DATABASE_URL=").strip()
    assert url == f"postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    note = process.stderr.readline()
    found = re.search(r"data in (\S+) \(deleted on exit\)", note)
    assert found, note
    data_dir = Path(found.group(1))
    assert data_dir.is_dir()

    # What `chopin db create` and the app do with it: a database of their own, a table, a row.
    _psql(url, "CREATE DATABASE app")
    app_url = url.replace("/postgres?", "/app?")
    _psql(app_url, "CREATE TABLE item (id int PRIMARY KEY); INSERT INTO item VALUES (7)")
    assert _psql(app_url, "SELECT id FROM item") == "7"
    assert _psql(url, "SELECT current_user") == "postgres"

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not data_dir.exists()
    deadline = time.monotonic() + 10
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _listening(port)


def test_serve_on_a_taken_port_says_so_and_exits_1() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with _serve(port) as process:
            try:
                out, err = process.communicate(timeout=START_DEADLINE)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=30)
    assert process.returncode == 1
    assert out == ""
    assert f"port {port} on 127.0.0.1 is taken" in err, err


def test_a_second_signal_during_the_stop_does_not_cut_it_short() -> None:
    # Ctrl-C reaches the whole process group, and `timeout` signals the child and its group:
    # the second SIGTERM used to interrupt the stop (exit 130, the server left running).
    port = _free_port()
    with _serve(port) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            line = process.stdout.readline()
            assert line.startswith("DATABASE_URL="), line + process.stderr.read()
            found = re.search(r"data in (\S+) \(deleted on exit\)", process.stderr.readline())
            assert found
            process.send_signal(signal.SIGTERM)
            time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, process.stderr.read()
            assert not Path(found.group(1)).exists()
            assert not _listening(port)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
