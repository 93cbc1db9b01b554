"""Topics: publish a message once, every subscriber of every worker (and, with a backplane, every server) gets it.

::

    from chopin_core import topics

    topics.publish("chat", "hello")          # from any handler, middleware, timer or WebSocket
    ws.subscribe("chat")                       # a WebSocket receives each message as a frame
    with topics.subscribe("chat") as sub:      # anything else (an SSE stream): a bounded queue
        async for message in sub: ...

How it works: each worker process has one :class:`Hub` (installed by the worker when
it starts: :func:`current` returns it, so no context object is needed).  ``publish``
hands the message to the hub's subscribers in this process, then to its relays: the
sibling fan-out (one ``AF_UNIX`` datagram socket per worker, made by the supervisor
before it forks, so every worker of the server gets the frame and delivers it to its
own subscribers) and, when configured, a backplane (PostgreSQL LISTEN/NOTIFY or Redis
pub/sub, :meth:`chopin_core.Chopin.with_backplane`) that carries it to the other
servers.  Nothing of this is on the HTTP path: a worker reads its sibling socket only
when a frame is there.

Delivery semantics:

* **at most once.**  A message reaches the subscribers that are subscribed, on a
  worker that is up, when it arrives; there is no replay.  A client that was
  disconnected (or a worker that was restarting, or a server cut off from the
  backplane) misses what was published meanwhile.
* **per-publisher order.**  Messages one worker publishes arrive in the order it
  published them, on every worker and server (one socket per path, FIFO); messages of
  different publishers may interleave differently for different subscribers.
* **bounded.**  A message is at most :data:`MAX_MESSAGE_SIZE` bytes (PostgreSQL:
  :data:`~chopin_core._engine.backplane.PG_MAX_PAYLOAD` bytes, its NOTIFY limit): a
  bigger one raises :class:`MessageTooLarge` before anyone gets it.  A WebSocket whose
  unsent output passes ``8 * write_high_water`` is closed with 1008 (policy
  violation); a :class:`Subscription` whose queue passes ``max_pending`` messages is
  dropped (its iteration ends).  A sibling worker that falls more than a socket
  buffer (about 8 MiB) behind loses messages rather than growing memory.

The registry is per process, deliberately: outside a worker (a script, the
``TestClient``) :func:`publish` reaches the subscribers of this process only.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Final, Protocol

from ._wire.topic_frames import MAX_TOPIC_BYTES
from .errors import ChopinError, ConfigError

__all__ = [
    "MAX_MESSAGE_SIZE",
    "BackplaneUnavailable",
    "Hub",
    "MessageTooLarge",
    "Relay",
    "Subscriber",
    "Subscription",
    "TopicError",
    "check_backplane_url",
    "current",
    "install",
    "publish",
    "subscribe",
]

MAX_MESSAGE_SIZE: Final = 64 * 1024
"""The largest message :func:`publish` takes, in bytes (UTF-8 for text)."""

DEFAULT_MAX_PENDING: Final = 1024


class TopicError(ChopinError):
    """Publishing or subscribing failed."""


class MessageTooLarge(TopicError, ValueError):
    """A message (or topic name) is larger than a path it must travel allows; nobody got it.

    Attributes:
        size: the message's size in bytes.
        limit: the largest size allowed.
    """

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class BackplaneUnavailable(TopicError):
    """The backplane is down and its queue of messages to send is full.

    The message did reach the subscribers of this server (every worker); it will not
    reach the other servers.
    """


class Subscriber(Protocol):
    """Something that receives a topic's messages (a :class:`~chopin_core.WebSocket`, a :class:`Subscription`)."""

    def send(self, message: str | bytes) -> bool:
        """Take ``message``; False when the subscriber is gone (or was just dropped as too slow)."""
        ...


class Relay(Protocol):
    """Carries what a hub publishes beyond this worker: to its siblings, or to a backplane."""

    def check(self, topic: str, message: str | bytes) -> None:
        """Raise :class:`MessageTooLarge` if ``message`` cannot travel this way (before anyone gets it)."""
        ...

    def send(self, origin: bytes, topic: str, message: str | bytes) -> None:
        """Send ``message`` on ``topic``; raise :class:`BackplaneUnavailable` when it cannot."""
        ...

    def close(self) -> None:
        """Stop relaying (the worker exits)."""
        ...


class Hub:
    """One process's topics: its subscribers, and the relays that reach other workers and servers.

    Args:
        members: the table of subscribers by topic (the worker shares its own with its WebSockets).
        origin: this server's id on the backplane (8 bytes; random when omitted).
    """

    __slots__ = ("handoff", "members", "origin", "relays", "thread")

    def __init__(self, members: dict[str, set[Subscriber]] | None = None, origin: bytes | None = None) -> None:
        self.members: dict[str, set[Subscriber]] = members if members is not None else {}
        self.origin = origin if origin is not None else os.urandom(8)
        self.relays: list[Relay] = []
        # The thread that owns the subscribers (the worker's loop), and how another thread
        # hands it a message to deliver (set by the worker; None: deliver on any thread).
        self.thread = 0
        self.handoff: Callable[[str, str | bytes], None] | None = None

    def subscribe(self, topic: str, member: Subscriber) -> None:
        """Have ``member`` receive ``topic``'s messages."""
        self.members.setdefault(topic, set()).add(member)

    def unsubscribe(self, topic: str, member: Subscriber) -> None:
        """Stop ``member`` receiving ``topic`` (no error if it did not)."""
        members = self.members.get(topic)
        if members is not None:
            members.discard(member)
            if not members:
                del self.members[topic]

    def publish(self, topic: str, message: str | bytes, *, skip: Subscriber | None = None) -> int:
        """Deliver ``message`` to ``topic``'s subscribers here, then relay it to every other worker and server.

        Args:
            topic: the topic's name (at most 255 bytes of UTF-8).
            message: text (sent to WebSockets as a text frame) or bytes (a binary frame).
            skip: a local subscriber not to deliver to (a WebSocket publishing to the others).

        Safe to call from any thread of the worker: off the loop's thread (a
        :func:`~chopin_core.to_thread` job) the local delivery is handed to the loop.

        Returns:
            How many subscribers of this process took it (0 when handed to the loop).

        Raises:
            MessageTooLarge: the message or topic is too large for a path it must take; nobody got it.
            BackplaneUnavailable: the backplane is down and its queue is full; this server's
                subscribers got it, the other servers' did not.
        """
        size = len(message.encode()) if isinstance(message, str) else len(message)
        if size > MAX_MESSAGE_SIZE:
            raise MessageTooLarge(
                f"topic {topic!r}: message of {size} bytes, at most {MAX_MESSAGE_SIZE} allowed", size, MAX_MESSAGE_SIZE
            )
        name_size = len(topic.encode())
        if name_size > MAX_TOPIC_BYTES or not topic:
            raise MessageTooLarge(
                f"topic name of {name_size} bytes: expected 1 to {MAX_TOPIC_BYTES}", name_size, MAX_TOPIC_BYTES
            )
        relays = self.relays
        for relay in relays:
            relay.check(topic, message)
        if self.handoff is not None and threading.get_ident() != self.thread:
            # A thread-pool job (to_thread): subscribers belong to the loop's thread.
            self.handoff(topic, message)
            sent = 0
        else:
            sent = self.deliver(topic, message, skip)
        failure: BackplaneUnavailable | None = None
        for relay in relays:
            try:
                relay.send(self.origin, topic, message)
            except BackplaneUnavailable as exc:
                failure = exc
        if failure is not None:
            raise failure
        return sent

    def deliver(self, topic: str, message: str | bytes, skip: Subscriber | None = None) -> int:
        """Hand ``message`` to ``topic``'s subscribers in this process only; how many took it."""
        members = self.members.get(topic)
        if not members:
            return 0
        sent = 0
        for member in list(members):  # a member may leave (or be dropped) while we send
            if member is not skip and member.send(message):
                sent += 1
        return sent

    def close(self) -> None:
        """Close every relay."""
        relays, self.relays = self.relays, []
        for relay in relays:
            relay.close()


class _Signal:
    """A one-shot future of the wait protocol: the loop resumes its waiter once :meth:`fire` is called."""

    __slots__ = ("callbacks", "fired")

    def __init__(self) -> None:
        self.callbacks: list[Callable[[_Signal], object]] = []
        self.fired = False

    def add_done_callback(self, fn: Callable[[_Signal], object]) -> None:
        if self.fired:
            fn(self)
        else:
            self.callbacks.append(fn)

    def fire(self) -> None:
        if not self.fired:
            self.fired = True
            callbacks, self.callbacks = self.callbacks, []
            for fn in callbacks:
                fn(self)

    def __await__(self) -> Generator[_Signal, None, None]:
        yield self


class Subscription:
    """A bounded queue of the messages of some topics, for a consumer that reads at its own pace (an SSE stream).

    Iterate it with ``async for`` in an ``async def`` handler or stream (the worker's loop
    wakes it when a message arrives), or poll :meth:`get_nowait`.  A consumer that lets
    more than ``max_pending`` messages pile up is dropped: :attr:`dropped` is set and
    the iteration ends.  Close it (or use ``with``) to unsubscribe.

    Args:
        hub: the hub to subscribe to.
        topics: the topics to receive.
        max_pending: messages kept for the consumer at most.
    """

    __slots__ = ("_hub", "_queue", "_signal", "closed", "dropped", "max_pending", "topics")

    def __init__(self, hub: Hub, topics: Iterable[str], max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._hub = hub
        self.topics = tuple(topics)
        self.max_pending = max_pending
        self._queue: deque[str | bytes] = deque()
        self._signal: _Signal | None = None
        self.closed = False
        self.dropped = False
        for topic in self.topics:
            hub.subscribe(topic, self)

    def send(self, message: str | bytes) -> bool:
        """Queue ``message`` (called by the hub); False once closed or dropped as too slow."""
        if self.closed:
            return False
        if len(self._queue) >= self.max_pending:
            self.dropped = True
            self.close()
            return False
        self._queue.append(message)
        self._wake()
        return True

    def get_nowait(self) -> str | bytes | None:
        """The next queued message, or None."""
        return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Unsubscribe; what is queued can still be read, then the iteration ends."""
        if self.closed:
            return
        self.closed = True
        for topic in self.topics:
            self._hub.unsubscribe(topic, self)
        self._wake()

    def _wake(self) -> None:
        signal = self._signal
        if signal is not None:
            self._signal = None
            signal.fire()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> str | bytes:
        while not self._queue:
            if self.closed:
                raise StopAsyncIteration
            signal = self._signal = _Signal()
            await signal
        return self._queue.popleft()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "dropped" if self.dropped else "closed" if self.closed else f"{len(self._queue)} pending"
        return f"<Subscription {list(self.topics)} {state}>"


def check_backplane_url(url: str) -> str:
    """The kind of backplane ``url`` names: ``"postgres"`` or ``"redis"``.

    Raises:
        ConfigError: ``url`` is neither a ``postgres://`` (``postgresql://``) nor a ``redis://`` URL.
    """
    scheme = url.partition("://")[0].lower()
    if scheme in ("postgres", "postgresql"):
        return "postgres"
    if scheme == "redis":
        return "redis"
    raise ConfigError(f"backplane {url!r}: expected a postgres:// or redis:// URL")


# The per-process registry: the worker installs its hub when it starts.
_process: list[Hub] = [Hub()]


def install(hub: Hub) -> Hub:
    """Make ``hub`` this process's hub (the worker does this when it starts); the previous one."""
    previous = _process[0]
    _process[0] = hub
    return previous


def current() -> Hub:
    """This process's hub: the running worker's, or a process-local one outside a worker."""
    return _process[0]


def publish(topic: str, message: str | bytes) -> int:
    """Send ``message`` to every subscriber of ``topic``: every worker of this server, every server on the backplane.

    Callable from any handler (sync or ``async def``), middleware, timer or WebSocket
    handler of a worker; see :meth:`Hub.publish` for the limits.

    Returns:
        How many subscribers of this worker took it.

    Raises:
        MessageTooLarge: the message or topic name is too large; nobody got it.
        BackplaneUnavailable: the backplane is down and its queue is full (this server's subscribers got it).
    """
    return _process[0].publish(topic, message)


def subscribe(*topics: str, max_pending: int = DEFAULT_MAX_PENDING) -> Subscription:
    """A :class:`Subscription` to ``topics`` in this worker (WebSockets use :meth:`WebSocket.subscribe`)."""
    return Subscription(_process[0], topics, max_pending)
