"""JWKS: serving our public keys, and verifying with a provider's key set fetched over a real socket.

The provider is either a chopin-core server in a subprocess (``mount_jwks``) or a
``http.server`` on 127.0.0.1 whose document the test changes (rotation) or stops (outage).
Cache expiry and cooldowns run on a clock the test advances, so nothing sleeps.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_testing import HOST, SECRET
from chopin_auth import (
    InvalidKey,
    InvalidToken,
    JwksClient,
    JwksUnavailable,
    JwtManager,
    VerificationKey,
    jwks_document,
)
from chopin_auth.jwks import JWKS_PATH
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Provider:
    """What the local JWKS server answers, and how often it was asked."""

    document: dict[str, Any]
    cache_control: str = ""
    status: int = 200
    hits: int = 0
    url: str = ""
    stop: Callable[[], None] = lambda: None


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider(document={"keys": []})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            body = json.dumps(state.document).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if state.cache_control:
                self.send_header("Cache-Control", state.cache_control)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            server.shutdown()
            server.server_close()

    state.url = f"http://{HOST}:{server.server_address[1]}/jwks.json"
    state.stop = stop
    yield state
    stop()
    thread.join(5)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


def _signer(private: rsa.RSAPrivateKey, kid: str) -> JwtManager:
    """A provider's signing side: a manager that signs RS256 tokens with ``kid``."""
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return JwtManager.from_rsa_pem(_pem(private), public, kid=kid)


def _jwk(private: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return VerificationKey("RS256", private.public_key(), kid).to_jwk()


# -- serving ----------------------------------------------------------------------------


def test_mount_jwks_serves_rs256_and_es256_keys_that_verify_the_providers_tokens(
    serve_auth_app: Callable[..., str],
    tmp_path: Path,
    rsa_pems: tuple[bytes, bytes],
    ec_pems: tuple[bytes, bytes],
) -> None:
    (tmp_path / "rsa.pub").write_bytes(rsa_pems[1])
    (tmp_path / "ec.pub").write_bytes(ec_pems[1])
    env = {"JWKS_RSA_PUB": str(tmp_path / "rsa.pub"), "JWKS_EC_PUB": str(tmp_path / "ec.pub")}
    base = serve_auth_app("auth_apps.jwks_provider:router", env=env)

    answer = httpx.get(base + JWKS_PATH, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=120"
    keys = answer.json()["keys"]
    assert [(k["kid"], k["kty"], k["alg"], k["use"]) for k in keys] == [
        ("rsa-1", "RSA", "RS256", "sig"),
        ("ec-1", "EC", "ES256", "sig"),
    ]
    assert all("d" not in k for k in keys)  # public members only

    clock = Clock()
    client = JwksClient(base + JWKS_PATH, clock=clock)
    verifier = JwtManager.from_jwks(client)
    rs = JwtManager.from_rsa_pem(*rsa_pems, kid="rsa-1")
    es = JwtManager.from_ec_pem(*ec_pems, kid="ec-1")
    assert verifier.decode(rs.encode({"sub": "alice"}))["sub"] == "alice"
    assert verifier.decode(es.encode({"sub": "bob"}))["sub"] == "bob"
    assert client.fetches == 1  # one fetch, cached for max-age
    clock.now += 121
    verifier.decode(rs.encode({"sub": "alice"}))
    assert client.fetches == 2  # expired after max-age: fetched again


def test_jwks_document_never_publishes_an_hs256_secret(rsa_pems: tuple[bytes, bytes]) -> None:
    with pytest.raises(InvalidKey, match="at least one RS256 or ES256 key"):
        jwks_document(JwtManager(SECRET))
    mixed = [VerificationKey.hs256(SECRET, kid="h"), VerificationKey.from_pem("RS256", rsa_pems[1], kid="r")]
    assert [k["kid"] for k in jwks_document(mixed)["keys"]] == ["r"]


# -- verifying with a provider's set -------------------------------------------------------


def test_rotation_a_new_kid_causes_exactly_one_refetch(provider: Provider, rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    old, new = rsa_keys
    provider.document = {"keys": [_jwk(old, "k1")]}
    clock = Clock()
    client = JwksClient(provider.url, refetch_cooldown=30, clock=clock)
    verifier = JwtManager.from_jwks(client)
    assert verifier.decode(_signer(old, "k1").encode({"sub": "a"}))["sub"] == "a"
    assert provider.hits == 1

    provider.document = {"keys": [_jwk(old, "k1"), _jwk(new, "k2")]}  # the provider rotates
    clock.now += 31
    for _ in range(5):
        assert verifier.decode(_signer(new, "k2").encode({"sub": "b"}))["sub"] == "b"
        verifier.decode(_signer(old, "k1").encode({"sub": "a"}))
    assert provider.hits == 2  # one refetch for k2, then both from the cache


def test_cooldown_bounds_fetches_for_many_unknown_kids(provider: Provider, rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    provider.document = {"keys": [_jwk(rsa_keys[0], "k1")]}
    clock = Clock()
    client = JwksClient(provider.url, refetch_cooldown=30, default_ttl=3600, clock=clock)
    verifier = JwtManager.from_jwks(client)
    forged = _signer(rsa_keys[1], "x")
    for step in range(200):  # 200 tokens with made-up kids over 100 s
        clock.now += 0.5
        token = forged.encode({"sub": "eve"}, headers={"kid": f"made-up-{step}"})
        with pytest.raises(InvalidToken, match="unknown key id"):
            verifier.decode(token)
    # first fetch + at most one refetch per 30 s cooldown over 100 s
    assert 2 <= provider.hits <= 5, provider.hits


def test_provider_down_refuses_tokens_with_a_clear_error(provider: Provider, rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    provider.document = {"keys": [_jwk(rsa_keys[0], "k1")]}
    provider.cache_control = "max-age=60"
    clock = Clock()
    client = JwksClient(provider.url, refetch_cooldown=10, clock=clock)
    verifier = JwtManager.from_jwks(client)
    token = _signer(rsa_keys[0], "k1").encode({"sub": "a"})
    verifier.decode(token)
    provider.stop()
    clock.now += 30
    verifier.decode(token)  # within max-age: the cached key still verifies
    clock.now += 31
    with pytest.raises(JwksUnavailable, match=r"unreachable .*tokens signed by this provider are refused") as caught:
        verifier.decode(token)
    assert caught.value.status == 503 and caught.value.url == provider.url
    attempts = client.fetches
    with pytest.raises(JwksUnavailable):
        verifier.decode(token)  # within the cooldown: refused without another fetch
    assert client.fetches == attempts


def test_a_served_app_answers_503_and_logs_the_jwks_url_while_the_provider_is_down(
    serve_auth_app: Callable[..., str], tmp_path: Path, provider: Provider, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    provider.document = {"keys": [_jwk(rsa_keys[0], "k1")]}
    base = serve_auth_app("auth_apps.jwks_guarded:router", env={"JWKS_URL": provider.url})
    bearer = {"Authorization": "Bearer " + _signer(rsa_keys[0], "k1").encode({"sub": "alice"})}
    answer = httpx.get(base + "/me", headers=bearer, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"sub": "alice"}
    forged = {"Authorization": "Bearer " + _signer(rsa_keys[1], "k1").encode({"sub": "eve"})}
    assert httpx.get(base + "/me", headers=forged, timeout=10).status_code == 401

    provider.stop()
    refused = httpx.get(base + "/me", headers=bearer, timeout=10)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    logs = "".join(p.read_text() for p in tmp_path.parent.glob("auth-server*/server-*.log"))
    assert f"JWKS {provider.url}: unreachable" in logs, logs


def test_a_never_reachable_provider_fails_closed_from_the_first_token(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    with ThreadingHTTPServer((HOST, 0), BaseHTTPRequestHandler) as probe:
        port = probe.server_address[1]  # closed when the block ends: nothing listens there
    verifier = JwtManager.from_jwks(JwksClient(f"http://{HOST}:{port}/jwks.json", timeout=5))
    with pytest.raises(JwksUnavailable, match="unreachable"):
        verifier.decode(_signer(rsa_keys[0], "k1").encode({"sub": "a"}))


@pytest.mark.parametrize(
    ("document", "status", "reason"),
    [
        ({"nope": []}, 200, 'a "keys" list'),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]}, 200, "no usable"),
        ({"keys": []}, 500, "HTTP 500"),
    ],
)
def test_a_bad_answer_is_refused(
    provider: Provider, rsa_keys: list[rsa.RSAPrivateKey], document: dict[str, Any], status: int, reason: str
) -> None:
    provider.document, provider.status = document, status
    verifier = JwtManager.from_jwks(JwksClient(provider.url))
    with pytest.raises(JwksUnavailable, match=reason):
        verifier.decode(_signer(rsa_keys[0], "k1").encode({"sub": "a"}))


def test_algorithms_are_pinned_to_the_key_and_the_client(
    provider: Provider, rsa_keys: list[rsa.RSAPrivateKey], ec_pems: tuple[bytes, bytes]
) -> None:
    ec_key = VerificationKey.from_pem("ES256", ec_pems[1], kid="e1")
    provider.document = {"keys": [_jwk(rsa_keys[0], "k1"), ec_key.to_jwk()]}
    verifier = JwtManager.from_jwks(JwksClient(provider.url, algorithms=["RS256"], clock=Clock()))
    # an HS256 token naming the RSA key's kid (the key-confusion attack): refused before any check
    with pytest.raises(InvalidToken, match="algorithm 'HS256' is not allowed"):
        verifier.decode(JwtManager(SECRET, kid="k1").encode({"sub": "eve"}))
    es = JwtManager.from_ec_pem(*ec_pems, kid="e1")
    with pytest.raises(InvalidToken, match="algorithm 'ES256' is not allowed"):
        verifier.decode(es.encode({"sub": "eve"}))
    # a key whose JWK says RS256 refuses a token claiming ES256 under its kid
    both = JwtManager.from_jwks(JwksClient(provider.url, clock=Clock()))
    swapped = JwtManager.from_ec_pem(*ec_pems).encode({"sub": "eve"}, headers={"kid": "k1"})
    with pytest.raises(InvalidToken, match="does not match the key"):
        both.decode(swapped)


def test_a_private_jwk_is_refused(rsa_keys: list[rsa.RSAPrivateKey]) -> None:
    from jwt.algorithms import RSAAlgorithm

    private = RSAAlgorithm.to_jwk(rsa_keys[0], as_dict=True)
    with pytest.raises(InvalidKey, match="holds a private key"):
        VerificationKey.from_jwk(private)


def test_a_plain_http_url_off_loopback_is_refused() -> None:
    with pytest.raises(ValueError, match="expected an https URL"):
        JwksClient("http://id.example/jwks.json")
