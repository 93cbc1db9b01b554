"""``TokenBlacklist``: revoked token ids (``jti``), with an in-memory backend.

The list itself is backend-agnostic: :class:`MemoryRevocations` for a single
process, :class:`~chopin_auth.revocation_pg.PgRevocations` when several workers must
agree (a PostgreSQL table plus LISTEN/NOTIFY).  Expired entries are removed by
:meth:`TokenBlacklist.cleanup`, which also runs on its own from ``revoke`` and
``is_revoked`` once ``cleanup_interval`` has passed: the engine's workers are
single-threaded, so there is no background thread.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from typing import Final

from .errors import BlacklistFull
from .types import RevocationBackend

__all__ = ["MAX_JTI_LENGTH", "MemoryRevocations", "TokenBlacklist", "check_jti"]

MAX_JTI_LENGTH: Final = 256
"""Longest token id accepted (a revocation entry is at most this plus a timestamp)."""


def check_jti(jti: object) -> str:
    """``jti`` if it is a usable token id.

    Raises:
        ValueError: not a non-empty str of at most :data:`MAX_JTI_LENGTH` characters.
    """
    if not isinstance(jti, str):
        raise ValueError(f"jti: expected str, got {type(jti).__name__}")
    if not jti or len(jti) > MAX_JTI_LENGTH:
        raise ValueError(f"jti: expected 1..{MAX_JTI_LENGTH} characters, got {len(jti)}")
    return jti


def _timestamp(expires_at: float | _dt.datetime | None) -> float | None:
    if expires_at is None:
        return None
    if isinstance(expires_at, _dt.datetime):
        if expires_at.tzinfo is None:
            raise ValueError("expires_at: expected an aware datetime (naive ones are ambiguous)")
        return expires_at.timestamp()
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
        raise ValueError(f"expires_at: expected a POSIX timestamp, a datetime or None, got {type(expires_at).__name__}")
    return float(expires_at)


class MemoryRevocations:
    """Revoked ids in a dict of this process: for single-process servers and tests.

    Args:
        max_entries: unexpired entries held at most; past it :class:`BlacklistFull`
            (1 000 000, about 100 MB).
    """

    __slots__ = ("_entries", "max_entries")

    def __init__(self, max_entries: int = 1_000_000) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries: expected > 0, got {max_entries}")
        self.max_entries = max_entries
        self._entries: dict[str, float | None] = {}

    def add(self, jti: str, expires_at: float | None) -> None:
        """Record ``jti`` until ``expires_at`` (a later expiry wins over an earlier one)."""
        entries = self._entries
        if jti not in entries and len(entries) >= self.max_entries:
            self.purge(time.time())
            if len(entries) >= self.max_entries:
                raise BlacklistFull(f"revocation list holds max_entries ({self.max_entries}) unexpired ids")
        if jti in entries:
            old = entries[jti]
            if old is None or (expires_at is not None and expires_at < old):
                return
        entries[jti] = expires_at

    def contains(self, jti: str, now: float) -> bool:
        """Whether ``jti`` is held and unexpired at ``now``."""
        entries = self._entries
        if jti not in entries:
            return False
        expires_at = entries[jti]
        return expires_at is None or expires_at > now

    def purge(self, now: float) -> int:
        """Drop the entries expired at ``now``."""
        entries = self._entries
        gone = [jti for jti, expires_at in entries.items() if expires_at is not None and expires_at <= now]
        for jti in gone:
            del entries[jti]
        return len(gone)

    def count(self) -> int:
        """How many entries are held."""
        return len(self._entries)


class TokenBlacklist:
    """Revoked token ids, each kept until the token would have expired anyway.

    Args:
        backend: where entries live (default: a :class:`MemoryRevocations`).
        cleanup_interval: seconds between automatic cleanups (300); ``0`` disables them.
        clock: the time source (``time.time``); tests may pass another.
    """

    __slots__ = ("_clock", "_next_cleanup", "backend", "cleanup_interval")

    def __init__(
        self,
        backend: RevocationBackend | None = None,
        *,
        cleanup_interval: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if cleanup_interval < 0:
            raise ValueError(f"cleanup_interval: expected >= 0 seconds, got {cleanup_interval}")
        self.backend: RevocationBackend = backend if backend is not None else MemoryRevocations()
        self.cleanup_interval = cleanup_interval
        self._clock = clock
        self._next_cleanup = clock() + cleanup_interval

    def revoke(self, jti: str, expires_at: float | _dt.datetime | None = None) -> None:
        """Revoke ``jti`` until ``expires_at`` (the token's ``exp``; ``None``: until removed by hand).

        Raises:
            ValueError: ``jti`` or ``expires_at`` is unusable.
            BlacklistFull: the backend holds ``max_entries`` unexpired ids.
            RevocationUnavailable: the backend's database cannot be reached.
        """
        jti = check_jti(jti)
        when = _timestamp(expires_at)
        self._maybe_cleanup()
        self.backend.add(jti, when)

    def is_revoked(self, jti: str) -> bool:
        """Whether ``jti`` is revoked (and its entry has not expired).

        Raises:
            ValueError: ``jti`` is not a usable token id.
            RevocationUnavailable: the backend's database cannot be reached.
        """
        jti = check_jti(jti)
        self._maybe_cleanup()
        return self.backend.contains(jti, self._clock())

    def cleanup(self) -> int:
        """Drop expired entries now; return how many went."""
        now = self._clock()
        self._next_cleanup = now + self.cleanup_interval
        return self.backend.purge(now)

    def _maybe_cleanup(self) -> None:
        if self.cleanup_interval and self._clock() >= self._next_cleanup:
            self.cleanup()

    def len(self) -> int:
        """How many entries are held (as ``len(blacklist)``)."""
        return self.backend.count()

    def __len__(self) -> int:
        return self.backend.count()

    def is_empty(self) -> bool:
        """Whether no entry is held."""
        return self.backend.count() == 0

    def __repr__(self) -> str:
        return f"<TokenBlacklist {type(self.backend).__name__} entries={len(self)}>"
