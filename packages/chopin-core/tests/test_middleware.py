"""The ready-made middleware (chopin_core.middleware) over real sockets: CORS."""

from __future__ import annotations

import httpx
import pytest
from chopin_core import cors

ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def cors_url(serve_module) -> str:
    return serve_module("apps.cors_app:app").url


def _preflight(url: str, origin: str, method: str = "POST", headers: str = "content-type") -> httpx.Response:
    return httpx.request(
        "OPTIONS",
        url,
        headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
        timeout=10,
    )


def test_cors_preflight_answered_without_the_handler(cors_url: str) -> None:
    resp = _preflight(cors_url + "/guarded", ORIGIN, headers="Content-Type, X-Token")
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == ORIGIN
    assert resp.headers["access-control-allow-credentials"] == "true"
    assert resp.headers["access-control-allow-methods"] == "GET, POST"
    assert resp.headers["access-control-allow-headers"] == "content-type, x-token"
    assert resp.headers["access-control-max-age"] == "120"
    assert resp.headers["vary"] == "Origin"


def test_cors_preflight_on_a_path_without_options_route(cors_url: str) -> None:
    resp = _preflight(cors_url + "/data", ORIGIN)
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [("https://evil.example", "POST", "content-type"), (ORIGIN, "DELETE", ""), (ORIGIN, "POST", "x-other")],
)
def test_cors_preflight_refused(cors_url: str, origin: str, method: str, headers: str) -> None:
    resp = _preflight(cors_url + "/guarded", origin, method, headers)
    assert resp.status_code == 403
    assert "access-control-allow-origin" not in resp.headers
    assert resp.headers["vary"] == "Origin"


def test_cors_simple_request_from_allowed_origin(cors_url: str) -> None:
    resp = httpx.get(cors_url + "/data", headers={"Origin": ORIGIN}, timeout=10)
    assert resp.status_code == 200 and resp.text == "data"
    assert resp.headers["access-control-allow-origin"] == ORIGIN
    assert resp.headers["access-control-allow-credentials"] == "true"
    assert resp.headers["access-control-expose-headers"] == "X-Total"
    assert resp.headers["vary"] == "Origin"


def test_cors_other_origin_gets_no_grant(cors_url: str) -> None:
    resp = httpx.get(cors_url + "/data", headers={"Origin": "https://evil.example"}, timeout=10)
    assert resp.status_code == 200
    assert "access-control-allow-origin" not in resp.headers
    assert resp.headers["vary"] == "Origin"


@pytest.mark.parametrize(("path", "status"), [("/boom", 500), ("/missing", 404)])
def test_cors_decorates_error_answers(cors_url: str, path: str, status: int) -> None:
    resp = httpx.get(cors_url + path, headers={"Origin": ORIGIN}, timeout=10)
    assert resp.status_code == status
    assert resp.headers["access-control-allow-origin"] == ORIGIN
    assert resp.headers["vary"] == "Origin"


def test_cors_any_origin_without_credentials_sends_star() -> None:
    from chopin_core import Chopin, Response, Router, TestClient

    router = Router()
    router.get("/", lambda ctx: Response.text("hi"))
    router.layer(cors(allow_origins=["*"]))
    resp = TestClient(Chopin(router)).get("/", headers={"Origin": "https://x.example"})
    assert resp.header("access-control-allow-origin") == "*"
    assert resp.header("vary") is None


@pytest.mark.parametrize(
    "kwargs",
    [{"allow_origins": []}, {"allow_origins": ["https://a\r\nX: y"]}, {"allow_origins": ["*"], "max_age": -1}],
)
def test_cors_refuses_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="cors"):
        cors(**kwargs)  # type: ignore[arg-type]
