"""Structured logging: JSON lines on stderr, and the optional access log.

How it works: :func:`configure` (what ``Chopin.with_logging()`` calls) puts one
:class:`JsonFormatter` handler on the *root* logger, so the engine's loggers
(``chopin_core.*``), the application's and the libraries' all come out as one
JSON object per line.  The level comes from ``CHOPIN_LOG`` unless given.  Each
worker stamps its index into the formatter when it starts (the formatter is a
per-process object after the fork, so no lock and no sharing).

The access log is the logger ``chopin_core.access``: when it is switched on,
each worker builds one :class:`AccessLog` at start and the worker calls its
pre-bound :meth:`AccessLog.emit` once per response.  When it is off the worker
holds ``None`` and pays one ``is not None`` test per request.  Records are built
directly (no ``findCaller`` stack walk, no ``extra`` dict) and handed to
``Logger.handle``, so user handlers and filters still see them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Final

import orjson

from ._wire.h1_writer import NO_BODY
from .errors import ConfigError
from .files import if_range_holds, not_modified
from .forwarded import Origin, client_of
from .middleware import REQUEST_ID_HEADER
from .request import Request
from .response import Response

__all__ = [
    "ACCESS_LOGGER",
    "AccessLog",
    "JsonFormatter",
    "JsonHandler",
    "configure",
    "level_from_env",
]

ACCESS_LOGGER: Final = "chopin_core.access"
LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_NO_BODY: Final = NO_BODY
_new_record = object.__new__
_time = time.time
# The request id header line as chopin_core.request_id() writes it.
_REQUEST_ID_LINE: Final = REQUEST_ID_HEADER.encode() + b": "
# Attributes every LogRecord has; anything else on a record came from ``extra=``
# (or the access log) and becomes a JSON field of its own.
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_RESERVED: Final = frozenset({"timestamp", "level", "worker", "logger", "message", "exc_info", "stack_info"})


def level_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The level named by ``CHOPIN_LOG`` (debug, info, warning, error; any case), INFO when unset.

    Raises:
        ConfigError: ``CHOPIN_LOG`` names no level.
    """
    env = os.environ if environ is None else environ
    raw = env.get("CHOPIN_LOG", "").strip().lower()
    if not raw:
        return logging.INFO
    try:
        return LEVELS[raw]
    except KeyError:
        raise ConfigError(f"environment CHOPIN_LOG: expected debug, info, warning or error, got {raw!r}") from None


def _parse_level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    try:
        return LEVELS[level.strip().lower()]
    except KeyError:
        raise ConfigError(f"with_logging level: expected debug, info, warning or error, got {level!r}") from None


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line.

    Fields, in order: ``timestamp`` (RFC 3339, UTC, milliseconds), ``level``,
    ``worker`` (the worker index; ``null`` in the supervisor), ``logger``,
    ``message``, then every ``extra=`` attribute (the access log's ``method``,
    ``path``, ``status``, ``bytes``, ``duration_ms``), then ``exc_info`` and
    ``stack_info`` as strings when present.  Values JSON cannot hold are written
    with ``str()``.

    Attributes:
        worker: stamped on every record; set in each worker process when it starts.
    """

    def __init__(self) -> None:
        super().__init__()
        self.worker: int | None = None
        self._second = -1
        self._prefix = ""

    def _timestamp(self, created: float) -> str:
        # The date part is rebuilt once a second, not per record.
        second = int(created)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as a JSON object (no trailing newline)."""
        doc: dict[str, object] = {
            "timestamp": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "worker": self.worker,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                doc[key if key not in _RESERVED else "extra_" + key] = value
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc_info"] = record.exc_text
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(doc, default=str).decode()


class JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler (stderr by default) with a :class:`JsonFormatter`: the one ``with_logging`` owns."""

    formatter: JsonFormatter

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.setFormatter(JsonFormatter())


class AccessLog:
    """Emits one ``chopin_core.access`` record per response.

    A worker holds ``AccessLog(logger).emit`` (or ``None``) and calls it with the
    request, the response and the handler's duration in nanoseconds.

    Args:
        logger: the access logger; :meth:`for_worker` gives ``chopin_core.access``.
    """

    __slots__ = ("_handle", "_start", "_template")

    def __init__(self, logger: logging.Logger) -> None:
        self._handle = logger.handle
        # LogRecord() costs ~3 us (getpid, thread and path lookups on every call), more
        # than the request it logs: build one here, in the worker, and copy its fields.
        # The template already holds the access fields: dict.copy() of it is one
        # memcpy, where update() or {**...} would insert key by key.
        template = logging.LogRecord(logger.name, logging.INFO, "", 0, "%s %s %d", (), None).__dict__
        template.update(method="", path="", status=0, bytes=None, duration_ms=0.0, client="", client_port=0)
        self._template = template
        self._start = template["created"] - template["relativeCreated"] / 1000

    def emit(self, req: Request, resp: Response, elapsed_ns: int, origin: Origin | None = None) -> None:
        """Log ``req``, which came over ``origin``, answered by ``resp`` after ``elapsed_ns``.

        The client (``client``, ``client_port``) is ``ctx.client``'s: the peer, or the
        hop trusted proxies report (:mod:`chopin_core.forwarded`).
        """
        status = resp.status
        file = resp.file_body
        if file is not None:
            size: int | None = file.length
            if status == 206 and not if_range_holds(req, file):
                status, size = 200, file.size  # the worker sends the whole file (RFC 9110 13.1.5)
            if status == 200 and req.method in ("GET", "HEAD") and not_modified(req, file):
                status = 304
        elif resp.stream_body is not None:
            size = None  # chunked: the length is not known yet
        else:
            size = len(resp.body)
        method = req.method
        if method == "HEAD" or status in _NO_BODY or resp.takeover is not None:
            size = 0
        path = req.path
        created = _time()
        record = _new_record(logging.LogRecord)
        record.__dict__ = fields = self._template.copy()
        fields["created"] = created
        fields["msecs"] = (created - int(created)) * 1000
        fields["relativeCreated"] = (created - self._start) * 1000
        fields["args"] = (method, path, status)
        fields["method"] = method
        fields["path"] = path
        fields["status"] = status
        fields["bytes"] = size
        fields["duration_ms"] = round(elapsed_ns / 1e6, 3)
        if origin is not None:
            fields["client"], fields["client_port"] = client_of(origin, req)
        lines = resp.extra_lines
        if _REQUEST_ID_LINE in lines:  # set by chopin_core.request_id(): one search of a short block
            start = lines.index(_REQUEST_ID_LINE) + len(_REQUEST_ID_LINE)
            fields["request_id"] = lines[start : lines.index(b"\r\n", start)].decode("latin-1")
        self._handle(record)


class _ProcessLogging:
    """Per-process logging switches (deliberate module state, like the ``logging`` tree itself).

    ``with_logging``'s worker-start hook fills it in each worker process, before
    the :class:`~chopin_core.worker.Worker` is built; the worker reads it once, in
    its constructor.  The supervisor never sets it, so a restarted worker (a new
    fork of the supervisor) starts clean.
    """

    __slots__ = ("access",)

    def __init__(self) -> None:
        self.access = False


PROCESS: Final = _ProcessLogging()


def worker_access_log() -> Callable[[Request, Response, int, Origin | None], None] | None:
    """The access-log callable a worker built now should use, or None (off, or INFO disabled)."""
    if not PROCESS.access:
        return None
    logger = logging.getLogger(ACCESS_LOGGER)
    if logger.disabled or not logger.isEnabledFor(logging.INFO):
        return None
    return AccessLog(logger).emit


def configure(level: int | str | None = None, stream: IO[str] | None = None) -> JsonHandler:
    """Send every logger's records to ``stream`` (stderr) as JSON lines.

    Installs a :class:`JsonHandler` on the root logger and sets the root level
    (``level``, else ``CHOPIN_LOG``, else INFO).  A handler installed by an
    earlier call is replaced, and so are root handlers writing plain text to
    stderr (``logging.basicConfig``'s): one stream, one format.  Other handlers
    (files, syslog, ...) are kept.

    Returns:
        the installed handler.

    Raises:
        ConfigError: ``level`` or ``CHOPIN_LOG`` names no level.
    """
    resolved = level_from_env() if level is None else _parse_level(level)
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, JsonHandler) or (
            type(old) is logging.StreamHandler and old.stream in (sys.stderr, sys.__stderr__)
        ):
            root.removeHandler(old)
    handler = JsonHandler(stream)
    root.addHandler(handler)
    root.setLevel(resolved)
    # serve() gives the engine's logger a plain handler when it finds none; with
    # records propagating to the root, the engine must not print twice.
    engine = logging.getLogger("chopin_core")
    for old in list(engine.handlers):
        if type(old) is logging.StreamHandler:
            engine.removeHandler(old)
    engine.setLevel(logging.NOTSET)
    return handler
