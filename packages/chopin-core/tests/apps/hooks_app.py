"""Lifecycle hooks for the real-socket tests (serve with WORKERS=1)."""

from __future__ import annotations

from typing import Any

from chopin_core import Chopin, Context, Request, Response, Router
from chopin_core.hooks import DROP, PROCEED, Verdict

router = Router()
counts = {"setup": 0, "teardown": 0, "errors": 0, "pre_routing": 0}


@router.get("/")
def index(ctx: Context) -> Response:
    return Response.text("hello")


@router.get("/counts")
def show_counts(ctx: Context) -> Response:
    return ctx.json(counts)


app = Chopin(router)


@app.connection_setup_hook
def refuse_127_0_0_2(sock: Any, peer: Any) -> Verdict:
    counts["setup"] += 1
    return DROP if peer[0] == "127.0.0.2" else PROCEED


@app.pre_routing_hook
def http11_only(req: Request) -> Verdict | Response:
    counts["pre_routing"] += 1
    if not req.http11:
        return Response.text("HTTP/1.1 only", 505)
    if req.path == "/drop":
        return DROP
    return PROCEED


@app.connection_teardown_hook
def count_teardown(peer: Any, error: BaseException | None) -> None:
    counts["teardown"] += 1
    if error is not None:
        counts["errors"] += 1
