"""Signed-cookie sessions: the signer (no sockets), then the middleware over real sockets."""

from __future__ import annotations

import httpx
import pytest
from chopin_core import SessionSigner, sessions

KEY_OLD = "old-key-0123456789abcdef"
KEY_NEW = "new-key-0123456789abcdef"


def test_round_trip_and_tamper() -> None:
    signer = SessionSigner([KEY_OLD])
    value = signer.dumps({"user": 7, "roles": ["a"]}, now=1000)
    assert signer.loads(value, now=1000) == {"user": 7, "roles": ["a"]}
    payload, issued, mac = value.split(".")
    assert signer.loads(f"{payload}.{int(issued) + 1}.{mac}", now=1000) is None  # the stamp is signed
    forged = SessionSigner([KEY_NEW]).dumps({"user": 1}, now=1000)
    assert signer.loads(f"{forged.split('.')[0]}.{issued}.{mac}", now=1000) is None  # the payload is signed
    for junk in ["", ".", "..", "a.b.c", "a.1.!!", value + "x", "é.1.x", value.replace(".", "", 1)]:
        assert signer.loads(junk, now=1000) is None


def test_expiry_and_future_stamps() -> None:
    signer = SessionSigner([KEY_OLD], max_age=60)
    value = signer.dumps({"a": 1}, now=1000)
    assert signer.loads(value, now=1060) == {"a": 1}
    assert signer.loads(value, now=1061) is None
    assert signer.loads(signer.dumps({"a": 1}, now=5000), now=1000) is None


def test_key_rotation_new_signs_old_still_verifies() -> None:
    old = SessionSigner([KEY_OLD]).dumps({"a": 1}, now=1000)
    rotated = SessionSigner([KEY_NEW, KEY_OLD])
    assert rotated.loads(old, now=1000) == {"a": 1}
    fresh = rotated.dumps({"a": 2}, now=1000)
    assert SessionSigner([KEY_NEW]).loads(fresh, now=1000) == {"a": 2}
    assert SessionSigner([KEY_OLD]).loads(fresh, now=1000) is None
    assert SessionSigner([KEY_NEW]).loads(old, now=1000) is None  # old key dropped: old cookies die


def test_bad_configuration_fails_at_setup() -> None:
    with pytest.raises(ValueError, match="non-empty list"):
        SessionSigner(KEY_OLD)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 16 bytes"):
        SessionSigner(["short"])
    with pytest.raises(ValueError, match="requires secure=True"):
        sessions([KEY_OLD], samesite="None", secure=False)


# -- over real sockets -----------------------------------------------------------------------


def test_session_persists_and_is_refused_when_forged(serve_module) -> None:
    server = serve_module("apps.cookies_app:app")
    with httpx.Client(base_url=server.url, timeout=20.0) as client:
        first = client.get("/visit")
        assert first.json() == {"n": 1}
        line = first.headers["set-cookie"]
        assert line.startswith("session=") and "HttpOnly" in line and "Max-Age=1209600" in line
        assert client.get("/visit").json() == {"n": 2}
        value = client.cookies["session"]
    # A client that edits the payload gets a fresh session, not its edit.
    _payload, issued, mac = value.split(".")
    forged = SessionSigner([KEY_NEW]).dumps({"n": 100}).split(".")[0]
    with httpx.Client(base_url=server.url, timeout=20.0) as client:
        got = client.get("/visit", headers={"Cookie": f"session={forged}.{issued}.{mac}"})
        assert got.json() == {"n": 1}
        got = client.get("/visit", headers={"Cookie": f"session={value}"})
        assert got.json() == {"n": 3}
        # An unchanged session sends no cookie at all.
        peek = client.get("/peek", headers={"Cookie": f"session={value}"})
        assert peek.json() == {"n": 2} and "set-cookie" not in peek.headers
        bye = client.get("/logout", headers={"Cookie": f"session={value}"})
        assert bye.headers["set-cookie"].startswith("session=; Max-Age=0")


def test_rotated_keys_across_a_restart(serve) -> None:
    old = serve("apps.cookies_app:app")
    with httpx.Client(base_url=old.url, timeout=20.0) as client:
        client.get("/visit")
        value = client.cookies["session"]
    new = serve("apps.cookies_app:app", env={"SESSION_KEYS": f"{KEY_NEW},{KEY_OLD}"})
    with httpx.Client(base_url=new.url, timeout=20.0) as client:
        got = client.get("/visit", headers={"Cookie": f"session={value}"})
        assert got.json() == {"n": 2}  # signed with the old key: still read
        fresh = got.headers["set-cookie"].split(";")[0].removeprefix("session=")
    assert SessionSigner([KEY_NEW]).loads(fresh) == {"n": 2}  # re-signed with the new key
