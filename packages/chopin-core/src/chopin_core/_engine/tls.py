"""TLS in the worker loop: the non-blocking handshake and TLS socket I/O.

How it works: a TLS server's worker wraps each accepted socket with the app's
:class:`ssl.SSLContext` (:func:`chopin_core.tls.server_context`) without
handshaking, and parks it in a :class:`TlsHandshake` that the worker's ``epoll``
loop drives: every readiness event calls ``do_handshake()`` once more, and
``SSLWantReadError`` / ``SSLWantWriteError`` become the epoll interest to wait for.
A handshake that fails (plain HTTP on the TLS port, garbage, a client refusing our
certificate) or takes longer than ``tls_handshake_timeout`` closes that connection
only.  Once the handshake is done the negotiated ALPN protocol picks the protocol:
``h2`` goes to :mod:`chopin_core.http2`, anything else to the worker's HTTP/1.1
code, which reads and writes through :class:`TlsIO` instead of ``os.read`` /
``os.write`` (same signatures, so the plain-HTTP hot path is unchanged).  Files
under TLS are read and encrypted (:func:`copy_file`): ``sendfile`` cannot encrypt.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ..files import FileBody

__all__ = ["COPY_CHUNK", "TlsHandshake", "TlsIO", "copy_file", "send_close_notify", "wrap"]

log = logging.getLogger("chopin_core.tls")

# How much of a file one encrypted copy step reads (a few TLS records).
COPY_CHUNK: Final = 64 * 1024


class TlsIO:
    """``os.read`` / ``os.write`` / ``os.writev`` look-alikes for TLS sockets, keyed by fd.

    The worker's HTTP/1.1 code calls these with a file descriptor; they find
    the :class:`ssl.SSLSocket` and translate "would block" into
    :class:`BlockingIOError`, which that code already handles.  After a write
    that would block, OpenSSL wants the same bytes again: the worker keeps its
    output buffers until they are written, so the retry starts with them.
    """

    __slots__ = ("socks",)

    def __init__(self) -> None:
        self.socks: dict[int, ssl.SSLSocket] = {}

    def read(self, fd: int, size: int) -> bytes:
        """Up to ``size`` decrypted bytes; ``b""`` at end of stream."""
        sock = self.socks[fd]
        try:
            data = sock.recv(size)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError from None
        # OpenSSL may hold decrypted bytes the kernel no longer signals: take them now.
        while data and len(data) < size and sock.pending():
            more = sock.recv(size - len(data))
            if not more:
                break
            data += more
        return data

    def write(self, fd: int, data: bytes | memoryview) -> int:
        """Encrypt and send ``data``; how much of it was taken."""
        try:
            return self.socks[fd].send(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            raise BlockingIOError from None

    def writev(self, fd: int, buffers: Sequence[bytes | memoryview]) -> int:
        """Send ``buffers`` as one write (TLS has no scatter-gather)."""
        return self.write(fd, b"".join(buffers))


def copy_file(write: Callable[[int, bytes], int], fd: int, body: FileBody) -> tuple[int, bool]:
    """Send the next piece of a file region through ``write`` (the encrypted copy path).

    Returns:
        ``(bytes sent, ended early)``; ``ended early`` means the file shrank.

    Raises:
        BlockingIOError: the socket is full (the same piece is read again next time).
    """
    data = body.read(COPY_CHUNK)
    if not data:
        return 0, True
    sent = write(fd, data)
    body.offset += sent
    body.length -= sent
    return sent, False


def send_close_notify(sock: ssl.SSLSocket) -> None:
    """Send TLS close_notify without waiting for the peer's (RFC 8446 6.1)."""
    try:
        sock.unwrap()
    except (OSError, ValueError):
        pass  # the peer's close_notify would need another read; ours is out (or the socket is gone)


class TlsHandshake:
    """One accepted TLS connection whose handshake is not finished yet.

    Args:
        sock: the wrapped, non-blocking socket (``do_handshake_on_connect=False``).
        peer: the client's address.
        deadline: the worker tick at which an unfinished handshake is abandoned.
        done: called with this handshake when it succeeds.
        failed: called with this handshake and the error when it fails.
        set_mask: changes the socket's epoll interest.
    """

    __slots__ = ("deadline", "done", "failed", "fd", "peer", "set_mask", "sock", "want")

    def __init__(
        self,
        sock: ssl.SSLSocket,
        peer: object,
        deadline: int,
        done: Callable[[TlsHandshake], None],
        failed: Callable[[TlsHandshake, BaseException | None], None],
        set_mask: Callable[[int, int], None],
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.deadline = deadline
        self.done = done
        self.failed = failed
        self.set_mask = set_mask
        self.want = 0  # 0 read, 1 write

    def step(self) -> None:
        """Advance the handshake once; called when the socket is ready."""
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._wait(0)
        except ssl.SSLWantWriteError:
            self._wait(1)
        except (ssl.SSLError, OSError, ValueError) as exc:
            log.debug("TLS handshake with %s failed: %s", self.peer, exc)
            self.failed(self, exc)
        else:
            self.done(self)

    def on_event(self, events: int) -> None:
        """An epoll event for this socket."""
        self.step()

    def on_tick(self, tick: int) -> None:
        """Once a second: abandon a handshake past its deadline."""
        if tick >= self.deadline:
            log.debug("TLS handshake with %s timed out", self.peer)
            self.failed(self, TimeoutError("TLS handshake timed out"))

    def stop(self) -> None:
        """Graceful stop: a connection still handshaking has no request in flight."""
        self.failed(self, None)

    def abort(self) -> None:
        """The worker is exiting: close now."""
        self.failed(self, None)

    def _wait(self, want: int) -> None:
        if want != self.want:
            self.want = want
            self.set_mask(self.fd, want)


def wrap(ctx: ssl.SSLContext, sock: socket.socket) -> ssl.SSLSocket:
    """Wrap an accepted, non-blocking socket for a server-side handshake driven by the loop."""
    return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False, suppress_ragged_eofs=True)
