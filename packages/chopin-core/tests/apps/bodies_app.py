"""Request bodies read every way a handler can, for the spooling and body-budget tests."""

from __future__ import annotations

import dataclasses
import hashlib
import os

from chopin_core import Context, Json, Response, Router

router = Router()


@router.get("/")
def index(ctx: Context) -> Response:
    return Response.text("hello")


@router.post("/digest")
def digest(ctx: Context) -> Response:
    """The body's SHA-256 read as a stream in 64 KiB pieces (no whole copy in memory)."""
    req = ctx.req
    sha = hashlib.sha256()
    size = 0
    with req.body_stream() as stream:
        while piece := stream.read(64 * 1024):
            sha.update(piece)
            size += len(piece)
    return ctx.json({"sha256": sha.hexdigest(), "size": size, "body_size": req.body_size, "spooled": req.spooled})


@router.post("/digest/body")
def digest_body(ctx: Context) -> Response:
    """The same through ``req.body``, read twice."""
    req = ctx.req
    first = hashlib.sha256(req.body).hexdigest()
    assert hashlib.sha256(req.body).hexdigest() == first
    return ctx.json({"sha256": first, "size": len(req.body), "spooled": req.spooled})


@router.post("/upload")
def upload(ctx: Context) -> Response:
    parts = [
        {"name": part.name, "size": len(part.body), "sha256": hashlib.sha256(part.body).hexdigest()}
        for part in ctx.multipart()
    ]
    return ctx.json({"parts": parts, "spooled": ctx.req.spooled})


@dataclasses.dataclass
class Items:
    items: list[str]


@router.post("/json")
def json_body(ctx: Context) -> Response:
    items = ctx.extract(Json[Items]).items
    return ctx.json({"count": len(items), "spooled": ctx.req.spooled})


@router.get("/spool-files")
def spool_files(ctx: Context) -> Response:
    """How many files this process has open in ``TMPDIR`` (where spooled bodies go)."""
    tmpdir = os.path.realpath(os.environ["TMPDIR"])
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(tmpdir + "/"):
            count += 1
    return ctx.json(count)
