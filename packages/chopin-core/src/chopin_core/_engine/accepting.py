"""Taking connections from the worker's listening socket.

How it works: when the listener is readable the loop calls :meth:`Acceptor.accept`,
which takes up to a batch of connections.  Past ``Settings.slab_capacity`` a
connection gets a 503 and is closed; the setup hook may refuse one; a TLS
connection starts its handshake as a channel; anything else becomes an HTTP/1.1
connection of the loop (:meth:`Acceptor.serve`).  Out of descriptors or memory,
the listener would stay readable and spin the loop, so it is left unwatched
until the next tick (:meth:`Acceptor.resume`).  On a graceful stop
:meth:`Acceptor.close_listener` takes what the kernel already queued before
closing it.  The worker is reached only through
:class:`~chopin_core._engine.channel.Loop`.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .._wire.h1_request import RequestParser
from .._wire.h1_writer import BUSY
from ..connection import Connection
from ..hooks import DROP, PROCEED, SetupHook
from ..metrics import ACTIVE

if TYPE_CHECKING:
    from ..metrics import WorkerMetrics
    from .channel import Loop

__all__ = ["Acceptor"]

# The worker's logger: these messages were the worker's before they moved here.
log = logging.getLogger("chopin_core.worker")

_READ_MASK: Final = select.EPOLLIN | select.EPOLLRDHUP
# accept() errors that mean "out of descriptors or memory": the queue stays readable.
_EXHAUSTED: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Acceptor:
    """How one worker takes new connections.

    Args:
        loop: the worker.
        conns: the worker's HTTP/1.1 connections by fd (new ones join it).
        setup_hook: the app's ``connection_setup_hook``, or None.
        metrics: this worker's counters (active connections), or None when metrics are off.
        start_tls: starts a TLS handshake for an accepted socket (``start_tls(sock, peer)``),
            or None for plain HTTP.

    Attributes:
        paused: the listener is left unwatched until the next tick (accept ran out of resources).
    """

    __slots__ = ("conns", "loop", "metrics", "paused", "setup_hook", "start_tls")

    def __init__(
        self,
        loop: Loop,
        conns: dict[int, Connection],
        setup_hook: SetupHook | None,
        metrics: WorkerMetrics | None,
        start_tls: Callable[[socket.socket, object], None] | None,
    ) -> None:
        self.loop = loop
        self.conns = conns
        self.setup_hook = setup_hook
        self.metrics = metrics
        self.start_tls = start_tls
        self.paused = False

    def accept(self, lsock: socket.socket, batch: int = 64) -> None:
        """Take up to ``batch`` connections waiting on ``lsock``."""
        loop = self.loop
        conns = self.conns
        capacity = loop.settings.slab_capacity
        watch = loop.channels.watch
        for _ in range(batch):
            try:
                sock, peer = lsock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    log.error("worker %d: accept failed: %s; pausing accepts for a second", loop.index, exc)
                    loop.channels.unwatch(lsock.fileno())
                    self.paused = True
                return
            if len(conns) >= capacity:
                try:
                    sock.send(BUSY)
                except OSError:
                    pass
                sock.close()
                continue
            if self.setup_hook is not None:
                try:
                    verdict = self.setup_hook(sock, peer)
                except Exception:
                    log.exception("worker %d: connection_setup_hook failed; dropping %s", loop.index, peer)
                    verdict = DROP
                if verdict is not PROCEED:
                    sock.close()
                    continue
            sock.setblocking(False)
            if self.metrics is not None:
                self.metrics.counts[ACTIVE] += 1
            if self.start_tls is not None:
                self.start_tls(sock, peer)
                continue
            watch(self.serve(sock, peer).fd, _READ_MASK)

    def serve(self, sock: socket.socket, peer: object) -> Connection:
        """Make ``sock`` an HTTP/1.1 connection of the loop (the caller watches its fd)."""
        loop = self.loop
        conn = Connection(sock, RequestParser(loop.limits), loop.tick)
        conn.peer = peer
        conn.proxies = loop.proxies
        self.conns[conn.fd] = conn
        loop.schedule(conn, loop.tick + loop.keepalive_ticks)
        return conn

    def resume(self, lsock: socket.socket) -> None:
        """Once a second: watch the listener again after a pause."""
        if self.paused:
            self.paused = False
            self.loop.channels.watch(lsock.fileno(), select.EPOLLIN)

    def close_listener(self, lsock: socket.socket) -> None:
        """A graceful stop: take the connections the kernel queued, then close ``lsock``.

        Closing a listener resets the connections in its accept queue: the kernel
        completed them and their clients may have sent a request, so they are taken
        first (bounded, should clients keep coming).
        """
        if not self.paused:
            self.accept(lsock, self.loop.settings.backlog + 64)
        if not self.paused:
            self.loop.channels.unwatch(lsock.fileno())
        lsock.close()
