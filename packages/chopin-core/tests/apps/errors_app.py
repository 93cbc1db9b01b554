"""The app of test_error_handlers.py: errors answered inside middleware, error handlers, JSON bodies."""

from __future__ import annotations

from dataclasses import dataclass

from chopin_core import Chopin, Context, Handler, Json, Response, Router

router = Router()


class TeapotError(Exception):
    """Raised by /teapot; answered by the app's error handler for it."""


@dataclass
class Item:
    name: str
    price: float


def stamp(ctx: Context, nxt: Handler) -> Response:
    """A layer on every route: its header must reach error answers too."""
    return nxt(ctx).with_header("X-Layer", "seen")


@router.get("/boom")
def boom(ctx: Context) -> Response:
    raise ValueError("boom")


@router.get("/teapot")
def teapot(ctx: Context) -> Response:
    raise TeapotError("short and stout")


@router.post("/items")
def create(ctx: Context) -> Response:
    item = ctx.extract(Json[Item])
    return Response.json({"name": item.name})


router.layer(stamp)
app = Chopin(router)


@app.error_handler(TeapotError)
def on_teapot(ctx: Context, exc: Exception) -> Response:
    return Response.text(f"teapot: {exc}", 418)


@app.error_handler(404)
def on_not_found(ctx: Context, resp: Response) -> Response:
    return Response.text(f"nothing at {ctx.req.path}", 404)


bare = Router()  # no middleware, no error handlers: served bare, converted by the worker


@bare.get("/boom")
def bare_boom(ctx: Context) -> Response:
    raise ValueError("bare boom")


@bare.post("/items")
def bare_create(ctx: Context) -> Response:
    item = ctx.extract(Json[Item])
    return Response.json({"name": item.name})


bare_app = Chopin(bare)
