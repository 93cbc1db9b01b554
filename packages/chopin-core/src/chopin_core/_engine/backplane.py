"""Topics across servers: PostgreSQL LISTEN/NOTIFY or Redis pub/sub, one connection set per worker.

How it works: each worker runs one backplane thread (blocking sockets, so the loop
never waits on the backplane).  ``publish`` queues the message (bounded) and wakes the
thread, which sends it; the thread listens too, and hands each message another server
published to the worker's loop through a datagram inbox (:class:`~chopin_core._engine.fanout.Inbox`).
A message this server published comes back from the backplane as well: the thread
drops it by its origin id, since this server's workers had it over the sibling
fan-out already.  One connection carries one worker's messages in order, so
per-publisher order holds across servers.

When the connection breaks the thread reconnects (0.1 s, doubling to 2 s); meanwhile
up to :data:`MAX_QUEUED` messages wait and are sent, in order, once it is back; past
that :class:`~chopin_core.topics.BackplaneUnavailable` is raised.  A message taken
for sending when the connection broke may be lost (at most once); what other servers
published while this one was cut off is missed.

PostgreSQL: NOTIFY payloads are text of at most :data:`PG_MAX_PAYLOAD` bytes (the
server refuses 8,000 and more), so a message whose text form
(:func:`~chopin_core._wire.topic_frames.encode_text`) is larger raises
:class:`~chopin_core.topics.MessageTooLarge` before anyone gets it.  chopin-pg is
needed (``pip install chopin-core[postgres]``).  Redis: RESP2 spoken directly
(:mod:`chopin_core._wire.resp`), no client library.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections import deque
from typing import Final
from urllib.parse import unquote, urlsplit

from .._wire.resp import RespError, RespParser, RespValue, command
from .._wire.topic_frames import HEAD, FrameError, decode_text, encode_frame, encode_text, text_size
from ..errors import ConfigError
from ..topics import BackplaneUnavailable, MessageTooLarge, check_backplane_url

__all__ = [
    "MAX_QUEUED",
    "PG_CHANNEL",
    "PG_MAX_PAYLOAD",
    "REDIS_CHANNEL",
    "Backplane",
    "PostgresBackplane",
    "RedisBackplane",
    "open_backplane",
]

log = logging.getLogger("chopin_core.topics")

PG_CHANNEL: Final = "chopin_topics"
REDIS_CHANNEL: Final = b"chopin:topics"
PG_MAX_PAYLOAD: Final = 7999
MAX_QUEUED: Final = 1024
_IO_TIMEOUT: Final = 5.0
_BACKOFF_FIRST: Final = 0.1
_BACKOFF_MAX: Final = 2.0


def open_backplane(url: str, origin: bytes, inbox: socket.socket, index: int) -> Backplane:
    """Start the backplane thread for ``url`` in this worker.

    Args:
        url: ``postgres://…`` or ``redis://…``.
        origin: this server's id (messages carrying it are not handed back).
        inbox: the sending end of the worker's backplane inbox.
        index: the worker's number, for the thread's name and log lines.
    """
    kind = check_backplane_url(url)
    plane: Backplane = (
        PostgresBackplane(url, origin, inbox, index)
        if kind == "postgres"
        else RedisBackplane(url, origin, inbox, index)
    )
    plane.start()
    return plane


class Backplane:
    """The thread that sends a worker's messages to the backplane and hands the others' to its loop.

    Subclasses implement :meth:`_session`: connect, listen, then send and receive until
    the connection fails or :attr:`stopping` is set.

    Args:
        url: where the backplane is.
        origin: this server's id.
        inbox: the sending end of the worker's backplane inbox.
        index: the worker's number.
    """

    def __init__(self, url: str, origin: bytes, inbox: socket.socket, index: int) -> None:
        self.url = url
        self.origin = origin
        self.inbox = inbox
        self.index = index
        self.stopping = False
        self.connected = threading.Event()
        self.dropped = 0
        self._outage = False
        self._queue: deque[bytes | str] = deque()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name=f"chopin-backplane-w{index}", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    # -- the Relay interface, called on the loop's thread ------------------------------

    def check(self, topic: str, message: str | bytes) -> None:
        """Every message within the hub's limits travels (PostgreSQL narrows this)."""

    def send(self, origin: bytes, topic: str, message: str | bytes) -> None:
        """Queue ``message`` for the thread.

        Raises:
            BackplaneUnavailable: :data:`MAX_QUEUED` messages wait already (the backplane is down).
        """
        item = self._encode(origin, topic, message)
        with self._lock:
            if len(self._queue) >= MAX_QUEUED:
                raise BackplaneUnavailable(
                    f"backplane {self._where()} unreachable and {MAX_QUEUED} messages wait for it: "
                    f"topic {topic!r} reached this server only"
                )
            self._queue.append(item)
        self._wake()

    def close(self) -> None:
        """Stop the thread (what is queued is dropped) and wait for it a moment."""
        self.stopping = True
        self._wake()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.inbox.close()

    # -- the thread -------------------------------------------------------------------

    def _encode(self, origin: bytes, topic: str, message: str | bytes) -> bytes | str:
        return encode_frame(origin, topic, message)

    def _session(self) -> None:
        raise NotImplementedError

    def _where(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port}"

    def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while not self.stopping:
            try:
                self._session()
            except Exception as exc:
                if not self.stopping and not self._outage:
                    log.warning("topics: worker %d: backplane %s: %s; reconnecting", self.index, self._where(), exc)
                    self._outage = True
            if self.connected.is_set():
                self.connected.clear()
                backoff = _BACKOFF_FIRST  # it was up: the first retry comes soon
            self._pause(backoff)
            backoff = min(_BACKOFF_MAX, backoff * 2)

    def _up(self) -> None:
        """The session is connected and listening."""
        if self._outage:
            log.warning("topics: worker %d: backplane %s is back", self.index, self._where())
            self._outage = False
        self.connected.set()

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            select.select([self._wake_r], [], [], left)
            self._drain_wake()  # a publish woke us: keep waiting (stopping ends the loop)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # full (the thread is awake anyway) or closed (stopping)

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _take(self) -> list[bytes | str]:
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
        return batch

    def _received(self, frame: bytes) -> None:
        """A message from the backplane: to the loop, unless this server published it."""
        if len(frame) < HEAD.size or frame[4:12] == self.origin:
            return
        try:
            self.inbox.send(frame)
        except BlockingIOError:
            self.dropped += 1
            if self.dropped & (self.dropped - 1) == 0:
                log.warning("topics: worker %d is behind its backplane; %d messages dropped", self.index, self.dropped)
        except OSError:
            pass  # the worker is exiting

    def _wait(self, sock: socket.socket | int) -> bool:
        """Wait for ``sock`` or a wake-up; True if ``sock`` is readable."""
        readable, _, _ = select.select([sock, self._wake_r], [], [], _IO_TIMEOUT)
        if self._wake_r in readable:
            self._drain_wake()
        return sock in readable


class _RespConnection:
    """A blocking socket to Redis and the replies read from it but not yet taken."""

    __slots__ = ("parser", "replies", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = RespParser()
        self.replies: deque[RespValue] = deque()

    def reply(self) -> RespValue:
        """The next reply, reading as needed."""
        while not self.replies:
            self.read()
        return self.replies.popleft()

    def read(self) -> None:
        """Read what is there (blocking until something is) into :attr:`replies`."""
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("Redis closed the connection")
        self.replies.extend(self.parser.feed(data))

    def close(self) -> None:
        self.sock.close()


class RedisBackplane(Backplane):
    """Redis pub/sub on :data:`REDIS_CHANNEL`: one subscribed connection, one that publishes."""

    def _connect(self) -> _RespConnection:
        parts = urlsplit(self.url)
        sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=_IO_TIMEOUT)
        conn = _RespConnection(sock)
        try:
            if parts.password is not None:
                user = unquote(parts.username) if parts.username else "default"
                sock.sendall(command("AUTH", user, unquote(parts.password)))
                reply = conn.reply()
                if isinstance(reply, RespError):
                    raise reply
        except BaseException:
            sock.close()
            raise
        return conn

    def _session(self) -> None:
        sub = self._connect()
        pub: _RespConnection | None = None
        try:
            sub.sock.sendall(command("SUBSCRIBE", REDIS_CHANNEL))
            reply = sub.reply()
            if not (isinstance(reply, list) and reply and reply[0] == b"subscribe"):
                raise ConnectionError(f"SUBSCRIBE answered {reply!r}")
            pub = self._connect()
            self._up()
            while not self.stopping:
                batch = self._take()
                if batch:
                    # Pipelined: one write for the batch, then its replies.
                    pub.sock.sendall(b"".join(command("PUBLISH", REDIS_CHANNEL, item) for item in batch))
                    for _ in batch:
                        answer = pub.reply()
                        if isinstance(answer, RespError):
                            log.error("topics: worker %d: Redis refused PUBLISH: %s", self.index, answer)
                if sub.replies or self._wait(sub.sock):
                    if not sub.replies:
                        sub.read()
                    while sub.replies:
                        push = sub.replies.popleft()
                        if isinstance(push, list) and len(push) == 3 and push[0] == b"message":
                            payload = push[2]
                            if isinstance(payload, bytes):
                                self._received(payload)
        finally:
            sub.close()
            if pub is not None:
                pub.close()


class PostgresBackplane(Backplane):
    """PostgreSQL LISTEN/NOTIFY on :data:`PG_CHANNEL`, over one chopin-pg connection."""

    def __init__(self, url: str, origin: bytes, inbox: socket.socket, index: int) -> None:
        try:
            import chopin_pg  # noqa: F401
        except ImportError:
            raise ConfigError("a postgres:// backplane needs chopin-pg: pip install 'chopin-core[postgres]'") from None
        super().__init__(url, origin, inbox, index)

    def check(self, topic: str, message: str | bytes) -> None:
        """Refuse a message whose NOTIFY payload would pass :data:`PG_MAX_PAYLOAD` bytes.

        Raises:
            MessageTooLarge: it would.
        """
        size = text_size(topic, message)
        if size > PG_MAX_PAYLOAD:
            raise MessageTooLarge(
                f"topic {topic!r}: a PostgreSQL NOTIFY payload of {size} bytes, at most {PG_MAX_PAYLOAD} allowed",
                size,
                PG_MAX_PAYLOAD,
            )

    def _encode(self, origin: bytes, topic: str, message: str | bytes) -> bytes | str:
        return encode_text(origin, topic, message)

    def _session(self) -> None:
        from chopin_pg import connect

        conn = connect(self.url, connect_timeout=_IO_TIMEOUT)
        try:
            conn.listen(PG_CHANNEL)
            self._up()
            while not self.stopping:
                for item in self._take():
                    assert isinstance(item, str)
                    conn.notify(PG_CHANNEL, item)
                for note in conn.drain_notifications():
                    if note.channel == PG_CHANNEL:
                        self._received_text(note.payload)
                if conn.closed:
                    raise ConnectionError("PostgreSQL closed the connection")
                self._wait(conn.fileno())
        finally:
            conn.close()

    def _received_text(self, payload: str) -> None:
        try:
            origin, topic, message = decode_text(payload)
        except FrameError as exc:
            log.error("topics: worker %d: %s", self.index, exc)
            return
        if origin != self.origin:
            self._received(encode_frame(origin, topic, message))
