"""The ``text/event-stream`` format of server-sent events: events and comments to bytes.

WHATWG HTML, "Server-sent events", 9.2.5 (the event stream format) and 9.2.6
(interpreting it): an event is a block of ``field: value`` lines ended by an empty
line; ``data`` may be given several times and the client joins the values with
LF, so a multi-line payload is one ``data:`` line per line; a line starting with
a colon is a comment, ignored by the client (what keep-alives are made of).  The
stream is always UTF-8.  No I/O here: :mod:`chopin_core.sse` builds on it.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["KEEPALIVE", "comment", "event"]

# 9.2.5: lines end with CRLF, LF or CR; the client splits on any of the three.
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")

KEEPALIVE: Final = b": keep-alive\n\n"
"""The comment sent while a producer waits, so proxies and clients see the stream is alive."""


def _lines(name: bytes, value: str) -> bytes:
    return b"".join(name + line.encode("utf-8") + b"\n" for line in _LINE_BREAK.split(value))


def event(
    data: str | None = None, *, event: str | None = None, id: str | None = None, retry: int | None = None
) -> bytes:
    """One event, ready to send: its field lines and the empty line that dispatches it.

    Args:
        data: the payload; each of its lines becomes a ``data:`` line (the client
            joins them back with LF).  None: no ``data`` field (an event with only
            ``id`` or ``retry`` updates the client's state without dispatching).
        event: the event type (``addEventListener(type)``); None: ``message``.
        id: the event id the client echoes in ``Last-Event-ID`` when it reconnects.
        retry: the reconnection delay the client should use, in milliseconds.

    Raises:
        ValueError: a field cannot be sent: a line break in ``event`` or ``id``, a NUL
            in ``id`` (9.2.6: the client ignores such an id), a negative ``retry``,
            or no field at all.
    """
    out = []
    if event is not None:
        if _LINE_BREAK.search(event):
            raise ValueError(f"event type {event!r}: a line break would end the field")
        out.append(b"event: " + event.encode("utf-8") + b"\n")
    if id is not None:
        if _LINE_BREAK.search(id) or "\x00" in id:
            raise ValueError(f"event id {id!r}: a line break or NUL cannot be sent in an id")
        out.append(b"id: " + id.encode("utf-8") + b"\n")
    if retry is not None:
        if type(retry) is not int or retry < 0:
            raise ValueError(f"retry: expected a non-negative integer of milliseconds, got {retry!r}")
        out.append(b"retry: %d\n" % retry)
    if data is not None:
        out.append(_lines(b"data: ", data))
    if not out:
        raise ValueError("an event needs at least one of data, event, id or retry")
    out.append(b"\n")
    return b"".join(out)


def comment(text: str = "") -> bytes:
    """A comment (``: text``), one line per line of ``text``: the client ignores it."""
    return _lines(b": ", text) + b"\n" if text else b":\n\n"
