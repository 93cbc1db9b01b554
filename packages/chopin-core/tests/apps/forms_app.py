"""Multipart uploads and compression, for the real-socket tests."""

from __future__ import annotations

import hashlib

from chopin_core import Context, Response, Router
from chopin_core.compress import compression

router = Router()


@router.post("/upload")
def upload(ctx: Context) -> Response:
    parts = []
    for part in ctx.multipart():
        parts.append(
            {
                "name": part.name,
                "filename": part.filename,
                "content_type": part.content_type,
                "size": len(part.body),
                "sha256": hashlib.sha256(part.body).hexdigest(),
                "text": part.text() if part.filename is None else None,
            }
        )
    return ctx.json(parts)


@router.post("/upload/limited")
def limited(ctx: Context) -> Response:
    return ctx.json(len(list(ctx.multipart(max_parts=2))))


TEXT = ("All work and no play makes Jack a dull boy.\n" * 200).encode()

compressed = Router()
compressed.get("/text", lambda ctx: Response.text(TEXT))
compressed.get("/small", lambda ctx: Response.text("tiny"))
compressed.get("/png", lambda ctx: Response.raw(TEXT, content_type="image/png"))
compressed.get(
    "/stream", lambda ctx: Response.stream((TEXT[i : i + 1000] for i in range(0, len(TEXT), 1000)), "text/plain")
)
compressed.layer(compression(min_size=1024))
router.merge(compressed)


@router.get("/manual")
def manual(ctx: Context) -> Response:
    resp = Response.json({"words": ["chopin"] * 500})
    return resp.gzip() if ctx.req.accepts_encoding("gzip") else resp


app = router
