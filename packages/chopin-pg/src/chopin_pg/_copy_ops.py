"""COPY operations (§55.2.6 "COPY Operations") as operation generators over a :class:`~chopin_pg._session.Session`.

:mod:`chopin_pg.copy` drives them through :meth:`Connection.wait
<chopin_pg.connection.Connection.wait>`: one generator per step (start, each
CopyData sent, end; or start, then each batch of CopyData read), so the
connection can be left in COPY mode between the caller's writes or reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import protocol as p
from ._result import Result
from .errors import InterfaceError, ServerError
from .protocol import (
    COMMAND_COMPLETE,
    COPY_DATA,
    COPY_DONE,
    COPY_IN,
    COPY_OUT,
    DATA_ROW,
    EMPTY_QUERY,
    ERROR,
    READY,
    ROW_DESCRIPTION,
)

if TYPE_CHECKING:
    from ._result import Gen
    from ._session import Session

__all__ = ["copy_in_end", "copy_in_start", "copy_out_next", "copy_out_start", "send"]


def copy_in_start(session: Session, sql: str) -> Gen:
    """Send ``COPY ... FROM STDIN`` and read up to CopyInResponse.

    Returns:
        The overall format the server expects (0 text or csv, 1 binary).

    Raises:
        ServerError: The statement failed (after ReadyForQuery).
        InterfaceError: The statement ran, but was not a COPY FROM STDIN.
    """
    yield p.query(sql)
    error: ServerError | None = None
    while True:
        tag, body = yield from session.next_message()
        if tag == COPY_IN:
            return body[0]
        if tag == READY:
            session.status = chr(body[0])
            if error is not None:
                raise error
            raise InterfaceError(f"copy_in: statement did not run a COPY FROM STDIN: {sql[:200]!r}")
        if tag == ERROR:
            error = session.server_error(body)
        elif tag in (COPY_OUT, COPY_DATA, COPY_DONE, ROW_DESCRIPTION, DATA_ROW, EMPTY_QUERY):
            continue  # not a COPY FROM STDIN: reported at ReadyForQuery
        elif tag != COMMAND_COMPLETE:
            session.handle_async(tag, body)


def send(data: bytes) -> Gen:
    """Send ``data`` and read nothing (CopyData during COPY FROM STDIN: the server does not answer it)."""
    yield data


def copy_in_end(session: Session, message: bytes) -> Gen:
    """Send the end of a COPY FROM STDIN (last CopyData + CopyDone, or CopyFail) and read to ReadyForQuery.

    Returns:
        The :class:`Result` of the COPY.

    Raises:
        ServerError: The COPY failed (57014 after CopyFail), after ReadyForQuery.
    """
    yield message
    result = Result([], "", [])
    error: ServerError | None = None
    while True:
        tag, body = yield from session.next_message()
        if tag == COMMAND_COMPLETE:
            result = Result([], body[:-1].decode(), [])
        elif tag == READY:
            session.status = chr(body[0])
            break
        elif tag == ERROR:
            error = session.server_error(body)
        else:
            session.handle_async(tag, body)
    if error is not None:
        raise error
    return result


def copy_out_start(session: Session, sql: str) -> Gen:
    """Send ``COPY ... TO STDOUT`` and read up to CopyOutResponse.

    Returns:
        The overall format (0 text or csv, 1 binary).

    Raises:
        ServerError: The statement failed (after ReadyForQuery).
        InterfaceError: The statement ran, but was not a COPY TO STDOUT.
    """
    yield p.query(sql)
    error: ServerError | None = None
    refused = False
    while True:
        tag, body = yield from session.next_message()
        if tag == COPY_OUT:
            return body[0]
        if tag == READY:
            session.status = chr(body[0])
            if error is not None and not refused:
                raise error
            raise InterfaceError(f"copy_out: statement did not run a COPY TO STDOUT: {sql[:200]!r}")
        if tag == ERROR:
            error = session.server_error(body)
        elif tag == COPY_IN:
            refused = True  # the server's 57014 answer is ours: report the misuse instead
            yield p.copy_fail("copy_out cannot run COPY FROM STDIN")
        elif tag in (ROW_DESCRIPTION, DATA_ROW, EMPTY_QUERY, COMMAND_COMPLETE):
            continue
        else:
            session.handle_async(tag, body)


def copy_out_next(session: Session) -> Gen:
    """Read the next CopyData payloads of a COPY TO STDOUT: what one read brings, at least one.

    Memory stays bounded: the socket is read only when no complete message is buffered.

    Returns:
        ``(chunks, result)``: ``result`` is the COPY's :class:`Result` once ReadyForQuery
        arrived (the end), else ``None``.

    Raises:
        ServerError: The COPY failed midway (after ReadyForQuery).
    """
    chunks: list[bytes] = []
    result: Result | None = None
    error: ServerError | None = None
    parser = session.parser
    while True:
        raw = parser.next_raw()
        if raw is None:
            if chunks and result is None and error is None:  # at the end, read on to ReadyForQuery
                return chunks, None
            parser.feed((yield None) or b"")
            continue
        tag, body = raw
        if tag == COPY_DATA:
            chunks.append(body)
        elif tag == COPY_DONE:
            continue
        elif tag == COMMAND_COMPLETE:
            result = Result([], body[:-1].decode(), [])
        elif tag == READY:
            session.status = chr(body[0])
            if error is not None:
                raise error
            return chunks, result or Result([], "", [])
        elif tag == ERROR:
            error = session.server_error(body)
        else:
            session.handle_async(tag, body)
