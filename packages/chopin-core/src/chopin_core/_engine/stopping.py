"""A worker's graceful stop: the signals that start it, and the idle connections it closes.

How it works: on the main thread the worker's loop installs SIGTERM and SIGINT
handlers that ask it to stop, and points the signal wake-up fd at its wake-up pipe,
so a signal ends the ``epoll`` wait at once (:func:`install_signals`; undone by
:func:`restore_signals`).  Once its listener is closed, the worker ends its async
streams cleanly, closes its idle HTTP/1.1 connections and asks every channel to stop
(:func:`begin_stop`); the idle ones are closed again once a second
(:func:`close_idle`), the others are answered with ``Connection: close``.
"""

from __future__ import annotations

import select
import signal
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .stream_pump import StreamPump, end_pump

if TYPE_CHECKING:
    from ..connection import Connection
    from .channel import Channel, Loop

__all__ = ["begin_stop", "close_idle", "install_signals", "restore_signals"]


def install_signals(request_stop: Callable[[], None], wake_fd: int) -> dict[int, object] | None:
    """On the main thread: SIGTERM and SIGINT call ``request_stop``, and a signal writes to ``wake_fd``.

    Returns:
        What was there before (for :func:`restore_signals`), or None off the main thread
        (signals cannot be handled there; nothing was changed).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    previous: dict[int, object] = {}

    def on_signal(signum: int, frame: object) -> None:
        request_stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, on_signal)
    previous[-1] = signal.set_wakeup_fd(wake_fd)
    return previous


def restore_signals(previous: dict[int, object] | None) -> None:
    """Put back the handlers and the wake-up fd :func:`install_signals` replaced."""
    if previous is None:
        return
    signal.set_wakeup_fd(previous.pop(-1))  # type: ignore[arg-type]
    for signum, handler in previous.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]


def begin_stop(loop: Loop, conns: dict[int, Connection], channels: dict[int, Channel]) -> None:
    """The listener is closed: end async streams, close idle connections, ask each channel to stop.

    An async stream (server-sent events) ends with its terminal chunk, so its client
    reconnects to another worker; HTTP/2 sessions send GOAWAY and finish their open
    streams; WebSockets close with 1001.
    """
    for conn in list(conns.values()):
        if type(conn.stream) is StreamPump:
            end_pump(loop, conn, conn.stream)
    close_idle(loop, list(conns.values()))
    for channel in list(channels.values()):
        channel.stop()


def close_idle(loop: Loop, conns: Iterable[Connection]) -> None:
    """While stopping (at its start, then once a second): close the idle connections of ``conns``.

    Idle: nothing in flight and nothing read or written for a second or more.  A
    connection active in the last second is kept a little (a client that has just
    connected is about to send its request), and so is one whose next request is
    already in its socket (sent while a handler was busy): these are read and
    answered, with ``Connection: close``, like the requests in flight.
    """
    recent = loop.tick - 1
    idle = [
        conn
        for conn in conns
        if conn.last_active < recent
        and not conn.out
        and conn.stream is None
        and conn.file is None
        and not conn.parser.in_request
    ]
    unread = _readable([conn.fd for conn in idle])
    for conn in idle:
        if conn.fd not in unread:
            loop.close(conn)


def _readable(fds: list[int]) -> set[int]:
    """Those of ``fds`` with bytes (or an end of stream) waiting to be read, without waiting."""
    if not fds:
        return set()
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return {fd for fd, _ in poller.poll(0)}
