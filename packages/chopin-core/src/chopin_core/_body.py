"""Request bodies that take more than one read: the worker's memory budget for them, and spooling.

How it works: the parser (sans-IO) frames a body and says how long it is and how
much of it has arrived; the worker decides where it is kept.  A Content-Length
body larger than ``body_spool_threshold`` goes to a temporary file from its first
byte (:class:`BodySpool`, the parser's :class:`~chopin_core._wire.h1_request.BodySink`); a
smaller one stays in memory, and so does a chunked body until it passes the
threshold.  A body kept in memory first reserves its bound (its length, or the
threshold when chunked) from the worker's ``max_buffered_body_bytes``
(:class:`BodyBudget`); a body that does not fit waits, its connection unread
(back-pressure), until reservations are given back, in arrival order.  An admitted
body never needs more memory than it reserved, so the waiting ones cannot
deadlock it.  Only the bytes of a connection's first read past its head, at most
``recv_size``, are held before a body is admitted.
"""

from __future__ import annotations

import logging
import tempfile
from collections import deque
from typing import TYPE_CHECKING, BinaryIO

from .errors import ProtocolError
from .request import Request, SpooledRequest

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["BodyBudget", "BodyIntake", "BodySpool"]

log = logging.getLogger("chopin_core.worker")


class BodySpool:
    """A request body being written to an unnamed temporary file (in ``TMPDIR``).

    Raises:
        OSError: the file could not be created.
    """

    __slots__ = ("file", "size")

    def __init__(self) -> None:
        self.file: BinaryIO | None = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the request
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append ``data``; a full disk refuses the request with 503 (a :class:`ProtocolError`)."""
        file = self.file
        if file is None:
            return
        try:
            file.write(data)
        except OSError as exc:
            raise self._failed(exc) from None
        self.size += len(data)

    def finish(self, req: Request) -> Request:
        """The body is complete: a :class:`SpooledRequest` that now owns the file."""
        file = self.file
        assert file is not None
        try:
            file.flush()
        except OSError as exc:
            raise self._failed(exc) from None
        self.file = None
        return SpooledRequest(req, file, self.size)

    def discard(self) -> None:
        """Close the file unless a request took it."""
        file = self.file
        if file is not None:
            self.file = None
            file.close()

    def _failed(self, exc: OSError) -> ProtocolError:
        log.error("request body could not be written to a temporary file: %s", exc)
        self.discard()
        return ProtocolError("request body could not be stored", 503)


class BodyIntake:
    """A connection's body in progress, as the worker tracks it.

    Attributes:
        request: the request whose body it is (the parser's ``body_pending``).
        need: bytes of memory it reserves once admitted (0: it is spooled).
        reserved: bytes of memory it holds in the budget now.
        spool: the temporary file it goes to, once spooled.
        waiting: True while it waits for room in the budget, its connection unread.
    """

    __slots__ = ("need", "request", "reserved", "spool", "waiting")

    def __init__(self, request: Request, need: int) -> None:
        self.request = request
        self.need = need
        self.reserved = 0
        self.spool: BodySpool | None = None
        self.waiting = False


class BodyBudget:
    """One worker's memory for request bodies in progress, and the connections waiting for it.

    Args:
        cap: ``max_buffered_body_bytes``.
        threshold: ``body_spool_threshold``.
        ticks: the body idle timeout in loop ticks.
    """

    __slots__ = ("cap", "reserved", "threshold", "ticks", "waiting")

    def __init__(self, cap: int, threshold: int, ticks: int) -> None:
        self.cap = cap
        self.threshold = threshold
        self.ticks = ticks
        self.reserved = 0
        self.waiting: deque[Connection] = deque()

    def fits(self, need: int) -> bool:
        """Whether ``need`` more bytes may be reserved now (one body is always let in alone)."""
        return self.reserved == 0 or self.reserved + need <= self.cap

    def admit(self, intake: BodyIntake) -> bool:
        """Reserve ``intake.need`` if it fits and nobody waits before it; True if it did."""
        if self.waiting or not self.fits(intake.need):
            return False
        self.reserved += intake.need
        intake.reserved = intake.need
        return True

    def release(self, intake: BodyIntake) -> list[Connection]:
        """Give back what ``intake`` reserved; return the waiting connections admitted by it, in order."""
        self.reserved -= intake.reserved
        intake.reserved = 0
        admitted: list[Connection] = []
        waiting = self.waiting
        while waiting:
            body = waiting[0].body
            assert body is not None
            if not self.fits(body.need):
                break
            admitted.append(waiting.popleft())
            body.waiting = False
            self.reserved += body.need
            body.reserved = body.need
        return admitted
