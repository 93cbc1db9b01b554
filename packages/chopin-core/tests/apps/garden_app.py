"""The server of the HTTP Garden cases (test_conformance_http11.py): it logs every request it parses.

Every path but ``/__log`` is answered ``200`` with ``METHOD path body-length``; ``GET
/__log`` returns the requests seen since the last call, as JSON, and forgets them: each
as ``[method, path, body length, body digest, [[name, value], ...]]`` (the header fields
as the handler sees them, latin-1).
Serve with one worker (the log is this process's).
"""

from __future__ import annotations

import hashlib

from chopin_core import Context, Response, Router

router = Router()
seen: list[list[object]] = []


@router.get("/__log")
def log(ctx: Context) -> Response:
    taken = list(seen)
    seen.clear()
    return ctx.json(taken)


@router.fallback
def record(ctx: Context) -> Response:
    req = ctx.req
    digest = hashlib.sha256(req.body).hexdigest()[:16]
    seen.append([req.method, req.path, len(req.body), digest, [list(item) for item in req.headers.items()]])
    return Response.text(f"{req.method} {req.path} {len(req.body)}")


app = router
