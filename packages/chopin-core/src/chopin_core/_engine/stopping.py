"""A worker's graceful stop: the signals that start it, and the idle connections it closes.

How it works: on the main thread the worker's loop installs SIGTERM and SIGINT
handlers that ask it to stop, and points the signal wake-up fd at its wake-up pipe,
so a signal ends the ``epoll`` wait at once (:func:`install_signals`; undone by
:func:`restore_signals`).  While stopping, the worker closes its idle HTTP/1.1
connections at the start and then once a second (:func:`close_idle`); the others
are answered with ``Connection: close``.
"""

from __future__ import annotations

import select
import signal
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..connection import Connection
    from .channel import Loop

__all__ = ["close_idle", "install_signals", "restore_signals"]


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
