"""Password authentication without I/O: cleartext, MD5 and SCRAM-SHA-256(-PLUS).

SCRAM follows RFC 5802 §3 and §5 with SHA-256 (RFC 7677), as PostgreSQL uses
it (PostgreSQL 15 docs §55.3 "SASL Authentication"): the user name in the
client-first-message is ignored by the server (the startup user counts), so
the client sends ``n=``.  Channel binding is ``tls-server-end-point``
(RFC 5929 §4.1): the hash of the server certificate's DER bytes, with the
certificate's own signature hash, MD5 and SHA-1 upgraded to SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata

from .errors import AuthenticationFailed

__all__ = [
    "SCRAM_SHA_256",
    "SCRAM_SHA_256_PLUS",
    "ScramClient",
    "md5_password",
    "saslprep",
    "tls_server_end_point",
]

SCRAM_SHA_256 = "SCRAM-SHA-256"
SCRAM_SHA_256_PLUS = "SCRAM-SHA-256-PLUS"


def md5_password(user: str, password: str, salt: bytes) -> bytes:
    """Answer AuthenticationMD5Password: ``"md5" + md5(md5(password + user) + salt)`` in hex.

    Args:
        user: The startup user name.
        password: The password.
        salt: The four-byte salt from the server.

    Returns:
        The PasswordMessage payload.
    """
    inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
    return b"md5" + hashlib.md5(inner + salt).hexdigest().encode()


def _prohibited(ch: str) -> bool:
    # RFC 4013 §2.3: the prohibited output tables of RFC 3454.
    return (
        stringprep.in_table_c12(ch)
        or stringprep.in_table_c21_c22(ch)
        or stringprep.in_table_c3(ch)
        or stringprep.in_table_c4(ch)
        or stringprep.in_table_c5(ch)
        or stringprep.in_table_c6(ch)
        or stringprep.in_table_c7(ch)
        or stringprep.in_table_c8(ch)
        or stringprep.in_table_c9(ch)
    )


def saslprep(text: str) -> str:
    """Normalize a password with SASLprep (RFC 4013).

    Args:
        text: The password.

    Returns:
        The prepared string.

    Raises:
        ValueError: The string holds prohibited or badly mixed bidirectional characters.
    """
    # §2.1 mapping: non-ASCII spaces to SPACE, "commonly mapped to nothing" removed.
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    normalized = unicodedata.normalize("NFKC", mapped)
    if not normalized:
        return normalized
    for ch in normalized:
        if _prohibited(ch) or stringprep.in_table_a1(ch):
            raise ValueError(f"saslprep: prohibited character U+{ord(ch):04X}")
    # RFC 3454 §6 bidirectional rule.
    if any(stringprep.in_table_d1(c) for c in normalized):
        if any(stringprep.in_table_d2(c) for c in normalized):
            raise ValueError("saslprep: both RandALCat and LCat characters")
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            raise ValueError("saslprep: RandALCat string must start and end with RandALCat")
    return normalized


def _normalize_password(password: str) -> bytes:
    # PostgreSQL falls back to the raw bytes when SASLprep refuses the string.
    try:
        return saslprep(password).encode()
    except ValueError:
        return password.encode()


def tls_server_end_point(certificate_der: bytes) -> bytes:
    """Compute ``tls-server-end-point`` channel-binding data (RFC 5929 §4.1).

    The hash is the one the certificate is signed with; MD5 and SHA-1 (and any
    algorithm not recognised) become SHA-256.

    Args:
        certificate_der: The server certificate in DER form.

    Returns:
        The certificate hash.
    """
    name = _signature_hash(certificate_der)
    return hashlib.new(name, certificate_der).digest()


# DER-encoded OIDs of signature algorithms whose hash is stronger than SHA-256.
_SIG_HASH_OIDS = {
    bytes.fromhex("2a864886f70d01010c"): "sha384",  # sha384WithRSAEncryption
    bytes.fromhex("2a864886f70d01010d"): "sha512",  # sha512WithRSAEncryption
    bytes.fromhex("2a8648ce3d040303"): "sha384",  # ecdsa-with-SHA384
    bytes.fromhex("2a8648ce3d040304"): "sha512",  # ecdsa-with-SHA512
}


def _signature_hash(der: bytes) -> str:
    # The certificate's signatureAlgorithm OID is the first OID (tag 0x06) after
    # the TBSCertificate; matching by byte search is enough for the OIDs above.
    for oid, name in _SIG_HASH_OIDS.items():
        if b"\x06" + bytes([len(oid)]) + oid in der:
            return name
    return "sha256"


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.digest(key, msg, "sha256")


class ScramClient:
    """The client side of one SCRAM-SHA-256 exchange (RFC 5802 §3, §5).

    Use: send :meth:`client_first`, feed the server-first-message to
    :meth:`client_final` and send its result, then check the server-final-message
    with :meth:`verify_server_final`.

    Args:
        password: The password (SASLprep-normalized here).
        user: Name put in the client-first-message; PostgreSQL ignores it.
        nonce: Client nonce; random when ``None`` (tests pass the RFC's).
        channel_binding: ``tls-server-end-point`` data to bind to, for SCRAM-SHA-256-PLUS.
        client_supports_binding: Whether to send the ``y`` flag when not binding (TLS but no -PLUS offered).
    """

    def __init__(
        self,
        password: str,
        user: str = "",
        nonce: str | None = None,
        channel_binding: bytes | None = None,
        client_supports_binding: bool = False,
    ) -> None:
        self._password = _normalize_password(password)
        self._nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self._binding = channel_binding
        if channel_binding is not None:
            self._gs2_header = b"p=tls-server-end-point,,"
        elif client_supports_binding:
            self._gs2_header = b"y,,"
        else:
            self._gs2_header = b"n,,"
        user = user.replace("=", "=3D").replace(",", "=2C")
        self._client_first_bare = f"n={user},r={self._nonce}".encode()
        self._server_signature: bytes | None = None

    @property
    def mechanism(self) -> str:
        """The SASL mechanism name to announce."""
        return SCRAM_SHA_256_PLUS if self._binding is not None else SCRAM_SHA_256

    def client_first(self) -> bytes:
        """Return the client-first-message."""
        return self._gs2_header + self._client_first_bare

    def client_final(self, server_first: bytes) -> bytes:
        """Compute the client-final-message from the server-first-message.

        Args:
            server_first: ``r=<nonce>,s=<salt>,i=<iterations>``.

        Returns:
            ``c=<binding>,r=<nonce>,p=<proof>``.

        Raises:
            AuthenticationFailed: The message is malformed or the nonce does not extend ours.
        """
        attrs = _attributes(server_first)
        try:
            nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        except (KeyError, ValueError) as exc:
            raise AuthenticationFailed(f"SCRAM server-first-message: malformed {server_first!r}") from exc
        if not nonce.startswith(self._nonce) or len(nonce) <= len(self._nonce):
            raise AuthenticationFailed("SCRAM server-first-message: server nonce does not extend the client nonce")
        if iterations < 1:
            raise AuthenticationFailed(f"SCRAM server-first-message: iteration count {iterations}")
        salted = hashlib.pbkdf2_hmac("sha256", self._password, salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        cbind = self._gs2_header + (self._binding or b"")
        final_without_proof = b"c=" + base64.b64encode(cbind) + b",r=" + nonce.encode()
        auth_message = self._client_first_bare + b"," + server_first + b"," + final_without_proof
        signature = _hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        return final_without_proof + b",p=" + base64.b64encode(proof)

    def verify_server_final(self, server_final: bytes) -> None:
        """Check the server's signature so that a server without the password cannot pass.

        Raises:
            AuthenticationFailed: The server reported an error or its signature is wrong.
        """
        attrs = _attributes(server_final)
        if "e" in attrs:
            raise AuthenticationFailed(f"SCRAM: server reported error {attrs['e']!r}")
        if self._server_signature is None:
            raise AuthenticationFailed("SCRAM: server-final-message before client-final-message")
        try:
            signature = base64.b64decode(attrs["v"])
        except (KeyError, ValueError) as exc:
            raise AuthenticationFailed(f"SCRAM server-final-message: malformed {server_final!r}") from exc
        if not hmac.compare_digest(signature, self._server_signature):
            raise AuthenticationFailed("SCRAM: server signature does not match; the server does not know the password")


def _attributes(message: bytes) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for part in message.decode().split(","):
        key, sep, value = part.partition("=")
        if sep and len(key) == 1:
            attrs.setdefault(key, value)
    return attrs
