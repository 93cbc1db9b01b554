"""The non-blocking I/O shell's pieces: the wait protocol's two awaitables, connecting, and TLS over memory BIOs.

The wait protocol (chopin-core's worker loop, or any driver that speaks it):
a coroutine may only await objects whose ``__await__`` yields either a
``(fd, events)`` tuple (resumed with the events that happened) or an object
with ``add_done_callback`` (resumed once the callback ran).  chopin-pg does not
import chopin-core; these are its own two awaitables.  The event bits are the
epoll ones (``select.EPOLLIN`` 1, ``EPOLLOUT`` 4, ``EPOLLERR`` 8,
``EPOLLHUP`` 16), the same numbers as ``select.POLLIN`` ... on Linux, spelled
out here so the module imports on every platform.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable, Generator
from typing import Any

from ._result import Gen
from .config import PgConfig
from .errors import ConnectionLost

__all__ = [
    "ERR",
    "HUP",
    "IN",
    "OUT",
    "RECV_SIZE",
    "Channel",
    "FdWait",
    "NextTurn",
    "PlainChannel",
    "Signal",
    "TlsChannel",
    "drive",
    "finish_connect",
    "open_socket",
    "read_byte",
]

IN = 1  # EPOLLIN
OUT = 4  # EPOLLOUT
ERR = 8  # EPOLLERR
HUP = 16  # EPOLLHUP
#: Bytes asked of each recv (the blocking shell's size: a typical answer is one read).
RECV_SIZE = 65536


class FdWait:
    """``await FdWait(fd, events)``: resumed with the mask of events that happened."""

    __slots__ = ("events", "fd")

    def __init__(self, fd: int, events: int) -> None:
        self.fd = fd
        self.events = events

    def __await__(self) -> Generator[Any, Any, int]:
        mask: int = yield (self.fd, self.events)
        return mask


class Signal:
    """A one-shot future without a value: ``await signal`` returns once :meth:`set_result` was called.

    Just what the wait protocol asks of a future (``add_done_callback``; the
    callback runs exactly once), for one thread: the connection uses it to wake a
    caller whose reply arrived, or whose turn it is to read.
    """

    __slots__ = ("_callbacks", "_done")

    def __init__(self) -> None:
        self._done = False
        self._callbacks: list[Callable[[Signal], object]] = []

    def done(self) -> bool:
        """Whether :meth:`set_result` was called."""
        return self._done

    def add_done_callback(self, fn: Callable[[Signal], object]) -> None:
        """Call ``fn(self)`` once the signal is set (at once if it is set already)."""
        if self._done:
            fn(self)
        else:
            self._callbacks.append(fn)

    def set_result(self, value: None = None) -> None:
        """Set the signal and run the callbacks; a second call does nothing."""
        if self._done:
            return
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)

    def result(self) -> None:
        """Nothing: the signal carries no value."""

    def __await__(self) -> Generator[Any, Any, None]:
        if not self._done:
            yield self


def open_socket(config: PgConfig) -> socket.socket:
    """A non-blocking socket with its connect started (a unix socket, or TCP with TCP_NODELAY).

    Name resolution (``getaddrinfo``) still blocks: give an address, or a name the
    resolver answers from ``/etc/hosts``, where that matters.

    Raises:
        ConnectionLost: The connect failed at once (refused, no such socket).
    """
    where = config.socket_path if config.is_unix_socket else f"{config.host}:{config.port}"
    try:
        if config.is_unix_socket:
            family, address = socket.AF_UNIX, config.socket_path
            sock = socket.socket(family, socket.SOCK_STREAM)
            target: Any = address
        else:
            infos = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)
            family, kind, proto, _, target = infos[0]
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        raise ConnectionLost(f"connecting to {where}: {exc}") from exc
    sock.setblocking(False)
    code = sock.connect_ex(target)
    if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
        sock.close()
        raise ConnectionLost(f"connecting to {where}: {errno.errorcode.get(code, code)} ({code})")
    return sock


async def finish_connect(sock: socket.socket, where: str) -> None:
    """Wait until a connect started by :func:`open_socket` is done.

    Raises:
        ConnectionLost: It failed (refused, unreachable).
    """
    await FdWait(sock.fileno(), OUT)
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise ConnectionLost(f"connecting to {where}: {errno.errorcode.get(code, code)} ({code})")


class PlainChannel:
    """A connected non-blocking socket as the connection talks to it: ``send``, ``recv``, ``flush``.

    ``send`` and ``recv`` are the socket's own (``BlockingIOError`` when it would block).
    """

    __slots__ = ("recv", "send", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.send = sock.send
        self.recv = sock.recv

    def flush(self) -> bool:
        """Nothing is buffered below ``send``: always flushed."""
        return True

    def peer_certificate(self) -> bytes | None:
        """No TLS, no certificate."""
        return None


class TlsChannel:
    """TLS over a non-blocking socket with :class:`ssl.SSLObject` and memory BIOs (no blocking ``SSLSocket``).

    ``send`` encrypts everything it is given at once (the memory BIO takes it
    all) and writes what the socket takes; the rest waits in :attr:`raw_out`
    until :meth:`flush` (the connection waits for EPOLLOUT while it is not
    empty).  ``recv`` returns decrypted bytes, reading the socket as the TLS
    records need (``BlockingIOError`` when the socket has nothing more), ``b""``
    at EOF or close_notify.  A read may also produce bytes to write (TLS 1.3
    post-handshake messages): they join :attr:`raw_out`.

    Args:
        sock: The connected socket, after the server answered ``S`` to SSLRequest.
        context: The TLS context (verification as ``sslmode`` asks).
        server_hostname: The name checked against the certificate (``verify-full``), or ``None``.
    """

    __slots__ = ("_incoming", "_obj", "_outgoing", "raw_out", "sock")

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        self.raw_out = bytearray()

    async def handshake(self) -> None:
        """Run the TLS handshake, waiting on the socket as it needs.

        Raises:
            ssl.SSLError: The handshake failed (certificate, protocol).
            ConnectionLost: The server closed the connection meanwhile.
        """
        fd = self.sock.fileno()
        while True:
            try:
                self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                while not self.flush():
                    await FdWait(fd, OUT)
                try:
                    raw = self.sock.recv(RECV_SIZE)
                except BlockingIOError:
                    await FdWait(fd, IN)
                    continue
                if not raw:
                    raise ConnectionLost("server closed the connection during the TLS handshake") from None
                self._incoming.write(raw)
        while not self.flush():
            await FdWait(fd, OUT)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Encrypt all of ``data`` and write what the socket takes now; returns ``len(data)``."""
        self._obj.write(data)
        self.flush()
        return len(data)

    def flush(self) -> bool:
        """Write encrypted bytes waiting to go; return whether none is left.

        Raises:
            OSError: The socket failed.
        """
        pending = self._outgoing.read()
        out = self.raw_out
        if pending:
            out += pending
        while out:
            try:
                sent = self.sock.send(out)
            except BlockingIOError:
                return False
            del out[:sent]
        return True

    def recv(self, size: int) -> bytes:
        """Up to ``size`` decrypted bytes; ``b""`` at EOF.

        Raises:
            BlockingIOError: Nothing decrypted is buffered and the socket has nothing more now.
            OSError: The socket failed (or TLS did: :class:`ssl.SSLError` is one).
        """
        obj = self._obj
        while True:
            try:
                data = obj.read(size)
            except ssl.SSLWantReadError:
                raw = self.sock.recv(RECV_SIZE)  # BlockingIOError: wait for the socket
                if not raw:
                    return b""
                self._incoming.write(raw)
                continue
            except ssl.SSLZeroReturnError:
                return b""
            if self._outgoing.pending:
                self.flush()
            return data

    def peer_certificate(self) -> bytes | None:
        """The server's certificate (DER), for SCRAM channel binding."""
        return self._obj.getpeercert(binary_form=True)


Channel = PlainChannel | TlsChannel


async def drive(gen: Gen, channel: Channel) -> Any:
    """Run an operation generator alone over a channel (startup, before anyone shares the connection).

    Returns:
        The generator's return value.

    Raises:
        ConnectionLost: The server closed the connection or the socket failed.
    """
    fd = channel.sock.fileno()
    try:
        out = next(gen)
        while True:
            if out is None:
                while True:
                    try:
                        data = channel.recv(RECV_SIZE)
                        break
                    except BlockingIOError:
                        await FdWait(fd, IN)
                    except OSError as exc:
                        raise ConnectionLost(f"socket error while reading: {exc}") from exc
                if not data:
                    raise ConnectionLost("server closed the connection")
                out = gen.send(data)
            else:
                view = memoryview(out)
                try:
                    while view:
                        try:
                            view = view[channel.send(view) :]
                        except BlockingIOError:
                            await FdWait(fd, OUT)
                    while not channel.flush():
                        await FdWait(fd, OUT)
                except OSError as exc:
                    raise ConnectionLost(f"socket error while writing: {exc}") from exc
                out = gen.send(None)
    except StopIteration as stop:
        return stop.value
    finally:
        gen.close()


async def read_byte(sock: socket.socket) -> bytes:
    """One byte from the socket (the server's answer to SSLRequest), waiting for it.

    Raises:
        ConnectionLost: EOF or a socket error.
    """
    while True:
        try:
            data = sock.recv(1)
        except BlockingIOError:
            await FdWait(sock.fileno(), IN)
            continue
        except OSError as exc:
            raise ConnectionLost(f"socket error while reading: {exc}") from exc
        if not data:
            raise ConnectionLost("server closed the connection")
        return data


class NextTurn:
    """``await NextTurn()``: go back in line once, behind what the loop already has ready.

    It yields a future that is already set (the wait protocol's second kind), which the
    loop answers by queueing the caller again: whatever else this loop turn started runs
    first (the connection uses it to cork one turn's requests into one write).
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        done = Signal()
        done.set_result()
        yield done
