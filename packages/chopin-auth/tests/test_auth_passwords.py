"""Argon2id hashing through argon2-cffi: presets, verify, rehash, malformed hashes, limits."""

from __future__ import annotations

import argon2
import pytest
from chopin_auth import (
    InvalidParameters,
    MalformedHash,
    PasswordHasher,
    PasswordTooLong,
    hash_password,
    verify_password,
)

FAST = PasswordHasher.custom(8192, 1, 1)  # cheap parameters for tests that are not about cost


def test_interactive_hash_and_verify() -> None:
    hasher = PasswordHasher.interactive()
    hashed = hasher.hash("my-password")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert hasher.verify("my-password", hashed)
    assert hasher.verify(b"my-password", hashed)
    assert not hasher.verify("wrong", hashed)
    assert not hasher.needs_rehash(hashed)


def test_sensitive_preset_parameters() -> None:
    hasher = PasswordHasher.sensitive()
    hashed = hasher.hash("secret")
    assert hashed.startswith("$argon2id$v=19$m=262144,t=4,p=4$")
    assert hasher.verify("secret", hashed)


def test_salts_differ() -> None:
    assert FAST.hash("same") != FAST.hash("same")


def test_helpers() -> None:
    hashed = hash_password("another-password")
    assert verify_password("another-password", hashed)
    assert not verify_password("wrong", hashed)


def test_needs_rehash_after_a_parameter_change_and_verify_still_works() -> None:
    old = FAST.hash("pw")
    current = PasswordHasher.custom(16384, 2, 1)
    assert current.needs_rehash(old)
    assert current.verify("pw", old)  # parameters travel in the hash


def test_other_argon2_variants_verify_but_need_rehash() -> None:
    argon2i = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=argon2.Type.I).hash("pw")
    assert FAST.verify("pw", argon2i)
    assert FAST.needs_rehash(argon2i)


@pytest.mark.parametrize(
    "hashed",
    ["", "plaintext", "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "$argon2id$v=19$m=8192"],
)
def test_malformed_hash_is_a_clear_error(hashed: str) -> None:
    with pytest.raises(MalformedHash, match="hash"):
        FAST.verify("pw", hashed)
    with pytest.raises(MalformedHash):
        FAST.needs_rehash(hashed)


def test_non_str_hash_is_refused() -> None:
    with pytest.raises(MalformedHash, match="expected str"):
        FAST.verify("pw", b"$argon2id$")  # type: ignore[arg-type]


def test_password_length_limit() -> None:
    hasher = PasswordHasher(8192, 1, 1, max_password_bytes=16)
    with pytest.raises(PasswordTooLong, match="17 bytes, over max_password_bytes \\(16\\)"):
        hasher.hash("x" * 17)
    hashed = hasher.hash("x" * 16)
    assert not hasher.verify("x" * 17, hashed)


def test_dummy_verify_is_always_false() -> None:
    assert FAST.dummy_verify("anything") is False
    assert FAST.dummy_verify("anything") is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((7, 1, 1), "memory_kib: expected 8.."),
        ((8192, 0, 1), "iterations"),
        ((8192, 1, 0), "parallelism"),
        ((8192, 1, 256), "parallelism"),
        ((64, 1, 16), "memory_kib: expected 128.."),
        ((8 * 1024 * 1024, 1, 1), "memory_kib"),
        ((8192.0, 1, 1), "expected int"),
    ],
)
def test_custom_parameters_are_checked(args: tuple[int, int, int], message: str) -> None:
    with pytest.raises(InvalidParameters, match=message):
        PasswordHasher.custom(*args)


def test_wrong_password_type() -> None:
    with pytest.raises(TypeError, match="expected str or bytes"):
        FAST.hash(123)  # type: ignore[arg-type]


# -- off the worker's loop ------------------------------------------------------------------


def test_averify_and_ahash_run_on_a_thread_and_agree_with_the_blocking_calls() -> None:
    import threading

    from chopin_core import run_blocking

    hasher = PasswordHasher.custom(memory_kib=8 * 1024, iterations=1, parallelism=1)
    seen: list[int] = []

    async def main() -> tuple[str, bool, bool]:
        seen.append(threading.get_ident())
        hashed = await hasher.ahash("pw")
        return hashed, await hasher.averify("pw", hashed), await hasher.averify("other", hashed)

    hashed, good, bad = run_blocking(main())
    assert hasher.verify("pw", hashed) and good and not bad


def test_sign_ins_that_hash_do_not_hold_the_worker(serve_auth_app) -> None:  # type: ignore[no-untyped-def]
    import concurrent.futures
    import time

    import httpx

    base = serve_auth_app("auth_apps.signin:router")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        signins = [pool.submit(httpx.post, f"{base}/signin", content=b"correct horse", timeout=30) for _ in range(4)]
        time.sleep(0.05)
        before = time.monotonic()
        posts = httpx.get(f"{base}/posts", timeout=30)
        waited = time.monotonic() - before
        answers = [f.result() for f in signins]
        all_done = time.monotonic() - started
    assert posts.status_code == 200
    assert [a.text for a in answers] == ["welcome"] * 4
    # Four interactive() hashes hold the worker's thread pool, not the worker: /posts does not queue behind them.
    assert waited < all_done / 2, f"/posts waited {waited:.2f} s while the sign-ins took {all_done:.2f} s"
