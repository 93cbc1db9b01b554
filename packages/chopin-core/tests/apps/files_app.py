"""Serves ``$STATIC_ROOT`` at /assets (listing on) and single files by route.

The mount checks its cached files on every request (``valid=0``), so the tests see a
change on disk at once; the default one-second window is tested in test_filecache.py.
/cached mounts the same directory with the default cache, /uncached with none.
"""

from __future__ import annotations

import os

from chopin_core import Context, Response, Router
from chopin_core.filecache import FileCacheLimits

router = Router()
root = os.environ["STATIC_ROOT"]
router.static("/assets", root, listing=True, cache=FileCacheLimits(valid=0))
router.static("/cached", root)
router.static("/uncached", root, cache=None)


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
