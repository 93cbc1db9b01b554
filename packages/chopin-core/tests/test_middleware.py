"""The ready-made middleware (chopin_core.middleware) over real sockets: CORS."""

from __future__ import annotations

import json

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


@pytest.fixture(scope="module")
def rid_server(serve_module):
    return serve_module("apps.cors_app:rid_app")


def test_request_id_incoming_sane_one_is_kept_and_echoed(rid_server) -> None:
    resp = httpx.get(rid_server.url + "/whoami", headers={"X-Request-ID": "abc-123.def:9"}, timeout=10)
    assert resp.status_code == 200
    assert resp.text == "abc-123.def:9"  # on ctx
    assert resp.headers["x-request-id"] == "abc-123.def:9"


@pytest.mark.parametrize("incoming", [None, "a" * 129, "two words", "x<script>", 'a"b', "id\tx"])
def test_request_id_generated_when_missing_or_unsafe(rid_server, incoming: str | None) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    resp = httpx.get(rid_server.url + "/whoami", headers=headers, timeout=10)
    rid = resp.headers["x-request-id"]
    assert rid == resp.text and rid != incoming
    assert len(rid) == 32 and int(rid, 16) >= 0


def test_request_id_on_error_answers_and_in_access_log(rid_server) -> None:
    resp = httpx.get(rid_server.url + "/boom", headers={"X-Request-ID": "err-7"}, timeout=10)
    assert resp.status_code == 500
    assert resp.headers["x-request-id"] == "err-7"
    text = rid_server.wait_for_stderr('"request_id":"err-7"')
    (line,) = [json.loads(x) for x in text.splitlines() if '"request_id":"err-7"' in x]
    assert (line["logger"], line["path"], line["status"]) == ("chopin_core.access", "/boom", 500)


def test_request_id_fresh_per_request_and_untrusted_mode() -> None:
    from chopin_core import Chopin, Response, Router, TestClient, request_id

    router = Router()
    router.get("/", lambda ctx: Response.text(ctx.state["request_id"]))
    router.layer(request_id(trust_incoming=False))
    client = TestClient(Chopin(router))
    first = client.get("/", headers={"X-Request-ID": "mine"})
    second = client.get("/", headers={"X-Request-ID": "mine"})
    assert first.text != "mine" and first.text != second.text
    with pytest.raises(ValueError, match="max_length"):
        request_id(max_length=0)
