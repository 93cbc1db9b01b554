"""Errors answered inside the middleware chain, app-wide error handlers and JSON error bodies, over real sockets."""

from __future__ import annotations

import httpx
import pytest
from chopin_core import Chopin, Response, Router, TestClient


@pytest.fixture(scope="module")
def errors_url(serve_module) -> str:
    server = serve_module("apps.errors_app:app")
    return server.url


@pytest.fixture(scope="module")
def bare_server(serve_module):
    return serve_module("apps.errors_app:bare_app")


def test_handler_exception_answered_inside_middleware(errors_url: str) -> None:
    resp = httpx.get(errors_url + "/boom", timeout=10)
    assert resp.status_code == 500
    assert resp.text == "Internal Server Error"
    assert resp.headers["x-layer"] == "seen"


def test_extraction_error_answered_inside_middleware(errors_url: str) -> None:
    resp = httpx.post(errors_url + "/items", content=b"{nope", timeout=10)
    assert resp.status_code == 400
    assert resp.headers["x-layer"] == "seen"
    assert resp.headers["content-type"].startswith("text/plain")


def test_json_error_body_carries_kowito_json_paths(errors_url: str) -> None:
    resp = httpx.post(
        errors_url + "/items",
        content=b'{"name": 3, "price": 1.5}',
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["x-layer"] == "seen"
    doc = resp.json()
    assert "$.name" in doc["error"]
    assert [d["path"] for d in doc["detail"]] == ["$.name"]
    assert doc["detail"][0]["message"]


def test_error_handler_by_exception_type(errors_url: str) -> None:
    resp = httpx.get(errors_url + "/teapot", timeout=10)
    assert resp.status_code == 418
    assert resp.text == "teapot: short and stout"
    assert resp.headers["x-layer"] == "seen"


def test_error_handler_by_status_replaces_router_404(errors_url: str) -> None:
    resp = httpx.get(errors_url + "/no/such/page", timeout=10)
    assert resp.status_code == 404
    assert resp.text == "nothing at /no/such/page"
    assert resp.headers["x-layer"] == "seen"


def test_handler_500_inside_middleware_is_logged_with_traceback(serve) -> None:
    server = serve("apps.errors_app:app")
    assert httpx.get(server.url + "/boom", timeout=10).status_code == 500
    text = server.wait_for_stderr("ValueError: boom")
    assert "handler for GET /boom failed" in text
    assert "Traceback" in text


def test_bare_route_gives_the_same_json_error_body(bare_server) -> None:
    resp = httpx.post(
        bare_server.url + "/items", content=b'{"name": "x"}', headers={"Accept": "application/json"}, timeout=10
    )
    assert resp.status_code == 422
    doc = resp.json()
    assert [d["path"] for d in doc["detail"]] == ["$.price"]
    failed = httpx.get(bare_server.url + "/boom", headers={"Accept": "application/json"}, timeout=10)
    assert failed.status_code == 500
    assert failed.json() == {"error": "Internal Server Error"}


def test_route_without_middleware_or_handlers_is_served_bare() -> None:
    router = Router()

    def hello(ctx: object) -> Response:
        return Response.text("hi")

    router.get("/", hello)
    handler, _ = router.compile().lookup("GET", "/")
    assert handler is hello  # the plain path pays nothing for error handling


def test_error_handler_refuses_a_non_error_status() -> None:
    with pytest.raises(ValueError, match="400-599"):
        Chopin().error_handler(200)


def test_error_handler_in_process_most_specific_class_wins() -> None:
    app = Chopin()

    @app.router.get("/")
    def fail(ctx: object) -> Response:
        raise KeyError("k")

    app.error_handler(LookupError, lambda ctx, exc: Response.text("lookup", 409))
    app.error_handler(KeyError, lambda ctx, exc: Response.text("key", 410))
    resp = TestClient(app).get("/")
    assert (resp.status, resp.text) == (410, "key")


def test_router_404_and_405_answer_json_to_a_json_client(bare_server) -> None:
    accept = {"Accept": "application/json"}
    missing = httpx.get(bare_server.url + "/no/such", headers=accept, timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    wrong = httpx.delete(bare_server.url + "/boom", headers=accept, timeout=10)
    assert (wrong.status_code, wrong.json()) == (405, {"error": "Method Not Allowed"})
    assert wrong.headers["allow"] == "GET, HEAD"
    plain = httpx.get(bare_server.url + "/no/such", timeout=10)
    assert (plain.status_code, plain.text) == (404, "Not Found")
