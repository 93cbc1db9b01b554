"""chopin-pg: a PostgreSQL driver written on the wire protocol.

A sans-IO protocol core (:mod:`chopin_pg.protocol`, :mod:`chopin_pg._session`)
driven by a small blocking shell (:mod:`chopin_pg.connection`) and a non-blocking
one (:mod:`chopin_pg.async_connection`, :mod:`chopin_pg.async_pool`) whose
awaitables speak chopin's wait protocol.
"""

from __future__ import annotations

from ._result import Result
from ._session import Notification
from ._statements import PreparedStatement
from .async_connection import AsyncConnection
from .async_pool import AsyncPool, AsyncPoolTransaction
from .async_transaction import AsyncTransaction
from .config import PgConfig
from .connection import Connection, Transaction, connect
from .copy import CopyReader, CopyWriter
from .errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionLost,
    DataError,
    ErrorClass,
    IntegrityError,
    InterfaceError,
    IoTimeout,
    NoRows,
    ParameterError,
    PgError,
    PipelineAborted,
    PoolTimeout,
    ProgrammingError,
    ProtocolViolation,
    QueryCanceled,
    ServerError,
    TooManyRows,
    UniqueViolation,
)
from .pipeline import PendingResult, Pipeline
from .pool import PgPool, PgPoolConfig, PooledConnection, PoolStats, ResetMode
from .row import Row
from .types import DEFAULT_TYPES, ParamEncoder, TypeRegistry

#: The distribution version (also in pyproject.toml; tests/integration/test_packaging.py keeps them equal).
__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TYPES",
    "AsyncConnection",
    "AsyncPool",
    "AsyncPoolTransaction",
    "AsyncTransaction",
    "AuthenticationFailed",
    "ConfigError",
    "Connection",
    "ConnectionLost",
    "CopyReader",
    "CopyWriter",
    "DataError",
    "ErrorClass",
    "IntegrityError",
    "InterfaceError",
    "IoTimeout",
    "NoRows",
    "Notification",
    "ParamEncoder",
    "ParameterError",
    "PendingResult",
    "PgConfig",
    "PgError",
    "PgPool",
    "PgPoolConfig",
    "Pipeline",
    "PipelineAborted",
    "PoolStats",
    "PoolTimeout",
    "PooledConnection",
    "PreparedStatement",
    "ProgrammingError",
    "ProtocolViolation",
    "QueryCanceled",
    "ResetMode",
    "Result",
    "Row",
    "ServerError",
    "TooManyRows",
    "Transaction",
    "TypeRegistry",
    "UniqueViolation",
    "__version__",
    "connect",
]
