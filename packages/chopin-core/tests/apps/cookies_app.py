"""Cookies and urlencoded forms, for the real-socket tests.

Routes: ``/cookies`` (the request's cookies as JSON), ``/set`` (sets two cookies and
deletes one: three ``Set-Cookie`` lines on one response), ``/form`` (POST: the
urlencoded form as JSON, lists of values by name).
"""

from __future__ import annotations

import os

from chopin_core import Context, Response, Router, sessions

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


# Sessions: /visit counts visits in a signed cookie, /peek reads it, /logout empties it.
# SESSION_KEYS (comma-separated, newest first) lets a test restart with rotated keys.
visits = Router()
visits.layer(sessions(os.environ.get("SESSION_KEYS", "old-key-0123456789abcdef").split(","), secure=False))


@visits.get("/visit")
def visit(ctx: Context) -> Response:
    session = ctx.state["session"]
    session["n"] = session.get("n", 0) + 1
    return ctx.json(session)


@visits.get("/peek")
def peek(ctx: Context) -> Response:
    return ctx.json(ctx.state["session"])


@visits.get("/logout")
def logout(ctx: Context) -> Response:
    ctx.state["session"].clear()
    return Response.text("bye")


router.merge(visits)
app = router
