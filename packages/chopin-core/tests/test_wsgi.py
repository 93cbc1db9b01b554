"""WSGI apps on the engine: PEP 3333 checked by wsgiref.validate, and a real Flask app."""

from __future__ import annotations

import json

import httpx
import pytest
from chopin_core import TestClient


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("apps.wsgi_apps:app")


def test_streamed_result_is_sent_and_closed(server):
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        response = client.get("/plain/stream")
        assert response.status_code == 200
        assert response.text == "chunk one, chunk two"
        assert response.headers["content-type"] == "text/plain"
        assert response.headers["transfer-encoding"] == "chunked"
        assert "/stream" in client.get("/plain/closed").json()


def test_body_headers_and_status(server):
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        echoed = client.post("/plain/echo", content=b"x" * 100_000)
        assert echoed.status_code == 201
        assert echoed.headers["x-len"] == "100000"
        assert echoed.content == b"x" * 100_000
        chunked = client.post("/plain/echo", content=iter([b"a" * 10, b"b" * 5]))  # chunked upload
        assert chunked.content == b"a" * 10 + b"b" * 5


def test_environ(server):
    response = httpx.get(f"{server.url}/plain/environ?a=1&b=%20", headers={"X-Token": "t"}, timeout=5.0)
    assert response.json() == {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/plain",
        "PATH_INFO": "/environ",
        "QUERY_STRING": "a=1&b=%20",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_X_TOKEN": "t",
    }


def test_write_callable_and_exc_info(server):
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        assert client.get("/plain/write").text == "written then returned"
        error = client.get("/plain/error")
        assert error.status_code == 500
        assert error.text == "app error page"


def test_head_has_no_body(server, connect):
    conn = connect(server)
    conn.send(conn.build("HEAD", "/plain/stream") + conn.build("GET", "/"))
    head = conn.read_response(head=True)
    assert head.status == 200
    assert conn.read_response().body == b"hello from flask"


def test_flask_app(server):
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        assert client.get("/").text == "hello from flask"
        posted = client.post("/json?x=1", json={"n": [1, 2]})
        assert posted.json() == {"got": {"n": [1, 2]}, "args": {"x": "1"}}
        assert client.get("/missing").status_code == 404  # Flask's own 404


def test_in_process_with_the_test_client():
    from apps.wsgi_apps import app

    client = TestClient(app)
    response = client.get("/plain/environ", headers={"X-Token": "z"})
    assert json.loads(response.body)["HTTP_X_TOKEN"] == "z"
