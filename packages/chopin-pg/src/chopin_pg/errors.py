"""The exception hierarchy of chopin-pg.

Every error the driver raises derives from :class:`PgError`.  Errors the server
reports (ErrorResponse, PostgreSQL 15 docs §55.8 and Appendix A "Error Codes")
are :class:`ServerError` subclasses chosen by SQLSTATE, carrying every field the
server sent.  Each error classifies itself with :meth:`PgError.classify` so that
a pool or a retry loop can decide what to do without parsing messages:

* ``TRANSIENT``: the same operation may succeed if retried (serialization
  failure, deadlock, lock not available, too many connections, server starting).
* ``POOL``: this connection is unusable; discard it and use another (connection
  lost, I/O timeout, protocol violation, admin shutdown).
* ``CLIENT``: the caller's request is wrong and will fail again (syntax, unknown
  column, constraint violation, bad data, no rows).
* ``PERMANENT``: the server or its configuration is at fault and retrying will
  not help soon (authentication failure, disk full, internal error).
"""

from __future__ import annotations

import enum
from typing import ClassVar

__all__ = [
    "AdminShutdown",
    "AuthenticationFailed",
    "CannotConnectNow",
    "CheckViolation",
    "ConfigError",
    "ConnectionLost",
    "DataError",
    "DeadlockDetected",
    "ErrorClass",
    "FeatureNotSupported",
    "ForeignKeyViolation",
    "InFailedTransaction",
    "InsufficientResources",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "InvalidAuthorization",
    "InvalidStatementName",
    "IoTimeout",
    "LockNotAvailable",
    "NoRows",
    "NotNullViolation",
    "OperationalError",
    "ParameterError",
    "PgError",
    "PipelineAborted",
    "PoolTimeout",
    "ProgrammingError",
    "ProtocolViolation",
    "QueryCanceled",
    "SerializationFailure",
    "ServerError",
    "TooManyConnections",
    "TooManyRows",
    "UndefinedColumn",
    "UndefinedTable",
    "UniqueViolation",
    "error_from_fields",
]


class ErrorClass(enum.Enum):
    """What a caller should do about an error."""

    TRANSIENT = "transient"
    POOL = "pool"
    CLIENT = "client"
    PERMANENT = "permanent"


class PgError(Exception):
    """Root of every exception raised by chopin-pg.

    Attributes:
        sqlstate: Five-character SQLSTATE, or ``None`` for errors raised by the driver itself.
        severity: ``ERROR``, ``FATAL``, ``PANIC`` for server errors, else ``None``.
        message: The primary message.
        detail: Optional secondary message.
        hint: Optional suggestion.
        position: 1-based character offset into the query, if the server gave one.
    """

    error_class: ClassVar[ErrorClass] = ErrorClass.PERMANENT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate: str | None = None
        self.severity: str | None = None
        self.detail: str | None = None
        self.hint: str | None = None
        self.position: int | None = None

    def classify(self) -> ErrorClass:
        """Return what a caller should do about this error (see the module docstring)."""
        return self.error_class


# -- errors raised by the driver itself --------------------------------------


class InterfaceError(PgError):
    """The driver was used wrongly (closed connection, bad argument)."""

    error_class = ErrorClass.CLIENT


class ConfigError(InterfaceError, ValueError):
    """A connection URL, setting or environment variable cannot be used."""


class ParameterError(InterfaceError, ValueError):
    """A parameter value has no form its type can hold (``inf`` or ``nan`` inside JSON); nothing was sent."""


class NoRows(InterfaceError):
    """``query_one`` found no row."""


class TooManyRows(InterfaceError):
    """``query_one`` or ``query_opt`` found more than one row."""


class ConnectionLost(PgError):
    """The socket closed or failed; the connection is gone."""

    error_class = ErrorClass.POOL


class IoTimeout(ConnectionLost):
    """A socket read or write took longer than the I/O timeout; the connection was closed."""


class ProtocolViolation(ConnectionLost):
    """The server sent bytes that break the protocol or exceed a buffer limit."""


class PipelineAborted(PgError):
    """A pipelined query was skipped by the server because an earlier query of the same batch failed.

    Attributes:
        failed_query: 1-based index, in the pipeline, of the query whose error caused the skip.
    """

    error_class = ErrorClass.CLIENT

    def __init__(self, message: str, failed_query: int) -> None:
        super().__init__(message)
        self.failed_query = failed_query


class PoolTimeout(PgError):
    """No pooled connection became free within the checkout timeout."""

    error_class = ErrorClass.TRANSIENT


class AuthenticationFailed(PgError):
    """Authentication could not complete on the client side (bad server signature, missing password)."""

    error_class = ErrorClass.PERMANENT


# -- errors reported by the server --------------------------------------------


class ServerError(PgError):
    """An ErrorResponse from the server.

    Attributes:
        fields: Every field the server sent, by its one-letter code (§55.8).
        schema_name: ``s`` field.
        table_name: ``t`` field.
        column_name: ``c`` field.
        constraint_name: ``n`` field.
    """

    error_class = ErrorClass.PERMANENT

    def __init__(self, fields: dict[str, str]) -> None:
        message = fields.get("M", "unknown server error")
        super().__init__(message)
        self.fields = fields
        self.sqlstate = fields.get("C")
        self.severity = fields.get("V") or fields.get("S")
        self.detail = fields.get("D")
        self.hint = fields.get("H")
        pos = fields.get("P")
        self.position = int(pos) if pos and pos.isdigit() else None
        self.schema_name = fields.get("s")
        self.table_name = fields.get("t")
        self.column_name = fields.get("c")
        self.constraint_name = fields.get("n")

    def __str__(self) -> str:
        text = f"{self.severity or 'ERROR'} {self.sqlstate}: {self.message}"
        if self.detail:
            text += f"\nDETAIL: {self.detail}"
        if self.hint:
            text += f"\nHINT: {self.hint}"
        return text


class OperationalError(ServerError):
    """Class 08, 53, 55, 57: the server's operation, not the query, failed."""


class ProgrammingError(ServerError):
    """Class 42 and friends: the statement is wrong."""

    error_class = ErrorClass.CLIENT


class DataError(ServerError):
    """Class 22: a value is invalid for its type."""

    error_class = ErrorClass.CLIENT


class IntegrityError(ServerError):
    """Class 23: a constraint was violated."""

    error_class = ErrorClass.CLIENT


class NotNullViolation(IntegrityError):
    """23502."""


class ForeignKeyViolation(IntegrityError):
    """23503."""


class UniqueViolation(IntegrityError):
    """23505."""


class CheckViolation(IntegrityError):
    """23514."""


class UndefinedTable(ProgrammingError):
    """42P01."""


class UndefinedColumn(ProgrammingError):
    """42703."""


class FeatureNotSupported(ProgrammingError):
    """0A000, also raised for 'cached plan must not change result type'."""


class InvalidStatementName(ProgrammingError):
    """26000: the prepared statement does not exist (e.g. after ``DISCARD ALL``)."""


class InFailedTransaction(ProgrammingError):
    """25P02: commands ignored until end of transaction block."""


class InvalidAuthorization(ServerError):
    """Class 28: authentication failed on the server."""

    error_class = ErrorClass.PERMANENT


class SerializationFailure(ServerError):
    """40001: retry the transaction."""

    error_class = ErrorClass.TRANSIENT


class DeadlockDetected(ServerError):
    """40P01: retry the transaction."""

    error_class = ErrorClass.TRANSIENT


class LockNotAvailable(OperationalError):
    """55P03."""

    error_class = ErrorClass.TRANSIENT


class QueryCanceled(OperationalError):
    """57014: cancelled by request or by statement_timeout."""

    error_class = ErrorClass.CLIENT


class AdminShutdown(OperationalError):
    """57P01/57P02: the server terminated this session."""

    error_class = ErrorClass.POOL


class CannotConnectNow(OperationalError):
    """57P03: the server is starting up or shutting down."""

    error_class = ErrorClass.TRANSIENT


class TooManyConnections(OperationalError):
    """53300."""

    error_class = ErrorClass.TRANSIENT


class InsufficientResources(OperationalError):
    """Class 53 other than 53300: disk full, out of memory."""

    error_class = ErrorClass.PERMANENT


class InternalError(ServerError):
    """Class XX."""


_BY_SQLSTATE: dict[str, type[ServerError]] = {
    "23502": NotNullViolation,
    "23503": ForeignKeyViolation,
    "23505": UniqueViolation,
    "23514": CheckViolation,
    "42P01": UndefinedTable,
    "42703": UndefinedColumn,
    "0A000": FeatureNotSupported,
    "26000": InvalidStatementName,
    "25P02": InFailedTransaction,
    "40001": SerializationFailure,
    "40P01": DeadlockDetected,
    "55P03": LockNotAvailable,
    "57014": QueryCanceled,
    "57P01": AdminShutdown,
    "57P02": AdminShutdown,
    "57P03": CannotConnectNow,
    "53300": TooManyConnections,
}

_BY_CLASS: dict[str, type[ServerError]] = {
    "08": OperationalError,
    "22": DataError,
    "23": IntegrityError,
    "25": ProgrammingError,
    "26": ProgrammingError,
    "28": InvalidAuthorization,
    "34": ProgrammingError,
    "3D": ProgrammingError,
    "3F": ProgrammingError,
    "42": ProgrammingError,
    "44": IntegrityError,
    "53": InsufficientResources,
    "55": OperationalError,
    "57": OperationalError,
    "58": OperationalError,
    "XX": InternalError,
    "0A": ProgrammingError,
    "40": SerializationFailure,
}


class _ConnectionException(OperationalError):
    """Class 08: the connection failed on the server side."""

    error_class = ErrorClass.POOL


_BY_CLASS["08"] = _ConnectionException


def error_from_fields(fields: dict[str, str]) -> ServerError:
    """Build the :class:`ServerError` subclass matching an ErrorResponse's SQLSTATE.

    Args:
        fields: The parsed ErrorResponse fields.

    Returns:
        The exception instance (not raised).
    """
    code = fields.get("C", "")
    cls = _BY_SQLSTATE.get(code) or _BY_CLASS.get(code[:2], ServerError)
    return cls(fields)
