"""A SQLAlchemy 2 dialect for chopin-pg: ``create_engine("postgresql+chopin://user@host/db")``.

Registered by the entry point ``sqlalchemy.dialects`` → ``postgresql.chopin`` (install
``chopin-pg[sqlalchemy]``).  It is SQLAlchemy's PostgreSQL dialect (:class:`PGDialect`:
SQL compilation, reflection, types) over :mod:`chopin_pg.dbapi`.  As for pg8000 and
asyncpg, parameter types are inferred by the server, so bound values are rendered with
casts (``%(x)s::INTEGER``) where SQLAlchemy knows the type.
"""

from __future__ import annotations

import decimal
import secrets
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from sqlalchemy import util
from sqlalchemy.dialects.postgresql import INTERVAL, JSON, JSONB
from sqlalchemy.dialects.postgresql import ranges as sa_ranges
from sqlalchemy.dialects.postgresql.base import PGDialect, PGExecutionContext
from sqlalchemy.dialects.postgresql.pg_catalog import INT2VECTOR, OIDVECTOR
from sqlalchemy.dialects.postgresql.ranges import (
    DATEMULTIRANGE,
    DATERANGE,
    INT4MULTIRANGE,
    INT4RANGE,
    INT8MULTIRANGE,
    INT8RANGE,
    NUMMULTIRANGE,
    NUMRANGE,
    TSMULTIRANGE,
    TSRANGE,
    TSTZMULTIRANGE,
    TSTZRANGE,
)
from sqlalchemy.engine import URL, processors
from sqlalchemy.engine.interfaces import ConnectArgsType, DBAPIConnection, DBAPICursor, IsolationLevel
from sqlalchemy.sql import sqltypes

from . import dbapi, oids
from .errors import ErrorClass, PgError
from .ranges import Range

_JSON_ARRAY, _JSONB_ARRAY = 199, 3807  # json[] and jsonb[] (pg_type.typarray)

__all__ = ["ChopinDialect", "dialect"]

_FLOAT_OIDS = frozenset({700, 701, 1021, 1022})
_DECIMAL_OIDS = frozenset({1700, 1231})
_INT_OIDS = frozenset({20, 21, 23, 26, 1005, 1007, 1016})


class _String(sqltypes.String):
    render_bind_cast = True


class _NumericCommon(sqltypes.NumericCommon):  # type: ignore[type-arg]
    render_bind_cast = True

    def bind_processor(self, dialect: Any) -> None:
        return None  # the driver sends Decimal, float and int as they are

    def result_processor(self, dialect: Any, coltype: object) -> Any:
        # The driver returns numeric as Decimal and float8 as float: convert only across the two.
        if self.asdecimal:
            if coltype in _FLOAT_OIDS:
                return processors.to_decimal_processor_factory(decimal.Decimal, self._effective_decimal_return_scale)
            return None
        if coltype in _DECIMAL_OIDS or coltype in _INT_OIDS:
            return processors.to_float
        return None


class _Numeric(_NumericCommon, sqltypes.Numeric):  # type: ignore[type-arg]
    pass


class _Float(_NumericCommon, sqltypes.Float):  # type: ignore[type-arg]
    pass


class _Integer(sqltypes.Integer):
    render_bind_cast = True


class _SmallInteger(sqltypes.SmallInteger):
    render_bind_cast = True


class _BigInteger(sqltypes.BigInteger):
    render_bind_cast = True


class _Boolean(sqltypes.Boolean):
    render_bind_cast = True


class _DateTime(sqltypes.DateTime):
    render_bind_cast = True


class _Date(sqltypes.Date):
    render_bind_cast = True


class _Time(sqltypes.Time):
    render_bind_cast = True


class _Interval(INTERVAL):
    # PostgreSQL's native INTERVAL, as psycopg's dialect: sqltypes.Interval itself is the
    # emulation over DateTime (binds cast ::TIMESTAMP, literals rendered as timestamps).
    render_bind_cast = True

    @classmethod
    def adapt_emulated_to_native(cls, interval: sqltypes.Interval, **kw: Any) -> INTERVAL:  # type: ignore[override]
        # INTERVAL's own returns a plain INTERVAL, which would lose the bind cast: a
        # timedelta goes as text, and `date + $1` is then ambiguous to the server.
        return cls(precision=interval.second_precision)


class _JSON(JSON):
    # SQLAlchemy serializes the value; the driver sends a str as the JSON text itself.
    render_bind_cast = True


class _JSONB(JSONB):
    render_bind_cast = True


class _JSONIntIndex(sqltypes.JSON.JSONIntIndexType):
    __visit_name__ = "json_int_index"
    render_bind_cast = True


class _JSONStrIndex(sqltypes.JSON.JSONStrIndexType):
    __visit_name__ = "json_str_index"
    render_bind_cast = True


class _Range(sa_ranges.AbstractSingleRangeImpl):  # type: ignore[type-arg]
    # SQLAlchemy's Range <-> chopin_pg.ranges.Range (same four fields).
    def bind_processor(self, dialect: Any) -> Any:
        def to_range(value: Any) -> Any:
            if isinstance(value, sa_ranges.Range):
                return Range(value.lower, value.upper, value.bounds, value.empty)
            return value

        return to_range

    def result_processor(self, dialect: Any, coltype: object) -> Any:
        def to_range(value: Any) -> Any:
            if value is None:
                return None
            return sa_ranges.Range(value.lower, value.upper, bounds=value.bounds, empty=value.empty)

        return to_range


class _MultiRange(sa_ranges.AbstractMultiRangeImpl):  # type: ignore[type-arg]
    def bind_processor(self, dialect: Any) -> Any:
        def to_ranges(value: Any) -> Any:
            if isinstance(value, list):
                return [
                    Range(v.lower, v.upper, v.bounds, v.empty) if isinstance(v, sa_ranges.Range) else v for v in value
                ]
            return value

        return to_ranges

    def result_processor(self, dialect: Any, coltype: object) -> Any:
        def to_ranges(value: Any) -> Any:
            if value is None:
                return None
            return sa_ranges.MultiRange(
                sa_ranges.Range(v.lower, v.upper, bounds=v.bounds, empty=v.empty) for v in value
            )

        return to_ranges


def _space_separated_ints(value: Any) -> list[int] | None:
    # int2vector and oidvector have no binary decoder in the driver: their text is "1 2 3".
    if value is None or isinstance(value, list):
        return value
    return [int(part) for part in str(value).split()]


class _Int2Vector(INT2VECTOR):
    def result_processor(self, dialect: Any, coltype: object) -> Any:
        return _space_separated_ints


class _OidVector(OIDVECTOR):
    def result_processor(self, dialect: Any, coltype: object) -> Any:
        return _space_separated_ints


_MULTIRANGES = (INT4MULTIRANGE, INT8MULTIRANGE, NUMMULTIRANGE, DATEMULTIRANGE, TSMULTIRANGE, TSTZMULTIRANGE)


class ChopinExecutionContext(PGExecutionContext):
    """Server-side cursors (``stream_results=True``) are named cursors of :mod:`chopin_pg.dbapi`."""

    def create_server_side_cursor(self) -> DBAPICursor:
        """Return a named cursor (``DECLARE ... CURSOR``) with a name unique in the session."""
        # Random rather than a counter: no state shared between connections, and a name
        # cannot collide with a cursor an earlier context left open.
        return self._dbapi_connection.cursor(f"c_{secrets.token_hex(8)}")


class ChopinDialect(PGDialect):
    """SQLAlchemy's PostgreSQL dialect over :mod:`chopin_pg.dbapi` (``postgresql+chopin://``)."""

    driver = "chopin"
    supports_statement_cache = True
    default_paramstyle = "pyformat"
    supports_sane_multi_rowcount = True
    supports_server_side_cursors = True
    supports_native_json_serialization = False
    supports_native_json_deserialization = True
    dialect_injects_custom_json_deserializer = True  # on_connect gives it to the driver
    render_bind_cast = True
    description_encoding = None
    execution_ctx_cls = ChopinExecutionContext

    colspecs = util.update_copy(
        PGDialect.colspecs,
        {
            sqltypes.String: _String,
            sqltypes.Numeric: _Numeric,
            sqltypes.Float: _Float,
            sqltypes.Integer: _Integer,
            sqltypes.SmallInteger: _SmallInteger,
            sqltypes.BigInteger: _BigInteger,
            sqltypes.Boolean: _Boolean,
            sqltypes.DateTime: _DateTime,
            sqltypes.Date: _Date,
            sqltypes.Time: _Time,
            sqltypes.Interval: _Interval,
            INTERVAL: _Interval,
            sqltypes.JSON: _JSON,
            JSONB: _JSONB,
            sqltypes.JSON.JSONIntIndexType: _JSONIntIndex,
            sqltypes.JSON.JSONStrIndexType: _JSONStrIndex,
            INT2VECTOR: _Int2Vector,
            OIDVECTOR: _OidVector,
            **dict.fromkeys((INT4RANGE, INT8RANGE, NUMRANGE, DATERANGE, TSRANGE, TSTZRANGE), _Range),
            **dict.fromkeys(_MULTIRANGES, _MultiRange),
        },
    )

    def on_connect(self) -> Callable[[Any], None] | None:
        """Give each new connection the engine's ``json_deserializer``, when one was set.

        chopin-pg decodes json and jsonb itself (``supports_native_json_deserialization``),
        so SQLAlchemy would never call a ``create_engine(json_deserializer=...)``: the
        connection's json/jsonb decoders (and their arrays') call it instead.
        """
        base = super().on_connect()
        loads = self._json_deserializer
        if loads is None:
            return base

        def json_text(data: bytes) -> Any:
            return loads(data.decode())

        def jsonb_binary(data: bytes) -> Any:
            return loads(data[1:].decode())  # a version byte (1), then the text

        def connect(dbapi_connection: Any) -> None:
            if base is not None:
                base(dbapi_connection)
            types = dbapi_connection.native.types
            types.register(oids.JSON, text=json_text, binary=json_text, array_oid=_JSON_ARRAY)
            types.register(oids.JSONB, text=json_text, binary=jsonb_binary, array_oid=_JSONB_ARRAY)

        return connect

    @classmethod
    def load_provisioning(cls) -> None:
        """Load SQLAlchemy's PostgreSQL test provisioning, for its dialect suite (``sqlalchemy.testing``).

        The default looks for a ``provision`` module beside the dialect's own (``chopin_pg.provision``);
        this dialect is SQLAlchemy's PostgreSQL one, so its provisioning is too (temporary
        tables, schemas, dropping what a test left).
        """
        import sqlalchemy.dialects.postgresql.provision  # noqa: F401

    @classmethod
    def import_dbapi(cls) -> ModuleType:
        """Return :mod:`chopin_pg.dbapi`."""
        return dbapi

    def create_connect_args(self, url: URL) -> ConnectArgsType:
        """Pass the URL on as a ``postgresql://`` URL (query parameters keep chopin-pg's meaning).

        Several hosts, written as SQLAlchemy documents them (``?host=h1:5432&host=h2:5433``, with
        ``target_session_attrs``), become libpq's ``postgresql://h1:5432,h2:5433/...``.
        """
        query = dict(url.query)
        hosts = query.pop("host", None)
        if isinstance(hosts, tuple) or (isinstance(hosts, str) and "," in hosts):
            host_list = ",".join(hosts) if isinstance(hosts, tuple) else hosts
            text = url.set(drivername="postgresql", host=None, port=None, query=query).render_as_string(
                hide_password=False
            )
            scheme, rest = text.split("://", 1)
            userinfo, at, tail = rest.partition("@")
            text = f"{scheme}://{userinfo}@{host_list}{tail}" if at else f"{scheme}://{host_list}{rest}"
            return ([text], {})
        return ([url.set(drivername="postgresql").render_as_string(hide_password=False)], {})

    def is_disconnect(self, e: Exception, connection: Any, cursor: Any) -> bool:
        """A connection is gone when the error classifies as ``POOL`` or the connection is closed."""
        if isinstance(e, PgError) and e.classify() is ErrorClass.POOL:
            return True
        return isinstance(e, dbapi.InterfaceError) and "connection is closed" in str(e)

    def get_isolation_level_values(self, dbapi_connection: Any) -> Sequence[IsolationLevel]:
        """PostgreSQL's four levels and ``AUTOCOMMIT``."""
        return ("AUTOCOMMIT", "READ COMMITTED", "READ UNCOMMITTED", "REPEATABLE READ", "SERIALIZABLE")

    def set_isolation_level(self, dbapi_connection: DBAPIConnection, level: Any) -> None:
        """``AUTOCOMMIT`` switches the DB-API connection; the others set the session's default level."""
        level = str(level).replace("_", " ")
        if level == "AUTOCOMMIT":
            dbapi_connection.autocommit = True
            return
        dbapi_connection.autocommit = False
        self._set_session_characteristic(dbapi_connection, f"ISOLATION LEVEL {level}")

    def detect_autocommit_setting(self, dbapi_conn: DBAPIConnection) -> bool:
        """Whether the DB-API connection is in autocommit."""
        return bool(dbapi_conn.autocommit)

    def _set_session_characteristic(self, dbapi_connection: Any, what: str) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET SESSION CHARACTERISTICS AS TRANSACTION {what}")
        finally:
            cursor.close()
        if not dbapi_connection.autocommit:
            dbapi_connection.commit()

    def _show(self, dbapi_connection: Any, setting: str) -> str:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SHOW {setting}")
            return str(cursor.fetchone()[0])
        finally:
            cursor.close()

    def set_readonly(self, connection: Any, value: bool) -> None:
        """``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`` (or ``READ WRITE``)."""
        self._set_session_characteristic(connection, "READ ONLY" if value else "READ WRITE")

    def get_readonly(self, connection: Any) -> bool:
        """Whether transactions are read-only by default."""
        return self._show(connection, "transaction_read_only") == "on"

    def set_deferrable(self, connection: Any, value: bool) -> None:
        """``SET SESSION CHARACTERISTICS AS TRANSACTION DEFERRABLE`` (or ``NOT DEFERRABLE``)."""
        self._set_session_characteristic(connection, "DEFERRABLE" if value else "NOT DEFERRABLE")

    def get_deferrable(self, connection: Any) -> bool:
        """Whether transactions are deferrable by default."""
        return self._show(connection, "transaction_deferrable") == "on"


dialect = ChopinDialect
