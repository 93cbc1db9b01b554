"""chopin-core: a shared-nothing HTTP/1.1 engine for Python.

Every worker process owns its ``SO_REUSEPORT`` socket, ``epoll`` loop, connection
table and route table; the hot path shares nothing and takes no lock.
"""

from __future__ import annotations

from ._engine.tasks import run_blocking
from .client import (
    AsyncHttpClient,
    CertificateVerifyError,
    ClientError,
    ClientResponse,
    ClientSettings,
    ConnectError,
    ConnectTimeout,
    HttpClient,
    InvalidURL,
    ReadTimeout,
    ResponseProtocolError,
    ResponseTooLarge,
    TlsError,
    UpstreamClosed,
)
from .context import Context, Extractor, Json, Query
from .decorators import delete, get, head, options, patch, post, put, route
from .error_handlers import ErrorHandler, StatusHandler
from .errors import (
    AddressInUse,
    BadRequest,
    BodyTooLarge,
    ChopinError,
    ConfigError,
    ExtractError,
    HandlerTimeout,
    HeadTooLarge,
    ProtocolError,
    RouteConflict,
    UnsupportedTransferCoding,
    UnsupportedVersion,
    UriTooLong,
)
from .filecache import FileCacheLimits
from .forms import FormData
from .middleware import cors, request_id, with_async_form
from .proxy import mount_proxy, proxy
from .ratelimit import rate_limit
from .request import Headers, Request
from .response import Response
from .router import Router, RouteTable
from .server import Chopin
from .sessions import SessionSigner, sessions
from .settings import Settings
from .sse import ServerSentEvent, last_event_id
from .testclient import TestClient, TestResponse
from .types import AsyncHandler, AsyncMiddleware, Handler, Middleware
from .waiting import defer, gather, sleep, to_thread, wait_fd, wait_readable, wait_writable
from .websocket import WebSocket, WebSocketHandler

__version__ = "0.1.0"

__all__ = [
    "AddressInUse",
    "AsyncHandler",
    "AsyncHttpClient",
    "AsyncMiddleware",
    "BadRequest",
    "BodyTooLarge",
    "CertificateVerifyError",
    "Chopin",
    "ChopinError",
    "ClientError",
    "ClientResponse",
    "ClientSettings",
    "ConfigError",
    "ConnectError",
    "ConnectTimeout",
    "Context",
    "ErrorHandler",
    "ExtractError",
    "Extractor",
    "FileCacheLimits",
    "FormData",
    "Handler",
    "HandlerTimeout",
    "HeadTooLarge",
    "Headers",
    "HttpClient",
    "InvalidURL",
    "Json",
    "Middleware",
    "ProtocolError",
    "Query",
    "ReadTimeout",
    "Request",
    "Response",
    "ResponseProtocolError",
    "ResponseTooLarge",
    "RouteConflict",
    "RouteTable",
    "Router",
    "ServerSentEvent",
    "SessionSigner",
    "Settings",
    "StatusHandler",
    "TestClient",
    "TestResponse",
    "TlsError",
    "UnsupportedTransferCoding",
    "UnsupportedVersion",
    "UpstreamClosed",
    "UriTooLong",
    "WebSocket",
    "WebSocketHandler",
    "__version__",
    "cors",
    "defer",
    "delete",
    "gather",
    "get",
    "head",
    "last_event_id",
    "mount_proxy",
    "options",
    "patch",
    "post",
    "proxy",
    "put",
    "rate_limit",
    "request_id",
    "route",
    "run_blocking",
    "sessions",
    "sleep",
    "to_thread",
    "wait_fd",
    "wait_readable",
    "wait_writable",
    "with_async_form",
]
