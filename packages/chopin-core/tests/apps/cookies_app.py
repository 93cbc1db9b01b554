"""Cookies and urlencoded forms, for the real-socket tests.

Routes: ``/cookies`` (the request's cookies as JSON), ``/set`` (sets two cookies and
deletes one: three ``Set-Cookie`` lines on one response), ``/form`` (POST: the
urlencoded form as JSON, lists of values by name).
"""

from __future__ import annotations

from chopin_core import Context, Response, Router

router = Router()


@router.get("/cookies")
def cookies(ctx: Context) -> Response:
    return ctx.json(dict(ctx.cookies))


@router.get("/set")
def set_cookies(ctx: Context) -> Response:
    resp = Response.text("set")
    resp.set_cookie("sid", "abc123", httponly=True, max_age=3600)
    resp.set_cookie("theme", "dark", samesite="Strict", path="/app")
    return resp.delete_cookie("old")


@router.post("/form")
def form(ctx: Context) -> Response:
    return ctx.json(ctx.form().to_lists())


@router.post("/form/limited")
def limited(ctx: Context) -> Response:
    return ctx.json(ctx.form(max_fields=2, max_field_size=16).to_lists())


app = router
