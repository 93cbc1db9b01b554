"""Engine settings: every limit and timeout is a named field with a safe default.

Values come from the constructor, or from the environment through
:meth:`Settings.from_env` (``PORT``, ``WORKERS``, ``CHOPIN_*``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping

from .errors import ConfigError

__all__ = ["Settings"]

# Fields that are not limits (every other field is a number >= 0).
_NOT_NUMBERS = frozenset({"host", "trusted_proxies", "forwarded_header"})


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Limits, timeouts and process layout of a Chopin server.

    Attributes:
        host: address to bind.
        port: TCP port to bind (``PORT``).
        workers: worker processes; 1 serves in-process without forking (``WORKERS``).
        slab_capacity: connections one worker holds; past it a new one gets 503
            (``CHOPIN_SLAB_CAPACITY``).
        epoll_timeout_ms: longest ``epoll_wait`` when idle; 0 spins
            (``CHOPIN_EPOLL_TIMEOUT_MS``).
        pin_workers: pin worker *i* to CPU *i* (``CHOPIN_PIN_WORKERS=1``).
        max_request_head_size: request line plus headers, in bytes (431 past it).
        max_header_count: header fields in one request (431 past it).
        max_uri_length: request-target length in bytes (414 past it).
        max_body_size: request body in bytes, after de-chunking (413 past it).
        max_buffered_body_bytes: request-body bytes one worker holds in memory for
            bodies still arriving, across its connections; a body that does not fit
            waits, its connection not read, until others finish (back-pressure)
            (``CHOPIN_MAX_BUFFERED_BODY_BYTES``).
        body_spool_threshold: a request body larger than this many bytes is written
            to a temporary file in ``TMPDIR`` as it arrives instead of being held in
            memory (``CHOPIN_BODY_SPOOL_THRESHOLD``).
        body_timeout: seconds a request body may go without a byte arriving once its
            head is in (408 and close past it; ``CHOPIN_BODY_TIMEOUT``).
        keepalive_timeout: seconds an idle keep-alive connection is kept.
        header_timeout: seconds a client may take to send one request head, not
            counting its body (slowloris defence; the connection is closed past it),
            and to answer a WebSocket close.
        websocket_idle_timeout: seconds a WebSocket may stay silent both ways.
        write_high_water: pending output bytes past which a connection stops
            being read until it drains.
        max_pipeline_depth: pipelined requests one connection gets answered in one
            turn; the rest wait, unread, until the worker has served the other
            connections ready at that moment (fairness under pipelining); 0: no limit
            (``CHOPIN_MAX_PIPELINE_DEPTH``).
        shutdown_grace: seconds in-flight requests get on SIGTERM/SIGINT.
        max_waiting_handlers: ``async def`` handlers one worker keeps waiting at once;
            past it a request gets 503 with ``Retry-After`` (``CHOPIN_MAX_WAITING_HANDLERS``).
        handler_timeout: seconds an ``async def`` handler may take; past it
            :class:`~chopin_core.HandlerTimeout` is raised where it waits (504 unless
            it answers otherwise); 0: no deadline (``CHOPIN_HANDLER_TIMEOUT``).
        worker_threads: threads of a worker's pool for :func:`~chopin_core.to_thread`,
            started on first use (``CHOPIN_WORKER_THREADS``).
        reuse_port_shared: start even when another process already listens on the
            address, and share its connections through ``SO_REUSEPORT`` (a rolling
            restart: the new server starts before the old one stops).  Off, a
            server refuses to start on a taken address (``CHOPIN_REUSE_PORT_SHARED=1``).
        backlog: listen backlog of each worker's socket.
        recv_size: bytes asked of one ``recv`` (keep it under glibc's 128 KiB mmap
            threshold: a bigger read buffer is mmapped and unmapped on every read).
        tls_handshake_timeout: seconds a TLS client may take to finish its handshake
            (``CHOPIN_TLS_HANDSHAKE_TIMEOUT``).
        http2: serve HTTP/2 (ALPN ``h2`` under TLS, prior knowledge in cleartext)
            when the ``hpack`` package (the ``http2`` extra) is installed (``CHOPIN_HTTP2=0`` turns it off).
        h2_max_concurrent_streams: streams one HTTP/2 client may have open (SETTINGS).
        h2_initial_window_size: flow-control window offered per stream, bytes (SETTINGS).
        h2_max_frame_size: largest frame payload accepted, bytes, 16384..16777215 (SETTINGS).
        h2_max_header_list_size: decoded request header list, bytes as RFC 9113 counts
            them (SETTINGS; a larger list is refused).
        h2_max_resets_per_second: streams one client connection may reset per second
            (a token bucket: bursts up to this many, refilled at this rate) before it
            gets GOAWAY ENHANCE_YOUR_CALM (rapid-reset defence, CVE-2023-44487).
        h2_worker_max_resets_per_second: the same budget shared by all the HTTP/2
            connections of one worker, so many connections each staying under the
            per-connection rate still get GOAWAY ENHANCE_YOUR_CALM.
        h2_max_pending_output: response-body bytes one HTTP/2 connection may hold
            waiting for the client's flow-control window; past it the connection's
            next requests wait (their handlers do not run) until the held bytes drain.
        h2_max_request_buffer: request-body bytes one HTTP/2 connection may hold across
            its unfinished streams (413 for the stream past it; never below
            ``max_body_size``).
        trusted_proxies: addresses or CIDR networks of the reverse proxies in front of
            the server.  When a connection's peer is one of them, the client address
            (``ctx.client``, ``REMOTE_ADDR``, the access log) is read from
            ``forwarded_header``: the rightmost hop that is not a trusted proxy.  Empty
            (the default): no header is believed (``CHOPIN_TRUSTED_PROXIES``, comma-separated).
        forwarded_header: the header those proxies append to: ``"x-forwarded-for"``
            or ``"forwarded"`` (RFC 7239); only this one is read (``CHOPIN_FORWARDED_HEADER``).
    """

    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 0
    slab_capacity: int = 10_000
    epoll_timeout_ms: int = 1000
    pin_workers: bool = False
    max_request_head_size: int = 16 * 1024
    max_header_count: int = 100
    max_uri_length: int = 8 * 1024
    max_body_size: int = 10 * 1024 * 1024
    max_buffered_body_bytes: int = 64 * 1024 * 1024
    body_spool_threshold: int = 1024 * 1024
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    websocket_idle_timeout: float = 300.0
    header_timeout: float = 10.0
    write_high_water: int = 1024 * 1024
    max_pipeline_depth: int = 64
    shutdown_grace: float = 10.0
    max_waiting_handlers: int = 1024
    handler_timeout: float = 30.0
    worker_threads: int = 4
    reuse_port_shared: bool = False
    backlog: int = 1024
    # 64 KiB, not more: os.read(fd, n) allocates n bytes before shrinking them, and past glibc's
    # 128 KiB mmap threshold that is an mmap + munmap + page fault per read (measured here:
    # 20 us per read at 256 KiB against 3 us at 64 KiB, depending on allocator history).
    recv_size: int = 64 * 1024
    tls_handshake_timeout: float = 10.0
    http2: bool = True
    h2_max_concurrent_streams: int = 100
    h2_initial_window_size: int = 1024 * 1024
    h2_max_frame_size: int = 16384
    h2_max_header_list_size: int = 16 * 1024
    h2_max_resets_per_second: int = 200
    h2_worker_max_resets_per_second: int = 1000
    h2_max_pending_output: int = 4 * 1024 * 1024
    h2_max_request_buffer: int = 16 * 1024 * 1024
    trusted_proxies: tuple[str, ...] = ()
    forwarded_header: str = "x-forwarded-for"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or field.name in _NOT_NUMBERS:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"setting {field.name}: expected a finite number, got {value!r}")
            if value < 0:
                raise ConfigError(f"setting {field.name}: expected a value >= 0, got {value!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"setting port: expected 0..65535, got {self.port}")
        if self.slab_capacity < 1:
            raise ConfigError(f"setting slab_capacity: expected >= 1, got {self.slab_capacity}")
        if self.h2_max_concurrent_streams < 1:
            raise ConfigError(f"setting h2_max_concurrent_streams: expected >= 1, got {self.h2_max_concurrent_streams}")
        if not 1 <= self.h2_initial_window_size <= 2**31 - 1:
            got = self.h2_initial_window_size
            raise ConfigError(f"setting h2_initial_window_size: expected 1..2147483647, got {got}")
        if not 16384 <= self.h2_max_frame_size <= 2**24 - 1:
            raise ConfigError(f"setting h2_max_frame_size: expected 16384..16777215, got {self.h2_max_frame_size}")
        if self.tls_handshake_timeout <= 0:
            raise ConfigError(f"setting tls_handshake_timeout: expected > 0, got {self.tls_handshake_timeout}")
        proxies: object = self.trusted_proxies  # a str is a sequence too: refuse it, not its characters
        if isinstance(proxies, str):
            raise ConfigError(f"setting trusted_proxies: expected a sequence of networks, got {proxies!r}")
        object.__setattr__(self, "trusted_proxies", tuple(self.trusted_proxies))  # a list given: frozen as a tuple
        from .forwarded import TrustedProxies

        TrustedProxies(self.trusted_proxies, self.forwarded_header)  # raises ConfigError on a bad entry

    @property
    def worker_count(self) -> int:
        """Workers to run: ``workers``, or the CPU count when it is 0."""
        return self.workers or os.cpu_count() or 1

    def replace(self, **changes: object) -> Settings:
        """Return a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from the environment, then apply ``overrides``.

        Raises:
            ConfigError: an environment variable is not a valid number.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        names = {
            "PORT": "port",
            "WORKERS": "workers",
            "CHOPIN_SLAB_CAPACITY": "slab_capacity",
            "CHOPIN_EPOLL_TIMEOUT_MS": "epoll_timeout_ms",
            "CHOPIN_MAX_HEAD_SIZE": "max_request_head_size",
            "CHOPIN_MAX_HEADER_COUNT": "max_header_count",
            "CHOPIN_MAX_URI_LENGTH": "max_uri_length",
            "CHOPIN_MAX_BODY_SIZE": "max_body_size",
            "CHOPIN_MAX_BUFFERED_BODY_BYTES": "max_buffered_body_bytes",
            "CHOPIN_BODY_SPOOL_THRESHOLD": "body_spool_threshold",
            "CHOPIN_BODY_TIMEOUT": "body_timeout",
            "CHOPIN_KEEPALIVE_TIMEOUT": "keepalive_timeout",
            "CHOPIN_WEBSOCKET_IDLE_TIMEOUT": "websocket_idle_timeout",
            "CHOPIN_HEADER_TIMEOUT": "header_timeout",
            "CHOPIN_SHUTDOWN_GRACE": "shutdown_grace",
            "CHOPIN_MAX_WAITING_HANDLERS": "max_waiting_handlers",
            "CHOPIN_HANDLER_TIMEOUT": "handler_timeout",
            "CHOPIN_WORKER_THREADS": "worker_threads",
            "CHOPIN_MAX_PIPELINE_DEPTH": "max_pipeline_depth",
            "CHOPIN_TLS_HANDSHAKE_TIMEOUT": "tls_handshake_timeout",
        }
        floats = {"keepalive_timeout", "websocket_idle_timeout", "header_timeout", "shutdown_grace"}
        floats.add("tls_handshake_timeout")
        floats.add("body_timeout")
        floats.add("handler_timeout")
        for var, name in names.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                number = float(raw) if name in floats else int(raw)
            except ValueError:
                raise ConfigError(f"environment {var}: expected a number, got {raw!r}") from None
            if not math.isfinite(number) or number < 0:
                raise ConfigError(f"environment {var}: expected a finite number >= 0, got {raw!r}")
            values[name] = number
        flags = (
            ("CHOPIN_PIN_WORKERS", "pin_workers"),
            ("CHOPIN_HTTP2", "http2"),
            ("CHOPIN_REUSE_PORT_SHARED", "reuse_port_shared"),
        )
        for var, name in flags:
            flag = env.get(var, "").strip().lower()
            if not flag:
                continue
            if flag in ("1", "true", "yes", "on"):
                values[name] = True
            elif flag in ("0", "false", "no", "off"):
                values[name] = False
            else:
                expected = "1/0, true/false, yes/no or on/off"
                raise ConfigError(f"environment {var}: expected {expected}, got {flag!r}")
        proxies = env.get("CHOPIN_TRUSTED_PROXIES", "").strip()
        if proxies:
            values["trusted_proxies"] = tuple(p.strip() for p in proxies.split(",") if p.strip())
        header = env.get("CHOPIN_FORWARDED_HEADER", "").strip()
        if header:
            values["forwarded_header"] = header.lower()
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
