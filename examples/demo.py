"""The demo app: ``./dev demo`` serves it on :8080 (``PORT``/``WORKERS`` to change)."""

from __future__ import annotations

import dataclasses

from chopin_core import Chopin, Context, Json, Query, Response, get, post


@dataclasses.dataclass
class Greeting:
    name: str
    excited: bool = False


@dataclasses.dataclass
class Search:
    q: str
    page: int = 1


@get("/")
def index(ctx: Context) -> Response:
    """A plain-text greeting."""
    return Response.text("Hello from Chopin!\n")


@get("/json")
def hello_json(ctx: Context) -> Response:
    """A JSON greeting."""
    return ctx.json({"message": "Hello, World!"})


@get("/user/:id")
def user(ctx: Context) -> Response:
    """Echo a path parameter."""
    return ctx.json({"id": ctx.param("id")})


@get("/search")
def search(ctx: Context) -> Response:
    """Typed query parameters: /search?q=chopin&page=2."""
    params = ctx.extract(Query[Search])
    return ctx.json({"q": params.q, "page": params.page})


@post("/greet")
def greet(ctx: Context) -> Response:
    """A typed JSON body: {"name": "Ada", "excited": true}."""
    body = ctx.extract(Json[Greeting])
    return Response.text(f"Hello, {body.name}{'!' if body.excited else '.'}\n")


@get("/stream")
def stream(ctx: Context) -> Response:
    """A chunked response."""
    return Response.stream((f"line {i}\n" for i in range(5)), "text/plain; charset=utf-8")


if __name__ == "__main__":
    Chopin().mount_all_routes().serve("0.0.0.0:8080")
