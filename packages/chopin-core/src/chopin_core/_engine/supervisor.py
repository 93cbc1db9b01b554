"""The process supervisor: forks the workers, restarts one that dies, stops them all on a signal.

Each worker opens its own ``SO_REUSEPORT`` socket after the fork, so the kernel
spreads connections with no shared accept queue.  The parent only supervises: on
SIGTERM/SIGINT it tells every worker to stop accepting and finish in-flight requests
within ``shutdown_grace``, then exits 0.  With one worker (:func:`serve_alone`) there
is no fork: the worker's loop runs in this process, easy to debug and profile.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..connection import open_listener, probe_port
from ..worker import Worker
from .fanout import SiblingMesh, TopicWiring

if TYPE_CHECKING:
    import ssl

    from ..hooks import Hooks
    from ..metrics import MetricsBlock
    from ..router import RouteTable
    from ..settings import Settings

__all__ = ["Supervisor", "raise_fd_limit", "serve_alone"]

# The server's logger: these messages were the server's before they moved here.
log = logging.getLogger("chopin_core.server")

# A worker that dies sooner than this after starting counts as a crash loop.
_FAST_DEATH = 1.0
_MAX_BACKOFF = 10.0


def serve_alone(
    table: RouteTable,
    settings: Settings,
    start_hook: Callable[[int, Settings], None],
    stop_hook: Callable[[int], None],
    metrics: MetricsBlock | None = None,
    hooks: Hooks | None = None,
    tls: ssl.SSLContext | None = None,
    backplane: str | None = None,
) -> None:
    """Run the one worker in this process (``WORKERS=1``): no fork, easy to debug and profile.

    Args:
        table: the compiled routes.
        settings: the port and limits.
        start_hook: called before the worker serves.
        stop_hook: called once its loop has stopped (or failed).
        metrics: the shared metrics block, if metrics are on.
        hooks: the app's lifecycle hooks.
        tls: serve TLS with this context.
        backplane: the topics' backplane URL.
    """
    probe_port(settings.host, settings.port, shared=settings.reuse_port_shared)
    start_hook(0, settings)
    listener = open_listener(settings.host, settings.port, settings.backlog)
    port = listener.getsockname()[1]
    scheme = "https" if tls is not None else "http"
    log.info("chopin serving %s on %s:%d (1 worker, pid %d)", scheme, settings.host, port, os.getpid())
    wiring = TopicWiring(backplane=backplane)
    try:
        Worker(table, settings, 0, listener, metrics, hooks, tls, wiring).run()
    finally:
        stop_hook(0)


def raise_fd_limit(wanted: int) -> None:
    """Raise the soft open-files limit toward ``wanted`` (never past the hard limit).

    A worker holds up to ``slab_capacity`` connections; the usual soft limit of
    1024 would make accept fail long before that.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit to %d: %s", target, exc)


def _stop_with_parent() -> None:
    """Have Linux send this process SIGTERM when its parent dies (``PR_SET_PDEATHSIG``).

    A worker whose supervisor was killed would otherwise serve on as an orphan,
    holding the port.  Elsewhere (or if ``prctl`` fails) the worker's once-a-second
    parent check is the only guard.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    if prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))


class Supervisor:
    """Forks and watches the workers.

    Args:
        table: the compiled routes every worker serves.
        settings: the port, worker count and grace period.
        start_hook: called in each child before it serves.
        metrics: the shared metrics block, if metrics are on.
        hooks: the app's lifecycle hooks.
        tls: serve TLS with this context.
        backplane: the topics' backplane URL (see :meth:`Chopin.with_backplane`).
        stop_hook: called in each child once its loop has stopped (or failed).
    """

    def __init__(
        self,
        table: RouteTable,
        settings: Settings,
        start_hook: Callable[[int, Settings], None],
        metrics: MetricsBlock | None = None,
        hooks: Hooks | None = None,
        tls: ssl.SSLContext | None = None,
        backplane: str | None = None,
        stop_hook: Callable[[int], None] | None = None,
    ) -> None:
        self.table = table
        self.tls = tls
        self.backplane = backplane
        self.stop_hook = stop_hook
        # The workers' topic fan-out, made before the first fork and kept for restarts.
        self.mesh: SiblingMesh | None = None
        self.metrics = metrics
        self.hooks = hooks
        self.settings = settings
        self.start_hook = start_hook
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
        self._stopping = False
        self._crashes = 0

    def run(self) -> None:
        """Fork the workers and supervise them until told to stop; then exit 0."""
        settings = self.settings
        # Bind once here to fail early on a taken port (another server's workers
        # included) and to fix port 0, then let each worker bind its own socket.
        port = probe_port(settings.host, settings.port, shared=settings.reuse_port_shared)
        self.settings = settings = settings.replace(port=port)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)

        def on_stop(signum: int, frame: object) -> None:
            self._stopping = True

        def on_child(signum: int, frame: object) -> None:
            pass

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGCHLD, on_child)
        self.mesh = SiblingMesh(settings.worker_count)
        for index in range(settings.worker_count):
            self._spawn(index)
        log.info(
            "chopin serving on %s:%d (%d workers, supervisor pid %d)",
            settings.host,
            port,
            len(self.children),
            os.getpid(),
        )
        try:
            while not self._stopping:
                self._reap(restart=True)
                try:
                    import select

                    select.select([wake_r], [], [], 1.0)
                    os.read(wake_r, 512)
                except (BlockingIOError, InterruptedError):
                    pass
            self._shutdown()
        finally:
            signal.set_wakeup_fd(-1)
            os.close(wake_r)
            os.close(wake_w)
            if self.mesh is not None:
                self.mesh.close()
                self.mesh = None

    def _spawn(self, index: int) -> None:
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _stop_with_parent()
                if os.getppid() != supervisor:
                    return  # the supervisor died before the line above could take effect
                self.start_hook(index, self.settings)
                listener = open_listener(self.settings.host, self.settings.port, self.settings.backlog)
                assert self.mesh is not None
                wiring = TopicWiring(self.mesh.origin, self.mesh.link(index), self.backplane)
                worker = Worker(self.table, self.settings, index, listener, self.metrics, self.hooks, self.tls, wiring)
                try:
                    worker.run(supervisor=supervisor)
                finally:
                    if self.stop_hook is not None:
                        self.stop_hook(index)
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            finally:
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = (index, time.monotonic())

    def _reap(self, restart: bool) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            index, started = self.children.pop(pid, (-1, 0.0))
            if index < 0:
                continue
            code = os.waitstatus_to_exitcode(status)
            if not restart or self._stopping:
                continue
            log.warning("worker %d (pid %d) exited with %d; restarting", index, pid, code)
            if self.metrics is not None:
                self.metrics.reset_gauges(index)  # its connections died with it
            if time.monotonic() - started < _FAST_DEATH:
                self._crashes += 1
                time.sleep(min(_MAX_BACKOFF, 0.1 * 2**self._crashes))
            else:
                self._crashes = 0
            if not self._stopping:
                self._spawn(index)

    def _shutdown(self) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.settings.shutdown_grace + 2.0
        while self.children and time.monotonic() < deadline:
            self._reap(restart=False)
            time.sleep(0.02)
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while self.children:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            self.children.pop(pid, None)
