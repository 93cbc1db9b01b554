"""Public protocols and aliases of chopin-auth."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeAlias, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from chopin_core import Response

    from .errors import AuthError
    from .keys import VerificationKey

__all__ = ["ErrorHandler", "KeySource", "RevocationBackend", "Role", "RoleCheck"]

R_contra = TypeVar("R_contra", contravariant=True)

ErrorHandler: TypeAlias = "Callable[[AuthError], Response]"
"""Turns an :class:`AuthError` into the response a request is answered with."""


@runtime_checkable
class Role(Protocol):
    """A role: anything hashable, usually a ``str`` or an ``enum.Enum`` member.

    The default role check compares a role's ``value`` (for an enum) or the role itself
    with the ``role`` claim (a string) or the members of the ``roles`` claim (a list).
    """

    def __hash__(self) -> int: ...


@runtime_checkable
class RoleCheck(Protocol[R_contra]):
    """Claims that can say whether they hold a role (``has_role``), as the seed's ``RoleCheck``."""

    def has_role(self, role: R_contra) -> bool:
        """Whether these claims grant ``role``."""
        ...


class RevocationBackend(Protocol):
    """Where a :class:`~chopin_auth.TokenBlacklist` keeps revoked token ids.

    ``expires_at`` is a POSIX timestamp after which the entry may be dropped
    (``None``: kept until removed by hand).
    """

    def add(self, jti: str, expires_at: float | None) -> None:
        """Record ``jti`` as revoked until ``expires_at``."""
        ...

    def contains(self, jti: str, now: float) -> bool:
        """Whether ``jti`` is revoked and its entry has not expired at ``now``."""
        ...

    def purge(self, now: float) -> int:
        """Drop entries expired at ``now``; return how many went."""
        ...

    def count(self) -> int:
        """How many entries are held."""
        ...


class KeySource(Protocol):
    """Where a :class:`~chopin_auth.JwtManager` finds the keys a token may be checked with.

    :class:`~chopin_auth.KeySet` (fixed keys) and :class:`~chopin_auth.JwksClient` (a
    provider's JWKS URL, cached and refetched) implement it.
    """

    def candidates(self, kid: object) -> list[VerificationKey]:
        """The keys a token whose header names ``kid`` may be checked with (empty: refuse it)."""
        ...

    @property
    def algorithms(self) -> frozenset[str]:
        """Every algorithm a key of this source may use."""
        ...

    def __len__(self) -> int: ...
