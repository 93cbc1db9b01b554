"""OAuth 2.1 PKCE (RFC 7636): code verifiers, S256 challenges, state and nonce values.

Only the S256 method is offered: OAuth 2.1 (draft-ietf-oauth-v2-1, 4.1.1) requires
it of any client able to compute SHA-256, which every Python client is.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import secrets
from typing import Final

__all__ = [
    "PkcePair",
    "code_challenge",
    "code_verifier",
    "generate_nonce",
    "generate_state",
    "verify_code_challenge",
]

# RFC 7636 4.1: code-verifier = 43*128unreserved, unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
_VERIFIER: Final = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def code_verifier(length: int = 64) -> str:
    """A new random code verifier of ``length`` characters (43..128; RFC 7636 4.1).

    Raises:
        ValueError: ``length`` is outside 43..128.
    """
    if not 43 <= length <= 128:
        raise ValueError(f"length: expected 43..128 characters (RFC 7636 4.1), got {length}")
    # token_urlsafe gives unreserved characters only: 4 per 3 random bytes.
    return secrets.token_urlsafe(length)[:length]


def code_challenge(verifier: str) -> str:
    """The S256 challenge of ``verifier``: BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 4.2).

    Raises:
        ValueError: ``verifier`` is not 43..128 unreserved characters.
    """
    if not isinstance(verifier, str) or _VERIFIER.fullmatch(verifier) is None:
        shown = verifier[:20] if isinstance(verifier, str) else type(verifier).__name__
        raise ValueError(f"code verifier: expected 43..128 characters of [A-Za-z0-9-._~], got {shown!r}")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_code_challenge(verifier: str, challenge: str) -> bool:
    """Whether ``verifier`` matches the S256 ``challenge`` (the server side of RFC 7636 4.6), in constant time."""
    try:
        expected = code_challenge(verifier)
    except ValueError:
        return False
    return secrets.compare_digest(expected.encode(), challenge.encode("utf-8", "replace"))


def generate_state() -> str:
    """A new ``state`` value: 256 random bits, URL-safe (RFC 6749 10.12)."""
    return secrets.token_urlsafe(32)


def generate_nonce() -> str:
    """A new OpenID Connect ``nonce``: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclasses.dataclass(frozen=True, slots=True)
class PkcePair:
    """A code verifier and its S256 challenge.

    Attributes:
        verifier: kept by the client until the code exchange.
        challenge: sent in the authorization request.
        method: always ``"S256"``.
    """

    verifier: str
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls, length: int = 64) -> PkcePair:
        """A new verifier of ``length`` characters and its challenge."""
        verifier = code_verifier(length)
        return cls(verifier, code_challenge(verifier))
