"""Cookies: RFC 6265 parsing and Set-Cookie formatting (no sockets), then real clients."""

from __future__ import annotations

import datetime
import subprocess

import httpx
import pytest
from chopin_core import Response
from chopin_core.cookies import format_delete_cookie, format_set_cookie, parse_cookie_header

# -- parsing (RFC 6265 5.4 / 4.2.1) ------------------------------------------------------------


def test_parse_reads_pairs_and_strips_whitespace_and_quotes() -> None:
    assert dict(parse_cookie_header(['SID=31d4d96e407aad42; lang=en-US;  q="quoted" '])) == {
        "SID": "31d4d96e407aad42",
        "lang": "en-US",
        "q": "quoted",
    }


def test_parse_skips_malformed_pairs_and_never_raises() -> None:
    header = 'novalue; =empty-name; bad name=x; ok=1; sp=a b; comma=a,b; bs=a\\b; dq=a"b; utf=é; good=2;;'
    assert dict(parse_cookie_header([header])) == {"ok": "1", "good": "2"}
    assert dict(parse_cookie_header([""])) == {}
    assert dict(parse_cookie_header([])) == {}


def test_parse_first_of_a_repeated_name_wins_and_fields_join() -> None:
    # HTTP/2 may split Cookie into several fields (RFC 9113 8.2.3): all are read, in order.
    assert dict(parse_cookie_header(["a=1; b=2", "a=3; c=4"])) == {"a": "1", "b": "2", "c": "4"}


def test_parse_is_bounded() -> None:
    header = "; ".join(f"c{i}={i}" for i in range(1000))
    assert len(parse_cookie_header([header], max_cookies=10)) == 10


def test_parse_result_is_read_only() -> None:
    cookies = parse_cookie_header(["a=1"])
    with pytest.raises(TypeError):
        cookies["a"] = "2"  # type: ignore[index]


# -- formatting (RFC 6265 4.1) ----------------------------------------------------------


def test_set_cookie_with_every_attribute() -> None:
    when = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    line = format_set_cookie(
        "sid",
        "abc",
        max_age=datetime.timedelta(hours=1),
        expires=when,
        path="/app",
        domain=".example.com",
        secure=True,
        httponly=True,
        samesite="none",
    )
    assert line == (
        "sid=abc; Max-Age=3600; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Path=/app; Domain=example.com; "
        "Secure; HttpOnly; SameSite=None"
    )
    assert format_set_cookie("a", "b") == "a=b; Path=/; SameSite=Lax"
    assert format_set_cookie("a", "b", path=None, samesite=None) == "a=b"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("bad name", "v"), {}, "expected a token"),
        (("a;b", "v"), {}, "expected a token"),
        (("", "v"), {}, "expected a token"),
        (("n", "a;b"), {}, "cookie-octet"),
        (("n", "a b"), {}, "cookie-octet"),
        (("n", "x\r\nSet-Cookie: evil=1"), {}, "cookie-octet"),
        (("n", "v"), {"samesite": "None"}, "requires secure=True"),
        (("n", "v"), {"samesite": "Sometimes"}, "expected 'Strict'"),
        (("n", "v"), {"max_age": -1}, "non-negative"),
        (("n", "v"), {"path": "/a;b"}, "path"),
        (("n", "v"), {"path": "relative"}, "path"),
        (("n", "v"), {"domain": "exa mple.com"}, "domain"),
        (("n", "v"), {"domain": "a.com; Secure"}, "domain"),
        (("n", "v"), {"expires": datetime.datetime(2030, 1, 1)}, "aware"),
        (("__Host-n", "v"), {"secure": True, "path": "/a"}, "__Host-"),
        (("__Secure-n", "v"), {}, "__Secure-"),
    ],
)
def test_set_cookie_refuses_what_it_cannot_send_safely(args, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        Response.text("x").set_cookie(*args, **kwargs)


def test_delete_cookie_expires_it_on_the_same_path() -> None:
    assert format_delete_cookie("sid", path="/app", domain="example.com") == (
        "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app; Domain=example.com"
    )


def test_several_set_cookie_lines_on_one_response() -> None:
    resp = Response.text("x").set_cookie("a", "1").set_cookie("b", "2").delete_cookie("c")
    lines = [line for line in resp.extra_lines.split(b"\r\n") if line.startswith(b"Set-Cookie:")]
    assert len(lines) == 3


# -- real clients ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("apps.cookies_app:app")


def _set_cookie_values(headers: httpx.Headers) -> list[str]:
    return headers.get_list("set-cookie")


EXPECTED_SET_COOKIE = [
    "sid=abc123; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax",
    "theme=dark; Path=/app; SameSite=Strict",
    "old=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/",
]


def test_httpx_sends_cookies_and_reads_them_back(server) -> None:
    with httpx.Client(base_url=server.url, timeout=20.0) as client:
        got = client.get("/cookies", headers={"Cookie": 'sid=abc; broken; lang="en"; x y=1'})
        assert got.json() == {"sid": "abc", "lang": "en"}
        assert client.get("/cookies").json() == {}


def test_multiple_set_cookie_headers_over_http11(server) -> None:
    with httpx.Client(base_url=server.url, timeout=20.0) as client:
        got = client.get("/set")
        assert got.http_version == "HTTP/1.1"
        assert _set_cookie_values(got.headers) == EXPECTED_SET_COOKIE
        # httpx's cookie jar honours them: sid comes back, theme (Path=/app) does not.
        assert client.get("/cookies").json() == {"sid": "abc123"}


def test_multiple_set_cookie_headers_over_http2(server) -> None:
    with httpx.Client(http1=False, http2=True, base_url=server.url, timeout=20.0) as client:
        got = client.get("/set")
        assert got.http_version == "HTTP/2"
        assert _set_cookie_values(got.headers) == EXPECTED_SET_COOKIE
        # Two cookie fields, as an HTTP/2 client may send them (RFC 9113 8.2.3).
        got = client.get("/cookies", headers=[("cookie", "a=1"), ("cookie", "b=2; a=3")])
        assert got.json() == {"a": "1", "b": "2"}


def test_curl_cookie_jar_round_trip(server, tmp_path) -> None:
    jar = tmp_path / "jar.txt"
    out = subprocess.run(
        ["curl", "-sS", "-c", str(jar), "-b", str(jar), f"{server.url}/set"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert out.stdout == "set"
    out = subprocess.run(
        ["curl", "-sS", "-b", str(jar), f"{server.url}/cookies"], capture_output=True, text=True, timeout=20, check=True
    )
    assert out.stdout == '{"sid":"abc123"}'
