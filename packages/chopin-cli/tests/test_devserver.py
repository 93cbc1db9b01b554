"""``chopin dev`` as a real subprocess: it answers on its port, reloads after edits, survives import errors."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from chopin_cli.console import Output
from chopin_cli.devserver import DevServer, DevSettings
from chopin_cli.project import load_project
from conftest import assert_one_line_error, clean_env, free_port, run_chopin

DEADLINE = 60.0  # generous: the machine is shared and loaded


class DevProcess:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, port: int) -> None:
        self.process = process
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"chopin dev exited with {self.process.returncode} waiting for {what}:\n{self.output()}")
            if condition():
                return
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}:\n{self.output()}")

    def body(self) -> str | None:
        try:
            return httpx.get(self.url + "/", timeout=5.0).text
        except httpx.HTTPError:
            return None


@pytest.fixture
def dev(project: Path, tmp_path: Path) -> Iterator[DevProcess]:
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "chopin_cli", "dev", "--port", str(port)],
            cwd=project,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    handle = DevProcess(process, log, port)
    try:
        yield handle
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_dev_serves_reloads_and_survives_a_broken_import(dev: DevProcess, project: Path) -> None:
    dev.wait_for(lambda: dev.body() == '{"message":"Hello from shop"}', "the first answer")
    handlers = project / "src/shop/handlers.py"

    _edit(handlers, "Hello from shop", "Hello again")
    dev.wait_for(lambda: dev.body() == '{"message":"Hello again"}', "the reloaded answer")
    # The new child answers (SO_REUSEPORT) before the old one is stopped and the reload reported.
    dev.wait_for(lambda: "reloaded after a change to src/shop/handlers.py" in dev.output(), "the reload report")

    # Broken code: the import error is shown, the previous version keeps serving, watching goes on.
    handlers.write_text(handlers.read_text() + "\nbroken = (\n")
    dev.wait_for(lambda: "failed to import" in dev.output(), "the import error")
    out = dev.output()
    assert "SyntaxError" in out and "handlers.py" in out
    assert "_bootstrap" not in out and "chopin_cli" not in out.split("failed to import")[0].split("reloading")[-1]
    assert "the previous version keeps serving" in out
    assert dev.body() == '{"message":"Hello again"}'

    _edit(handlers, "\nbroken = (\n", "\n")
    _edit(handlers, "Hello again", "Fixed")
    dev.wait_for(lambda: dev.body() == '{"message":"Fixed"}', "the answer after the fix")


class _EditAtFirstServe(Output):
    """Saves an edit the moment the first app serves (a fast editor, a loaded machine); stops at the reload."""

    def __init__(self, handlers: Path) -> None:
        super().__init__()
        self.handlers = handlers
        self.server: DevServer | None = None
        self.lines: list[str] = []

    def done(self, message: str) -> None:
        super().done(message)
        self.lines.append(message)
        if message.startswith("serving "):
            _edit(self.handlers, "Hello from shop", "Hello, saved at once")
        elif message.startswith("reloaded after a change") and self.server is not None:
            self.server.request_stop()


def test_an_edit_saved_as_the_first_app_starts_reloads_it(project: Path) -> None:
    # The watcher used to start after "serving ...; watching for changes": an edit saved in
    # between was never seen (the full suite on a loaded machine timed out waiting for it).
    output = _EditAtFirstServe(project / "src/shop/handlers.py")
    server = DevServer(load_project(project), DevSettings(port=free_port()), output)
    output.server = server
    guard = threading.Timer(DEADLINE, server.request_stop)
    guard.start()
    try:
        assert server.run() == 0
    finally:
        guard.cancel()
    assert output.lines[0].startswith("serving "), output.lines
    assert any(line.startswith("reloaded after a change to src/shop/handlers.py") for line in output.lines), (
        output.lines
    )


def test_dev_stops_cleanly_on_sigterm_and_frees_the_port(dev: DevProcess) -> None:
    dev.wait_for(lambda: dev.body() is not None, "the first answer")
    health = httpx.get(dev.url + "/health", timeout=5.0)  # what the Dockerfile's HEALTHCHECK calls
    assert health.status_code == 200 and health.json()["status"] == "ok"
    dev.process.send_signal(signal.SIGTERM)
    assert dev.process.wait(30) == 0
    assert "chopin dev stopped" in dev.output()
    with pytest.raises(httpx.ConnectError):
        httpx.get(dev.url + "/", timeout=5.0)


def test_dev_starting_with_broken_code_waits_for_a_fix(project: Path, tmp_path: Path) -> None:
    app_py = project / "src/shop/app.py"
    _edit(app_py, "from chopin_core import Chopin", "from chopin_core import Chopin, NoSuchName")
    port = free_port()
    log = tmp_path / "dev-broken.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "chopin_cli", "dev", "--port", str(port)],
            cwd=project,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    handle = DevProcess(process, log, port)
    try:
        handle.wait_for(lambda: "nothing is serving" in handle.output(), "the start-up error")
        assert "ImportError" in handle.output()
        _edit(app_py, "from chopin_core import Chopin, NoSuchName", "from chopin_core import Chopin")
        handle.wait_for(lambda: handle.body() == '{"message":"Hello from shop"}', "the answer after the fix")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_the_app_stops_when_the_supervisor_is_killed(dev: DevProcess) -> None:
    dev.wait_for(lambda: dev.body() is not None, "the first answer")
    dev.process.kill()  # SIGKILL: no chance to stop the child
    dev.process.wait(30)
    deadline = time.monotonic() + DEADLINE
    while dev.body() is not None:
        assert time.monotonic() < deadline, "the orphaned app kept serving"
        time.sleep(0.2)


def test_dev_with_two_workers_replaces_every_worker(project: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "dev-workers.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "chopin_cli", "dev", "--port", str(port), "--workers", "2"],
            cwd=project,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    handle = DevProcess(process, log, port)
    try:
        handle.wait_for(lambda: handle.body() == '{"message":"Hello from shop"}', "the first answer")
        _edit(project / "src/shop/handlers.py", "Hello from shop", "Two workers")
        handle.wait_for(lambda: "reloaded after a change" in handle.output(), "the reload report")
        # The old supervisor and both its workers are gone: every connection gets the new code.
        bodies = {httpx.get(handle.url + "/", timeout=5.0, headers={"Connection": "close"}).text for _ in range(30)}
        assert bodies == {'{"message":"Two workers"}'}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_dev_reloads_an_app_built_with_explicit_settings(project: Path, tmp_path: Path) -> None:
    # The engine refuses a port another process listens on unless told to share it; a reload
    # runs the new child beside the old one, so the child asks to share even when the app's
    # Settings were built in code and the environment does not reach them.
    _edit(project / "src/shop/app.py", "from chopin_core import Chopin\n", "from chopin_core import Chopin, Settings\n")
    _edit(project / "src/shop/app.py", "app = Chopin()", "app = Chopin(settings=Settings(shutdown_grace=5.0))")
    port = free_port()
    log = tmp_path / "dev-settings.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "chopin_cli", "dev", "--port", str(port)],
            cwd=project,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    handle = DevProcess(process, log, port)
    try:
        handle.wait_for(lambda: handle.body() == '{"message":"Hello from shop"}', "the first answer")
        _edit(project / "src/shop/handlers.py", "Hello from shop", "Explicit settings")
        handle.wait_for(lambda: handle.body() == '{"message":"Explicit settings"}', "the reloaded answer")
        handle.wait_for(lambda: "reloaded after a change" in handle.output(), "the reload report")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_dev_refuses_a_port_something_serves(project: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = run_chopin("dev", "--port", str(port), cwd=project, timeout=60)
    assert_one_line_error(run, f"port {port}", "in use")
