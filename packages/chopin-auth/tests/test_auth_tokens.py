"""JwtManager: every constructor, the pinned algorithm, and each claim check refusing what it must."""

from __future__ import annotations

import base64
import dataclasses
import json
import time

import jwt
import pytest
from auth_testing import SECRET
from chopin_auth import (
    EncodingKeyMissing,
    Expired,
    InvalidKey,
    InvalidToken,
    JwtConfig,
    JwtManager,
    KeySet,
    Revoked,
    SigningKey,
    TokenBlacklist,
    Validation,
    VerificationKey,
)
from hypothesis import given, settings
from hypothesis import strategies as st


@dataclasses.dataclass
class Claims:
    sub: str
    role: str


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, object], payload: dict[str, object], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


def now() -> int:
    return int(time.time())


# -- round trips ---------------------------------------------------------------------------


def test_hs256_round_trip_with_dict_and_dataclass() -> None:
    manager = JwtManager(SECRET)
    token = manager.encode({"sub": "alice", "role": "admin"})
    payload = manager.decode(token)
    assert payload["sub"] == "alice" and payload["role"] == "admin"
    # encode filled iat, exp (now + ttl) and a random jti
    assert abs(payload["iat"] - now()) <= 5
    assert payload["exp"] - payload["iat"] == 900
    assert isinstance(payload["jti"], str) and len(payload["jti"]) >= 16
    claims = manager.decode(manager.encode(Claims("bob", "user")), type=Claims)
    assert claims == Claims("bob", "user")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_each_token_gets_its_own_jti() -> None:
    manager = JwtManager(SECRET)
    jtis = {manager.decode(manager.encode({"sub": "a"}))["jti"] for _ in range(50)}
    assert len(jtis) == 50


def test_verify_only_refuses_to_encode() -> None:
    signer = JwtManager(SECRET)
    verifier = JwtManager.verify_only(SECRET)
    assert verifier.decode(signer.encode({"sub": "a"}))["sub"] == "a"
    with pytest.raises(EncodingKeyMissing):
        verifier.encode({"sub": "a"})


def test_rs256_and_public_only(rsa_pems: tuple[bytes, bytes]) -> None:
    private, public = rsa_pems
    manager = JwtManager.from_rsa_pem(private, public)
    token = manager.encode({"sub": "a"})
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert JwtManager.from_rsa_public_pem(public).decode(token)["sub"] == "a"
    with pytest.raises(EncodingKeyMissing):
        JwtManager.from_rsa_public_pem(public).encode({"sub": "a"})


def test_es256_and_public_only(ec_pems: tuple[bytes, bytes]) -> None:
    private, public = ec_pems
    manager = JwtManager.from_ec_pem(private.decode(), public.decode())
    token = manager.encode({"sub": "a"})
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert JwtManager.from_ec_public_pem(public).decode(token)["sub"] == "a"


# -- keys --------------------------------------------------------------------------------


def test_short_secret_is_refused() -> None:
    with pytest.raises(InvalidKey, match="at least 32 bytes, got 6"):
        JwtManager("secret")


def test_wrong_pem_types_are_refused(rsa_pems: tuple[bytes, bytes], ec_pems: tuple[bytes, bytes]) -> None:
    with pytest.raises(InvalidKey, match="expected an EC key for ES256"):
        JwtManager.from_ec_public_pem(rsa_pems[1])
    with pytest.raises(InvalidKey, match="expected an RSA key for RS256"):
        JwtManager.from_rsa_pem(ec_pems[0], ec_pems[1])
    with pytest.raises(InvalidKey, match="not a readable PEM public key"):
        JwtManager.from_rsa_public_pem(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(InvalidKey, match="private key"):
        JwtManager.from_rsa_pem(rsa_pems[1], rsa_pems[1])  # a public key where the private one goes


def test_small_rsa_key_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    public = small.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidKey, match="1024 bits, expected at least 2048"):
        JwtManager.from_rsa_public_pem(public)


def test_key_rotation_by_kid() -> None:
    old_secret, new_secret = SECRET + "-old", SECRET + "-new"
    old = JwtManager(old_secret, kid="2025")
    new = JwtManager(new_secret, kid="2026")
    both = JwtManager.with_config(
        JwtConfig(
            KeySet([VerificationKey.hs256(old_secret, "2025"), VerificationKey.hs256(new_secret, "2026")]),
            SigningKey.hs256(new_secret, "2026"),
        )
    )
    assert both.decode(old.encode({"sub": "a"}))["sub"] == "a"
    assert both.decode(new.encode({"sub": "b"}))["sub"] == "b"
    assert jwt.get_unverified_header(both.encode({"sub": "c"}))["kid"] == "2026"
    stranger = JwtManager(SECRET + "-x", kid="2024")
    with pytest.raises(InvalidToken, match="unknown key id '2024'"):
        both.decode(stranger.encode({"sub": "a"}))
    # A token signed by the 2025 key but labelled 2026 is checked with the 2026 key only.
    relabelled = jwt.encode({"sub": "a", "iat": now(), "exp": now() + 60}, old_secret, "HS256", {"kid": "2026"})
    with pytest.raises(InvalidToken, match="signature verification failed"):
        both.decode(relabelled)


def test_duplicate_kid_and_empty_key_set_are_refused() -> None:
    with pytest.raises(InvalidKey, match="appears twice"):
        KeySet([VerificationKey.hs256(SECRET, "a"), VerificationKey.hs256(SECRET + "2", "a")])
    with pytest.raises(InvalidKey, match="at least one"):
        KeySet([])


def test_allowed_algorithms_must_cover_the_keys(rsa_pems: tuple[bytes, bytes]) -> None:
    with pytest.raises(InvalidKey, match="keys use"):
        JwtConfig(KeySet([VerificationKey.from_pem("RS256", rsa_pems[1])]), allowed_algorithms=frozenset({"ES256"}))


# -- the algorithm is the manager's ----------------------------------------------------------


def test_alg_none_is_refused() -> None:
    manager = JwtManager(SECRET)
    token = forge({"alg": "none", "typ": "JWT"}, {"sub": "admin", "iat": now(), "exp": now() + 60})
    with pytest.raises(InvalidToken, match="algorithm 'none' does not match the key"):
        manager.decode(token)
    # with the signature part left out entirely, too
    with pytest.raises(InvalidToken):
        manager.decode(token.rstrip("."))


def test_hs_rs_key_confusion_is_refused(rsa_pems: tuple[bytes, bytes]) -> None:
    """An HS256 token 'signed' with the RSA public key as HMAC secret must not pass an RS256 manager."""
    import hashlib
    import hmac

    public = rsa_pems[1]
    manager = JwtManager.from_rsa_public_pem(public)
    header, payload = {"alg": "HS256", "typ": "JWT"}, {"sub": "admin", "iat": now(), "exp": now() + 60}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken, match="algorithm 'HS256' does not match the key \\(expected RS256\\)"):
        manager.decode(f"{signing_input}.{b64(signature)}")


def test_rs_token_is_refused_by_an_hs_manager(rsa_pems: tuple[bytes, bytes]) -> None:
    token = JwtManager.from_rsa_pem(*rsa_pems).encode({"sub": "a"})
    with pytest.raises(InvalidToken, match="expected HS256"):
        JwtManager(SECRET).decode(token)


def test_allowed_algorithms_refuses_other_headers() -> None:
    secret = SECRET * 2  # 78 bytes: long enough for HS512
    manager = JwtManager.with_config(
        JwtConfig(KeySet([VerificationKey.hs256(secret)]), allowed_algorithms=frozenset({"HS256"}))
    )
    with pytest.raises(InvalidToken, match="algorithm 'HS512' is not allowed"):
        manager.decode(jwt.encode({"sub": "a", "iat": now(), "exp": now() + 60}, secret, "HS512"))


def test_token_signed_with_another_key_is_refused(rsa_pems: tuple[bytes, bytes], other_rsa_pems) -> None:
    token = JwtManager.from_rsa_pem(*other_rsa_pems).encode({"sub": "a"})
    with pytest.raises(InvalidToken, match="signature verification failed"):
        JwtManager.from_rsa_public_pem(rsa_pems[1]).decode(token)
    with pytest.raises(InvalidToken, match="signature verification failed"):
        JwtManager(SECRET).decode(JwtManager(SECRET + "other").encode({"sub": "a"}))


def test_tampered_payload_is_refused() -> None:
    manager = JwtManager(SECRET)
    header, _, signature = manager.encode({"sub": "bob", "role": "user"}).split(".")
    evil = b64(json.dumps({"sub": "bob", "role": "admin", "iat": now(), "exp": now() + 60}).encode())
    with pytest.raises(InvalidToken, match="signature verification failed"):
        manager.decode(f"{header}.{evil}.{signature}")


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.!!!.x"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        JwtManager(SECRET).decode(token)


@pytest.mark.parametrize("header", [{"alg": ["HS256"]}, {"typ": "JWT"}, {"alg": "HS256", "kid": {"a": 1}}])
def test_odd_headers_are_refused_not_crashed_on(header: dict[str, object]) -> None:
    with pytest.raises(InvalidToken):
        JwtManager(SECRET).decode(forge(header, {"sub": "a", "iat": now(), "exp": now() + 60}, b"sig"))


def test_oversized_token_is_refused_before_parsing() -> None:
    manager = JwtManager(SECRET, validation=Validation(max_token_bytes=200))
    with pytest.raises(InvalidToken, match="over max_token_bytes \\(200\\)"):
        manager.decode(manager.encode({"sub": "a", "pad": "x" * 300}))


# -- claims ------------------------------------------------------------------------------


def raw(payload: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, "HS256")


def test_expired_token() -> None:
    with pytest.raises(Expired):
        JwtManager(SECRET).decode(raw({"sub": "a", "iat": now() - 100, "exp": now() - 50}))


def test_leeway_admits_a_just_expired_token() -> None:
    token = raw({"sub": "a", "iat": now() - 100, "exp": now() - 50})
    assert JwtManager(SECRET, validation=Validation(leeway=120)).decode(token)["sub"] == "a"


def test_missing_iat_is_refused() -> None:
    with pytest.raises(InvalidToken, match="missing required claim 'iat'"):
        JwtManager(SECRET).decode(raw({"sub": "a", "exp": now() + 60}))


def test_missing_exp_is_refused() -> None:
    with pytest.raises(InvalidToken, match="missing required claim 'exp'"):
        JwtManager(SECRET).decode(raw({"sub": "a", "iat": now()}))


def test_future_iat_is_refused() -> None:
    with pytest.raises(InvalidToken, match=r"not yet valid .*iat"):
        JwtManager(SECRET).decode(raw({"sub": "a", "iat": now() + 3600, "exp": now() + 7200}))


def test_future_nbf_is_refused() -> None:
    with pytest.raises(InvalidToken, match=r"not yet valid .*nbf"):
        JwtManager(SECRET).decode(raw({"sub": "a", "iat": now(), "nbf": now() + 3600, "exp": now() + 7200}))


def test_missing_nbf_is_refused_when_required() -> None:
    manager = JwtManager(SECRET, validation=Validation(required_claims=("exp", "iat", "nbf")))
    with pytest.raises(InvalidToken, match="missing required claim 'nbf'"):
        manager.decode(raw({"sub": "a", "iat": now(), "exp": now() + 60}))
    assert manager.decode(manager.encode({"sub": "a", "nbf": now() - 1}))["sub"] == "a"


def test_a_manager_requiring_nbf_accepts_the_tokens_it_encodes() -> None:
    # The README's key-rotation manager refused its own tokens: "missing required claim 'nbf'".
    manager = JwtManager(SECRET, validation=Validation(required_claims=("exp", "iat", "nbf")))
    before = now()
    claims = manager.decode(manager.encode({"sub": "a"}))
    assert claims["sub"] == "a"
    assert before <= claims["nbf"] <= now()
    assert "nbf" not in JwtManager(SECRET).decode(JwtManager(SECRET).encode({"sub": "a"}))  # only when required


def test_wrong_audience_and_issuer_are_refused() -> None:
    manager = JwtManager(SECRET, validation=Validation(issuer="https://id.example", audience="api"))
    token = manager.encode({"sub": "a"})  # encode fills iss and aud
    assert manager.decode(token)["aud"] == "api"
    base = {"sub": "a", "iat": now(), "exp": now() + 60}
    with pytest.raises(InvalidToken, match="wrong audience"):
        manager.decode(raw({**base, "iss": "https://id.example", "aud": "other"}))
    with pytest.raises(InvalidToken, match="wrong issuer"):
        manager.decode(raw({**base, "iss": "https://evil.example", "aud": "api"}))
    with pytest.raises(InvalidToken, match="missing required claim 'aud'"):
        manager.decode(raw({**base, "iss": "https://id.example"}))
    with pytest.raises(InvalidToken, match="missing required claim 'iss'"):
        manager.decode(raw({**base, "aud": "api"}))


def test_a_token_with_an_audience_is_refused_by_a_manager_without_one() -> None:
    with pytest.raises(InvalidToken, match="wrong audience"):
        JwtManager(SECRET).decode(raw({"sub": "a", "iat": now(), "exp": now() + 60, "aud": "someone-else"}))


def test_claims_that_do_not_fit_the_type() -> None:
    manager = JwtManager(SECRET)
    with pytest.raises(InvalidToken, match=r"claims do not fit Claims: .*role"):
        manager.decode(manager.encode({"sub": "a"}), type=Claims)


def test_encode_refuses_non_claims_and_reserved_headers() -> None:
    manager = JwtManager(SECRET)
    with pytest.raises(TypeError, match="dataclass instance or a mapping"):
        manager.encode(["sub"])
    with pytest.raises(ValueError, match="'alg' is set by the manager"):
        manager.encode({"sub": "a"}, headers={"alg": "none"})


def test_validation_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="leeway"):
        Validation(leeway=-1)
    with pytest.raises(ValueError, match="ttl"):
        Validation(ttl=0)
    with pytest.raises(ValueError, match="max_token_bytes"):
        Validation(max_token_bytes=0)


# -- revocation ----------------------------------------------------------------------------


def test_revoked_token_is_refused() -> None:
    blacklist = TokenBlacklist()
    manager = JwtManager(SECRET).with_blacklist(blacklist)
    token = manager.encode({"sub": "a"})
    payload = manager.decode(token)
    blacklist.revoke(payload["jti"], payload["exp"])
    with pytest.raises(Revoked):
        manager.decode(token)
    assert manager.decode(manager.encode({"sub": "a"}))["sub"] == "a"  # other tokens still pass


def test_with_a_blacklist_every_token_needs_a_usable_jti() -> None:
    manager = JwtManager(SECRET).with_blacklist(TokenBlacklist())
    with pytest.raises(InvalidToken, match="missing jti"):
        manager.decode(raw({"sub": "a", "iat": now(), "exp": now() + 60}))
    with pytest.raises(InvalidToken, match=r"1\.\.256 characters"):
        manager.decode(raw({"sub": "a", "iat": now(), "exp": now() + 60, "jti": "x" * 300}))


# -- any input -----------------------------------------------------------------------------

_SEGMENT = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40).map(b64),
    st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "sub", "exp", "iat", "jti", "nbf"]), st.from_type(object)
    ).map(lambda d: b64(repr(d).encode())),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ).map(lambda v: b64(json.dumps(v).encode())),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SEGMENT, min_size=1, max_size=4).map(".".join))
def test_any_string_gives_an_auth_error_and_nothing_else(token: str) -> None:
    manager = JwtManager(SECRET).with_blacklist(TokenBlacklist())
    with pytest.raises((InvalidToken, Expired)):
        manager.decode(token)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["sub", "exp", "iat", "nbf", "jti", "aud", "iss", "role"]), _JSON, max_size=8),
)
def test_any_signed_claims_either_decode_or_give_an_auth_error(claims: dict[str, object]) -> None:
    manager = JwtManager(SECRET).with_blacklist(TokenBlacklist())
    try:
        token = jwt.encode(claims, SECRET, "HS256")
    except (TypeError, ValueError, OverflowError):
        return  # not encodable as a JWT at all
    try:
        payload = manager.decode(token)
    except (InvalidToken, Expired):
        return
    assert payload == json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
