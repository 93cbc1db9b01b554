"""An HTTP/1.1 upstream on raw sockets that answers before it has read the request body (RFC 9112 9.5).

A thread per connection, each request routed by its path:

- ``/refuse-close``: a 413 (``Connection: close``) once the head is read, the body left
  unread; then FIN, and a moment later the close (a reset: the body is still unread).
- ``/refuse-reset``: the same 413, then at once a close with ``SO_LINGER`` 0 (RST).
- ``/refuse-hold``: a 413 that keeps the connection (no ``Connection: close``), neither
  reading the body nor closing until the client does.
- ``/echo``: the head (``Content-Length`` of the request's) at once, then each piece of
  the body sent back as it is read (full duplex); the connection serves the next request.

``accepts`` counts the connections, so a test sees which requests opened a new one.
The socket buffers are fixed and small: what the client's socket cannot take at once
has to wait for the upstream.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

REFUSAL = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n"


class EarlyUpstream:
    """The server: ``url`` to send to, ``accepts`` connections taken so far."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        # Fixed buffers (the connections inherit them): autotuned, the upstream's receive buffer
        # grows to tens of megabytes as it reads, and would hide a client that reads nothing
        # until it has sent all.
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            self._listener.setsockopt(socket.SOL_SOCKET, option, 128 * 1024)
        self._tls = tls
        self._stop = threading.Event()
        self.accepts = 0
        port = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.1)  # a blocked accept does not see the listener closed
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.accepts += 1
            # Else Nagle may hold the 413 back (TLS sent records before it) until the reset drops it.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                if path != b"/echo":
                    self._refuse(conn, path)
                    return
                buffer = self._echo(conn, head, buffer)
        except OSError:
            pass  # the client went away: part of several tests
        finally:
            conn.close()

    def _refuse(self, conn: socket.socket, path: bytes) -> None:
        close = b"Connection: close\r\n" if path != b"/refuse-hold" else b""
        conn.sendall(REFUSAL + close + b"\r\ntoo large")  # one write: a reset must not fall between
        if path == b"/refuse-reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif path == b"/refuse-close":
            conn.shutdown(socket.SHUT_WR)
            self._stop.wait(0.5)
        else:
            self._stop.wait(30.0)  # hold it, unread, until the test ends

    def _echo(self, conn: socket.socket, head: bytes, buffer: bytes) -> bytes:
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length)
        piece, buffer = buffer[:length], buffer[length:]
        left = length - len(piece)
        while True:
            if piece:
                conn.sendall(piece)
            if not left:
                return buffer
            piece = conn.recv(min(left, 65536))
            if not piece:
                raise ConnectionError("client closed mid-body")
            left -= len(piece)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


@contextmanager
def early_upstream(tls: ssl.SSLContext | None = None) -> Iterator[EarlyUpstream]:
    """Serve :class:`EarlyUpstream` on a free port of 127.0.0.1 until the block ends (over TLS with ``tls``)."""
    server = EarlyUpstream(tls)
    try:
        yield server
    finally:
        server.close()
