"""The :class:`Chopin` application.

``Chopin(...).serve()`` compiles the routes once, then either runs one worker in
this process (``WORKERS=1``) or forks ``WORKERS`` workers under the supervisor
(:mod:`chopin_core._engine.supervisor`), each opening its own ``SO_REUSEPORT``
socket after the fork so the kernel spreads connections with no shared accept
queue.  The parent only supervises: it restarts a worker that dies, and on
SIGTERM/SIGINT tells every worker to stop accepting and finish in-flight requests
within ``shutdown_grace``, then exits 0.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import ssl
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, overload

from ._engine.supervisor import Supervisor, raise_fd_limit, serve_alone
from .context import Context
from .decorators import registered_routes
from .error_handlers import ErrorHandler, StatusHandler
from .errors import ConfigError
from .hooks import Hooks, PreRoutingHook, SetupHook, TeardownHook, run_startup_checks
from .metrics import MetricsBlock, render_prometheus
from .metrics import health as health_document
from .response import Response
from .router import Router, RouteTable
from .settings import Settings

if TYPE_CHECKING:
    from .tls import ClientAuth

__all__ = ["Chopin", "parse_address"]

log = logging.getLogger("chopin_core.server")


def parse_address(addr: str) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:8080"`` for IPv6, ``":8080"`` for all interfaces).

    Raises:
        ConfigError: the port is not a number in 0..65535.
    """
    host, sep, port_s = addr.rpartition(":")
    if not sep:
        raise ConfigError(f"address {addr!r}: expected 'host:port'")
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_s)
    except ValueError:
        raise ConfigError(f"address {addr!r}: port {port_s!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"address {addr!r}: port out of range")
    return host, port


class Chopin:
    """An application: a router plus settings, served by forked workers.

    Args:
        router: the routes; a new empty :class:`Router` when omitted.
        settings: limits and layout; read from the environment when omitted.
    """

    def __init__(self, router: Router | None = None, settings: Settings | None = None) -> None:
        self.router = router if router is not None else Router()
        self.settings = settings
        self._on_worker_start: list[Callable[[int], None]] = []
        self._on_worker_stop: list[Callable[[int], None]] = []
        self._metrics_block: MetricsBlock | None = None
        self.hooks = Hooks()
        self._metrics_wanted = False
        self._backplane: str | None = None

    def mount_all_routes(self, package: str | None = None) -> Chopin:
        """Mount every handler declared with the route decorators.

        Args:
            package: import every module of this package first (so its decorated
                handlers register), and mount only those.  Without it, mount
                every decorated handler imported so far.
        """
        if package is not None:
            root = importlib.import_module(package)
            for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=package + "."):
                importlib.import_module(info.name)
        for found in registered_routes(package):
            self.router.route(found.method, found.path, found.handler)
        return self

    def with_metrics(self, path: str = "/metrics") -> Chopin:
        """Serve Prometheus metrics (text format 0.0.4) summed over every worker at ``path``.

        Each worker counts into its own slot of a shared-memory block (no lock on the
        hot path); whichever worker answers the scrape adds the slots up.
        """
        self._metrics_wanted = True

        def metrics(ctx: Context) -> Response:
            block = self._metrics_block
            if block is None:
                return Response.text("metrics are collected once the server runs", 503)
            return Response.raw(render_prometheus(block), content_type="text/plain; version=0.0.4; charset=utf-8")

        self.router.get(path, metrics)
        return self

    def with_health(self, path: str = "/health") -> Chopin:
        """Serve a health document (status, uptime, workers, requests, connections, bytes) at ``path``."""
        self._metrics_wanted = True

        def health(ctx: Context) -> Response:
            block = self._metrics_block
            if block is None:
                return Response.json({"status": "starting"}, 503)
            return Response.json(health_document(block))

        self.router.get(path, health)
        return self

    def with_backplane(self, url: str | None) -> Chopin:
        """Carry topics (:mod:`chopin_core.topics`) to every server sharing ``url``, a PostgreSQL or Redis server.

        Within one server, topics reach every worker without a backplane.  With one,
        each worker also publishes to, and listens on, ``url``: ``postgres://…``
        (LISTEN/NOTIFY on the channel ``chopin_topics``; a message is then at most
        about 7,970 bytes of text, NOTIFY's limit) or ``redis://[user:password@]host:port``
        (pub/sub on ``chopin:topics``; channels span Redis's databases).  While the
        backplane is down, up to 1,024 messages per worker wait for it and are sent
        once it is back; past that, publishing raises
        :class:`~chopin_core.topics.BackplaneUnavailable`.  What other servers publish
        meanwhile is missed.  ``None`` (or ``""``) turns it off.

        Raises:
            ConfigError: ``url`` is neither a ``postgres://`` nor a ``redis://`` URL.
        """
        from .topics import check_backplane_url

        if url:
            check_backplane_url(url)
        self._backplane = url or None
        return self

    def with_openapi(
        self,
        spec_path: str = "/openapi.json",
        docs: str | None = "/docs",
        *,
        title: str | None = None,
        version: str | None = None,
        **options: Any,
    ) -> Chopin:
        """Serve the app's OpenAPI 3.1 document at ``spec_path`` and a Scalar reference page at ``docs``.

        The page's JavaScript ships inside the package, so it works offline. The
        document is built here once, so a type kowito-json cannot describe fails at
        start-up rather than on the first request.
        """
        from . import openapi

        openapi.mount(self, spec_path, docs, title=title, version=version, **options)
        openapi.document(self, **options)  # options: servers, security_schemes, security, description
        return self

    def with_logging(
        self, level: int | str | None = None, access_log: bool = False, stream: IO[str] | None = None
    ) -> Chopin:
        """Log JSON lines to stderr: every logger's records, and optionally one line per response.

        Configures the process now (see :func:`chopin_core.logs.configure`): a JSON
        handler on the root logger, so ``logging.getLogger("myapp")`` and libraries
        come out as JSON lines too; plain-text stderr handlers on the root are replaced.

        Args:
            level: debug, info, warning or error (or a ``logging`` level); ``CHOPIN_LOG``
                when omitted, else info.
            access_log: log each response on ``chopin_core.access`` (method, path,
                status, bytes, duration_ms) at INFO.
            stream: where to write instead of stderr.

        Raises:
            ConfigError: ``level`` or ``CHOPIN_LOG`` names no level.
        """
        from . import logs

        handler = logs.configure(level, stream)

        def start_logging(index: int) -> None:
            handler.formatter.worker = index  # this process's copy of the handler
            logs.PROCESS.access = access_log

        self.on_worker_start(start_logging)
        return self

    @overload
    def error_handler(self, key: type[Exception]) -> Callable[[ErrorHandler], ErrorHandler]: ...
    @overload
    def error_handler(self, key: int) -> Callable[[StatusHandler], StatusHandler]: ...
    @overload
    def error_handler(self, key: type[Exception], handler: ErrorHandler) -> ErrorHandler: ...
    @overload
    def error_handler(self, key: int, handler: StatusHandler) -> StatusHandler: ...
    def error_handler(
        self, key: type[Exception] | int, handler: ErrorHandler | StatusHandler | None = None
    ) -> ErrorHandler | StatusHandler | Callable[[Any], Any]:
        """Register an app-wide error handler by exception type or status (see :meth:`Router.error_handler`)."""
        return self.router.error_handler(key, handler)  # type: ignore[arg-type]

    def connection_setup_hook(self, hook: SetupHook) -> SetupHook:
        """Run ``hook(sock, peer)`` for each accepted connection; ``DROP`` closes it at once."""
        self.hooks.setup = hook
        return hook

    def pre_routing_hook(self, hook: PreRoutingHook) -> PreRoutingHook:
        """Run ``hook(req)`` before routing: ``PROCEED``, a ``Response`` to answer with, or ``DROP``."""
        self.hooks.pre_routing = hook
        return hook

    def connection_teardown_hook(self, hook: TeardownHook) -> TeardownHook:
        """Run ``hook(peer, error)`` when an accepted connection closes (``error``: what ended it, or None)."""
        self.hooks.teardown = hook
        return hook

    def on_worker_start(self, hook: Callable[[int], None]) -> Callable[[int], None]:
        """Run ``hook(worker_index)`` in each worker before it serves (open pools here)."""
        self._on_worker_start.append(hook)
        return hook

    def on_worker_stop(self, hook: Callable[[int], None]) -> Callable[[int], None]:
        """Run ``hook(worker_index)`` in each worker once its loop has stopped (close pools here).

        It runs after a graceful stop (SIGTERM/SIGINT, or the supervisor gone), when
        every connection of the worker is closed, and after a worker's loop failed;
        not when the worker is killed (nor stopped while still starting).  Hooks run in reverse order of registration,
        each once; one that raises is logged and the others still run.
        """
        self._on_worker_stop.append(hook)
        return hook

    def compile(self) -> RouteTable:
        """The route table the workers serve, once the extensions' start-up checks pass.

        Raises:
            RouteConflict: two routes claim the same method and path.
            Exception: whatever a start-up check raises (see :func:`~chopin_core.hooks.add_startup_check`).
        """
        run_startup_checks(self.router)
        return self.router.compile()

    def resolve_settings(self, addr: str | None = None) -> Settings:
        """Settings from the constructor or the environment, with ``addr`` applied."""
        settings = self.settings if self.settings is not None else Settings.from_env()
        if addr is not None:
            host, port = parse_address(addr)
            env_port = os.environ.get("PORT")
            if env_port and self.settings is None:
                port = int(env_port)
            settings = settings.replace(host=host, port=port)
        return settings

    def serve(self, addr: str | None = None) -> None:
        """Serve until SIGTERM/SIGINT; ``addr`` is ``"host:port"`` (``PORT`` env overrides the port).

        With the ``h2`` package installed (the ``http2`` extra) and ``Settings.http2``
        on, a client that opens with the HTTP/2 preface (prior knowledge, h2c) is
        served HTTP/2 on the same port.
        """
        self._serve(addr, None)

    def serve_tls(
        self,
        addr: str | None,
        cert_pem: str | os.PathLike[str] | bytes,
        key_pem: str | os.PathLike[str] | bytes,
        *,
        password: str | None = None,
        minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
        client_ca: str | os.PathLike[str] | bytes | None = None,
        client_auth: ClientAuth | None = None,
    ) -> None:
        """Serve HTTPS until SIGTERM/SIGINT: TLS 1.2+ in each worker's epoll loop.

        ALPN offers ``h2`` (when the ``h2`` package is installed and ``Settings.http2``
        is on) and ``http/1.1``.  A failed or slow handshake (past
        ``tls_handshake_timeout``) closes that connection only.

        Args:
            addr: ``"host:port"``, as for :meth:`serve`.
            cert_pem: the certificate chain, leaf first, as a file path or PEM bytes.
            key_pem: the private key, as a file path or PEM bytes.
            password: the key's password, if it is encrypted.
            minimum_version: the oldest TLS version accepted.
            client_ca: mTLS: the CA certificates (PEM path or bytes) client
                certificates must chain to.  A verified client certificate is at
                ``ctx.peer_cert``.
            client_auth: ``"required"`` (the default with ``client_ca``: a client
                without a valid certificate fails the handshake), ``"optional"`` (a
                client may send none: ``ctx.peer_cert`` is then None; one it sends
                must verify) or ``"none"``.

        Raises:
            ConfigError: the certificate, key or CA is missing or does not load, or
                ``client_auth`` asks for certificates without ``client_ca``.
        """
        from .tls import h2_available, server_context

        settings = self.resolve_settings(addr)
        alpn = ("h2", "http/1.1") if settings.http2 and h2_available() else ("http/1.1",)
        ctx = server_context(
            cert_pem,
            key_pem,
            password=password,
            alpn=alpn,
            minimum_version=minimum_version,
            client_ca=client_ca,
            client_auth=client_auth,
        )
        self._serve(addr, ctx)

    def _serve(self, addr: str | None, tls: ssl.SSLContext | None) -> None:
        _default_logging()
        settings = self.resolve_settings(addr)
        raise_fd_limit(settings.slab_capacity + 64)
        table = self.compile()
        count = settings.worker_count
        if self._metrics_wanted:
            self._metrics_block = MetricsBlock(count)  # before the fork: shared by every worker
        block = self._metrics_block
        if count == 1:
            serve_alone(table, settings, self._start_worker, self._stop_worker, block, self.hooks, tls, self._backplane)
            return
        Supervisor(
            table, settings, self._start_worker, block, self.hooks, tls, self._backplane, self._stop_worker
        ).run()

    def _start_worker(self, index: int, settings: Settings) -> None:
        if settings.pin_workers and hasattr(os, "sched_setaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cpus[index % len(cpus)]})
        for hook in self._on_worker_start:
            hook(index)

    def _stop_worker(self, index: int) -> None:
        for hook in reversed(self._on_worker_stop):
            try:
                hook(index)
            except Exception:
                log.exception("worker %d: on_worker_stop hook %r failed", index, hook)


def _default_logging() -> None:
    """Show the engine's own messages on stderr when the application set up no logging."""
    engine = logging.getLogger("chopin_core")
    if not logging.getLogger().handlers and not engine.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        engine.addHandler(handler)
        engine.setLevel(logging.INFO)
