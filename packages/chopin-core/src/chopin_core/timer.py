"""A hashed timing wheel for connection timeouts.

How it works: time is cut into ticks; an item due at tick *t* sits in slot
``t % slots``.  Scheduling is an append; advancing the wheel visits only the
slots the clock passed.  Rescheduling is lazy: activity just moves an item's
deadline forward, and when its old slot comes round the owner checks the real
deadline and puts it back later.  No clock is read here: the caller passes ticks.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["TimingWheel"]

T = TypeVar("T")


class TimingWheel(Generic[T]):
    """Items bucketed by the tick they fall due at.

    Args:
        slots: the number of buckets; deadlines further out than this many
            ticks wrap around and are simply checked again (lazy rounds).
        now: the tick the wheel starts at.
    """

    __slots__ = ("_now", "_slots")

    def __init__(self, slots: int = 256, now: int = 0) -> None:
        if slots < 1:
            raise ValueError(f"slots: expected >= 1, got {slots}")
        self._slots: list[list[T]] = [[] for _ in range(slots)]
        self._now = now

    @property
    def now(self) -> int:
        """The tick the wheel has advanced to."""
        return self._now

    def schedule(self, item: T, due: int) -> None:
        """Put ``item`` in the slot of tick ``due`` (at least the next tick)."""
        if due <= self._now:
            due = self._now + 1
        self._slots[due % len(self._slots)].append(item)

    def advance(self, now: int) -> list[T]:
        """Move to tick ``now``; return the items of every slot passed.

        The caller decides for each whether it is really due (and reschedules
        it if not).
        """
        due: list[T] = []
        if now <= self._now:
            return due
        count = len(self._slots)
        steps = min(now - self._now, count)
        for tick in range(self._now + 1, self._now + steps + 1):
            bucket = self._slots[tick % count]
            if bucket:
                due.extend(bucket)
                bucket.clear()
        self._now = now
        return due

    def __len__(self) -> int:
        return sum(len(s) for s in self._slots)
