"""PEP 249 exceptions, type objects and constructors for :mod:`chopin_pg.dbapi` (which re-exports them).

The exceptions derive from :class:`~chopin_pg.PgError`; :func:`translate` turns an error of
chopin-pg into an instance of both its own class and its PEP 249 class (chosen by SQLSTATE).
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import NamedTuple

from . import Result, oids
from . import errors as e

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "Column",
    "DBAPITypeObject",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Translated",
    "Warning",
    "describe",
    "pep249_class",
    "translate",
]


# -- exceptions (PEP 249 "Exceptions") -----------------------------------------


class Warning(Exception):
    """Important warnings (PEP 249); chopin-pg raises none, server notices go to the notice handler."""


class Error(e.PgError):
    """Base of every PEP 249 error; also a :class:`chopin_pg.PgError`."""


class InterfaceError(Error):
    """The interface was misused (closed connection or cursor, no result to fetch)."""


class DatabaseError(Error):
    """An error about the database."""


class DataError(DatabaseError):
    """A value is invalid for its type (SQLSTATE class 22)."""


class OperationalError(DatabaseError):
    """The database's operation failed: connection lost, resources, transaction rollback (08, 40, 53, 57...)."""


class IntegrityError(DatabaseError):
    """A constraint was violated (class 23)."""


class InternalError(DatabaseError):
    """Invalid cursor or transaction state, or the server's own internal error (24, 25, XX)."""


class ProgrammingError(DatabaseError):
    """The statement is wrong: syntax, unknown table, wrong number of parameters (42, 26, 34...)."""


class NotSupportedError(DatabaseError):
    """A feature the server or the driver does not support (0A)."""


for _cls in (Warning, Error, InterfaceError, DatabaseError, DataError, OperationalError, IntegrityError,
             InternalError, ProgrammingError, NotSupportedError):  # fmt: skip
    _cls.__module__ = "chopin_pg.dbapi"  # where users import them from

# SQLSTATE class -> PEP 249 class, as psycopg (psycopg/errors.py) and Appendix A of the PostgreSQL docs.
_BY_SQLSTATE_CLASS: dict[str, type[DatabaseError]] = {
    "08": OperationalError,
    "0A": NotSupportedError,
    "20": ProgrammingError,
    "21": ProgrammingError,
    "22": DataError,
    "23": IntegrityError,
    "24": InternalError,
    "25": InternalError,
    "26": ProgrammingError,
    "27": OperationalError,
    "28": OperationalError,
    "2B": InternalError,
    "2D": InternalError,
    "2F": OperationalError,
    "34": ProgrammingError,
    "38": OperationalError,
    "39": OperationalError,
    "3B": OperationalError,
    "3D": ProgrammingError,
    "3F": ProgrammingError,
    "40": OperationalError,
    "42": ProgrammingError,
    "44": ProgrammingError,
    "53": OperationalError,
    "54": OperationalError,
    "55": OperationalError,
    "57": OperationalError,
    "58": OperationalError,
    "F0": OperationalError,
    "HV": OperationalError,
    "P0": ProgrammingError,
    "XX": InternalError,
}

# Errors the driver raises itself (no SQLSTATE), most specific first.
_BY_DRIVER_CLASS: tuple[tuple[type[e.PgError], type[Error]], ...] = (
    (e.ParameterError, DataError),
    (e.InterfaceError, InterfaceError),
    (e.ConnectionLost, OperationalError),
    (e.PoolTimeout, OperationalError),
    (e.AuthenticationFailed, OperationalError),
    (e.PipelineAborted, OperationalError),
)

# (chopin-pg class, PEP 249 class) -> a class deriving from both.  A deliberate registry:
# it only grows by the error classes the driver defines, at most once each.
_BOTH: dict[tuple[type[e.PgError], type[Error]], type[Error]] = {}


def pep249_class(exc: e.PgError) -> type[Error]:
    """Return the PEP 249 class an error of chopin-pg belongs to (by SQLSTATE for server errors)."""
    if isinstance(exc, Error):
        return type(exc)
    if exc.sqlstate:
        return _BY_SQLSTATE_CLASS.get(exc.sqlstate[:2], DatabaseError)
    for native, pep in _BY_DRIVER_CLASS:
        if isinstance(exc, native):
            return pep
    return DatabaseError


def translate(exc: e.PgError) -> Error:
    """Return ``exc`` as an instance of both its chopin-pg class and its PEP 249 class.

    The attributes (``sqlstate``, ``fields``, ``detail``...) and the traceback are kept.
    """
    if isinstance(exc, Error):
        return exc
    pep = pep249_class(exc)
    key = (type(exc), pep)
    both = _BOTH.get(key)
    if both is None:
        both = type(
            type(exc).__name__, (pep, type(exc)), {"__module__": "chopin_pg.dbapi", "__doc__": type(exc).__doc__}
        )
        _BOTH[key] = both
    new = both.__new__(both, *exc.args)
    new.__dict__.update(exc.__dict__)
    new.__cause__ = exc.__cause__
    return new.with_traceback(exc.__traceback__)


class Translated:
    """``with Translated():`` re-raises chopin-pg errors as PEP 249 ones."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, e.PgError) and not isinstance(exc, Error):
            raise translate(exc) from exc.__cause__


# -- type objects and constructors (PEP 249 "Type Objects and Constructors") --


class DBAPITypeObject:
    """Compares equal to the type OIDs of one PEP 249 category (``description[i][1] == STRING``)."""

    def __init__(self, name: str, type_oids: frozenset[int]) -> None:
        self.name = name
        self.oids = type_oids

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other is self
        return other in self.oids

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<DBAPITypeObject {self.name}>"


STRING = DBAPITypeObject("STRING", frozenset({oids.TEXT, oids.VARCHAR, oids.BPCHAR, oids.NAME, oids.CHAR}))
BINARY = DBAPITypeObject("BINARY", frozenset({oids.BYTEA}))
NUMBER = DBAPITypeObject(
    "NUMBER", frozenset({oids.INT2, oids.INT4, oids.INT8, oids.FLOAT4, oids.FLOAT8, oids.NUMERIC, oids.OID, 790})
)
DATETIME = DBAPITypeObject(
    "DATETIME",
    frozenset({oids.DATE, oids.TIME, oids.TIMETZ, oids.TIMESTAMP, oids.TIMESTAMPTZ, oids.INTERVAL}),
)
ROWID = DBAPITypeObject("ROWID", frozenset({oids.OID, 27}))  # 27: tid

Date = _dt.date
Time = _dt.time
Timestamp = _dt.datetime
Binary = bytes


def DateFromTicks(ticks: float) -> _dt.date:  # noqa: N802 - the name PEP 249 requires
    """The local date of a POSIX timestamp."""
    return _dt.date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> _dt.time:  # noqa: N802 - the name PEP 249 requires
    """The local time of day of a POSIX timestamp."""
    return _dt.time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> _dt.datetime:  # noqa: N802 - the name PEP 249 requires
    """The local date and time of a POSIX timestamp."""
    return _dt.datetime(*time.localtime(ticks)[:6])


class Column(NamedTuple):
    """One entry of :attr:`Cursor.description`: PEP 249's seven items, readable by name."""

    name: str
    type_code: int
    display_size: int | None
    internal_size: int | None
    precision: int | None
    scale: int | None
    null_ok: bool | None


def describe(result: Result) -> list[Column] | None:
    """The :attr:`Cursor.description` of a result: ``None`` when it has no columns."""
    if not result.columns:
        return None
    out = []
    for col in result.columns:
        precision = scale = None
        if col.type_oid == oids.NUMERIC and col.type_modifier >= 4:
            mod = col.type_modifier - 4
            precision, scale = (mod >> 16) & 0xFFFF, mod & 0xFFFF
        size = col.type_size if col.type_size > 0 else None
        if size is None and col.type_oid in (oids.VARCHAR, oids.BPCHAR) and col.type_modifier >= 4:
            size = col.type_modifier - 4
        out.append(Column(col.name, col.type_oid, None, size, precision, scale, None))
    return out
