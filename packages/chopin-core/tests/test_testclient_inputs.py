"""TestClient's files=, data=, json=, cookies= and headers=, checked against real clients on a real server."""

from __future__ import annotations

import time

import httpx
import pytest
from apps import cookies_app, forms_app
from chopin_core import Context, Response, Router, TestClient
from chopin_core.testclient import CookieJar


@pytest.fixture(scope="module")
def forms_server(serve_module):
    return serve_module("apps.forms_app:app")


@pytest.fixture(scope="module")
def cookies_server(serve_module):
    return serve_module("apps.cookies_app:app")


def test_files_and_data_match_httpx_over_a_socket(forms_server) -> None:
    data = {"title": "Nocturnes", "tag": ["op. 9", "op. 27"]}
    files = {"score": ("score.pdf", b"%PDF\x00\xff" * 100, "application/pdf"), "note": ('a"b.txt', "é")}
    mine = TestClient(forms_app.app).post("/upload", data=data, files=files)
    with httpx.Client(base_url=forms_server.url, timeout=20.0) as client:
        theirs = client.post("/upload", data=data, files=files)
    assert mine.status == theirs.status_code == 200
    assert mine.json() == theirs.json()
    assert [part["name"] for part in mine.json()] == ["title", "tag", "tag", "score", "note"]


def test_data_alone_is_urlencoded_like_httpx(cookies_server) -> None:
    data = {"name": "Jörg & co", "tag": ["a", "b"]}
    mine = TestClient(cookies_app.app).post("/form", data=data)
    with httpx.Client(base_url=cookies_server.url, timeout=20.0) as client:
        theirs = client.post("/form", data=data)
    assert mine.json() == theirs.json() == {"name": ["Jörg & co"], "tag": ["a", "b"]}
    pairs = TestClient(cookies_app.app).post("/form", data=[("a", "1"), ("a", "2")])
    assert pairs.json() == {"a": ["1", "2"]}


def test_the_cookie_jar_honours_set_cookie_like_httpx(cookies_server) -> None:
    mine = TestClient(cookies_app.app)
    with httpx.Client(base_url=cookies_server.url, timeout=20.0) as client:
        client.cookies.set("old", "x", domain="127.0.0.1")
        mine.cookies.set("old", "x")
        assert mine.get("/cookies").json() == client.get("/cookies").json() == {"old": "x"}
        answered = mine.get("/set")
        client.get("/set")
        assert answered.header_all("set-cookie") == cookies_app_set_cookie_lines()
        # sid is kept, theme is for /app only, old was deleted: the same as httpx's jar.
        assert mine.get("/cookies").json() == client.get("/cookies").json() == {"sid": "abc123"}
    assert mine.cookies.as_dict() == {"sid": "abc123", "theme": "dark"}
    # Per-request cookies go over the jar's, for that request only.
    assert mine.get("/cookies", cookies={"sid": "other", "x": "1"}).json() == {"sid": "other", "x": "1"}
    assert mine.get("/cookies").json() == {"sid": "abc123"}
    mine.cookies.clear()
    assert mine.get("/cookies").json() == {}


def cookies_app_set_cookie_lines() -> list[str]:
    return [
        "sid=abc123; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax",
        "theme=dark; Path=/app; SameSite=Strict",
        "old=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/",
    ]


def test_jar_paths_and_expiry() -> None:
    jar = CookieJar()
    jar.store("a=1; Path=/app", "/")
    jar.store("b=2", "/docs/page")  # default path: /docs
    jar.store("c=3; Max-Age=1000", "/")
    jar.store("d=4; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/")
    jar.store("novalue", "/")
    assert jar.for_path("/") == {"c": "3"}
    assert jar.for_path("/app/x") == {"a": "1", "c": "3"}
    assert jar.for_path("/apple") == {"c": "3"}
    assert jar.for_path("/docs") == {"b": "2", "c": "3"}
    jar.store(f"e=5; Expires={time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(time.time() + 3600))}", "/")
    assert "e" in jar and jar.get("e") == "5"
    jar.store("c=; Max-Age=0", "/")
    assert "c" not in jar


def test_headers_and_json() -> None:
    router = Router()

    @router.post("/echo")
    def echo(ctx: Context) -> Response:
        return ctx.json(
            {
                "ctype": ctx.header("content-type"),
                "host": ctx.header("host"),
                "x": ctx.req.headers.get_all("x-many"),
                "body": ctx.req.body.decode(),
            }
        )

    client = TestClient(router)
    got = client.post("/echo", json={"a": 1}, headers=[("X-Many", "1"), ("X-Many", "2"), ("Host", "example.org")])
    assert got.json() == {"ctype": "application/json", "host": "example.org", "x": ["1", "2"], "body": '{"a":1}'}
    got = client.post("/echo", data={"a": "1"}, headers={"Content-Type": "text/plain"})
    assert got.json()["ctype"] == "text/plain"
    with pytest.raises(ValueError, match="one of body=, json= and data="):
        client.post("/echo", json={}, data={"a": "1"})
