"""The blocking I/O shell that drives the session's operation generators over a socket.

It is the whole of the driver's socket handling during an operation: send what
the generator yields, read when it yields ``None``.  Socket errors and EOF are
left for the caller to translate, because only the connection knows whether a
FATAL server error explains them.

Large writes (a pipeline of thousands of queries, a COPY chunk) are sent
*duplex*: while the socket is not writable, whatever the server already
answered is read and handed to ``early`` (the session's parser).  Without this
a client that writes megabytes before reading deadlocks against a server whose
own send buffer is full of answers (the classic pipelining deadlock, see the
libpq docs §34.5 "Pipeline Mode").
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Callable
from typing import Any

from ._result import Gen
from .errors import ConnectionLost, IoTimeout

__all__ = ["DUPLEX_THRESHOLD", "RECV_SIZE", "exchange", "run"]

#: Bytes asked of each recv: large enough that a typical response is one read.
RECV_SIZE = 65536
#: Writes larger than this are sent duplex (reading answers while writing).
DUPLEX_THRESHOLD = 65536


def _send_duplex(sock: socket.socket | ssl.SSLSocket, data: bytes, early: Callable[[bytes], None]) -> None:
    """Send ``data`` while reading whatever the server sends meanwhile into ``early``."""
    view = memoryview(data)
    timeout = sock.gettimeout()
    while view:
        readable, writable, _ = select.select([sock], [sock], [], timeout)
        if not readable and not writable:
            raise TimeoutError("select timed out")
        if readable or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            chunk = sock.recv(RECV_SIZE)
            if not chunk:
                raise ConnectionResetError("server closed the connection while we were writing")
            early(chunk)
        if writable:
            sent = sock.send(view[:RECV_SIZE])
            view = view[sent:]


def run(gen: Gen, sock: socket.socket | ssl.SSLSocket, early: Callable[[bytes], None] | None = None) -> Any:
    """Drive ``gen`` to completion over a blocking ``sock`` and return its result.

    Args:
        gen: An operation generator from :class:`~chopin_pg._session.Session`.
        sock: The connected socket (its timeout applies to every read and write).
        early: Where bytes read while sending a large write go (the session parser's ``feed``);
            without it every write is a plain ``sendall``.

    Returns:
        The generator's return value.

    Raises:
        ConnectionLost: The server closed the connection or the socket failed.
        IoTimeout: A read or write took longer than the socket's timeout.
    """
    recv = sock.recv
    send = sock.sendall
    try:
        out = next(gen)
        while True:
            # Only the socket calls are guarded: an OSError raised by the operation
            # itself (a COPY source failing) is the caller's, not a lost connection.
            if out is None:
                try:
                    data = recv(RECV_SIZE)
                except TimeoutError as exc:
                    raise IoTimeout(f"no answer from the server within {sock.gettimeout()} s") from exc
                except OSError as exc:
                    raise ConnectionLost(f"socket error while reading: {exc}") from exc
                if not data:
                    raise ConnectionLost("server closed the connection")
                out = gen.send(data)
            else:
                try:
                    if early is not None and len(out) > DUPLEX_THRESHOLD:
                        _send_duplex(sock, out, early)
                    else:
                        send(out)
                except TimeoutError as exc:
                    raise IoTimeout(f"could not send to the server within {sock.gettimeout()} s") from exc
                except OSError as exc:
                    raise ConnectionLost(f"socket error while writing: {exc}") from exc
                out = gen.send(None)
    except StopIteration as stop:
        return stop.value
    finally:
        gen.close()


def exchange(sock: socket.socket | ssl.SSLSocket, request: bytes) -> bytes:
    """Send ``request`` (at most :data:`DUPLEX_THRESHOLD` bytes) and return the first bytes of the answer.

    The one-query fast path's whole I/O: one ``sendall`` and one ``recv``, with
    the errors :func:`run` raises.  The caller hands the bytes to the session,
    which reads on through :func:`run` when they are not the whole answer.

    Raises:
        ConnectionLost: The server closed the connection or the socket failed.
        IoTimeout: A read or write took longer than the socket's timeout.
    """
    try:
        sock.sendall(request)
    except TimeoutError as exc:
        raise IoTimeout(f"could not send to the server within {sock.gettimeout()} s") from exc
    except OSError as exc:
        raise ConnectionLost(f"socket error while writing: {exc}") from exc
    try:
        data = sock.recv(RECV_SIZE)
    except TimeoutError as exc:
        raise IoTimeout(f"no answer from the server within {sock.gettimeout()} s") from exc
    except OSError as exc:
        raise ConnectionLost(f"socket error while reading: {exc}") from exc
    if not data:
        raise ConnectionLost("server closed the connection")
    return data
