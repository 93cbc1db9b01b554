"""Signing and verification keys: HS256 secrets, RSA and EC (P-256) PEM keys, key sets.

Each key is pinned to one algorithm when it is made; a token is only ever checked
with the algorithm of the key that checks it, never with the one its header names
(RFC 8725 3.1).  PEM keys are parsed with ``cryptography`` and checked for their
type and size here, so a wrong key fails at start-up rather than at the first request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, Literal, TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from .errors import InvalidKey

__all__ = [
    "MIN_HMAC_KEY_BYTES",
    "MIN_RSA_KEY_BITS",
    "Algorithm",
    "KeySet",
    "SigningKey",
    "VerificationKey",
    "jwk_algorithm",
    "load_private_pem",
    "load_public_pem",
]

Algorithm: TypeAlias = Literal["HS256", "RS256", "ES256"]
"""The algorithms a manager can pin."""

MIN_HMAC_KEY_BYTES: Final = 32
"""An HS256 secret must be at least as long as the hash output (RFC 7518 3.2)."""

MIN_RSA_KEY_BITS: Final = 2048
"""RSA keys shorter than this are refused (RFC 7518 3.3)."""


def _as_bytes(data: str | bytes, what: str) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise InvalidKey(f"{what}: expected str or bytes, got {type(data).__name__}")


def hmac_secret(secret: str | bytes) -> bytes:
    """``secret`` as bytes, refused when shorter than :data:`MIN_HMAC_KEY_BYTES`.

    Raises:
        InvalidKey: the secret is too short or not text/bytes.
    """
    key = _as_bytes(secret, "HS256 secret")
    if len(key) < MIN_HMAC_KEY_BYTES:
        raise InvalidKey(f"HS256 secret: expected at least {MIN_HMAC_KEY_BYTES} bytes, got {len(key)}")
    return key


def _check(key: object, algorithm: Algorithm, what: str) -> None:
    if algorithm == "RS256":
        if not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            raise InvalidKey(f"{what}: expected an RSA key for RS256, got {type(key).__name__}")
        if key.key_size < MIN_RSA_KEY_BITS:
            raise InvalidKey(f"{what}: RSA key of {key.key_size} bits, expected at least {MIN_RSA_KEY_BITS}")
    elif algorithm == "ES256":
        if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            raise InvalidKey(f"{what}: expected an EC key for ES256, got {type(key).__name__}")
        if not isinstance(key.curve, ec.SECP256R1):
            raise InvalidKey(f"{what}: ES256 needs a P-256 key, got curve {key.curve.name}")
    else:  # pragma: no cover - guarded by the callers
        raise InvalidKey(f"{what}: no PEM keys for {algorithm}")


def load_private_pem(pem: str | bytes, algorithm: Algorithm) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Parse an unencrypted PEM private key (PKCS#8 or traditional) for ``algorithm``.

    Raises:
        InvalidKey: the PEM cannot be read, or holds a key of the wrong type or size.
    """
    try:
        key = serialization.load_pem_private_key(_as_bytes(pem, f"{algorithm} private key"), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"{algorithm} private key: not a readable unencrypted PEM private key ({exc})") from None
    _check(key, algorithm, f"{algorithm} private key")
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key


def load_public_pem(pem: str | bytes, algorithm: Algorithm) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """Parse a PEM public key (SubjectPublicKeyInfo) for ``algorithm``.

    Raises:
        InvalidKey: the PEM cannot be read, or holds a key of the wrong type or size.
    """
    try:
        key = serialization.load_pem_public_key(_as_bytes(pem, f"{algorithm} public key"))
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"{algorithm} public key: not a readable PEM public key ({exc})") from None
    _check(key, algorithm, f"{algorithm} public key")
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return key


def jwk_algorithm(jwk: Mapping[str, Any]) -> Algorithm | None:
    """The algorithm a public JWK is for: its ``alg``, else what its ``kty``/``crv`` imply (RFC 7518 6).

    Returns ``None`` for keys chopin-auth does not verify with (``oct`` secrets, other
    curves or algorithms), so a key set can skip them.
    """
    alg, kty = jwk.get("alg"), jwk.get("kty")
    implied: Algorithm | None = None
    if kty == "RSA":
        implied = "RS256"
    elif kty == "EC" and jwk.get("crv") == "P-256":
        implied = "ES256"
    if alg is None:
        return implied
    return implied if alg == implied else None


@dataclasses.dataclass(frozen=True, slots=True)
class SigningKey:
    """The key new tokens are signed with.

    Attributes:
        algorithm: ``HS256``, ``RS256`` or ``ES256``.
        key: the HS256 secret (bytes) or a ``cryptography`` private key.
        kid: written to the token header as ``kid`` when set (for key rotation).
    """

    algorithm: Algorithm
    key: bytes | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    kid: str | None = None

    @classmethod
    def hs256(cls, secret: str | bytes, kid: str | None = None) -> SigningKey:
        """An HS256 signing key (checked for length)."""
        return cls("HS256", hmac_secret(secret), kid)

    @classmethod
    def from_pem(cls, algorithm: Algorithm, pem: str | bytes, kid: str | None = None) -> SigningKey:
        """An RS256 or ES256 signing key from a PEM private key."""
        return cls(algorithm, load_private_pem(pem, algorithm), kid)


@dataclasses.dataclass(frozen=True, slots=True)
class VerificationKey:
    """A key tokens are checked with, pinned to one algorithm.

    Attributes:
        algorithm: the only algorithm accepted with this key.
        key: the HS256 secret or a ``cryptography`` public key.
        kid: matches the token header's ``kid`` (``None``: the key is tried for tokens without one).
    """

    algorithm: Algorithm
    key: bytes | rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    kid: str | None = None

    @classmethod
    def hs256(cls, secret: str | bytes, kid: str | None = None) -> VerificationKey:
        """An HS256 verification key (checked for length)."""
        return cls("HS256", hmac_secret(secret), kid)

    @classmethod
    def from_pem(cls, algorithm: Algorithm, pem: str | bytes, kid: str | None = None) -> VerificationKey:
        """An RS256 or ES256 verification key from a PEM public key."""
        return cls(algorithm, load_public_pem(pem, algorithm), kid)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> VerificationKey:
        """An RS256 or ES256 verification key from a public JWK (RFC 7517), its ``kid`` kept.

        Raises:
            InvalidKey: the JWK is not a public RSA or P-256 key, names another algorithm,
                holds private members, or is too small.
        """
        kid = jwk.get("kid")
        where = f"JWK {kid!r}" if kid is not None else "JWK"
        if kid is not None and not isinstance(kid, str):
            raise InvalidKey(f"{where}: kid must be a string, got {type(kid).__name__}")
        algorithm = jwk_algorithm(jwk)
        if algorithm is None:
            raise InvalidKey(
                f"{where}: expected an RSA (RS256) or P-256 EC (ES256) key, "
                f"got kty={jwk.get('kty')!r} crv={jwk.get('crv')!r} alg={jwk.get('alg')!r}"
            )
        if "d" in jwk:
            # A published private key is a leak, not a verification key.
            raise InvalidKey(f"{where}: holds a private key (member 'd'); a key set publishes public keys only")
        try:
            parser = RSAAlgorithm if algorithm == "RS256" else ECAlgorithm
            key = parser.from_jwk(dict(jwk))
        except (InvalidKeyError, ValueError, TypeError, KeyError) as exc:
            raise InvalidKey(f"{where}: not a readable {algorithm} key ({exc})") from None
        _check(key, algorithm, where)
        assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        return cls(algorithm, key, kid)

    def to_jwk(self) -> dict[str, Any]:
        """This public key as a JWK (RFC 7517) with ``kid``, ``alg`` and ``use: sig``.

        Raises:
            InvalidKey: the key is an HS256 secret, which must never be published.
        """
        if isinstance(self.key, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(self.key, as_dict=True)
        elif isinstance(self.key, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(self.key, as_dict=True)
        else:
            raise InvalidKey(f"{self.algorithm} key {self.kid!r}: a shared secret is never published in a JWKS")
        out: dict[str, Any] = {"kty": jwk["kty"]}
        if self.kid is not None:
            out["kid"] = self.kid
        out.update(alg=self.algorithm, use="sig")
        out.update((k, v) for k, v in jwk.items() if k not in ("kty", "key_ops"))
        return out


class KeySet:
    """The verification keys of a manager, by ``kid``, for key rotation.

    A token whose header names a ``kid`` is checked with that key only (an unknown
    ``kid`` is refused); a token without one is checked with the keys that have no
    ``kid``.  Each check uses the key's own algorithm.
    """

    __slots__ = ("_anonymous", "_by_kid")

    def __init__(self, keys: Iterable[VerificationKey]) -> None:
        self._by_kid: dict[str, VerificationKey] = {}
        self._anonymous: list[VerificationKey] = []
        for key in keys:
            if key.kid is None:
                self._anonymous.append(key)
            elif key.kid in self._by_kid:
                raise InvalidKey(f"key set: kid {key.kid!r} appears twice")
            else:
                self._by_kid[key.kid] = key
        if not self._by_kid and not self._anonymous:
            raise InvalidKey("key set: expected at least one verification key")

    def candidates(self, kid: object) -> list[VerificationKey]:
        """The keys a token with header ``kid`` may be checked with (empty: none)."""
        if kid is None:
            return self._anonymous
        if not isinstance(kid, str):
            return []
        key = self._by_kid.get(kid)
        return [key] if key is not None else []

    @property
    def algorithms(self) -> frozenset[str]:
        """Every algorithm some key of the set accepts."""
        return frozenset(k.algorithm for k in (*self._anonymous, *self._by_kid.values()))

    def __len__(self) -> int:
        return len(self._anonymous) + len(self._by_kid)

    def __iter__(self) -> Iterator[VerificationKey]:
        yield from self._anonymous
        yield from self._by_kid.values()
