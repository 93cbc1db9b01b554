"""Answering an HTTP/1.1 request with a file: validators, the head, and the bytes by ``sendfile``.

How it works: :func:`respond_file` frames a response whose body is a file
(``Response.file_body``).  Matching validators give a 304; a cached file's bytes
(:mod:`chopin_core.filecache`) and a small file go out with the head in one write;
a larger file is left on the connection (``Connection.file``) and
:func:`send_file` sends it in ``sendfile`` pieces as the socket takes them, under
``TCP_CORK`` so the head leaves with the first bytes and every piece ends on full
segments.  Under TLS, where ``sendfile`` cannot encrypt, the file is read and
encrypted instead (:func:`~chopin_core._engine.tls.copy_file`).  The worker is
reached only through :class:`~chopin_core._engine.channel.Loop`.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Final

from ..files import not_modified
from ..response import send_whole_if_range_fails, status_line
from .stream_pump import JOIN_LIMIT

if TYPE_CHECKING:
    from ..connection import Connection
    from ..files import FileBody
    from ..request import Request
    from ..response import Response
    from .channel import Loop

__all__ = ["INLINE_FILE", "SENDFILE_CHUNK", "respond_file", "send_file"]

# The worker's logger: these messages were the worker's before they moved here.
log = logging.getLogger("chopin_core.worker")

# sendfile (or the TLS copy) sends at most this much of one file per turn of the loop,
# so one big file cannot keep the loop from the other connections for long.
SENDFILE_CHUNK: Final = 1 << 20
# Files up to this size are read and written with their head instead (see respond_file).
INLINE_FILE: Final = 64 * 1024
_TCP: Final = socket.IPPROTO_TCP
_CORK: Final = socket.TCP_CORK


def respond_file(
    loop: Loop, conn: Connection, req: Request, resp: Response, line: bytes, end: bytes, out: list[bytes | memoryview]
) -> None:
    """Frame ``resp``, whose body is a file, into ``out``: a 304 when the validators match, else the head.

    ``line`` is the status line and ``end`` the ``Connection`` line and blank line
    the worker chose.  What does not go out with the head is left on ``conn.file``
    for :func:`send_file`.
    """
    body = resp.file_body
    assert body is not None
    if resp.status == 206 and send_whole_if_range_fails(req, resp):
        line = status_line(200)
    if resp.status == 200 and req.method in ("GET", "HEAD") and not_modified(req, body):
        body.close()
        out += (status_line(304), loop.date_line, resp.extra_lines, end)
        return
    out += (line, loop.date_line, resp.content_lines, resp.extra_lines, end)
    if req.method == "HEAD" or body.length == 0:
        body.close()
    elif body.content is not None:
        # A cached file (chopin_core.filecache): its bytes go out like an in-memory body
        # (the whole of it without the read_all() call, as read_all() would return it).
        data = body.content if body.length == body.size else body.read_all()
        out.append(data)
        if len(data) >= JOIN_LIMIT:
            conn.big = True  # written with writev, not copied into one buffer
    elif body.length <= INLINE_FILE:
        # A small file costs less as one pread and one write with its head
        # than as a writev followed by a sendfile.
        data = body.read_all()
        body.close()
        out.append(data)
        if len(data) != body.length:
            log.error("worker %d: file ended %d bytes early", loop.index, body.length - len(data))
            conn.close_after = True  # the promised Content-Length cannot be met
    else:
        conn.file = body
        conn.big = True
        if conn.sock is not None and not loop.secure:
            # Corked until the file is out (send_file): the head leaves with the first
            # bytes of the body, and every sendfile ends on full segments, not a short one.
            conn.sock.setsockopt(_TCP, _CORK, 1)


def send_file(loop: Loop, conn: Connection) -> bool | None:
    """Send the next part of ``conn.file``: True when it is all out, False when the socket is full, None if closed."""
    body = conn.file
    assert body is not None
    if loop.secure:
        return _copy_file(loop, conn, body)
    while body.length > 0:
        try:
            sent = os.sendfile(conn.fd, body.fd, body.offset, min(body.length, SENDFILE_CHUNK))
        except BlockingIOError:
            return False
        except OSError as exc:
            loop.close(conn, exc)
            return None
        if sent == 0:
            # The file shrank under us: the promised length cannot be sent.
            log.error("worker %d: file ended %d bytes early", loop.index, body.length)
            loop.close(conn)
            return None
        body.offset += sent
        body.length -= sent
        loop.count_sent(sent)
        conn.last_active = loop.tick
    body.close()
    conn.file = None
    if conn.sock is not None:
        conn.sock.setsockopt(_TCP, _CORK, 0)  # out with what is held (see respond_file)
    return True


def _copy_file(loop: Loop, conn: Connection, body: FileBody) -> bool | None:
    """The TLS file path: read and encrypt (no sendfile), at most ``SENDFILE_CHUNK`` per turn."""
    from .tls import copy_file

    budget = SENDFILE_CHUNK
    while body.length > 0:
        if budget <= 0:
            return False  # let the other connections have a turn; EPOLLOUT brings us back
        try:
            sent, short = copy_file(loop.io.write, conn.fd, body)
        except BlockingIOError:
            return False
        except OSError as exc:
            loop.close(conn, exc)
            return None
        if short:
            log.error("worker %d: file ended %d bytes early", loop.index, body.length)
            loop.close(conn)
            return None
        budget -= sent
        loop.count_sent(sent)
        conn.last_active = loop.tick
    body.close()
    conn.file = None
    return True
