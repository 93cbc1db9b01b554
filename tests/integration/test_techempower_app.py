"""benchmarks/techempower/app.py checked against the TechEmpower plaintext and JSON test rules.

The header checks follow the TFB verifier (``toolset/utils/verifications.py``):
Server, Date, Content-Type and a size header are required; the Date is an
IMF-fixdate that is not cached; the Content-Type matches its regular expression.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import pytest

PLAINTEXT_TYPE = re.compile(r"^text/plain(; ?charset=(UTF|utf)-8)?$")
JSON_TYPE = re.compile(r"^application/json(; ?charset=(UTF|utf)-8)?$")


@pytest.fixture(scope="module")
def base_url(serve_script) -> str:
    return serve_script("benchmarks/techempower/app.py")


@pytest.fixture
def client(base_url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        yield client


def assert_tfb_headers(resp: httpx.Response, content_type: re.Pattern[str]) -> None:
    assert resp.headers.get("server")
    datetime.strptime(resp.headers["date"], "%a, %d %b %Y %H:%M:%S %Z")
    assert content_type.match(resp.headers["content-type"]), resp.headers["content-type"]
    assert resp.headers["content-length"] == str(len(resp.content))
    assert "transfer-encoding" not in resp.headers


def test_plaintext(client):
    resp = client.get("/plaintext")
    assert resp.status_code == 200
    assert resp.content == b"Hello, World!"
    assert_tfb_headers(resp, PLAINTEXT_TYPE)


def test_json(client):
    resp = client.get("/json")
    assert resp.status_code == 200
    assert resp.json() == {"message": "Hello, World!"}
    assert resp.content == b'{"message":"Hello, World!"}'  # no whitespace to spare
    assert_tfb_headers(resp, JSON_TYPE)


def test_date_is_not_cached(client):
    first = client.get("/plaintext").headers["date"]
    time.sleep(1.2)
    assert client.get("/json").headers["date"] != first


def test_keepalive_connection_is_reused(client):
    for _ in range(20):
        assert client.get("/plaintext").status_code == 200
        assert client.get("/json").status_code == 200


def test_plaintext_pipelined_16_deep(base_url):
    # The plaintext test sends 16 pipelined requests per connection.
    url = urlsplit(base_url)
    request = b"GET /plaintext HTTP/1.1\r\nHost: server\r\nAccept: text/plain\r\nConnection: keep-alive\r\n\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=5.0) as sock:
        sock.sendall(request * 16)
        data = b""
        deadline = time.monotonic() + 5.0
        while data.count(b"Hello, World!") < 16:
            assert time.monotonic() < deadline, data
            chunk = sock.recv(65536)
            assert chunk, "server closed the pipelined connection"
            data += chunk
    responses = data.split(b"HTTP/1.1 ")[1:]
    assert len(responses) == 16
    for response in responses:
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"200 OK\r\n")
        assert b"\r\nContent-Length: 13" in head
        assert body == b"Hello, World!"
