"""The extended protocol's Bind side (§55.2.3): encoding Bind, executing a batch, and the one-query fast path.

The fast path (measured, commit ``ce18bec``): :func:`bind_one` encodes Bind +
Execute + Sync in one pass, the connection sends it and reads once, and
:func:`take_reply` decodes that read in place when it holds the whole answer.
Anything else falls back to the general generator path
(:meth:`~chopin_pg._session.Session.read_execute`) without losing bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import protocol as p
from ._result import Result
from ._statements import PreparedStatement, StatementCache
from .protocol import BIND_COMPLETE, CLOSE_COMPLETE, COMMAND_COMPLETE, DATA_ROW
from .row import Row

if TYPE_CHECKING:
    from ._result import Gen
    from ._session import Session

__all__ = ["bind_message", "bind_one", "execute", "take_reply"]

_i32 = struct.Struct("!i")
_pack_i32 = _i32.pack
_pack_i16 = struct.Struct("!h").pack
_unpack_header = struct.Struct("!BI").unpack_from  # backend message: tag, length (§55.7)
_typed_header = struct.Struct("!ci").pack  # frontend message: tag, length (§55.7)
_NULL = b"\xff\xff\xff\xff"  # Bind: a NULL parameter's length
_TEXT_CODE = b"\x00\x00"
_BINARY_CODE = b"\x00\x01"
_ALL_TEXT = b"\x00\x00"  # Bind format block: no codes, every parameter in text
_ALL_BINARY = b"\x00\x01\x00\x01"  # one code, applied to every parameter
_READY_HEAD = b"Z\x00\x00\x00\x05"  # ReadyForQuery before its status byte
_EXECUTE_UNNAMED = p.execute()
_EXECUTE_SYNC = p.execute() + p.sync()


def execute(session: Session, stmt: PreparedStatement, param_sets: Iterable[Sequence[Any]]) -> Gen:
    """Bind and execute a prepared statement once per parameter set, in one batch ending in Sync.

    Returns:
        One :class:`Result` per parameter set (fewer if one failed).
    """
    parts = [session.cache.take_pending_close()]
    execute = _EXECUTE_UNNAMED
    bind = stmt.encode_bind
    for params in param_sets:
        parts.append(bind(params))
        parts.append(execute)
    parts.append(p.sync())
    # One write for the whole batch: Bind+Execute(+...)+Sync.
    yield b"".join(parts)
    return (yield from session.read_execute(stmt))


def bind_one(cache: StatementCache, stmt: PreparedStatement, params: Sequence[Any]) -> bytes:
    """Encode Bind + Execute + Sync for one parameter set: the bytes :func:`execute` sends for one set.

    Raises:
        DataError: The number of values does not match the statement.
    """
    return cache.take_pending_close() + stmt.encode_bind(params) + _EXECUTE_SYNC


def bind_message(stmt: PreparedStatement, params: Sequence[Any]) -> bytes:
    """Encode Bind (unnamed portal) for a prepared statement and one parameter set.

    The statement's own encoder (:mod:`chopin_pg._bind_encoder`): compiled for its
    parameter types where it can be, the generic value-by-value loop otherwise.

    Raises:
        DataError: The number of values does not match the statement.
    """
    return stmt.encode_bind(params)


def take_reply(session: Session, data: bytes, stmt: PreparedStatement) -> Result | None:
    """Decode the whole answer to :func:`bind_one` when ``data`` holds exactly that, else return ``None``.

    The one-query fast path: one read usually brings the whole answer
    (BindComplete, DataRows, CommandComplete, ReadyForQuery), and walking it
    in place skips the parser's buffer copies.  Anything else (an error, a
    notice, a partial read, a value that does not decode) returns ``None``
    with no state changed: the caller then feeds ``data`` to the parser and
    reads on with :meth:`Session.read_execute`, which handles every case.
    """
    limit = len(data) - 6
    # ReadyForQuery (§55.7: 'Z', length 5, status) must be the last message.
    if limit < 0 or data[limit : limit + 5] != _READY_HEAD:
        return None
    rows: list[Row] = []
    append = rows.append
    decode_row = stmt.decode_row
    decode_rows = stmt.decode_rows
    tag: str | None = None
    max_size = session.parser.max_message_size
    unpack = _unpack_header
    pos = 0
    while pos < limit:
        kind, length = unpack(data, pos)
        end = pos + 1 + length
        if length < 4 or length >= max_size or end > limit:
            return None
        if kind == DATA_ROW:
            if decode_rows is not None:  # the C accelerator, as in Session.read_execute
                done = decode_rows(data, pos, limit, rows, max_size)
                if done != pos:
                    pos = done
                    continue
            try:
                append(decode_row(data, pos + 7))
            except Exception:  # the general path reports it, after ReadyForQuery
                return None
        elif kind == COMMAND_COMPLETE:
            if tag is not None:
                return None
            try:
                tag = data[pos + 5 : end - 1].decode()
            except UnicodeDecodeError:
                return None
        elif kind not in (BIND_COMPLETE, CLOSE_COMPLETE):
            return None
        pos = end
    if tag is None:
        return None
    session.status = chr(data[limit + 5])
    session.cache.note_command(tag)
    return Result(rows, tag, stmt.columns)
