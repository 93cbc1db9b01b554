"""Argon2id password hashing with argon2-cffi (RFC 9106).

Hashes are PHC strings (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) carrying
their own parameters, so a hasher verifies hashes made with other parameters and
:meth:`PasswordHasher.needs_rehash` says when to upgrade one at the next sign-in.
The comparison of the computed and stored hash is libargon2's constant-time one.
"""

from __future__ import annotations

import os
from typing import Final

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from chopin_core.waiting import to_thread

from .errors import InvalidParameters, MalformedHash, PasswordTooLong

__all__ = [
    "MAX_MEMORY_KIB",
    "MAX_PASSWORD_BYTES",
    "PasswordHasher",
    "ahash_password",
    "averify_password",
    "hash_password",
    "verify_password",
]

MAX_PASSWORD_BYTES: Final = 4096
"""Longer passwords are refused before hashing (hashing cost does not depend on length, reading does)."""

MAX_MEMORY_KIB: Final = 4 * 1024 * 1024
"""The most memory a custom hasher may ask for (4 GiB)."""


def _password_bytes(password: str | bytes, limit: int) -> bytes:
    if isinstance(password, str):
        data = password.encode()
    elif isinstance(password, bytes | bytearray):
        data = bytes(password)
    else:
        raise TypeError(f"password: expected str or bytes, got {type(password).__name__}")
    if len(data) > limit:
        raise PasswordTooLong(f"password: {len(data)} bytes, over max_password_bytes ({limit})")
    return data


class PasswordHasher:
    """Argon2id with fixed parameters.

    Presets: :meth:`interactive` (64 MiB, 3 passes, 4 lanes: RFC 9106's second
    recommended option, argon2-cffi's default) and :meth:`sensitive` (256 MiB,
    4 passes, 4 lanes); :meth:`custom` for anything else.

    Attributes:
        memory_kib, iterations, parallelism: the Argon2 cost parameters.
        max_password_bytes: longer passwords raise :class:`PasswordTooLong`.
    """

    __slots__ = ("_dummy", "_hasher", "iterations", "max_password_bytes", "memory_kib", "parallelism")

    def __init__(
        self, memory_kib: int, iterations: int, parallelism: int, *, max_password_bytes: int = MAX_PASSWORD_BYTES
    ) -> None:
        for name, value in (("memory_kib", memory_kib), ("iterations", iterations), ("parallelism", parallelism)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidParameters(f"{name}: expected int, got {type(value).__name__}")
        if not 1 <= parallelism <= 255:
            raise InvalidParameters(f"parallelism: expected 1..255, got {parallelism}")
        if not 8 * parallelism <= memory_kib <= MAX_MEMORY_KIB:
            raise InvalidParameters(
                f"memory_kib: expected {8 * parallelism}..{MAX_MEMORY_KIB} (8 KiB per lane), got {memory_kib}"
            )
        if not 1 <= iterations <= 1024:
            raise InvalidParameters(f"iterations: expected 1..1024, got {iterations}")
        if max_password_bytes <= 0:
            raise InvalidParameters(f"max_password_bytes: expected > 0, got {max_password_bytes}")
        self.memory_kib = memory_kib
        self.iterations = iterations
        self.parallelism = parallelism
        self.max_password_bytes = max_password_bytes
        self._hasher = argon2.PasswordHasher(
            time_cost=iterations,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._dummy: str | None = None

    @classmethod
    def interactive(cls) -> PasswordHasher:
        """For sign-in: 64 MiB, 3 passes, 4 lanes (RFC 9106 4, second recommended option)."""
        return cls(65536, 3, 4)

    @classmethod
    def sensitive(cls) -> PasswordHasher:
        """Slower and stronger, for rarely used secrets: 256 MiB, 4 passes, 4 lanes."""
        return cls(262144, 4, 4)

    @classmethod
    def custom(cls, memory_kib: int, iterations: int, parallelism: int) -> PasswordHasher:
        """Argon2id with these parameters.

        Raises:
            InvalidParameters: a parameter is outside its range.
        """
        return cls(memory_kib, iterations, parallelism)

    def hash(self, password: str | bytes) -> str:
        """A new PHC-format Argon2id hash of ``password``, with a random 16-byte salt.

        Raises:
            PasswordTooLong: over ``max_password_bytes``.
        """
        return self._hasher.hash(_password_bytes(password, self.max_password_bytes))

    def verify(self, password: str | bytes, hashed: str) -> bool:
        """Whether ``password`` matches ``hashed`` (an Argon2 PHC string of any parameters).

        Returns:
            ``True`` on a match, ``False`` for a wrong password (or one over the length limit).

        Raises:
            MalformedHash: ``hashed`` is not an Argon2 hash.
        """
        if not isinstance(hashed, str):
            raise MalformedHash(f"hash: expected str, got {type(hashed).__name__}")
        try:
            data = _password_bytes(password, self.max_password_bytes)
        except PasswordTooLong:
            return False
        try:
            return self._hasher.verify(hashed, data)
        except VerifyMismatchError:
            return False
        except InvalidHashError:
            raise MalformedHash(f"hash: not an Argon2 PHC string ({hashed[:16]!r}...)") from None
        except VerificationError as exc:
            raise MalformedHash(f"hash: cannot be verified ({exc})") from None

    def dummy_verify(self, password: str | bytes) -> bool:
        """Spend the time of a verification and return ``False``: for a sign-in naming an unknown user.

        Answering an unknown user as slowly as a wrong password keeps response times
        from telling which user names exist.
        """
        if self._dummy is None:
            self._dummy = self._hasher.hash(os.urandom(16))
        self.verify(password, self._dummy)
        return False

    async def ahash(self, password: str | bytes) -> str:
        """:meth:`hash` on the worker's thread pool, for ``async def`` handlers.

        Argon2 releases the GIL, so the worker serves its other connections while
        this hashes (``chopin_core.to_thread``).
        """
        return await to_thread(self.hash, password)

    async def averify(self, password: str | bytes, hashed: str) -> bool:
        """:meth:`verify` on the worker's thread pool, for ``async def`` handlers (a sign-in)."""
        return await to_thread(self.verify, password, hashed)

    async def adummy_verify(self, password: str | bytes) -> bool:
        """:meth:`dummy_verify` on the worker's thread pool."""
        return await to_thread(self.dummy_verify, password)

    def needs_rehash(self, hashed: str) -> bool:
        """Whether ``hashed`` was made with other parameters or another Argon2 variant.

        Raises:
            MalformedHash: ``hashed`` is not an Argon2 hash.
        """
        try:
            return self._hasher.check_needs_rehash(hashed)
        except (InvalidHashError, ValueError) as exc:
            raise MalformedHash(f"hash: not an Argon2 PHC string ({exc})") from None

    def __repr__(self) -> str:
        return f"<PasswordHasher argon2id m={self.memory_kib} t={self.iterations} p={self.parallelism}>"


_DEFAULT: list[PasswordHasher] = []  # a cache of immutable hashers, built on first use


def _default() -> PasswordHasher:
    if not _DEFAULT:
        _DEFAULT.append(PasswordHasher.interactive())
    return _DEFAULT[0]


def hash_password(password: str | bytes) -> str:
    """``PasswordHasher.interactive().hash(password)``."""
    return _default().hash(password)


def verify_password(password: str | bytes, hashed: str) -> bool:
    """``PasswordHasher.interactive().verify(password, hashed)``."""
    return _default().verify(password, hashed)


async def ahash_password(password: str | bytes) -> str:
    """``await PasswordHasher.interactive().ahash(password)``: off the worker's loop."""
    return await _default().ahash(password)


async def averify_password(password: str | bytes, hashed: str) -> bool:
    """``await PasswordHasher.interactive().averify(password, hashed)``: off the worker's loop."""
    return await _default().averify(password, hashed)
