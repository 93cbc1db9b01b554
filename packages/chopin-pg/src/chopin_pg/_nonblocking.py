"""The non-blocking I/O shell's pieces: the two awaitables of the wait protocol, and connecting without blocking.

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
from collections.abc import Callable, Generator
from typing import Any

from ._result import Gen
from .config import PgConfig
from .errors import ConnectionLost

__all__ = ["ERR", "HUP", "IN", "OUT", "RECV_SIZE", "FdWait", "Signal", "drive", "finish_connect", "open_socket"]

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


async def drive(gen: Gen, sock: socket.socket) -> Any:
    """Run an operation generator alone on a non-blocking socket (startup, before anyone shares it).

    Returns:
        The generator's return value.

    Raises:
        ConnectionLost: The server closed the connection or the socket failed.
    """
    fd = sock.fileno()
    try:
        out = next(gen)
        while True:
            if out is None:
                while True:
                    try:
                        data = sock.recv(RECV_SIZE)
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
                while view:
                    try:
                        view = view[sock.send(view) :]
                    except BlockingIOError:
                        await FdWait(fd, OUT)
                    except OSError as exc:
                        raise ConnectionLost(f"socket error while writing: {exc}") from exc
                out = gen.send(None)
    except StopIteration as stop:
        return stop.value
    finally:
        gen.close()
