"""Queries that each end in their own Sync, many in flight on one connection: the sans-IO half of the async shell.

How it works: every query is one self-contained request, Bind + Execute + Sync
(Parse + Describe(S) in front the first time its text is seen), so the server
answers each with its own ReadyForQuery and an error in one request never
touches the next (§55.2.3: after an error the server skips to the *next* Sync
only).  The requests are written back to back and their answers come back in
the same order, so the shell keeps a FIFO of reply readers and feeds them the
connection's one parser in turn.

:func:`query_request` returns an operation generator in the usual shape
(:mod:`chopin_pg._session`): it yields the request bytes first, then ``None``
whenever it needs input, and returns the query's :class:`Result`.  A statement
already in the cache is bound with its binary codecs and read with
:meth:`Session.read_execute` and its compiled row decoder.  A statement not
cached yet is *marked prepared as soon as its Parse is written*: it enters the
connection's :class:`ParseTable`, so the queries with the same text sent before
its Describe is answered bind the same name instead of parsing again.  Those
(and the first one) bind in text and read text results, since the parameter and
column types are not known yet; once Describe is answered the statement moves
to the statement cache and later queries use the binary codecs.  If the Parse
fails, the statement is dropped from the table, and the queries that bound its
name (they fail with "prepared statement does not exist") raise a copy of the
Parse's error instead, which is what their caller wants to read.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from . import _codecs as c
from . import protocol as p
from ._bind import bind_message
from ._result import Gen, Result
from ._row_decoder import RowDecoder, row_decoder
from ._session import Session
from ._statements import PreparedStatement
from .errors import InvalidStatementName, PgError, ServerError, error_from_fields
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

__all__ = ["ParseInFlight", "ParseTable", "copy_error", "query_request"]

_TEXT_FORMATS = b"\x00\x00"  # Bind format block: every parameter / column in text
_EXECUTE_SYNC = p.execute() + p.sync()


class ParseInFlight:
    """A named statement whose Parse was written and whose Describe is not answered yet.

    Attributes:
        name: Server-side statement name.
        sql: Query text.
        decode_row: The text-format row decoder, once Describe is answered.
        columns: The result columns, once Describe is answered.
        failed: The Parse's error, when it failed.
    """

    __slots__ = ("columns", "decode_row", "failed", "name", "sql")

    def __init__(self, name: str, sql: str) -> None:
        self.name = name
        self.sql = sql
        self.decode_row: RowDecoder | None = None
        self.columns: list[p.ColumnDescription] = []
        self.failed: ServerError | None = None


#: Query text to the statement whose Parse is in flight (one table per connection).
ParseTable = dict[str, ParseInFlight]


def copy_error(error: ServerError) -> ServerError:
    """A fresh exception equal to ``error``, so each caller raises (and annotates) its own instance."""
    return error_from_fields(dict(error.fields))


def query_request(session: Session, table: ParseTable, sql: str, params: Sequence[Any]) -> Gen:
    """The operation for one query on a shared connection (see the module docstring).

    Everything before the first ``yield`` runs when the shell starts the
    generator, i.e. when the request is queued: the statement cache and the
    parse table change in the order requests are written.

    Args:
        session: The connection's session.
        table: The connection's statements with a Parse in flight.
        sql: One statement with ``$1..$n`` placeholders.
        params: The values (``None`` for NULL).

    Returns:
        The query's :class:`Result`.

    Raises:
        DataError: The number of values does not match a cached statement (before anything is sent).
    """
    cache = session.cache
    stmt = cache.lookup(sql)
    if stmt is not None:
        bind = bind_message(stmt, params)  # before the Closes are taken: it may raise DataError
        yield cache.take_pending_close() + bind + _EXECUTE_SYNC
        results: list[Result] = yield from session.read_execute(stmt)
        return results[0]
    values = [None if v is None else c.encode_text(v) for v in params]
    parsing = table.get(sql)
    first = parsing is None
    if parsing is None:
        parsing = ParseInFlight(cache.reserve_name(), sql)
        head = p.parse(parsing.name, sql) + p.describe(b"S", parsing.name)
        if parsing.name:  # the unnamed statement is replaced by the next Parse: never shared
            table[sql] = parsing  # "prepared" from now on: the Parse is written with this request
    else:
        head = b""
    bind = p.bind("", parsing.name, _TEXT_FORMATS, values, _TEXT_FORMATS)
    yield cache.take_pending_close() + head + bind + _EXECUTE_SYNC
    return (yield from _read_parsed(session, table, parsing, first))


def _read_parsed(session: Session, table: ParseTable, parsing: ParseInFlight, first: bool) -> Gen:
    """Read the answer to a text-format request on a statement parsed in flight, up to ReadyForQuery.

    The first request's answer starts with ParseComplete, ParameterDescription
    and RowDescription / NoData; the statement is described (and cached) there.
    """
    parser = session.parser
    decode_row = parsing.decode_row
    param_oids: tuple[int, ...] = ()
    rows: list[Row] = []
    result: Result | None = None
    error: ServerError | None = None
    failure: Exception | None = None
    while True:
        raw = parser.next_raw()
        if raw is None:
            parser.feed((yield None) or b"")
            continue
        tag, body = raw
        if tag == DATA_ROW:
            try:
                if decode_row is None:
                    decode_row = parsing.decode_row
                    assert decode_row is not None, "DataRow before the statement was described"
                rows.append(decode_row(body, 2))
            except Exception as exc:  # keep reading to ReadyForQuery, then raise
                failure = failure or exc
        elif tag == COMMAND_COMPLETE:
            command = body[:-1].decode()
            session.cache.note_command(command)
            result = Result(rows, command, parsing.columns)
        elif tag in (EMPTY_QUERY, PORTAL_SUSPENDED):
            result = Result(rows, "", parsing.columns)
        elif tag in (BIND_COMPLETE, PARSE_COMPLETE, CLOSE_COMPLETE):
            continue
        elif tag == PARAMETER_DESCRIPTION:
            count = struct.unpack_from("!h", body, 0)[0]
            param_oids = struct.unpack_from(f"!{count}I", body, 2)
        elif tag in (ROW_DESCRIPTION, NO_DATA):
            columns = p.parse_row_description(body).columns if tag == ROW_DESCRIPTION else []
            decode_row = _described(session, table, parsing, param_oids, columns)
        elif tag == ERROR:
            error = session.server_error(body)
            if first and parsing.decode_row is None:
                # Parse (or Describe) failed: the statement does not exist on the server.
                parsing.failed = error
                if table.get(parsing.sql) is parsing:
                    del table[parsing.sql]
        elif tag == READY:
            session.status = chr(body[0])
            break
        else:
            session.handle_async(tag, body)
    if error is not None:
        if not first and parsing.failed is not None and isinstance(error, InvalidStatementName):
            raise copy_error(parsing.failed)  # the Parse's error, not "statement _cpgN does not exist"
        raise error
    if failure is not None:
        raise failure
    if result is None:
        raise PgError(f"query {parsing.sql[:200]!r}: no CommandComplete before ReadyForQuery")
    return result


def _described(
    session: Session,
    table: ParseTable,
    parsing: ParseInFlight,
    param_oids: tuple[int, ...],
    columns: list[p.ColumnDescription],
) -> RowDecoder:
    """Describe answered: set the text row decoder, and move the statement to the cache."""
    types = session.types
    names: dict[str, int] = {}
    for i, col in enumerate(columns):
        names.setdefault(col.name, i)
    decode_row = row_decoder([types.text_decoder(col.type_oid) for col in columns], names)
    parsing.decode_row = decode_row
    parsing.columns = columns
    if table.get(parsing.sql) is parsing:
        del table[parsing.sql]
    if parsing.name:
        session.cache.remember(PreparedStatement(parsing.name, parsing.sql, param_oids, columns, types))
    return decode_row
