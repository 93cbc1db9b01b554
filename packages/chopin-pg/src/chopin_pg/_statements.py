"""Prepared statements and the connection's statement cache (an LRU keyed by query text).

How the cache works: a statement prepared with a name (``_cpg<n>``) stays on the
server until it is closed.  Evicting one (capacity, a stale plan, a new type
registry) only queues its name; the Close messages travel in front of the next
command (:meth:`StatementCache.take_pending_close`), so eviction never costs a
round trip of its own.

Schema changes make cached statements stale: PostgreSQL refuses to run a prepared
statement whose result columns changed (0A000 "cached plan must not change result
type"), and inside a transaction that error aborts the block, so it cannot be retried.
So, as psycopg does for DROP, the cache is cleared when the connection itself runs
``DROP ...`` or ``ALTER ...``, and at ``ROLLBACK`` of a transaction that ran ``CREATE ...``
(what it created is gone; a table made again under the same name is a new one).
Statements made stale by another connection are re-prepared and retried once outside
a transaction (:func:`is_stale_plan`).
"""

from __future__ import annotations

from collections import OrderedDict

from . import protocol as p
from ._bind_encoder import BindEncoder, bind_encoder
from ._row_decoder import RowDecoder, RowsDecoder, row_decoder, rows_decoder
from .errors import FeatureNotSupported, InterfaceError, InvalidStatementName, PgError
from .types import STR_PARAM, Decoder, ParamEncoder, TypeRegistry

__all__ = ["PreparedStatement", "StatementCache", "is_stale_plan"]


def is_stale_plan(exc: PgError) -> bool:
    """Whether ``exc`` means a cached statement must be prepared again.

    0A000 "cached plan must not change result type" comes after DDL; 26000 after ``DISCARD ALL``.
    """
    if isinstance(exc, InvalidStatementName):
        return True
    return isinstance(exc, FeatureNotSupported) and "cached plan" in exc.message


class PreparedStatement:
    """A statement parsed on the server, with everything Bind and DataRow decoding need.

    Attributes:
        name: Server-side name (``""`` for the unnamed statement).
        sql: Query text.
        param_oids: Type OIDs the server inferred for ``$1..$n``.
        columns: Result columns (empty if the statement returns no rows).
        names: Column name to index, shared by every :class:`Row`.
        decoders: One decoder per column, chosen once.
        decode_row: Decodes one DataRow (generated code, :func:`~chopin_pg._row_decoder.row_decoder`).
        decode_rows: Decodes the whole DataRows of a read in C, or ``None`` without the accelerator
            (:func:`~chopin_pg._row_decoder.rows_decoder`).
        result_formats: Pre-encoded format-code block for Bind.
        param_encoders: One encoder per parameter, chosen once.
        encode_bind: Encodes one parameter set as a Bind message (:mod:`chopin_pg._bind_encoder`).
    """

    __slots__ = (
        "bind_prefix",
        "columns",
        "decode_row",
        "decode_rows",
        "decoders",
        "encode_bind",
        "name",
        "names",
        "param_encoders",
        "param_oids",
        "result_formats",
        "sql",
    )

    def __init__(
        self, name: str, sql: str, param_oids: tuple[int, ...], columns: list[p.ColumnDescription], types: TypeRegistry
    ) -> None:
        self.name = name
        self.sql = sql
        self.param_oids = param_oids
        self.columns = columns
        self.names: dict[str, int] = {}
        for i, col in enumerate(columns):
            self.names.setdefault(col.name, i)
        codecs = [types.column_codec(col.type_oid) for col in columns]
        self.decoders: list[Decoder] = [dec for _, dec in codecs]
        self.result_formats = p.format_codes([fmt for fmt, _ in codecs])
        self.decode_row: RowDecoder = row_decoder(self.decoders, self.names)
        self.decode_rows: RowsDecoder | None = rows_decoder(self.decoders, self.names)
        self.param_encoders: list[ParamEncoder] = [types.param_encoder(oid) for oid in param_oids]
        # Bind's unnamed portal and this statement's name, encoded once (§55.7 Bind).
        self.bind_prefix = b"\x00" + name.encode() + b"\x00"
        self.encode_bind: BindEncoder = bind_encoder(
            self.bind_prefix, self.param_encoders, self.result_formats, STR_PARAM.encode
        )


class StatementCache:
    """The named statements of one session, least recently used first, and the Closes owed to the server.

    Args:
        capacity: At most this many statements (0 disables caching: every statement is unnamed).

    Attributes:
        statements: Query text to statement, least recently used first.
        capacity: The configured capacity.
    """

    __slots__ = ("_counter", "_created_in_transaction", "_pending_close", "capacity", "statements")

    def __init__(self, capacity: int) -> None:
        self.statements: OrderedDict[str, PreparedStatement] = OrderedDict()
        self.capacity = capacity
        self._counter = 0
        self._pending_close: list[str] = []
        self._created_in_transaction = False  # a CREATE since the last COMMIT/ROLLBACK (see note_command)

    def take_pending_close(self) -> bytes:
        """Return Close messages for statements evicted since the last command (sent before the next one)."""
        if not self._pending_close:
            return b""
        out = b"".join(p.close(b"S", name) for name in self._pending_close)
        self._pending_close.clear()
        return out

    def lookup(self, sql: str) -> PreparedStatement | None:
        """Return the cached statement for ``sql`` and mark it recently used."""
        stmt = self.statements.get(sql)
        if stmt is not None:
            self.statements.move_to_end(sql)
        return stmt

    def evict(self, sql: str) -> None:
        """Forget the cached statement for ``sql``; it is closed on the server with the next command."""
        stmt = self.statements.pop(sql, None)
        if stmt is not None and stmt.name:
            self._pending_close.append(stmt.name)

    def note_command(self, tag: str) -> None:
        """See a CommandComplete tag: clear the cache after DDL that can change a result's shape.

        Called for every command, so the common tags (SELECT, INSERT, UPDATE...) leave at once.
        """
        if not tag or tag[0] not in "ACDR":
            return
        if tag.startswith(("DROP ", "ALTER ")):
            self.clear()
            self._created_in_transaction = False
        elif tag.startswith("CREATE "):
            self._created_in_transaction = True
        elif tag == "ROLLBACK":
            if self._created_in_transaction:
                self.clear()
            self._created_in_transaction = False
        elif tag == "COMMIT":
            self._created_in_transaction = False

    def clear(self) -> None:
        """Forget every cached statement; they are closed on the server with the next command."""
        self._pending_close.extend(stmt.name for stmt in self.statements.values() if stmt.name)
        self.statements.clear()

    def forget(self) -> None:
        """Forget every statement without queueing a Close: DISCARD ALL already deallocated them on the server."""
        self.statements.clear()
        self._pending_close.clear()

    def set_capacity(self, capacity: int) -> None:
        """Change the statement cache capacity, evicting the least recently used statements."""
        if capacity < 0:
            raise InterfaceError(f"statement cache capacity: expected >= 0, got {capacity}")
        self.capacity = capacity
        while len(self.statements) > capacity:
            sql = next(iter(self.statements))
            self.evict(sql)

    def reserve_name(self) -> str:
        """Return a fresh statement name, or ``""`` (the unnamed statement) when the cache is disabled."""
        if self.capacity <= 0:
            return ""
        self._counter += 1
        return f"_cpg{self._counter}"

    def remember(self, stmt: PreparedStatement) -> None:
        """Put a named statement in the cache, evicting the least recently used ones beyond capacity."""
        if not stmt.name or self.capacity <= 0:
            return
        old = self.statements.pop(stmt.sql, None)
        if old is not None and old.name != stmt.name:
            self._pending_close.append(old.name)
        self.make_room()
        self.statements[stmt.sql] = stmt

    def make_room(self) -> None:
        """Evict the least recently used statements until one more fits."""
        while len(self.statements) >= self.capacity:
            self.evict(next(iter(self.statements)))
