"""Topics across the workers of one server: a datagram fan-out the supervisor wires before it forks.

How it works: :class:`SiblingMesh` makes one ``AF_UNIX``/``SOCK_DGRAM`` socket pair per
worker before the fork; worker *i* reads the first end of pair *i* (its inbox) and
writes to the second end of every other pair.  A published message is one datagram
(:mod:`chopin_core._wire.topic_frames`) per sibling, sent without blocking: datagrams
keep their boundaries and their order, and a connected pair has no queue-length limit
beyond the socket buffer (about 8 MiB here), past which a slow sibling loses messages
instead of the publisher waiting.  The supervisor keeps every end open, so a worker it
restarts inherits its inbox again: the mesh needs no re-wiring.

In the worker, an inbox is a :class:`~chopin_core._engine.channel.Channel` in the
loop's epoll (:class:`Inbox`): it is read only when a datagram is there, so the HTTP
path carries nothing.  A backplane's thread hands what it receives to the loop through
an inbox of the same kind (see :mod:`chopin_core._engine.backplane`).
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
from typing import TYPE_CHECKING, Final

from .._wire.topic_frames import HEAD, MAX_TOPIC_BYTES, FrameError, decode_frame, encode_frame
from ..topics import MAX_MESSAGE_SIZE, Hub, install

if TYPE_CHECKING:
    from ..topics import Subscriber
    from .channel import Loop

__all__ = ["MAX_FRAME", "Inbox", "SiblingLink", "SiblingMesh", "SiblingRelay", "TopicService", "TopicWiring"]

log = logging.getLogger("chopin_core.topics")

MAX_FRAME: Final = HEAD.size + MAX_TOPIC_BYTES + MAX_MESSAGE_SIZE
# Asked for on each sending end; Linux doubles it, within net.core.wmem_max.
_SEND_BUFFER: Final = 4 * 1024 * 1024
# Datagrams read per readiness event, so a flood of messages cannot hold the loop.
_READ_BATCH: Final = 256


def datagram_pair() -> tuple[socket.socket, socket.socket]:
    """A non-blocking ``AF_UNIX`` datagram pair: (the receiving end, the sending end)."""
    recv_end, send_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for sock in (recv_end, send_end):
        sock.setblocking(False)
    try:
        send_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
    except OSError:
        pass  # the system default buffer then
    return recv_end, send_end


class SiblingLink:
    """One worker's ends of the mesh: its inbox, and a sending end per sibling.

    Attributes:
        origin: the server's id (shared by its workers).
        inbox: the socket this worker reads.
        outboxes: the sockets that reach each sibling.
    """

    __slots__ = ("inbox", "origin", "outboxes")

    def __init__(self, origin: bytes, inbox: socket.socket, outboxes: list[socket.socket]) -> None:
        self.origin = origin
        self.inbox = inbox
        self.outboxes = outboxes


class SiblingMesh:
    """The supervisor's fan-out between its workers, made before forking them.

    Args:
        count: how many workers.
    """

    def __init__(self, count: int) -> None:
        self.origin = os.urandom(8)
        self.pairs = [datagram_pair() for _ in range(count)]

    def link(self, index: int) -> SiblingLink:
        """Worker ``index``'s ends (called in the forked child; the supervisor keeps its copies)."""
        inbox = self.pairs[index][0]
        outboxes = [send_end for i, (_, send_end) in enumerate(self.pairs) if i != index]
        return SiblingLink(self.origin, inbox, outboxes)

    def close(self) -> None:
        """Close every end (the supervisor exits)."""
        for recv_end, send_end in self.pairs:
            recv_end.close()
            send_end.close()
        self.pairs = []


class SiblingRelay:
    """Sends every message a worker publishes to each of its siblings, one datagram each."""

    __slots__ = ("dropped", "outboxes")

    def __init__(self, outboxes: list[socket.socket]) -> None:
        self.outboxes = outboxes
        self.dropped = 0

    def check(self, topic: str, message: str | bytes) -> None:
        """Every message within the hub's limits fits in a datagram."""

    def send(self, origin: bytes, topic: str, message: str | bytes) -> None:
        """One datagram per sibling; a sibling whose buffer is full misses this one (counted, logged)."""
        frame = encode_frame(origin, topic, message)
        for sock in self.outboxes:
            try:
                sock.send(frame)
            except (BlockingIOError, ConnectionRefusedError):
                self.dropped += 1
                if self.dropped & (self.dropped - 1) == 0:  # 1, 2, 4, 8...: a flood does not flood the log
                    log.warning("topics: a sibling worker is behind; %d messages to siblings dropped", self.dropped)
            except OSError as exc:
                log.error("topics: sending to a sibling worker failed: %s", exc)

    def close(self) -> None:
        """The sockets belong to the mesh (the worker exits with them)."""


class Inbox:
    """A datagram socket in the loop's epoll whose frames go to this worker's subscribers.

    Args:
        loop: the worker.
        sock: the receiving end.
        hub: where the messages are delivered.
        what: for log lines ("sibling", "backplane").
    """

    __slots__ = ("fd", "hub", "loop", "peer", "sock", "what")

    def __init__(self, loop: Loop, sock: socket.socket, hub: Hub, what: str) -> None:
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.hub = hub
        self.peer: object = what
        self.what = what

    def on_event(self, events: int) -> None:
        """Read what is there (a bounded batch) and deliver it."""
        recv = self.sock.recv
        deliver = self.hub.deliver
        corked = self.loop.websockets.cork()  # the batch leaves in one write per subscriber
        try:
            for _ in range(_READ_BATCH):
                try:
                    frame = recv(MAX_FRAME)
                except (BlockingIOError, InterruptedError):
                    return
                try:
                    _, topic, message = decode_frame(frame)
                except FrameError as exc:
                    log.error("topics: worker %d dropped a %s frame: %s", self.loop.index, self.what, exc)
                    continue
                deliver(topic, message)
        finally:
            if corked:
                self.loop.websockets.uncork()

    def on_tick(self, tick: int) -> None:
        """Nothing to time out."""

    def stop(self) -> None:
        """A graceful stop: the WebSockets are closing, so stop delivering."""
        self.loop.channels.detach(self)

    def abort(self) -> None:
        """The worker exits."""
        self.loop.channels.detach(self)


class TopicWiring:
    """What a worker needs to join its server's topics (made by the supervisor, or for a lone worker).

    Args:
        origin: the server's id (8 bytes).
        link: the worker's ends of the sibling mesh (None: a single worker).
        backplane: a ``postgres://`` or ``redis://`` URL, or None.
    """

    __slots__ = ("backplane", "link", "origin")

    def __init__(
        self, origin: bytes | None = None, link: SiblingLink | None = None, backplane: str | None = None
    ) -> None:
        self.origin = origin if origin is not None else os.urandom(8)
        self.link = link
        self.backplane = backplane


class TopicService:
    """A worker's topics, started with its loop: the hub, the sibling inbox, the backplane.

    Args:
        loop: the worker.
        members: the worker's table of subscribers by topic (its WebSockets use it too).
        wiring: how this worker reaches the others.
    """

    __slots__ = ("_handoff", "_previous", "hub", "inboxes")

    def __init__(self, loop: Loop, members: dict[str, set[Subscriber]], wiring: TopicWiring) -> None:
        hub = self.hub = Hub(members, wiring.origin)
        # Messages published on another thread of this worker reach its loop through this pair.
        recv_end, self._handoff = datagram_pair()
        self.inboxes: list[Inbox] = [Inbox(loop, recv_end, hub, "thread")]
        hub.thread = threading.get_ident()
        hub.handoff = self._hand_off
        link = wiring.link
        if link is not None:
            hub.relays.append(SiblingRelay(link.outboxes))
            self.inboxes.append(Inbox(loop, link.inbox, hub, "sibling"))
        if wiring.backplane:
            from .backplane import open_backplane

            recv_end, send_end = datagram_pair()
            hub.relays.append(open_backplane(wiring.backplane, wiring.origin, send_end, loop.index))
            self.inboxes.append(Inbox(loop, recv_end, hub, "backplane"))
        for inbox in self.inboxes:
            loop.channels.attach(inbox, select.EPOLLIN)
        self._previous = install(hub)

    def _hand_off(self, topic: str, message: str | bytes) -> None:
        try:
            self._handoff.send(encode_frame(self.hub.origin, topic, message))
        except OSError as exc:  # full (the loop is that far behind) or closed (the worker exits)
            log.warning("topics: a message published off the loop's thread was dropped: %s", exc)

    def close(self) -> None:
        """The worker exits: stop the backplane, give the process its previous hub back."""
        self.hub.handoff = None
        self.hub.close()
        install(self._previous)
        self._handoff.close()
        for inbox in self.inboxes:
            if inbox.what != "sibling":
                inbox.sock.close()
