"""The sans-IO half of pipelining: queued extended-protocol queries and the generator that reads their answers.

How it works: each queued query becomes a :class:`PipelineOp` and its messages
are appended to one outgoing buffer (Bind + Execute for a cached statement;
Parse + Describe(S) + Bind + Execute for a statement not cached yet).  A batch
ends with one Sync, so the whole batch is one write and one read loop (§55.2.4
"Pipelining").  The server answers in order, so the reader walks the ops: each
op's answers end with CommandComplete, EmptyQueryResponse or PortalSuspended.
After an ErrorResponse the server skips every message up to the Sync; the op
being answered gets the error and every later op gets :class:`PipelineAborted`.

A statement parsed inside the batch has no parameter types yet when its Bind is
encoded, so its parameters go in text format and its results come back in text
format (decoded with the text decoders of the columns Describe reports).  Once
described it enters the connection's statement cache, and later batches bind
it with binary codecs as usual.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from . import _codecs as c
from . import protocol as p
from ._bind import bind_message
from ._result import Gen, Result
from ._row_decoder import decode_row as _decode_row
from ._session import Session
from ._statements import PreparedStatement, is_stale_plan
from .errors import PgError, PipelineAborted, ServerError
from .protocol import (
    BIND_COMPLETE,
    CLOSE_COMPLETE,
    COMMAND_COMPLETE,
    DATA_ROW,
    EMPTY_QUERY,
    ERROR,
    NO_DATA,
    PARAMETER_DESCRIPTION,
    PARSE_COMPLETE,
    PORTAL_SUSPENDED,
    READY,
    ROW_DESCRIPTION,
)
from .row import Row
from .types import Decoder

__all__ = ["PipelineBatch", "PipelineOp", "run_batch"]

_TEXT_RESULTS = b"\x00\x00"  # Bind result-format block: every column in text
_EXECUTE = p.execute()  # unnamed portal, no row limit: the same bytes for every query


class _Parsing:
    """A statement whose Parse + Describe travel in the current batch; filled when Describe is answered."""

    __slots__ = ("columns", "decoders", "name", "names", "param_oids", "sql")

    def __init__(self, name: str, sql: str) -> None:
        self.name = name
        self.sql = sql
        self.param_oids: tuple[int, ...] = ()
        self.columns: list[p.ColumnDescription] = []
        self.decoders: list[Decoder] = []
        self.names: dict[str, int] = {}


class PipelineOp:
    """One queued query and, once its batch is read, its outcome.

    Attributes:
        index: 1-based position in the pipeline (used in error messages).
        sql: Query text.
        result: The :class:`Result` once answered successfully.
        error: The exception this query raises (its own error, or :class:`PipelineAborted`).
        done: Whether the outcome is known.
        stmt: The cached statement it binds, or ``None`` when it is parsed inside the batch.
        parsing: The statement parsed inside the batch (filled when Describe is answered), or ``None``.
    """

    __slots__ = ("done", "error", "index", "parsing", "result", "sql", "stmt")

    def __init__(self, index: int, sql: str, stmt: PreparedStatement | None, parsing: _Parsing | None) -> None:
        self.index = index
        self.sql = sql
        self.stmt = stmt
        self.parsing = parsing
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.done = False

    def fail(self, error: BaseException) -> None:
        """Resolve the op with ``error`` (its own, :class:`PipelineAborted`, or the connection's)."""
        self.error = error
        self.done = True


class PipelineBatch:
    """Queries queued since the last Sync, encoded as they are queued.

    Args:
        session: The connection's session (statement cache, type registry).
        first_index: The 1-based index the first query of this batch gets.
    """

    def __init__(self, session: Session, first_index: int = 1) -> None:
        self._session = session
        self._next_index = first_index
        self._parts: list[bytes] = []
        self._parsing: dict[str, _Parsing] = {}
        self.ops: list[PipelineOp] = []

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def next_index(self) -> int:
        """The index the next queued query will get."""
        return self._next_index

    def add(self, sql: str, params: Sequence[Any]) -> PipelineOp:
        """Encode one query into the batch.

        Args:
            sql: One statement with ``$1..$n`` placeholders.
            params: The values (``None`` for NULL).

        Returns:
            The op, resolved when the batch is read.

        Raises:
            DataError: The number of values does not match a cached statement.
        """
        session = self._session
        index = self._next_index
        stmt = session.cache.lookup(sql)
        if stmt is not None:
            self._parts.append(bind_message(stmt, params))
            op = PipelineOp(index, sql, stmt, None)
        else:
            parsing = self._parsing.get(sql)
            if parsing is None:
                name = session.cache.reserve_name()
                parsing = _Parsing(name, sql)
                # An unnamed statement is replaced by the next Parse, so it is never shared.
                if name:
                    self._parsing[sql] = parsing
                self._parts.append(p.parse(name, sql) + p.describe(b"S", name))
            values = [None if v is None else c.encode_text(v) for v in params]
            self._parts.append(p.bind("", parsing.name, _TEXT_RESULTS, values, _TEXT_RESULTS))
            op = PipelineOp(index, sql, None, parsing)
        self._parts.append(_EXECUTE)
        self._next_index += 1
        self.ops.append(op)
        return op

    def encode(self) -> bytes:
        """Return the whole batch as one write: pending Closes, the queued messages, Sync."""
        return self._session.cache.take_pending_close() + b"".join(self._parts) + p.sync()


def _described(session: Session, parsing: _Parsing) -> None:
    parsing.decoders = [session.types.text_decoder(col.type_oid) for col in parsing.columns]
    parsing.names = {}
    for i, col in enumerate(parsing.columns):
        parsing.names.setdefault(col.name, i)
    if parsing.name:
        # Prepared statements outlive an aborted transaction, so the cache may keep it.
        session.cache.remember(
            PreparedStatement(parsing.name, parsing.sql, parsing.param_oids, parsing.columns, session.types)
        )


def run_batch(session: Session, batch: PipelineBatch) -> Gen:
    """Send ``batch`` in one write and resolve each op from the answers, up to ReadyForQuery.

    Nothing is raised for a server error (each op carries its own); the return
    value is the first failure, or ``None``.

    Returns:
        The first op's exception, or ``None`` if every op succeeded.
    """
    ops = batch.ops
    if not ops:
        return None
    yield batch.encode()
    parser = session.parser
    i = 0  # the op being answered
    op = ops[0]
    rows: list[Row] = []
    columns: list[p.ColumnDescription] = []
    decoders: list[Decoder] = []
    names: dict[str, int] = {}
    decode_error: Exception | None = None
    first: BaseException | None = None

    def start(op: PipelineOp) -> None:
        nonlocal columns, decoders, names
        if op.stmt is not None:
            columns, decoders, names = op.stmt.columns, op.stmt.decoders, op.stmt.names
        elif op.parsing is not None:
            parsing = op.parsing
            columns, decoders, names = parsing.columns, parsing.decoders, parsing.names

    def finish(result: Result | None, error: BaseException | None) -> None:
        nonlocal i, op, rows, decode_error, first
        if error is None and decode_error is not None:
            error = decode_error
        if error is not None:
            op.fail(error)
            first = first or error
        else:
            op.result = result
            op.done = True
        rows, decode_error = [], None
        i += 1
        if i < len(ops):
            op = ops[i]
            start(op)

    start(op)
    while True:
        raw = parser.next_raw()
        if raw is None:
            parser.feed((yield None) or b"")
            continue
        tag, body = raw
        if tag == DATA_ROW:
            try:
                rows.append(_decode_row(body, decoders, names))
            except Exception as exc:  # keep reading; this op fails alone
                decode_error = decode_error or exc
        elif tag == COMMAND_COMPLETE:
            command = body[:-1].decode()
            session.cache.note_command(command)
            finish(Result(rows, command, columns), None)
        elif tag == EMPTY_QUERY:
            finish(Result([], "", columns), None)
        elif tag == PORTAL_SUSPENDED:
            finish(Result(rows, "", columns), None)
        elif tag in (BIND_COMPLETE, PARSE_COMPLETE, CLOSE_COMPLETE):
            continue
        elif tag == PARAMETER_DESCRIPTION:
            if op.parsing is not None:
                count = struct.unpack_from("!h", body, 0)[0]
                op.parsing.param_oids = struct.unpack_from(f"!{count}I", body, 2)
        elif tag in (ROW_DESCRIPTION, NO_DATA):
            if op.parsing is not None:
                op.parsing.columns = p.parse_row_description(body).columns if tag == ROW_DESCRIPTION else []
                _described(session, op.parsing)
                start(op)
        elif tag == ERROR:
            error: ServerError = session.server_error(body)
            if i < len(ops):
                if op.stmt is not None and is_stale_plan(error):
                    session.cache.evict(op.sql)  # re-prepared by the next use (no retry inside a pipeline)
                failed = op.index
                sql = op.sql
                finish(None, error)
                for later in ops[i:]:
                    later.fail(
                        PipelineAborted(
                            f"pipeline query {later.index} was skipped because query {failed} failed: "
                            f"{error.sqlstate}: {error.message} (query {failed}: {sql[:200]!r})",
                            failed,
                        )
                    )
                i = len(ops)
        elif tag == READY:
            session.status = chr(body[0])
            break
        else:
            session.handle_async(tag, body)
    for op in ops[i:]:  # not answered at all: cannot happen with a well-behaved server
        op.fail(PgError(f"pipeline query {op.index}: no answer before ReadyForQuery"))
        first = first or op.error
    return first
