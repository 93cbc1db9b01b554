"""``chopin dev``: serve the app in a child process and restart it when the code changes.

How it works: the supervisor (this process) starts a child
(``python -m chopin_cli._devchild``) that imports the app and serves it on the port.
watchfiles reports changes under the source directory (and to ``pyproject.toml`` or
``.env``); on a change a *new* child is started while the old one keeps serving.  Every
child's listening socket has ``SO_REUSEPORT``, so the new one binds the same port; once
it says it listens the old one is stopped (SIGTERM: it finishes its in-flight requests).
When the new code fails to import, its traceback is shown, the new child is gone, the
previous one (if any) keeps serving, and watching goes on.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType

from watchfiles import Change, DefaultFilter, watch

from .console import Output, escape
from .project import Project

__all__ = ["DevServer", "DevSettings", "free_port", "port_answers"]

#: File suffixes whose change triggers a reload.
WATCHED_SUFFIXES = (".py", ".pyi", ".toml", ".env", ".json", ".html", ".txt", ".sql")


#: Milliseconds the watcher waits for a change before it wakes the loop (to start the first app,
#: to see an app that exited, to see a stop request).
WAKE_MS = 250


@dataclass(frozen=True)
class DevSettings:
    """Limits of the dev supervisor."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    ready_timeout: float = 30.0  # seconds a new child has to import the app and bind
    # After "imported", a child still alive this long counts as listening even if the
    # engine's "serving" log line never came (an app that configured logging away).
    assume_listening_after: float = 5.0
    stop_grace: float = 12.0  # seconds a stopped child has to exit before SIGKILL
    debounce_ms: int = 400  # the longest a burst of changes is grouped into one reload


def free_port(host: str) -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts connections on ``host:port`` (``0.0.0.0``/``::`` probed on loopback).

    SO_REUSEPORT would let a second ``chopin dev`` bind a port another one serves and
    silently share its connections, so the port is probed before starting.
    """
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=timeout):
            return True
    except OSError:
        return False


class _SourceFilter(DefaultFilter):
    """Source files under the project's source directory, plus ``pyproject.toml`` and ``.env``."""

    def __init__(self, project: Project) -> None:
        super().__init__()
        self.source = str(project.source_dir.resolve())
        self.top = {str((project.root / n).resolve()) for n in ("pyproject.toml", ".env")}

    def __call__(self, change: Change, path: str) -> bool:
        if path in self.top:
            return True
        if not path.startswith(self.source + os.sep) or not path.endswith(WATCHED_SUFFIXES):
            return False
        return super().__call__(change, path)


class _Child:
    """One app process and the pipe it reports on (``imported``, ``listening``)."""

    def __init__(self, process: subprocess.Popen[bytes], status_fd: int) -> None:
        self.process = process
        self.status_fd = status_fd
        self.words: list[str] = []
        self._buffer = b""

    def read_status(self, timeout: float) -> None:
        ready, _, _ = select.select([self.status_fd], [], [], timeout)
        if not ready:
            return
        try:
            data = os.read(self.status_fd, 4096)
        except OSError:
            data = b""
        if not data:
            time.sleep(min(timeout, 0.05))  # EOF: the child is exiting; let poll() see it
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        self.words.extend(line.decode() for line in lines)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.status_fd)


class DevServer:
    """The ``chopin dev`` supervisor for one project.

    Args:
        project: the project whose app (``project.app_spec`` or ``spec``) is served.
        settings: host, port, workers and time limits.
        output: where progress and errors go.
        spec: the app's ``module:attr``, overriding the project's.
    """

    def __init__(self, project: Project, settings: DevSettings, output: Output, spec: str | None = None) -> None:
        self.project = project
        self.settings = settings
        self.output = output
        self.spec = spec or project.app_spec
        self.stop_event = threading.Event()
        self.current: _Child | None = None

    # -- children ----------------------------------------------------------------------

    def _spawn(self) -> _Child:
        read_fd, write_fd = os.pipe()
        os.set_inheritable(write_fd, True)
        env = self.project.env()
        env.update(PORT=str(self.settings.port), WORKERS=str(self.settings.workers), PYTHONUNBUFFERED="1")
        paths = [str(self.project.source_dir), str(self.project.root)]
        address = f"{self.settings.host}:{self.settings.port}"
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "chopin_cli._devchild", self.spec, address, str(write_fd), *paths],
                cwd=self.project.root,
                env=env,
                stdin=subprocess.DEVNULL,
                pass_fds=(write_fd,),
            )
        finally:
            os.close(write_fd)
        return _Child(process, read_fd)

    def _await_ready(self, child: _Child) -> str:
        """``listening`` once the child serves, ``failed`` when it exits, ``timeout`` otherwise."""
        deadline = time.monotonic() + self.settings.ready_timeout
        imported_at: float | None = None
        while time.monotonic() < deadline and not self.stop_event.is_set():
            child.read_status(0.1)
            if child.process.poll() is not None:
                return "failed"
            if "listening" in child.words:
                return "listening"
            if "imported" in child.words:
                imported_at = imported_at or time.monotonic()
                if time.monotonic() - imported_at > self.settings.assume_listening_after:
                    return "listening"
        return "timeout"

    def _stop(self, child: _Child) -> None:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(self.settings.stop_grace)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        child.close()

    def _start_generation(self, reason: str | None) -> None:
        new = self._spawn()
        outcome = self._await_ready(new)
        if outcome == "listening":
            old, self.current = self.current, new
            if old is not None:
                self._stop(old)
            url = f"http://{self.settings.host}:{self.settings.port}"
            if reason is None:
                self.output.done(
                    f"serving {self.spec} on [bold]{url}[/bold] (pid {new.process.pid}); watching for changes"
                )
            else:
                self.output.done(f"reloaded after a change to {escape(reason)} (pid {new.process.pid})")
            return
        self._stop(new)
        what = f"did not start within {self.settings.ready_timeout:.0f} s" if outcome == "timeout" else ""
        if not what:
            what = "failed to import (see above)" if "imported" not in new.words else "failed to start (see above)"
        keep = "the previous version keeps serving" if self.current is not None else "nothing is serving"
        self.output.error(f"the app {what}; {keep}; fix the code and save to retry")

    def _check_current(self) -> None:
        child = self.current
        if child is not None and child.process.poll() is not None:
            self.output.error(f"the app exited with {child.process.returncode}; save a file to restart it")
            child.close()
            self.current = None

    # -- the loop ----------------------------------------------------------------------

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """Stop watching and stop the child (the SIGTERM handler)."""
        self.stop_event.set()

    def run(self) -> int:
        """Serve and reload until SIGINT/SIGTERM; returns the exit code (0)."""
        previous = signal.signal(signal.SIGTERM, self.request_stop)
        started = False
        try:
            for changes in watch(
                self.project.root,
                watch_filter=_SourceFilter(self.project),
                debounce=self.settings.debounce_ms,
                stop_event=self.stop_event,
                rust_timeout=WAKE_MS,
                yield_on_timeout=True,
                raise_interrupt=False,
            ):
                if self.stop_event.is_set():
                    break
                if not started:
                    # The first app starts at the watcher's first wake, once its watches are
                    # in place: an edit saved while it starts reloads it. (Started before the
                    # watcher, an edit made between "serving" and the watches was lost.)
                    started = True
                    self._start_generation(None)
                    continue
                self._check_current()
                if not changes:
                    continue
                names = sorted({os.path.relpath(path, self.project.root) for _, path in changes})
                shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                self.output.note(f"[cyan]change[/cyan] in {escape(shown)}: reloading")
                self._start_generation(shown)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            if self.current is not None:
                self._stop(self.current)
                self.current = None
        self.output.note("chopin dev stopped")
        return 0
