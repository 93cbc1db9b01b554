"""How a connection leaves plain HTTP/1.1: TLS handshakes and I/O, HTTP/2 sessions.

How it works: with TLS on, an accepted socket is wrapped and its handshake becomes a
channel of the loop (:meth:`Protocols.start_tls`).  Once it is done, ALPN decides:
``h2`` starts an :class:`~chopin_core.http2.H2Session`, anything else becomes an
HTTP/1.1 connection of the loop (:meth:`~chopin_core._engine.channel.Loop.adopt`).  A
cleartext connection that opens with the HTTP/2 preface is handed to a session too
(:meth:`Protocols.h2_prior_knowledge`, RFC 9113 3.3).  The TLS and HTTP/2 modules are
imported on first use: ``h2`` is optional.  The loop is reached only through
:class:`~chopin_core._engine.channel.Loop`.
"""

from __future__ import annotations

import logging
import select
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..proxy import ProxyPlan, forward_blocking
from ..websocket import Upgrade
from .upstream import UpstreamTable

if TYPE_CHECKING:
    import ssl

    from ..connection import Connection
    from ..forwarded import TrustedProxies
    from ..http2 import ResetBudget
    from ..request import Request
    from ..response import Response
    from .channel import Loop
    from .tls import TlsIO

__all__ = ["Protocols"]

# The worker's logger: these messages were the worker's before they moved here.
log = logging.getLogger("chopin_core.worker")

_READ_MASK: Final = select.EPOLLIN | select.EPOLLRDHUP


class Protocols:
    """The protocols of one worker beyond plain HTTP/1.1, and their shared state.

    Args:
        loop: the worker.
        tls: the server's TLS context, or None for plain HTTP.
        http2: whether HTTP/2 is served.
        proxies: the trusted proxies each connection gets (``ctx.client``), or None.
        handshake_ticks: ticks a TLS handshake may take.
    """

    __slots__ = ("h2_resets", "handshake_ticks", "http2", "loop", "proxies", "takeovers", "tls", "tls_io", "upstreams")

    def __init__(
        self,
        loop: Loop,
        tls: ssl.SSLContext | None,
        http2: bool,
        proxies: TrustedProxies | None,
        handshake_ticks: int,
    ) -> None:
        self.loop = loop
        self.tls = tls
        # The TLS sockets' I/O, the worker's ``io`` once TLS is on (None without TLS).
        self.tls_io: TlsIO | None = None
        if tls is not None:
            from .tls import TlsIO

            self.tls_io = TlsIO()
        self.http2 = http2
        self.proxies = proxies
        self.handshake_ticks = handshake_ticks
        # The stream-reset budget all HTTP/2 connections of this worker share, made on first use.
        self.h2_resets: ResetBudget | None = None
        # The proxy's deadlines and idle upstream connections, made on first use.
        self.upstreams: UpstreamTable | None = None
        # What takes a connection over, by the type of ``Response.takeover``.
        self.takeovers: dict[type, Callable[[Connection, Request, Response, int], None]] = {
            Upgrade: self._upgrade,
            ProxyPlan: self._proxy,
        }

    def take_over(self, conn: Connection, req: Request, resp: Response, started: int) -> None:
        """Hand ``conn`` to what ``resp.takeover`` is: a WebSocket upgrade, or a proxied exchange.

        ``started``: when ``req`` was read (``monotonic_ns``), which its duration runs from.
        """
        self.takeovers[type(resp.takeover)](conn, req, resp, started)

    def _upgrade(self, conn: Connection, req: Request, resp: Response, started: int) -> None:
        loop = self.loop
        if not req.keep_alive or resp.close or loop.stopping:
            conn.close_after = True
        loop.routing.account(req, resp, started, conn)
        loop.websockets.upgrade(conn, resp, conn.out)

    def _proxy(self, conn: Connection, req: Request, resp: Response, started: int) -> None:
        loop = self.loop
        plan = resp.takeover
        assert isinstance(plan, ProxyPlan)
        if not loop.running:
            # In process (the TestClient), no loop drives an exchange: a blocking client forwards it.
            loop.respond(conn, req, conn.out, forward_blocking(plan, req, conn.peer))
            return
        keep = req.keep_alive and not resp.close and not loop.stopping
        if not keep:
            conn.close_after = True
        table = self.upstreams
        if table is None:
            table = self.upstreams = UpstreamTable(loop)
        table.start(conn, req, resp, keep, started)

    def start_tls(self, sock: socket.socket, peer: object) -> None:
        """Wrap an accepted socket and start its handshake in this loop."""
        from .tls import TlsHandshake, wrap

        loop = self.loop
        assert self.tls is not None and loop.running
        fd = sock.fileno()
        try:
            tls_sock = wrap(self.tls, sock)
        except (OSError, ValueError) as exc:
            sock.close()
            loop.teardown(peer, exc)
            return
        shake = TlsHandshake(
            tls_sock,
            peer,
            loop.tick + self.handshake_ticks,
            self._established,
            self._failed,
            self._set_handshake_mask,
        )
        loop.channels.attach(shake, _READ_MASK)
        try:
            shake.step()  # may finish the handshake and serve a first request
        except Exception as exc:
            loop.contain(fd, exc)  # the loop's own containment would blame the listener

    def _set_handshake_mask(self, fd: int, want_write: int) -> None:
        self.loop.channels.rewatch(fd, select.EPOLLOUT if want_write else _READ_MASK)

    def _established(self, shake: object) -> None:
        """A handshake finished: hand the connection to HTTP/2 or HTTP/1.1 by its ALPN protocol."""
        from .tls import TlsHandshake

        loop = self.loop
        assert isinstance(shake, TlsHandshake) and self.tls_io is not None and loop.running
        sock, fd = shake.sock, shake.fd
        del loop.channels[fd]
        self.tls_io.socks[fd] = sock
        loop.channels.rewatch(fd, _READ_MASK)
        if sock.selected_alpn_protocol() == "h2" and self.http2:
            self.start_h2(sock, shake.peer, b"")
            return
        loop.adopt(sock, shake.peer)

    def _failed(self, shake: object, error: BaseException | None) -> None:
        from .tls import TlsHandshake

        assert isinstance(shake, TlsHandshake)
        loop = self.loop
        loop.channels.pop(shake.fd, None)
        loop.channels.unwatch(shake.fd)
        shake.sock.close()
        loop.teardown(shake.peer, error)

    def start_h2(self, sock: socket.socket, peer: object, initial: bytes) -> None:
        """Serve ``sock`` (its fd already in the epoll) as HTTP/2; ``initial``: bytes read after the preface."""
        from ..http2 import H2Session, ResetBudget

        loop = self.loop
        if self.h2_resets is None:
            self.h2_resets = ResetBudget(loop.settings.h2_worker_max_resets_per_second)
        session = H2Session(loop, sock, peer, self.h2_resets)
        session.proxies = self.proxies
        loop.channels[session.fd] = session
        session.start(initial)
        if initial == b"" and not session.closed:
            session.on_event(select.EPOLLIN)  # frames that came with the handshake's last flight
        if loop.stopping:
            session.stop()  # opened by a request that waited for the stop: GOAWAY after its streams

    def h2_prior_knowledge(self, conn: Connection, data: bytes) -> bool:
        """Switch a fresh cleartext connection that opened with the HTTP/2 preface to HTTP/2 (RFC 9113 3.3)."""
        from ..http2 import preface_rest

        if conn.out or conn.stream is not None or conn.file is not None or conn.queued or conn.sock is None:
            return False
        initial = preface_rest(data)
        if initial is None:
            return False
        peer = conn.peer
        sock = self.loop.disown(conn)  # the socket and its epoll entry move to the session
        self.start_h2(sock, peer, initial)
        return True

    def close_socket(self, fd: int, sock: socket.socket) -> None:
        """Close a client's socket; a TLS one leaves the TLS I/O table and sends close_notify first."""
        tls_io = self.tls_io
        if tls_io is not None and tls_io.socks.pop(fd, None) is not None:
            from .tls import send_close_notify

            send_close_notify(sock)  # type: ignore[arg-type]
        sock.close()
