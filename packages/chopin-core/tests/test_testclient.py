"""TestClient: the real parser, router and serialiser end to end, no socket; decorators and discovery."""

from __future__ import annotations

import dataclasses
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from chopin_core import Chopin, Context, Json, Query, Response, Router, Settings, TestClient
from chopin_core import decorators as decorators_module
from chopin_core.decorators import registered_routes


@dataclasses.dataclass
class NewUser:
    name: str
    age: int


@dataclasses.dataclass
class Search:
    q: str
    tags: list[str] = dataclasses.field(default_factory=list)


def make_router() -> Router:
    router = Router()

    @router.get("/")
    def index(ctx: Context) -> Response:
        return Response.text("Hello, World!")

    @router.get("/users/:id")
    def user(ctx: Context) -> Response:
        return ctx.json({"id": ctx.param("id"), "q": ctx.req.query})

    @router.post("/users")
    def create(ctx: Context) -> Response:
        body = ctx.extract(Json[NewUser])
        return ctx.json({"name": body.name, "age": body.age}, status=201)

    @router.get("/search")
    def search(ctx: Context) -> Response:
        s = ctx.extract(Query[Search])
        return ctx.json({"q": s.q, "tags": s.tags})

    @router.post("/echo")
    def echo(ctx: Context) -> Response:
        return Response.raw(ctx.req.body, content_type=ctx.header("content-type") or "application/octet-stream")

    @router.get("/boom")
    def boom(ctx: Context) -> Response:
        raise RuntimeError("secret traceback detail")

    @router.get("/not-a-response")
    def not_a_response(ctx: Context) -> Response:
        return "oops"  # type: ignore[return-value]

    @router.get("/stream")
    def stream(ctx: Context) -> Response:
        return Response.stream(iter([b"ab", "cd\u00e9", b"", b"f"]), "text/plain")

    @router.get("/empty")
    def empty(ctx: Context) -> Response:
        return Response.new(204).with_header("X-Kept", "yes")

    @router.get("/not-modified")
    def not_modified(ctx: Context) -> Response:
        return Response.text("ignored", 304)

    @router.get("/bye")
    def bye(ctx: Context) -> Response:
        return Response.text("bye").with_header("Connection", "close")

    return router


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_router())


def header_names(headers: list[tuple[str, str]]) -> list[str]:
    return [k.lower() for k, _ in headers]


# -- requests and responses --------------------------------------------------------------------


def test_get_text(client: TestClient) -> None:
    resp = client.get("/")
    assert resp.status == 200
    assert resp.text == "Hello, World!"
    assert resp.header("content-type") == "text/plain; charset=utf-8"
    assert resp.header("Content-Length") == "13"
    assert resp.header("server") == "chopin"
    assert (resp.header("date") or "").endswith(" GMT")
    assert resp.header("connection") is None  # HTTP/1.1 keep-alive is implicit


def test_get_with_params_and_query(client: TestClient) -> None:
    resp = client.get("/users/caf%C3%A9", query={"x": "1 2"})
    assert resp.json() == {"id": "caf\u00e9", "q": "x=1+2"}


def test_query_extractor_through_the_client(client: TestClient) -> None:
    resp = client.get("/search", query={"q": "red shoes", "tags": ["a", "b"]})
    assert resp.json() == {"q": "red shoes", "tags": ["a", "b"]}
    missing = client.get("/search")
    assert missing.status == 422
    assert missing.text == "query parameter 'q': required field missing"


def test_post_json(client: TestClient) -> None:
    resp = client.post("/users", json={"name": "Ada", "age": 36})
    assert resp.status == 201
    assert resp.json() == {"name": "Ada", "age": 36}
    assert resp.header("content-type") == "application/json"


def test_post_json_with_wrong_types_is_422(client: TestClient) -> None:
    resp = client.post("/users", json={"name": "Ada", "age": "old"})
    assert resp.status == 422
    assert resp.text == "$.age: expected integer, got string"


def test_post_invalid_json_is_400(client: TestClient) -> None:
    resp = client.post("/users", body="{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert resp.text.startswith("request body is not valid JSON")


def test_post_body_round_trip(client: TestClient) -> None:
    resp = client.post("/echo", body=b"\x00\x01binary", headers={"Content-Type": "application/x-test"})
    assert resp.body == b"\x00\x01binary"
    assert resp.header("content-type") == "application/x-test"


def test_head_has_no_body_and_the_same_content_length(client: TestClient) -> None:
    get = client.get("/")
    head = client.head("/")
    assert head.status == 200
    assert head.body == b""
    assert head.header("content-length") == get.header("content-length") == "13"
    assert head.raw.endswith(b"\r\n\r\n")
    assert b"Hello" not in head.raw


def test_404_and_405(client: TestClient) -> None:
    assert client.get("/nowhere").status == 404
    resp = client.delete("/users/1")
    assert resp.status == 405
    assert resp.header("allow") == "GET, HEAD"


def test_204_has_no_content_length_and_no_body(client: TestClient) -> None:
    resp = client.get("/empty")
    assert resp.status == 204
    assert "content-length" not in header_names(resp.headers)
    assert "content-type" not in header_names(resp.headers)
    assert resp.header("x-kept") == "yes"
    assert resp.raw.endswith(b"\r\n\r\n")


def test_304_has_no_body(client: TestClient) -> None:
    resp = client.get("/not-modified")
    assert resp.status == 304
    assert resp.raw.endswith(b"\r\n\r\n")
    assert b"ignored" not in resp.raw


def test_connection_close_from_the_handler(client: TestClient) -> None:
    resp = client.get("/bye")
    assert resp.header("connection") == "close"


def test_connection_close_from_the_client(client: TestClient) -> None:
    resp = client.get("/", headers={"Connection": "close"})
    assert resp.header("connection") == "close"


# -- handler failures --------------------------------------------------------------------------


def test_handler_exception_is_a_bare_500_and_is_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="chopin_core.worker"):
        resp = client.get("/boom")
    assert resp.status == 500
    assert resp.body == b"Internal Server Error"
    assert b"secret" not in resp.raw
    assert b"Traceback" not in resp.raw
    (record,) = [r for r in caplog.records if r.name == "chopin_core.worker"]
    assert record.levelno == logging.ERROR
    assert "GET /boom" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_handler_returning_a_non_response_is_500(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="chopin_core.worker"):
        resp = client.get("/not-a-response")
    assert resp.status == 500
    assert resp.body == b"Internal Server Error"
    assert any(isinstance(r.exc_info[1], TypeError) for r in caplog.records if r.exc_info)


def test_pipelined_requests_carry_on_after_a_handler_exception(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    data = b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"
    with caplog.at_level(logging.ERROR, logger="chopin_core.worker"):
        responses = client.raw(data)
    assert [r.status for r in responses] == [500, 200]
    assert responses[1].text == "Hello, World!"


# -- raw bytes: pipelining and malformed input -----------------------------------------------------


def test_raw_pipelined_answers_in_order(client: TestClient) -> None:
    data = (
        b"GET /users/1 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
        b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    responses = client.raw(data)
    assert [r.status for r in responses] == [200, 200, 200, 200, 200]
    assert responses[0].json() == {"id": "1", "q": None}
    assert responses[1].body == b"abc"
    assert responses[2].body == b""
    assert responses[3].body == b"xy"
    assert responses[4].text == "Hello, World!"


def test_raw_stops_answering_after_connection_close(client: TestClient) -> None:
    data = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /users/2 HTTP/1.1\r\nHost: t\r\n\r\n"
    responses = client.raw(data)
    assert len(responses) == 1
    assert responses[0].header("connection") == "close"


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX : y\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
    ids=["garbage", "no-host", "space-before-colon", "cl-and-te"],
)
def test_raw_malformed_is_400_with_connection_close(client: TestClient, data: bytes) -> None:
    (resp,) = client.raw(data)
    assert resp.status == 400
    assert resp.header("connection") == "close"
    assert resp.header("content-type") == "text/plain; charset=utf-8"
    assert resp.body  # says what was wrong
    assert int(resp.header("content-length") or -1) == len(resp.body)


def test_raw_error_after_good_requests(client: TestClient) -> None:
    responses = client.raw(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/2.0\r\nHost: t\r\n\r\n")
    assert [r.status for r in responses] == [200, 505]
    assert responses[1].header("connection") == "close"


def test_limits_come_from_settings() -> None:
    small = TestClient(make_router(), Settings(max_body_size=4, max_uri_length=16))
    assert small.post("/echo", body=b"12345").status == 413
    assert small.post("/echo", body=b"1234").status == 200
    assert small.get("/users/" + "x" * 20).status == 414


def test_http10_gets_close_unless_keep_alive(client: TestClient) -> None:
    (plain,) = client.raw(b"GET / HTTP/1.0\r\n\r\n")
    assert plain.raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert plain.header("connection") == "close"
    (kept,) = client.raw(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert kept.header("connection") == "keep-alive"


def test_expect_continue_with_the_body_present_is_answered_once(client: TestClient) -> None:
    data = b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"
    (resp,) = client.raw(data)
    assert resp.status == 200
    assert resp.body == b"ok"
    assert b"100 Continue" not in resp.raw


# -- streaming ---------------------------------------------------------------------------------------


def test_stream_gets_chunked_framing_and_the_right_body(client: TestClient) -> None:
    resp = client.get("/stream")
    assert resp.status == 200
    assert resp.body == "abcd\u00e9f".encode()
    assert resp.header("transfer-encoding") == "chunked"
    assert "content-length" not in header_names(resp.headers)
    body = resp.raw[resp.raw.index(b"\r\n\r\n") + 4 :]
    # The empty chunk is skipped: a zero-size chunk would end the body early.
    assert body == b"2\r\nab\r\n4\r\ncd\xc3\xa9\r\n1\r\nf\r\n0\r\n\r\n"


def test_stream_sends_transfer_encoding_once(client: TestClient) -> None:
    resp = client.get("/stream")
    assert header_names(resp.headers).count("transfer-encoding") == 1


def test_stream_to_http10_is_unframed_and_closes(client: TestClient) -> None:
    (resp,) = client.raw(b"GET /stream HTTP/1.0\r\n\r\n")
    assert "transfer-encoding" not in header_names(resp.headers)
    assert resp.header("connection") == "close"
    assert resp.body == "abcd\u00e9f".encode()


def test_stream_followed_by_a_pipelined_request(client: TestClient) -> None:
    responses = client.raw(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert [r.body for r in responses] == ["abcd\u00e9f".encode(), b"Hello, World!"]


def test_head_of_a_stream_sends_no_chunks_and_closes_the_iterator() -> None:
    class Chunks:
        def __init__(self) -> None:
            self.pulled = 0
            self.closed = False

        def __iter__(self) -> Chunks:
            return self

        def __next__(self) -> bytes:
            self.pulled += 1
            return b"never sent"

        def close(self) -> None:
            self.closed = True

    chunks = Chunks()
    router = Router()
    router.get("/s", lambda ctx: Response.stream(chunks))
    (resp,) = TestClient(router).raw(b"HEAD /s HTTP/1.1\r\nHost: t\r\n\r\n", head_request=True)
    assert resp.status == 200
    assert resp.raw.endswith(b"\r\n\r\n")
    assert b"never sent" not in resp.raw
    assert chunks.pulled == 0
    assert chunks.closed


# -- decorators and package discovery ----------------------------------------------------------------


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """An empty decorator registry for this test (the real one is module-level state)."""
    fresh: list[object] = []
    monkeypatch.setattr(decorators_module, "_REGISTRY", fresh)
    return fresh


@pytest.fixture
def app_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: list[object]) -> Iterator[str]:
    """A throw-away package on sys.path with decorated handlers in a module and a sub-package."""
    name = "chopin_discovery_app"
    root = tmp_path / name
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "views.py").write_text(
        textwrap.dedent(
            """
            from chopin_core import Response, get, post

            @get("/hello")
            def hello(ctx):
                return Response.text("hello from views")

            @post("/items")
            def create(ctx):
                return Response.text("created", 201)
            """
        )
    )
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "deep.py").write_text(
        textwrap.dedent(
            """
            from chopin_core import Response, route

            @route("put", "/deep/:id")
            def deep(ctx):
                return Response.text("deep " + ctx.param("id"))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_decorators_record_method_path_handler_module(registry: list[object]) -> None:
    from chopin_core import delete, get, head, options, patch, post, put, route

    def h(ctx: Context) -> Response:
        return Response.new(200)

    for deco in (get, post, put, patch, delete, head, options):
        assert deco("/x")(h) is h
    route("purge", "/y")(h)
    found = registered_routes()
    assert [(r.method, r.path) for r in found] == [
        ("GET", "/x"),
        ("POST", "/x"),
        ("PUT", "/x"),
        ("PATCH", "/x"),
        ("DELETE", "/x"),
        ("HEAD", "/x"),
        ("OPTIONS", "/x"),
        ("PURGE", "/y"),
    ]
    assert all(r.handler is h and r.module == __name__ for r in found)


def test_registered_routes_filters_by_package_boundary(registry: list[object]) -> None:
    from chopin_core.decorators import RegisteredRoute

    def h(ctx: Context) -> Response:
        return Response.new(200)

    registry.extend(
        [
            RegisteredRoute("GET", "/a", h, "shop"),
            RegisteredRoute("GET", "/b", h, "shop.views"),
            RegisteredRoute("GET", "/c", h, "shopping.views"),
        ]
    )
    assert [r.path for r in registered_routes("shop")] == ["/a", "/b"]


def test_mount_all_routes_discovers_a_package(app_package: str) -> None:
    from chopin_core import get

    @get("/outside")
    def outside(ctx: Context) -> Response:
        return Response.text("not in the package")

    app = Chopin().mount_all_routes(package=app_package)
    client = TestClient(app)
    assert client.get("/hello").text == "hello from views"
    assert client.post("/items").status == 201
    assert client.put("/deep/7").text == "deep 7"
    assert client.get("/outside").status == 404
    assert sorted((r.method, r.path) for r in app.router.routes) == [
        ("GET", "/hello"),
        ("POST", "/items"),
        ("PUT", "/deep/:id"),
    ]


def test_mount_all_routes_without_package_mounts_everything_imported(registry: list[object]) -> None:
    from chopin_core import get

    @get("/imported")
    def imported(ctx: Context) -> Response:
        return Response.text("imported")

    client = TestClient(Chopin().mount_all_routes())
    assert client.get("/imported").text == "imported"


def test_two_apps_mount_independently(app_package: str) -> None:
    first = Chopin().mount_all_routes(package=app_package)
    second = Chopin().mount_all_routes(package=app_package)
    assert first.router is not second.router
    assert TestClient(first).get("/hello").status == 200
    assert TestClient(second).get("/hello").status == 200


def test_test_response_repr_and_helpers(client: TestClient) -> None:
    resp = client.get("/")
    assert repr(resp) == "<TestResponse 200 13 bytes>"
    assert resp.header("X-Missing") is None
