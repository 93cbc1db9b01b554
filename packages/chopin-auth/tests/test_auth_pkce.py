"""PKCE against RFC 7636 Appendix B, and the random values of the flow."""

from __future__ import annotations

import re

import pytest
from chopin_auth import PkcePair, code_challenge, code_verifier, generate_nonce, generate_state, verify_code_challenge

# RFC 7636, Appendix B
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rfc7636_appendix_b_vector() -> None:
    assert code_challenge(RFC_VERIFIER) == RFC_CHALLENGE
    assert verify_code_challenge(RFC_VERIFIER, RFC_CHALLENGE)
    assert not verify_code_challenge(RFC_VERIFIER[:-1] + "l", RFC_CHALLENGE)


@pytest.mark.parametrize("length", [43, 64, 128])
def test_verifiers_have_the_length_and_alphabet_of_rfc7636(length: int) -> None:
    verifier = code_verifier(length)
    assert len(verifier) == length
    assert re.fullmatch(r"[A-Za-z0-9\-._~]+", verifier)
    assert len(code_challenge(verifier)) == 43  # 32 bytes, base64url without padding


@pytest.mark.parametrize("length", [42, 129])
def test_verifier_length_out_of_range(length: int) -> None:
    with pytest.raises(ValueError, match=r"43\.\.128"):
        code_verifier(length)


@pytest.mark.parametrize("verifier", ["short", "a" * 129, "a" * 42 + "=", "a" * 42 + " ", "é" * 43])
def test_bad_verifiers_are_refused(verifier: str) -> None:
    with pytest.raises(ValueError, match="code verifier"):
        code_challenge(verifier)
    assert not verify_code_challenge(verifier, RFC_CHALLENGE)


def test_random_values_do_not_repeat() -> None:
    assert len({code_verifier() for _ in range(100)}) == 100
    assert len({generate_state() for _ in range(100)}) == 100
    assert len({generate_nonce() for _ in range(100)}) == 100
    assert len(generate_state()) >= 43  # 256 bits


def test_pkce_pair() -> None:
    pair = PkcePair.generate()
    assert pair.method == "S256"
    assert code_challenge(pair.verifier) == pair.challenge
