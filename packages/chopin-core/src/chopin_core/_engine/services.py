"""What a worker runs beside its inlined HTTP/1.1 path, and the state it keeps for it.

How it works: the worker (:class:`~chopin_core.worker.Worker`) keeps the attributes
its hot path reads on itself (CPython's shared-key layout, see ``Worker.__init__``)
and everything else in one :class:`Services`: the channel table, the protocols
beyond plain HTTP/1.1, request bodies, the scheduler of handlers that wait, the
topics, and the connections waiting for their next pipelining turn.  The loop asks
it how long it may wait (:meth:`Services.wait_time`), hands it what is left of a
wake-up (:meth:`Services.after_events`) and closes it on exit
(:meth:`Services.close`).  The worker is reached only through
:class:`~chopin_core._engine.channel.Loop`.
"""

from __future__ import annotations

import logging
import math
import os
import select
from typing import TYPE_CHECKING

from .._body import BodyBudget
from ..forwarded import TrustedProxies
from .bodies import RequestBodies
from .channel import ChannelTable
from .fanout import TopicService, TopicWiring
from .protocols import Protocols
from .tasks import Scheduler
from .ws_channel import WebSocketService

if TYPE_CHECKING:
    import ssl

    from ..connection import Connection
    from ..settings import Settings
    from .accepting import Acceptor
    from .channel import Loop
    from .serving import Routing

__all__ = ["Services"]

log = logging.getLogger("chopin_core.worker")


class Services:
    """A worker's state and work off the plain HTTP/1.1 hot path, in one attribute (``Worker._ext``).

    Args:
        loop: the worker.
        settings: its settings.
        tls: the server's TLS context, or None for plain HTTP.
        routing: how the worker answers off the HTTP/1.1 path.

    Attributes:
        loop: the worker.
        acceptor: takes new connections from the listener (:mod:`chopin_core._engine.accepting`).
        tls: the server context, or None for plain HTTP.
        http2: whether HTTP/2 is served (``Settings.http2`` and ``h2`` importable).
        channels: every fd of the loop that is not an HTTP/1.1 connection, the listener or
            the wake-up pipe: TLS handshakes, HTTP/2 sessions, WebSockets, upstream
            exchanges of the proxy, topic inboxes, and their epoll entries (see
            :class:`~chopin_core._engine.channel.ChannelTable`).
        supervisor: the pid of the supervisor that forked this worker, or 0.
        bodies: request bodies that take more than one read: memory budget, spooling,
            idle timeout (see :mod:`chopin_core._engine.bodies`).
        tasks: the scheduler of ``async def`` handlers that wait, made on first use.
        waiting: handlers waiting now (capped by ``Settings.max_waiting_handlers``).
        wake_fd: the write end of the loop's wake-up pipe (threads finishing work for a task).
        wiring: how this worker's topics reach its siblings and the backplane.
        websockets: the upgraded connections' service (:mod:`chopin_core._engine.ws_channel`).
        topics: the running topic service (:mod:`chopin_core._engine.fanout`), while the loop runs.
        proxies: ``Settings.trusted_proxies`` parsed, or None when there are none;
            each connection gets it (``Connection.proxies``) for ``ctx.client``.
        protocols: TLS handshakes and socket I/O, HTTP/2 sessions
            (:mod:`chopin_core._engine.protocols`).
        routing: the pre-routing hook, the route table and the accounting of requests
            answered off the HTTP/1.1 path (:mod:`chopin_core._engine.serving`).
        turns: connections that used up ``Settings.max_pipeline_depth`` in one turn,
            waiting (with their requests queued, unread) for the loop's next pass.
    """

    __slots__ = (
        "acceptor",
        "bodies",
        "channels",
        "http2",
        "loop",
        "protocols",
        "proxies",
        "routing",
        "supervisor",
        "tasks",
        "tls",
        "topics",
        "turns",
        "waiting",
        "wake_fd",
        "websockets",
        "wiring",
    )

    def __init__(self, loop: Loop, settings: Settings, tls: ssl.SSLContext | None, routing: Routing) -> None:
        from ..tls import h2_available

        self.loop = loop
        self.tls = tls
        self.http2 = settings.http2 and h2_available()
        self.supervisor = 0
        budget = BodyBudget(
            settings.max_buffered_body_bytes, settings.body_spool_threshold, math.ceil(settings.body_timeout) + 1
        )
        self.bodies = RequestBodies(loop, budget)
        self.tasks: Scheduler | None = None
        self.waiting = 0
        self.wake_fd = -1
        self.wiring: TopicWiring | None = None
        self.websockets = WebSocketService(loop)
        self.topics: TopicService | None = None
        self.turns: dict[Connection, None] = {}
        self.proxies = (
            TrustedProxies(settings.trusted_proxies, settings.forwarded_header) if settings.trusted_proxies else None
        )
        self.routing = routing
        self.protocols = Protocols(loop, tls, self.http2, self.proxies, math.ceil(settings.tls_handshake_timeout) + 1)
        self.channels = ChannelTable(self.protocols.close_socket, loop.teardown)
        # Set by the worker, which holds what it needs (its connection table, hooks, metrics).
        self.acceptor: Acceptor

    def start(self) -> int:
        """The loop starts (its epoll is ``channels.ep``): open the wake-up pipe, start the topics; the read end."""
        ep = self.channels.ep
        assert ep is not None
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        ep.register(wake_r, select.EPOLLIN)
        self.wake_fd = wake_w
        # Topics: the sibling inbox (and a backplane's) join the epoll as channels.
        self.topics = TopicService(self.loop, self.loop.topics, self.wiring or TopicWiring())
        return wake_r

    def on_tick(self, tick: int) -> None:
        """Once a second: idle upstream connections past their timeout closed, and every channel's tick."""
        if self.protocols.upstreams is not None:
            self.protocols.upstreams.prune(tick)
        if self.channels:
            self.channels.on_tick(tick, self.loop.contain)

    def wait_time(self, timeout: float) -> float:
        """How long the loop may wait in ``epoll``: ``timeout``, or less if a handler or proxy deadline is nearer."""
        tasks = self.tasks
        upstreams = self.protocols.upstreams
        wait = tasks.wait_time(timeout) if tasks is not None else timeout
        if upstreams is not None and upstreams.deadlines:
            wait = min(wait, upstreams.wait_time(timeout))
        return wait

    def after_events(self, tasks: Scheduler | None, now: int) -> None:
        """After a wake-up's events: resume the handlers ``tasks`` has ready, end the proxy exchanges past deadline."""
        if tasks is not None:
            try:
                tasks.run_ready()
            except Exception:
                log.exception("worker %d: resuming waiting handlers failed", self.loop.index)
        upstreams = self.protocols.upstreams
        if upstreams is not None and upstreams.deadlines and upstreams.deadlines[0][0] <= now:
            try:
                upstreams.expire()
            except Exception:
                log.exception("worker %d: proxy deadline handling failed", self.loop.index)

    def wake(self) -> None:
        """Wake the loop from another thread (a thread-pool job of a waiting handler finished), or for its next pass."""
        try:
            os.write(self.wake_fd, b"\0")
        except OSError:
            pass  # the pipe is full: the loop is awake anyway

    def scheduler(self) -> Scheduler:
        """The scheduler of the worker's waiting coroutines, made on first use (while the loop runs)."""
        tasks = self.tasks
        if tasks is None:
            loop = self.loop
            assert self.channels.ep is not None
            tasks = self.tasks = Scheduler(
                self.channels.ep, self.wake, loop.settings.worker_threads, f"chopin-w{loop.index}"
            )
        return tasks

    def end_turn(self, conn: Connection) -> None:
        """``conn`` had ``max_pipeline_depth`` requests answered: the rest wait for the loop's next pass.

        The wake-up pipe makes that pass come at once, after the connections that are
        ready now; meanwhile ``conn`` is not read (its queued requests are answered first).
        """
        if not self.turns:
            self.wake()
        self.turns[conn] = None
        self.loop.stop_reading(conn)

    def take_turns(self) -> None:
        """The loop's next pass: answer the next turn of each connection that waited (see :meth:`end_turn`)."""
        loop = self.loop
        waiting, self.turns = self.turns, {}
        for conn in waiting:
            if conn.closed:
                continue
            try:
                loop.flush(conn)  # answers up to max_pipeline_depth more, then writes
            except Exception as exc:
                loop.contain(conn.fd, exc)

    def close(self) -> None:
        """The worker exits: abort every channel; close the upstream exchanges, the scheduler and the topics."""
        self.channels.abort()
        if self.protocols.upstreams is not None:
            self.protocols.upstreams.close()
        if self.tasks is not None:
            self.tasks.close()
            self.tasks = None
        if self.topics is not None:
            self.topics.close()
            self.topics = None
