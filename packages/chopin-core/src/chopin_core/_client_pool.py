"""Idle keep-alive connections to upstreams, kept by one process for reuse.

A :class:`ConnectionPool` holds sockets that finished a response and may carry
another request, keyed by ``(host, port)`` (the proxy) or ``(scheme, host, port)`` (the clients),
newest last; a TLS connection is an :class:`ssl.SSLSocket`.  It never reads a clock:
callers pass ``now`` (seconds, any monotonic scale).  A socket is handed out
only if it is younger than ``idle_timeout`` and the peer has not closed it or
sent anything unasked (checked with a non-blocking ``MSG_PEEK``).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Hashable

__all__ = ["ConnectionPool"]

# (host, port) for the proxy's upstreams, (scheme, host, port) for the clients.
Key = Hashable


class ConnectionPool:
    """Idle sockets by upstream address.

    Args:
        max_idle_per_host: idle sockets kept per address; the oldest is closed past it.
        idle_timeout: seconds an idle socket is kept.
    """

    __slots__ = ("_idle", "idle_timeout", "max_idle_per_host")

    def __init__(self, max_idle_per_host: int = 256, idle_timeout: float = 30.0) -> None:
        self.max_idle_per_host = max_idle_per_host
        self.idle_timeout = idle_timeout
        self._idle: dict[Key, list[tuple[socket.socket, float]]] = {}

    def checkout(self, key: Key, now: float) -> socket.socket | None:
        """A live idle socket to ``key``, or None; stale ones found on the way are closed."""
        idle = self._idle.get(key)
        while idle:
            sock, since = idle.pop()
            if now - since < self.idle_timeout and _still_open(sock):
                return sock
            sock.close()
        return None

    def checkin(self, key: Key, sock: socket.socket, now: float) -> None:
        """Keep ``sock`` for reuse (or close it when the pool for ``key`` is full)."""
        if self.max_idle_per_host <= 0:
            sock.close()
            return
        idle = self._idle.setdefault(key, [])
        idle.append((sock, now))
        while len(idle) > self.max_idle_per_host:
            idle.pop(0)[0].close()

    def prune(self, now: float) -> None:
        """Close the sockets idle for ``idle_timeout`` or more."""
        for key, idle in list(self._idle.items()):
            keep = []
            for sock, since in idle:
                if now - since < self.idle_timeout:
                    keep.append((sock, since))
                else:
                    sock.close()
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    def idle_count(self, key: Key | None = None) -> int:
        """Idle sockets held (to ``key``, or in all)."""
        if key is not None:
            return len(self._idle.get(key, ()))
        return sum(map(len, self._idle.values()))

    def close(self) -> None:
        """Close every idle socket."""
        for idle in self._idle.values():
            for sock, _ in idle:
                sock.close()
        self._idle.clear()


def _still_open(sock: socket.socket) -> bool:
    """Whether an idle socket is still usable: no EOF, no error, no unasked bytes."""
    # A socket with a timeout waits for readability before recv, whatever the flags: peek
    # without one (the worker's sockets are non-blocking already: no fcntl round trips then).
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False  # decrypted bytes nobody asked for
    timeout = sock.gettimeout()
    if timeout != 0.0:
        sock.setblocking(False)
    try:
        # The plain socket's recv, also for an SSLSocket (which refuses flags): any raw
        # byte on an idle TLS connection (a close_notify alert, a stray record) disqualifies it.
        data = socket.socket.recv(sock, 1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        if timeout != 0.0:
            sock.settimeout(timeout)
    # b"": the peer closed; bytes: it sent something nobody asked for (e.g. a 408).
    del data
    return False
