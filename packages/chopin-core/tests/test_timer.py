"""TimingWheel: slot placement, advancing, lazy wrap-around rounds."""

from __future__ import annotations

import pytest
from chopin_core.timer import TimingWheel


def test_starts_empty_at_now() -> None:
    wheel: TimingWheel[str] = TimingWheel(8, now=100)
    assert wheel.now == 100
    assert len(wheel) == 0
    assert wheel.advance(200) == []
    assert wheel.now == 200


def test_item_comes_out_when_its_tick_is_passed() -> None:
    wheel: TimingWheel[str] = TimingWheel(8)
    wheel.schedule("a", 3)
    assert len(wheel) == 1
    assert wheel.advance(2) == []
    assert wheel.advance(3) == ["a"]
    assert len(wheel) == 0
    assert wheel.advance(4) == []


def test_advance_returns_every_slot_passed_in_tick_order() -> None:
    wheel: TimingWheel[str] = TimingWheel(16)
    wheel.schedule("t5", 5)
    wheel.schedule("t2", 2)
    wheel.schedule("t4", 4)
    wheel.schedule("t2b", 2)
    wheel.schedule("t9", 9)
    assert wheel.advance(5) == ["t2", "t2b", "t4", "t5"]
    assert wheel.now == 5
    assert wheel.advance(9) == ["t9"]


def test_due_now_or_in_the_past_goes_to_the_next_tick() -> None:
    wheel: TimingWheel[str] = TimingWheel(8, now=10)
    wheel.schedule("now", 10)
    wheel.schedule("past", 3)
    wheel.schedule("long-past", -100)
    assert wheel.advance(10) == []  # not advanced: nothing passed
    assert sorted(wheel.advance(11)) == ["long-past", "now", "past"]


def test_advance_backwards_or_in_place_does_nothing() -> None:
    wheel: TimingWheel[str] = TimingWheel(8, now=5)
    wheel.schedule("x", 6)
    assert wheel.advance(5) == []
    assert wheel.advance(1) == []
    assert wheel.now == 5
    assert wheel.advance(6) == ["x"]


def test_deadline_beyond_the_slot_count_wraps_and_comes_out_early() -> None:
    # Lazy rounds: tick 10 on an 8-slot wheel shares slot 2 with tick 2; the owner
    # checks the real deadline and reschedules.
    wheel: TimingWheel[str] = TimingWheel(8)
    wheel.schedule("far", 10)
    assert wheel.advance(1) == []
    assert wheel.advance(2) == ["far"]
    wheel.schedule("far", 10)
    assert wheel.advance(9) == []
    assert wheel.advance(10) == ["far"]


def test_jump_longer_than_the_wheel_visits_every_slot_once() -> None:
    wheel: TimingWheel[int] = TimingWheel(8)
    for due in range(1, 9):
        wheel.schedule(due, due)
    wheel.schedule(100, 100)
    out = wheel.advance(1000)
    assert sorted(out) == [1, 2, 3, 4, 5, 6, 7, 8, 100]
    assert len(out) == 9  # no slot visited twice
    assert len(wheel) == 0
    assert wheel.now == 1000


def test_wrap_around_keeps_working_after_many_rounds() -> None:
    wheel: TimingWheel[str] = TimingWheel(4)
    seen = []
    for tick in range(1, 50):
        wheel.schedule(f"t{tick + 1}", tick + 1)
        seen += wheel.advance(tick)
    assert seen == [f"t{t}" for t in range(2, 50)]


def test_reschedule_pattern() -> None:
    # What the worker does: items come out, the owner puts the not-yet-due ones back.
    wheel: TimingWheel[str] = TimingWheel(4)
    deadline = {"conn": 9}
    wheel.schedule("conn", deadline["conn"])
    fired_at = []
    for tick in range(1, 12):
        for item in wheel.advance(tick):
            if tick >= deadline[item]:
                fired_at.append(tick)
            else:
                wheel.schedule(item, deadline[item])
    assert fired_at == [9]


def test_single_slot_wheel() -> None:
    wheel: TimingWheel[str] = TimingWheel(1)
    wheel.schedule("a", 5)
    assert wheel.advance(1) == ["a"]


@pytest.mark.parametrize("slots", [0, -1])
def test_needs_at_least_one_slot(slots: int) -> None:
    with pytest.raises(ValueError, match="slots"):
        TimingWheel(slots)
