"""A plain ``http.server`` upstream for the client and proxy tests, run in a thread of the test process.

Every path is one behaviour: ``/echo`` answers what it received as JSON (with the
peer port, so keep-alive reuse shows), ``/slow?delay=s`` answers late,
``/chunked`` and ``/http10`` use the other body framings, ``/truncated`` and
``/truncated-chunked`` close in the middle of their body, ``/reset`` resets the
connection (RST) in the middle of its body, ``/duplex`` sends its head before it reads
the request body and then echoes the body as it comes, ``/refuse`` answers 413 at once
and resets the connection with the body unread, ``/drop-after`` answers
and closes without saying so (a pooled connection that has gone stale),
``/big?size=n`` sends ``n`` bytes of :func:`pattern`.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_PATTERN = bytes(range(256))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (nothing listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pattern(size: int) -> bytes:
    """``size`` bytes cycling through 0..255."""
    return (_PATTERN * (size // 256 + 1))[:size]


class UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, ctype: str = "application/json", extra: tuple[tuple[str, str], ...] = ()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _duplex(self) -> None:
        # A streaming upstream: the head goes out before the request body is read (a
        # moment before, so a large body is still on its way), then each piece is echoed.
        left = int(self.headers.get("Content-Length") or 0)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        time.sleep(0.2)
        while left > 0:
            piece = self.rfile.read1(min(left, 65536))  # type: ignore[attr-defined]
            if not piece:
                return
            left -= len(piece)
            self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def _handle(self) -> None:
        path = urlsplit(self.path).path
        query = self._query()
        if path == "/duplex":
            self._duplex()
            return
        if path == "/refuse":
            # An early answer: refused before the body is read, then a close with it unread (RST).
            # Head and body in one write: sent apart, the reset could reach the proxy between
            # the two and discard the body, an answer cut short that no proxy could deliver.
            self.connection.sendall(
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large"
            )
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # closed with the handler's files, before socketserver's FIN (shutdown)
            self.close_connection = True
            return
        body = self._body()
        if path == "/slow":
            time.sleep(float(query.get("delay", "2")))
        if path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Sum")
            self.end_headers()
            for i in range(int(query.get("n", "5"))):
                part = b"part%d;" % i
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Sum: 1\r\n\r\n")
            return
        if path == "/http10":
            # No length, no chunking: the body ends when the connection does.
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close body")
            self.wfile.flush()
            self.close_connection = True
            return
        if path == "/truncated":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
            self.wfile.flush()
            self.close_connection = True
            return
        if path == "/reset":
            # As a server does that closes with bytes of the request unread (a GET's body it
            # ignored, say): the kernel answers with RST; SO_LINGER 0 makes it so whatever was read.
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # closed with the handler's files, before socketserver's FIN (shutdown)
            self.close_connection = True
            return
        if path == "/truncated-chunked":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if path == "/drop-after":
            self._send(200, b"dropped")
            self.close_connection = True  # closes without "Connection: close"
            return
        if path == "/big":
            self._send(200, pattern(int(query.get("size", "1000"))), "application/octet-stream")
            return
        if path == "/status":
            self._send(int(query.get("code", "200")), b"")
            return
        info = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("latin-1"),
            "peer_port": self.client_address[1],
        }
        self._send(
            200,
            json.dumps(info).encode(),
            extra=(("Connection", "X-Secret"), ("X-Secret", "hop"), ("Keep-Alive", "timeout=5"), ("X-Kept", "yes")),
        )


# BaseHTTPRequestHandler dispatches to do_<METHOD>.
for _method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
    setattr(UpstreamHandler, f"do_{_method}", UpstreamHandler._handle)


class Upstream(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: object, client_address: object) -> None:
        # A client (the proxy) that hangs up early is part of several tests, not an error.
        import sys

        # A TLS client that refuses the certificate ends the handshake too.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ssl.SSLError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    scheme = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


@contextmanager
def running_upstream(tls: ssl.SSLContext | None = None) -> Iterator[Upstream]:
    """Serve :class:`UpstreamHandler` on a free port of 127.0.0.1 until the block ends (over TLS with ``tls``)."""
    server = Upstream(("127.0.0.1", 0), UpstreamHandler)
    if tls is not None:
        # The handshake runs in the handler's thread (on first read), not in the accepting one.
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.scheme = "https"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
