"""Server-sent events: what :meth:`Response.sse <chopin_core.Response.sse>` sends.

A handler returns ``Response.sse(events)`` where ``events`` is an async generator
(or any async iterable) of :class:`ServerSentEvent` or plain strings; the worker
sends each event as soon as it is produced, a keep-alive comment while the
producer waits, and closes the generator when the client leaves (its ``finally``
runs).  A client that reconnects sends the id of the last event it saw:
:func:`last_event_id` reads it.  The bytes are made by :mod:`chopin_core._wire.sse`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING

from ._wire import sse as wire

if TYPE_CHECKING:
    from .request import Request

__all__ = ["ServerSentEvent", "encode_events", "encode_events_async", "last_event_id"]


@dataclasses.dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One event of a ``text/event-stream``.

    Attributes:
        data: the payload (several lines become several ``data:`` lines, joined back
            with LF by the client); None: no ``data`` field.
        event: the event type the client listens for; None: ``message``.
        id: the id the client sends back in ``Last-Event-ID`` when it reconnects.
        retry: the client's reconnection delay, in milliseconds.
    """

    data: str | None = None
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def encode(self) -> bytes:
        """The event's bytes on the wire.

        Raises:
            ValueError: a field that cannot be sent (see :func:`chopin_core._wire.sse.event`).
        """
        return wire.event(self.data, event=self.event, id=self.id, retry=self.retry)


def _encode(item: ServerSentEvent | str) -> bytes:
    if type(item) is str:
        return wire.event(item)
    if isinstance(item, ServerSentEvent):
        return item.encode()
    raise TypeError(f"a server-sent event stream yielded {type(item).__name__}, expected ServerSentEvent or str")


def encode_events(events: Iterable[ServerSentEvent | str], retry: int | None = None) -> Iterator[bytes]:
    """The bytes of ``events`` (a str is an event of that data), after a ``retry`` field if given."""
    source = iter(events)
    try:
        if retry is not None:
            yield wire.event(retry=retry)
        for item in source:
            yield _encode(item)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


async def encode_events_async(
    events: AsyncIterable[ServerSentEvent | str], retry: int | None = None
) -> AsyncIterator[bytes]:
    """:func:`encode_events` for an async producer; closing this closes ``events`` where it waits."""
    source = aiter(events)
    try:
        if retry is not None:
            yield wire.event(retry=retry)
        async for item in source:
            yield _encode(item)
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def last_event_id(req: Request) -> str | None:
    """The id of the last event a reconnecting client saw (its ``Last-Event-ID`` header), or None.

    Resume from there: send the events after it.  An empty header counts as none
    (the client had no id), and so does one that is not a valid id.
    """
    value = req.header("last-event-id")
    if not value or "\x00" in value:
        return None
    return value
