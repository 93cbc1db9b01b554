"""The OpenAPI 3.1 document, the reference page, and the bundled Scalar script.

Fast tests build documents from routers in-process; the rest serve apps over a
real socket: the spec is fetched and validated, schemathesis fuzzes the demo
app's operations, and a headless Chromium renders ``/docs``.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import gzip
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from chopin_core import Chopin, Context, Json, Query, Response, Router, TestClient, openapi
from chopin_core.router import _bind
from openapi_spec_validator import validate

SCALAR_DIR = Path(openapi.__file__).with_name("_scalar")


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Shape:
    """A named shape."""

    id: uuid.UUID
    name: str
    colour: Colour
    kind: Literal["circle", "square"]
    centre: Point
    created: datetime.datetime
    corners: list[Point]
    labels: dict[str, int]
    note: str | None = None
    visible: bool = True


@dataclasses.dataclass
class Page:
    q: str
    page: int = 1
    tags: list[str] = dataclasses.field(default_factory=list)


def detected_body(ctx: Context) -> Response:
    """Create a shape.

    The body is read with ``Json[Shape]``.
    """
    shape = ctx.extract(Json[Shape])
    return ctx.json(shape, 201)


def detected_query(ctx: Context) -> Response:
    page = ctx.extract(Query[Page])
    return ctx.json({"q": page.q})


def plain(ctx: Context) -> Response:
    return Response.text("ok")


def annotated(ctx: Context) -> Shape:  # type: ignore[empty-body]
    """Returns a dataclass annotation; the document uses it as the response."""


def op(doc: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    result: dict[str, Any] = doc["paths"][path][method]
    return result


def build(**routes: tuple[str, str, Callable[..., Any]]) -> Router:
    router = Router()
    for method, path, handler in routes.values():
        router.route(method, path, handler)
    return router


# -- document(): paths, parameters, docstrings -------------------------------------------


def test_path_parameters_and_wildcards() -> None:
    router = Router()
    router.get("/users/:id", plain)
    router.get("/users/:id/files/*rest", plain)
    doc = openapi.document(router, title="T", version="9")
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "T", "version": "9"}
    assert list(doc["paths"]) == ["/users/{id}", "/users/{id}/files/{rest}"]
    params = op(doc, "/users/{id}/files/{rest}")["parameters"]
    assert params == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "rest", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    validate(doc)


def test_typed_path_parameters_have_their_schema() -> None:
    router = Router()
    router.get("/orders/:id<int>/lines/:line<uuid>", plain)
    doc = openapi.document(router, title="T", version="1")
    assert list(doc["paths"]) == ["/orders/{id}/lines/{line}"]
    assert op(doc, "/orders/{id}/lines/{line}")["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "line", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
    ]
    validate(doc)


def test_methods_head_implied_by_get_is_not_listed() -> None:
    router = Router()
    router.get("/a", plain)
    router.post("/a", plain)
    router.delete("/a", plain)
    router.head("/b", plain)
    router.route("PROPFIND", "/a", plain)  # not expressible in OpenAPI 3.1
    doc = openapi.document(router)
    assert list(doc["paths"]["/a"]) == ["get", "post", "delete"]
    assert list(doc["paths"]["/b"]) == ["head"]
    validate(doc)


def test_summary_and_description_from_docstring() -> None:
    doc = openapi.document(build(a=("POST", "/shapes", detected_body)))
    operation = op(doc, "/shapes", "post")
    assert operation["summary"] == "Create a shape."
    assert operation["description"] == "The body is read with ``Json[Shape]``."
    assert "summary" not in op(openapi.document(build(a=("GET", "/", plain))), "/")


def test_nested_routers_keep_their_paths() -> None:
    api = Router()
    api.get("/items/:id", plain)
    root = Router().nest("/api/v1", api)
    assert list(openapi.document(root)["paths"]) == ["/api/v1/items/{id}"]


def test_accepts_a_chopin_app() -> None:
    app = Chopin(build(a=("GET", "/x", plain)))
    assert list(openapi.document(app)["paths"]) == ["/x"]


def test_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="expected a Router or a Chopin app"):
        openapi.document(object())


# -- bodies and queries ----------------------------------------------------------------------


def test_json_body_detected_from_source() -> None:
    doc = openapi.document(build(a=("POST", "/shapes", detected_body)))
    operation = op(doc, "/shapes", "post")
    assert operation["requestBody"] == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Shape"}}},
    }
    assert set(operation["responses"]) == {"200", "400", "422", "500"}
    assert "Shape" in doc["components"]["schemas"]
    validate(doc)


def test_query_detected_from_source() -> None:
    doc = openapi.document(build(a=("GET", "/search", detected_query)))
    params = op(doc, "/search")["parameters"]
    assert params == [
        {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "default": 1}},
        {
            "name": "tags",
            "in": "query",
            "required": False,
            "schema": {"type": "array", "items": {"type": "string"}},
        },
    ]
    assert "400" not in op(doc, "/search")["responses"]
    validate(doc)


def test_types_local_to_a_function_are_found_through_the_closure() -> None:
    @dataclasses.dataclass
    class Local:
        n: int

    def handler(ctx: Context) -> Response:
        return ctx.json(ctx.extract(Json[Local]).n)

    doc = openapi.document(build(a=("PUT", "/n", handler)))
    assert op(doc, "/n", "put")["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Local"
    }
    assert doc["components"]["schemas"]["Local"]["properties"] == {"n": {"type": "integer"}}


def test_unresolvable_or_unsourced_handlers_are_skipped() -> None:
    def unknown(ctx: Context) -> Response:
        return ctx.json(ctx.extract(Json[NotDefinedAnywhere]))  # type: ignore[name-defined]  # noqa: F821

    namespace: dict[str, Any] = {"Json": Json, "Shape": Shape}
    exec("def nosource(ctx):\n    return ctx.extract(Json[Shape])\n", namespace)  # no file: getsource fails
    doc = openapi.document(build(a=("POST", "/a", unknown), b=("POST", "/b", namespace["nosource"])))
    assert "requestBody" not in op(doc, "/a", "post")
    assert "requestBody" not in op(doc, "/b", "post")
    validate(doc)


def test_middleware_and_decorator_wrappers_are_unwrapped() -> None:
    def mw(ctx: Context, nxt: Callable[[Context], Response]) -> Response:
        return nxt(ctx)

    def logged(fn: Callable[[Context], Response]) -> Callable[[Context], Response]:
        @functools.wraps(fn)
        def wrapper(ctx: Context) -> Response:
            return fn(ctx)

        return wrapper

    doc = openapi.document(build(a=("POST", "/a", _bind(mw, detected_body)), b=("GET", "/b", logged(detected_query))))
    assert op(doc, "/a", "post")["operationId"] == "detected_body"
    assert op(doc, "/a", "post")["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Shape")
    assert [p["name"] for p in op(doc, "/b")["parameters"]] == ["q", "page", "tags"]


def test_operation_decorator() -> None:
    @openapi.operation(
        body=Point,
        query=Page,
        response=list[Shape],
        status=201,
        tags=["shapes", "geometry"],
        summary="Make shapes",
        description="Longer words.",
        operation_id="makeShapes",
        deprecated=True,
    )
    def make(ctx: Context) -> Response:
        """Ignored docstring."""
        return Response.new(201)

    doc = openapi.document(build(a=("POST", "/shapes/:id", make)))
    operation = op(doc, "/shapes/{id}", "post")
    assert operation["operationId"] == "makeShapes"
    assert operation["summary"] == "Make shapes"
    assert operation["description"] == "Longer words."
    assert operation["tags"] == ["shapes", "geometry"]
    assert operation["deprecated"] is True
    assert [p["name"] for p in operation["parameters"]] == ["id", "q", "page", "tags"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Point"}
    assert operation["responses"]["201"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Shape"},
    }
    assert doc["tags"] == [{"name": "shapes"}, {"name": "geometry"}]
    validate(doc)


def test_decorator_wins_over_the_source() -> None:
    @openapi.operation(body=Point)
    def handler(ctx: Context) -> Response:
        return ctx.json(ctx.extract(Json[Shape]))

    doc = openapi.document(build(a=("POST", "/p", handler)))
    assert op(doc, "/p", "post")["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Point")
    assert "Shape" not in doc["components"]["schemas"]


def test_hidden_operations_are_left_out() -> None:
    router = build(a=("GET", "/secret", openapi.operation(hidden=True)(lambda ctx: Response.new(204))))
    router.get("/open", plain)
    assert list(openapi.document(router)["paths"]) == ["/open"]


def test_return_annotation_describes_the_response() -> None:
    doc = openapi.document(build(a=("GET", "/shape", annotated), b=("GET", "/plain", plain)))
    assert op(doc, "/shape")["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Shape"
    }
    assert op(doc, "/plain")["responses"]["200"] == {"description": "Success"}
    assert set(op(doc, "/plain")["responses"]) == {"200", "500"}  # every operation may fail


def test_operation_ids_are_unique() -> None:
    router = Router()
    router.get("/a", plain)
    router.post("/a", plain)
    router.get("/b", plain)
    ids = [o["operationId"] for item in openapi.document(router)["paths"].values() for o in item.values()]
    assert ids == ["get_plain", "post_plain", "get_plain_2"]


# -- schemas through kowito-json ----------------------------------------------------------------


def test_component_schemas_cover_the_supported_types() -> None:
    doc = openapi.document(build(a=("POST", "/shapes", detected_body)))
    schemas = doc["components"]["schemas"]
    assert set(schemas) == {"Shape", "Point", "ErrorBody"}
    shape = schemas["Shape"]
    assert shape["description"] == "A named shape."
    props = shape["properties"]
    assert props["id"] == {"type": "string", "format": "uuid"}
    assert props["created"] == {"type": "string", "format": "date-time"}
    assert props["colour"] == {"title": "Colour", "enum": ["red", "blue"]}
    assert props["kind"] == {"enum": ["circle", "square"]}
    assert props["centre"] == {"$ref": "#/components/schemas/Point"}
    assert props["corners"] == {"type": "array", "items": {"$ref": "#/components/schemas/Point"}}
    assert props["labels"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert props["visible"] == {"type": "boolean", "default": True}
    assert shape["required"] == ["id", "name", "colour", "kind", "centre", "created", "corners", "labels"]
    assert schemas["Point"]["properties"] == {"x": {"type": "number"}, "y": {"type": "number"}}
    validate(doc)


def test_example_apps_validate() -> None:
    from apps.openapi_app import app
    from apps.openapi_demo import app as demo

    validate(openapi.document(app))
    doc = openapi.document(demo, title="Demo")
    validate(doc)
    assert list(doc["paths"]) == ["/", "/json", "/user/{id}", "/search", "/greet", "/stream"]
    assert op(doc, "/greet", "post")["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Greeting"
    )
    assert [p["name"] for p in op(doc, "/search")["parameters"]] == ["q", "page"]


# -- mount(), in process --------------------------------------------------------------------------


def test_mount_serves_spec_page_and_script_in_process() -> None:
    router = build(a=("GET", "/hello", plain))
    openapi.mount(router, "/spec.json", "/reference/", title="Hello </script>", version="3")
    client = TestClient(router)
    spec = client.get("/spec.json")
    assert spec.status == 200
    assert spec.header("content-type") == "application/json"
    assert list(spec.json()["paths"]) == ["/hello"]  # the docs routes are hidden
    assert spec.json()["info"] == {"title": "Hello </script>", "version": "3"}
    page = client.get("/reference/")
    assert page.status == 200
    assert "<title>Hello &lt;/script&gt;</title>" in page.text
    assert f'src="/reference/scalar.js?v={openapi.SCALAR_VERSION}"' in page.text
    assert '"url":"/spec.json"' in page.text
    script = client.get("/reference/scalar.js", headers={"Accept-Encoding": "gzip"})
    assert script.status == 200
    assert script.header("content-encoding") == "gzip"
    assert script.header("cache-control") == "public, max-age=31536000, immutable"
    assert gzip.decompress(script.body) == (SCALAR_DIR / "standalone.js").read_bytes()


def test_mount_without_docs_page() -> None:
    router = Router()
    openapi.mount(router, docs_path=None)
    assert [r.path for r in router.routes] == ["/openapi.json"]


def test_scalar_bundle_ships_with_its_license() -> None:
    assert (SCALAR_DIR / "standalone.js").stat().st_size > 1_000_000
    assert "MIT License" in (SCALAR_DIR / "LICENSE").read_text()
    assert openapi.SCALAR_VERSION in (SCALAR_DIR / "README.md").read_text()
    assert not list(SCALAR_DIR.glob("*.py"))


# -- over a real socket -------------------------------------------------------------------------------


def test_spec_docs_and_script_over_a_socket(serve: Any) -> None:
    server = serve("apps.openapi_app:app", workers=1)
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        spec = client.get("/openapi.json")
        assert spec.status_code == 200
        doc = spec.json()
        validate(doc)
        assert doc["info"] == {"title": "Users API", "version": "2.0.0"}
        assert list(doc["paths"]) == ["/users", "/users/{id}", "/files/{path}"]
        page = client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "Scalar.createApiReference" in page.text
        script = client.get(f"/docs/scalar.js?v={openapi.SCALAR_VERSION}")  # httpx asks for gzip
        assert script.status_code == 200
        assert script.headers["content-encoding"] == "gzip"
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.content == (SCALAR_DIR / "standalone.js").read_bytes()
        identity = client.get("/docs/scalar.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in identity.headers
        assert identity.content == script.content
        assert identity.headers["cache-control"] == "public, max-age=31536000, immutable"
        created = client.post(
            "/users", json={"name": "Ada", "role": "admin", "address": {"street": "1 Main", "city": "X"}}
        )
        assert created.status_code == 201
        assert created.json()["role"] == "admin"


def test_schemathesis_finds_no_server_errors_in_the_demo(serve: Any) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    server = serve("apps.openapi_demo:app", workers=1)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(o.label for o in operations) == [
        "GET /",
        "GET /json",
        "GET /search",
        "GET /stream",
        "GET /user/{id}",
        "POST /greet",
    ]
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            nonlocal calls
            case.call_and_validate(base_url=server.url, checks=[not_a_server_error], timeout=10)
            calls += 1

        check()
    # /user/{id}, /search and /greet have room for 30 distinct cases each; the others one.
    assert calls >= 60, calls


def test_headless_chromium_renders_the_reference_page(serve: Any, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    server = serve("apps.openapi_app:app", workers=1)
    shot = tmp_path / "docs.png"
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=args, timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))
            page.goto(f"{server.url}/docs", timeout=30_000)
            page.get_by_text("Create a user").first.wait_for(timeout=30_000)
            page.get_by_text("/users/{id}").first.wait_for(timeout=10_000)
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert outside == []  # everything came from our server: the page works offline
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_servers_security_schemes_and_error_bodies() -> None:
    router = Router()
    router.get("/private", plain)
    router.get("/public", openapi.operation(security=[])(lambda ctx: Response.text("")))
    doc = openapi.document(
        router,
        servers=["https://api.example.com"],
        security_schemes={"bearer": openapi.BEARER_JWT},
        security=[{"bearer": []}],
    )
    assert doc["servers"] == [{"url": "https://api.example.com"}]
    assert doc["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    assert "security" not in op(doc, "/private")  # the document's applies
    assert op(doc, "/public")["security"] == []  # public: no requirement
    error = op(doc, "/private")["responses"]["500"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
    assert doc["components"]["schemas"]["ErrorBody"]["required"] == ["error"]
    validate(doc)
