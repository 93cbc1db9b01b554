"""TokenBlacklist with the in-memory backend: revoke, expiry, cleanup (by hand and periodic), limits."""

from __future__ import annotations

import datetime as dt

import pytest
from chopin_auth import BlacklistFull, MemoryRevocations, TokenBlacklist


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_revoke_and_check() -> None:
    clock = Clock()
    blacklist = TokenBlacklist(clock=clock)
    assert blacklist.is_empty() and len(blacklist) == 0
    blacklist.revoke("jti-123", clock.t + 60)
    assert blacklist.is_revoked("jti-123")
    assert not blacklist.is_revoked("jti-456")
    assert blacklist.len() == len(blacklist) == 1


def test_an_entry_stops_counting_once_the_token_has_expired() -> None:
    clock = Clock()
    blacklist = TokenBlacklist(clock=clock)
    blacklist.revoke("a", clock.t + 60)
    clock.t += 61
    assert not blacklist.is_revoked("a")
    assert len(blacklist) == 1  # still held until cleanup
    assert blacklist.cleanup() == 1
    assert blacklist.is_empty()


def test_none_expiry_is_kept_until_removed() -> None:
    clock = Clock()
    blacklist = TokenBlacklist(clock=clock)
    blacklist.revoke("forever")
    clock.t += 10**9
    assert blacklist.is_revoked("forever")
    assert blacklist.cleanup() == 0


def test_aware_datetime_expiry_and_naive_refused() -> None:
    blacklist = TokenBlacklist()
    blacklist.revoke("a", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    assert blacklist.is_revoked("a")
    with pytest.raises(ValueError, match="aware datetime"):
        blacklist.revoke("b", dt.datetime.now())
    with pytest.raises(ValueError, match="POSIX timestamp"):
        blacklist.revoke("b", "tomorrow")  # type: ignore[arg-type]


def test_the_later_expiry_wins() -> None:
    clock = Clock()
    blacklist = TokenBlacklist(clock=clock)
    blacklist.revoke("a", clock.t + 100)
    blacklist.revoke("a", clock.t + 10)
    clock.t += 50
    assert blacklist.is_revoked("a")


def test_periodic_cleanup_runs_on_use_after_the_interval() -> None:
    clock = Clock()
    blacklist = TokenBlacklist(cleanup_interval=300, clock=clock)
    for i in range(10):
        blacklist.revoke(f"old-{i}", clock.t + 10)
    blacklist.revoke("new", clock.t + 1000)
    clock.t += 100
    blacklist.is_revoked("new")
    assert len(blacklist) == 11  # interval not reached
    clock.t += 201
    assert blacklist.is_revoked("new")
    assert len(blacklist) == 1


@pytest.mark.parametrize("jti", ["", "x" * 257, None, 42])
def test_unusable_jti_is_refused(jti: object) -> None:
    blacklist = TokenBlacklist()
    with pytest.raises(ValueError, match="jti"):
        blacklist.revoke(jti, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="jti"):
        blacklist.is_revoked(jti)  # type: ignore[arg-type]


def test_max_entries_is_enforced_after_purging_expired_ones() -> None:
    clock = Clock(1.0)  # entries at "1.0 + 5" are long expired in real time
    blacklist = TokenBlacklist(MemoryRevocations(max_entries=3), cleanup_interval=0, clock=clock)
    for i in range(3):
        blacklist.revoke(f"stale-{i}", 5.0)
    blacklist.revoke("fresh-0", None)  # full, but the stale ones are purged first
    assert len(blacklist) == 1
    blacklist.revoke("fresh-1", None)
    blacklist.revoke("fresh-2", None)
    with pytest.raises(BlacklistFull, match="max_entries \\(3\\)"):
        blacklist.revoke("fresh-3", None)
    blacklist.revoke("fresh-2", None)  # an id already held is not a new entry


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryRevocations(max_entries=0)
    with pytest.raises(ValueError, match="cleanup_interval"):
        TokenBlacklist(cleanup_interval=-1)
