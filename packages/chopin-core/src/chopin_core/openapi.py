"""OpenAPI 3.1 documents built from a router, and an offline API reference page.

:func:`document` walks a :class:`~chopin_core.router.Router` (or a
:class:`~chopin_core.server.Chopin` app) and describes every route:

- the path, with ``:param`` and ``*wildcard`` written as ``{param}`` path parameters;
- a summary and description from the handler's docstring (first line, then the rest);
- the request body and query parameters from ``ctx.extract(Json[T])`` and
  ``ctx.extract(Query[T])`` calls found in the handler's source, or from
  :func:`operation` metadata, which wins;
- the response from ``operation(response=T)`` or a return annotation other than
  :class:`~chopin_core.response.Response`.

Schemas come from kowito-json (JSON Schema 2020-12, which OpenAPI 3.1 uses as is);
dataclasses are described once under ``components/schemas``.

:func:`mount` serves the document and a `Scalar <https://github.com/scalar/scalar>`_
API reference page whose JavaScript ships inside this package, so the page works
with no network access.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import gzip
import html
import inspect
import textwrap
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from kowito_json import schema_components

from .context import Json, Query
from .response import Response

if TYPE_CHECKING:
    from .context import Context
    from .router import Router
    from .types import Handler

__all__ = ["BEARER_JWT", "Operation", "document", "mount", "operation"]

OPENAPI_VERSION = "3.1.0"
SCALAR_VERSION = "1.72.1"
"""The version of ``@scalar/api-reference`` bundled in ``_scalar/``."""

BEARER_JWT: Mapping[str, str] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
"""The security scheme of chopin-auth's bearer tokens: ``document(security_schemes={"bearer": BEARER_JWT})``."""

# The JSON error body every error answer has when the client accepts JSON (error_handlers.error_body).
_ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_ERROR_CONTENT: dict[str, Any] = {
    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}},
    "text/plain": {"schema": {"type": "string"}},
}

_SCALAR_JS = Path(__file__).with_name("_scalar") / "standalone.js"
_REF_TEMPLATE = "#/components/schemas/{name}"
# The methods an OpenAPI 3.1 path item can hold; routes with other methods are left out.
_OPENAPI_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
_ATTRIBUTE = "__chopin_openapi__"

H = TypeVar("H", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Operation:
    """What :func:`operation` attaches to a handler; ``None`` fields are inferred.

    Attributes:
        body: the JSON request body type (``Json[T]``'s ``T``).
        query: the dataclass whose fields are the query parameters (``Query[T]``'s ``T``).
        response: the JSON response body type.
        status: the status of a successful answer (200 unless told).
        tags: tags grouping the operation in the reference page.
        summary: one line; the docstring's first line by default.
        description: longer text; the rest of the docstring by default.
        operation_id: a unique id; the handler's name by default.
        deprecated: marks the operation as deprecated.
        hidden: leaves the route out of the document.
        security: the security requirements of this operation (``[{"bearer": []}]``), overriding
            the document's; ``[]`` for none (a public route); None: the document's.
    """

    body: Any = None
    query: Any = None
    response: Any = None
    status: int | None = None
    tags: tuple[str, ...] = ()
    summary: str | None = None
    description: str | None = None
    operation_id: str | None = None
    deprecated: bool = False
    hidden: bool = False
    security: tuple[Mapping[str, Sequence[str]], ...] | None = None


def operation(
    *,
    body: Any = None,
    query: Any = None,
    response: Any = None,
    status: int | None = None,
    tags: Sequence[str] = (),
    summary: str | None = None,
    description: str | None = None,
    operation_id: str | None = None,
    deprecated: bool = False,
    hidden: bool = False,
    security: Sequence[Mapping[str, Sequence[str]]] | None = None,
) -> Callable[[H], H]:
    """Describe a handler for :func:`document`; the handler itself is returned unchanged.

    Use it above or below the route decorator::

        @post("/users")
        @openapi.operation(body=NewUser, response=User, status=201, tags=["users"])
        def create(ctx: Context) -> Response: ...

    Args:
        body: the JSON request body type; found from ``ctx.extract(Json[T])`` when omitted.
        query: the query-parameter dataclass; found from ``ctx.extract(Query[T])`` when omitted.
        response: the JSON response body type (any type kowito-json describes).
        status: the success status (200 unless told).
        tags: tags for the operation.
        summary: overrides the docstring's first line.
        description: overrides the rest of the docstring.
        operation_id: overrides the handler's name.
        deprecated: marks the operation deprecated.
        hidden: leaves the route out of the document.
        security: this operation's security requirements (``[{"bearer": []}]``; ``[]``: public).

    Returns:
        A decorator that records an :class:`Operation` on the handler.
    """
    meta = Operation(
        body,
        query,
        response,
        status,
        tuple(tags),
        summary,
        description,
        operation_id,
        deprecated,
        hidden,
        None if security is None else tuple(security),
    )

    def attach(handler: H) -> H:
        setattr(handler, _ATTRIBUTE, meta)
        return handler

    return attach


# -- reading handlers ------------------------------------------------------------------


def _metadata(handler: Handler) -> Operation:
    """The :class:`Operation` recorded on ``handler`` or anything it wraps."""
    fn: Any = handler
    while fn is not None:
        meta = getattr(fn, _ATTRIBUTE, None)
        if isinstance(meta, Operation):
            return meta
        fn = getattr(fn, "__wrapped__", None)
    return Operation()


def _resolve(node: ast.expr, namespace: dict[str, Any]) -> Any:
    """The object a dotted name (``Name`` or ``a.b.c``) denotes in ``namespace``, or None.

    Only names and attribute lookups are followed: nothing from the source is evaluated.
    """
    if isinstance(node, ast.Name):
        if node.id in namespace:
            return namespace[node.id]
        return getattr(builtins, node.id, None)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, namespace)
        return None if base is None else getattr(base, node.attr, None)
    return None


def extracted_types(handler: Callable[..., Any]) -> dict[str, Any]:
    """The ``Json[T]``/``Query[T]`` types a handler passes to ``ctx.extract``, read from its source.

    Args:
        handler: the function (middleware wrappers are unwrapped first).

    Returns:
        ``{"body": T, "query": U}`` for what was found; empty when the source is
        unavailable or names nothing that resolves in the handler's module.
    """
    fn = inspect.unwrap(handler)
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return {}
    namespace = dict(getattr(fn, "__globals__", {}))
    try:
        namespace.update(inspect.getclosurevars(fn).nonlocals)
    except (TypeError, ValueError):  # pragma: no cover - builtins and odd callables
        pass
    found: dict[str, Any] = {}
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "extract"
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Subscript)
        ):
            continue
        marker = _resolve(node.args[0].value, namespace)
        target = _resolve(node.args[0].slice, namespace)
        if target is None or not isinstance(target, type):
            continue
        if marker is Json:
            found.setdefault("body", target)
        elif marker is Query:
            found.setdefault("query", target)
    return found


def _return_type(handler: Callable[..., Any]) -> Any:
    """The handler's return annotation when it says more than ``Response``, else None."""
    fn = inspect.unwrap(handler)
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable string annotations say nothing usable
        return None
    if hint is None or hint is type(None) or (isinstance(hint, type) and issubclass(hint, Response)):
        return None
    return hint


def _docstring(handler: Callable[..., Any]) -> tuple[str | None, str | None]:
    doc = inspect.getdoc(inspect.unwrap(handler))
    if not doc:
        return None, None
    first, _, rest = doc.partition("\n\n")
    return " ".join(first.split()), rest.strip() or None


# -- building the document ----------------------------------------------------------------


@dataclasses.dataclass
class _Described:
    method: str
    path: str
    handler: Handler
    meta: Operation
    body: Any
    query: Any
    response: Any


def _openapi_path(path: str) -> tuple[str, list[str]]:
    """``/users/:id/*rest`` → (``/users/{id}/{rest}``, ``["id", "rest"]``)."""
    names = []
    parts = []
    for seg in path.split("/"):
        if seg[:1] in (":", "*"):
            name = seg[1:].partition("<")[0]
            names.append(name)
            parts.append("{" + name + "}")
        else:
            parts.append(seg)
    return "/".join(parts), names


# The OpenAPI schema of a typed path parameter (``:id<int>``).
_PARAM_SCHEMAS: dict[str, dict[str, str]] = {
    "int": {"type": "integer"},
    "uuid": {"type": "string", "format": "uuid"},
    "str": {"type": "string"},
}


def _param_kinds(path: str) -> dict[str, str]:
    kinds = {}
    for seg in path.split("/"):
        if seg[:1] in (":", "*"):
            name, _, kind = seg[1:].partition("<")
            kinds[name] = kind.rstrip(">") or "str"
    return kinds


def _router_of(target: Router | Any) -> Router:
    router = getattr(target, "router", target)
    if not hasattr(router, "routes"):
        raise TypeError(f"expected a Router or a Chopin app, got {type(target).__name__}")
    return typing.cast("Router", router)


def _describe_routes(router: Router) -> list[_Described]:
    out = []
    for route in router.routes:
        if route.method not in _OPENAPI_METHODS:
            continue
        meta = _metadata(route.handler)
        if meta.hidden:
            continue
        found = extracted_types(route.handler)
        out.append(
            _Described(
                route.method,
                route.path,
                route.handler,
                meta,
                meta.body if meta.body is not None else found.get("body"),
                meta.query if meta.query is not None else found.get("query"),
                meta.response if meta.response is not None else _return_type(route.handler),
            )
        )
    return out


def _schemas(described: Iterable[_Described]) -> tuple[dict[int, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Schemas for every type used, keyed by ``id(type)``, and the shared definitions."""
    types: dict[int, Any] = {}
    for d in described:
        for t in (d.body, d.query, d.response):
            if t is not None:
                types.setdefault(id(t), t)
    schemas, definitions = schema_components(list(types.values()), ref_template=_REF_TEMPLATE)
    return dict(zip(types, schemas, strict=True)), definitions


def _query_parameters(schema: dict[str, Any], definitions: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``in: query`` parameter per field of the dataclass ``schema`` references."""
    ref = schema.get("$ref", "")
    name = ref.rpartition("/")[2]
    definition = definitions.get(name) if ref.startswith("#/components/schemas/") else None
    if definition is None:
        return []
    required = set(definition.get("required", ()))
    params = []
    for field_name, field_schema in definition.get("properties", {}).items():
        param: dict[str, Any] = {"name": field_name, "in": "query", "required": field_name in required}
        param["schema"] = field_schema
        params.append(param)
    return params


def _operation_object(
    d: _Described, schemas: dict[int, dict[str, Any]], definitions: dict[str, dict[str, Any]], op_id: str
) -> dict[str, Any]:
    meta = d.meta
    summary, description = _docstring(d.handler)
    op: dict[str, Any] = {"operationId": op_id}
    if meta.tags:
        op["tags"] = list(meta.tags)
    if meta.summary or summary:
        op["summary"] = meta.summary or summary
    if meta.description or description:
        op["description"] = meta.description or description
    _, names = _openapi_path(d.path)
    kinds = _param_kinds(d.path)
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": dict(_PARAM_SCHEMAS[kinds.get(name, "str")])}
        for name in names
    ]
    if d.query is not None:
        params += _query_parameters(schemas[id(d.query)], definitions)
    if params:
        op["parameters"] = params
    if d.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schemas[id(d.body)]}}}
    status = str(meta.status or 200)
    ok: dict[str, Any] = {"description": "Success"}
    if d.response is not None:
        ok["content"] = {"application/json": {"schema": schemas[id(d.response)]}}
    responses: dict[str, Any] = {status: ok}
    if d.body is not None:
        responses["400"] = {"description": "The body is not JSON", "content": _ERROR_CONTENT}
    if d.body is not None or d.query is not None:
        responses["422"] = {
            "description": "The request does not fit its type; every problem is named with its path",
            "content": _ERROR_CONTENT,
        }
    responses["500"] = {"description": "The handler failed (logged with its traceback)", "content": _ERROR_CONTENT}
    op["responses"] = responses
    if meta.deprecated:
        op["deprecated"] = True
    if meta.security is not None:
        op["security"] = [{name: list(scopes) for name, scopes in req.items()} for req in meta.security]
    return op


def _operation_ids(described: Sequence[_Described]) -> list[str]:
    """Unique operation ids: the handler's name, qualified by method (then a number) on a clash."""
    wanted = [d.meta.operation_id or getattr(inspect.unwrap(d.handler), "__name__", "handler") for d in described]
    counts: dict[str, int] = {}
    for name in wanted:
        counts[name] = counts.get(name, 0) + 1
    taken: set[str] = set()
    out = []
    for d, name in zip(described, wanted, strict=True):
        if counts[name] > 1 and not d.meta.operation_id:
            name = f"{d.method.lower()}_{name}"
        base, n = name, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        out.append(name)
    return out


def document(
    router_or_app: Router | Any,
    *,
    title: str = "Chopin API",
    version: str = "0.1.0",
    description: str | None = None,
    servers: Sequence[str | Mapping[str, Any]] = (),
    security_schemes: Mapping[str, Mapping[str, Any]] | None = None,
    security: Sequence[Mapping[str, Sequence[str]]] = (),
) -> dict[str, Any]:
    """An OpenAPI 3.1 document describing every route of a router or app.

    Routes declared with :func:`operation(hidden=True) <operation>` and routes
    with methods OpenAPI cannot express are left out; HEAD answers implied by GET
    routes are not listed.

    Args:
        router_or_app: a :class:`~chopin_core.router.Router` or a
            :class:`~chopin_core.server.Chopin` app.
        title: ``info.title``.
        version: ``info.version`` (the API's version, not OpenAPI's).
        description: ``info.description``.
        servers: where the API is served (``"https://api.example.com"`` or a Server Object).
        security_schemes: ``components.securitySchemes`` by name (:data:`BEARER_JWT` for
            chopin-auth's tokens).
        security: the document's default security requirements (``[{"bearer": []}]``);
            an operation's own (:func:`operation`) override it.

    Returns:
        The document as plain dicts and lists, ready for ``json.dumps``.

    Raises:
        kowito_json.UnsupportedType: a body, query or response type cannot be described.
    """
    described = _describe_routes(_router_of(router_or_app))
    schemas, definitions = _schemas(described)
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, None] = {}
    for d, op_id in zip(described, _operation_ids(described), strict=True):
        path, _ = _openapi_path(d.path)
        paths.setdefault(path, {})[d.method.lower()] = _operation_object(d, schemas, definitions, op_id)
        tags.update(dict.fromkeys(d.meta.tags))
    doc: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info}
    if servers:
        doc["servers"] = [{"url": server} if isinstance(server, str) else dict(server) for server in servers]
    if security:
        doc["security"] = [{name: list(scopes) for name, scopes in req.items()} for req in security]
    if tags:
        doc["tags"] = [{"name": tag} for tag in tags]
    doc["paths"] = paths
    components: dict[str, Any] = {"schemas": {**definitions}}
    if paths:
        components["schemas"]["ErrorBody"] = _ERROR_BODY
    if security_schemes:
        components["securitySchemes"] = {name: dict(scheme) for name, scheme in security_schemes.items()}
    if components["schemas"] or len(components) > 1:
        if not components["schemas"]:
            del components["schemas"]
        doc["components"] = components
    return doc


# -- serving it ----------------------------------------------------------------------------

_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
</head>
<body>
<div id="app"></div>
<script src="{script}"></script>
<script>Scalar.createApiReference("#app", {config});</script>
</body>
</html>
"""

# The bundle changes only with SCALAR_VERSION, which is part of its URL.
_IMMUTABLE = "public, max-age=31536000, immutable"


def docs_page(spec_url: str, script_url: str, title: str) -> str:
    """The HTML of the reference page: loads the bundled Scalar script and points it at ``spec_url``."""
    # No fonts from Scalar's CDN, no telemetry, none of the hosted services (AI agent,
    # MCP, developer toolbar): the page must work offline and talk only to this server.
    config = {
        "url": spec_url,
        "withDefaultFonts": False,
        "telemetry": False,
        "hideClientButton": True,
        "showDeveloperTools": "never",
        "agent": {"disabled": True},
        "mcp": {"disabled": True},
    }
    # "</" inside a <script> would end it early; "<\/" is the same string to JavaScript.
    config_js = orjson.dumps(config).decode().replace("</", "<\\/")
    return _PAGE.format(title=html.escape(title), script=html.escape(script_url), config=config_js)


def mount(
    app: Router | Any,
    spec_path: str = "/openapi.json",
    docs_path: str | None = "/docs",
    title: str | None = None,
    version: str | None = None,
    **options: Any,
) -> None:
    """Serve the OpenAPI document at ``spec_path`` and the reference page at ``docs_path``.

    Registers GET routes on ``app.router`` (or on ``app`` when it is a router):
    ``spec_path``, ``docs_path`` and ``docs_path + "/scalar.js"`` (the bundled
    script, cached for a year; gzipped when the client accepts it).  None of them
    appear in the document.  The document is built on its first request in each
    worker, so routes added after ``mount`` are included.

    Args:
        app: a :class:`~chopin_core.server.Chopin` app or a router.
        spec_path: where the JSON document is served.
        docs_path: where the reference page is served; None for no page.
        title: ``info.title`` (``"Chopin API"`` by default).
        version: ``info.version`` (``"0.1.0"`` by default).
        **options: :func:`document`'s ``description``, ``servers``, ``security_schemes``, ``security``.
    """
    router = _router_of(app)
    cached: list[bytes] = []

    @operation(hidden=True)
    def openapi_json(ctx: Context) -> Response:
        if not cached:
            doc = document(router, title=title or "Chopin API", version=version or "0.1.0", **options)
            cached.append(orjson.dumps(doc))
        return Response.json_bytes(cached[0])

    router.get(spec_path, openapi_json)
    if docs_path is None:
        return
    script_path = docs_path.rstrip("/") + "/scalar.js"
    page = docs_page(spec_path, f"{script_path}?v={SCALAR_VERSION}", title or "Chopin API").encode()
    gzipped: list[bytes] = []

    @operation(hidden=True)
    def docs(ctx: Context) -> Response:
        return Response.html(page)

    @operation(hidden=True)
    def scalar_js(ctx: Context) -> Response:
        if not ctx.req.accepts_encoding("gzip"):
            resp = Response.file(_SCALAR_JS, "text/javascript; charset=utf-8")
            return resp.with_header("Vary", "Accept-Encoding").with_header("Cache-Control", _IMMUTABLE)
        if not gzipped:
            gzipped.append(gzip.compress(_SCALAR_JS.read_bytes(), 6))
        return (
            Response.raw(gzipped[0], content_type="text/javascript; charset=utf-8")
            .with_header("Content-Encoding", "gzip")
            .with_header("Vary", "Accept-Encoding")
            .with_header("Cache-Control", _IMMUTABLE)
        )

    router.get(docs_path, docs)
    router.get(script_path, scalar_js)
