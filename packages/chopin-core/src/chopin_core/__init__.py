"""chopin-core: a shared-nothing HTTP/1.1 engine for Python.

Every worker process owns its ``SO_REUSEPORT`` socket, ``epoll`` loop, connection
table and route table; the hot path shares nothing and takes no lock.
"""

from __future__ import annotations

from .client import (
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
    HeadTooLarge,
    ProtocolError,
    RouteConflict,
    UnsupportedTransferCoding,
    UnsupportedVersion,
    UriTooLong,
)
from .forms import FormData
from .middleware import cors, request_id
from .proxy import mount_proxy, proxy
from .request import Headers, Request
from .response import Response
from .router import Router, RouteTable
from .server import Chopin
from .sessions import SessionSigner, sessions
from .settings import Settings
from .testclient import TestClient, TestResponse
from .types import Handler, Middleware
from .websocket import WebSocket, WebSocketHandler

__version__ = "0.1.0"

__all__ = [
    "AddressInUse",
    "BadRequest",
    "BodyTooLarge",
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
    "FormData",
    "Handler",
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
    "SessionSigner",
    "Settings",
    "StatusHandler",
    "TestClient",
    "TestResponse",
    "UnsupportedTransferCoding",
    "UnsupportedVersion",
    "UpstreamClosed",
    "UriTooLong",
    "WebSocket",
    "WebSocketHandler",
    "__version__",
    "cors",
    "delete",
    "get",
    "head",
    "mount_proxy",
    "options",
    "patch",
    "post",
    "proxy",
    "put",
    "request_id",
    "route",
    "sessions",
]
