"""Serves ``$STATIC_ROOT`` at /assets (listing on) and single files by route."""

from __future__ import annotations

import os

from chopin_core import Context, Response, Router

router = Router()
root = os.environ["STATIC_ROOT"]
router.static("/assets", root, listing=True)


@router.get("/file/:name")
def one_file(ctx: Context) -> Response:
    return Response.file(os.path.join(root, ctx.param("name") or ""))


@router.get("/range/:name")
def ranged(ctx: Context) -> Response:
    return Response.file_range(os.path.join(root, ctx.param("name") or ""), ctx.header("range"))


@router.get("/fd")
def by_fd(ctx: Context) -> Response:
    fd = os.open(os.path.join(root, "big.bin"), os.O_RDONLY)
    return Response.sendfile(fd, 100, 1000, "application/x-test")


@router.get("/")
def index(ctx: Context) -> Response:
    return Response.text("hello")


app = router
