"""The blocking I/O shell that drives the session's operation generators over a socket.

It is the whole of the driver's socket handling during an operation: send what
the generator yields, read when it yields ``None``.  Socket errors and EOF are
left for the caller to translate, because only the connection knows whether a
FATAL server error explains them.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from ._session import Gen
from .errors import ConnectionLost, IoTimeout

__all__ = ["RECV_SIZE", "run"]

#: Bytes asked of each recv: large enough that a typical response is one read.
RECV_SIZE = 65536


def run(gen: Gen, sock: socket.socket | ssl.SSLSocket) -> Any:
    """Drive ``gen`` to completion over a blocking ``sock`` and return its result.

    Args:
        gen: An operation generator from :class:`~chopin_pg._session.Session`.
        sock: The connected socket (its timeout applies to every read and write).

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
