"""examples/demo.py served as ``./dev demo`` serves it, and every route called with httpx (and curl)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture(scope="module")
def client(serve_script) -> Iterator[httpx.Client]:
    base_url = serve_script("examples/demo.py")
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        yield client


def test_index(client):
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.text == "Hello from Chopin!\n"
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.headers["server"] == "chopin"
    assert "date" in resp.headers


def test_json(client):
    resp = client.get("/json")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"message": "Hello, World!"}


@pytest.mark.parametrize(("path", "expected"), [("/user/42", "42"), ("/user/a%20b", "a b")])
def test_user_path_parameter(client, path, expected):
    resp = client.get(path)
    assert resp.status_code == 200
    assert resp.json() == {"id": expected}


def test_search_typed_query(client):
    assert client.get("/search?q=x&page=2").json() == {"q": "x", "page": 2}
    assert client.get("/search", params={"q": "chopin"}).json() == {"q": "chopin", "page": 1}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "query parameter 'q': required field missing"),
        ("?q=x&page=two", "query parameter 'page': expected integer, got string"),
    ],
)
def test_search_rejects_bad_query(client, query, message):
    resp = client.get("/search" + query)
    assert resp.status_code == 422
    assert resp.text == message


@pytest.mark.parametrize(
    ("body", "answer"),
    [({"name": "Ada", "excited": True}, "Hello, Ada!\n"), ({"name": "Ada"}, "Hello, Ada.\n")],
)
def test_greet(client, body, answer):
    resp = client.post("/greet", json=body)
    assert resp.status_code == 200
    assert resp.text == answer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": 5}, "$.name: expected string, got number"),
        ({}, "$.name: required field missing"),
        ({"name": "Ada", "excited": "yes"}, "$.excited: expected boolean, got string"),
        ([], "$: expected object, got array"),
    ],
)
def test_greet_validation_is_422_naming_the_field(client, body, message):
    resp = client.post("/greet", json=body)
    assert resp.status_code == 422
    assert resp.text == message


def test_greet_with_invalid_json_is_400(client):
    resp = client.post("/greet", content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.text.startswith("request body is not valid JSON")


def test_unknown_path_and_wrong_method(client):
    assert client.get("/nope").status_code == 404
    resp = client.get("/greet")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"


def test_stream_with_curl(client):
    done = subprocess.run(
        ["/usr/bin/curl", "--silent", "--show-error", "--max-time", "5", str(client.base_url.join("/stream"))],
        capture_output=True,
        timeout=10,
        check=True,
    )
    assert done.stdout == b"".join(b"line %d\n" % i for i in range(5))


def test_stream_with_httpx(client):
    resp = client.get("/stream")
    assert resp.status_code == 200
    assert resp.headers["transfer-encoding"] == "chunked"
    assert resp.text == "".join(f"line {i}\n" for i in range(5))
