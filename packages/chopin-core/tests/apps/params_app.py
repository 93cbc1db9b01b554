"""A middleware that stores the signed-in user in ``ctx.params`` (issue 15, item 2).

``X-User: alice`` signs a request in; ``/me`` (a static route) and ``/not-a-route``
(the 404 answer) report the ``user`` parameter they see, so a value that leaked from
an earlier request shows up in the body.
"""

from __future__ import annotations

from chopin_core import Context, Response, Router
from chopin_core.types import Handler

router = Router()


def sign_in(ctx: Context, nxt: Handler) -> Response:
    user = ctx.header("x-user")
    if user:
        ctx.params["user"] = user
    return nxt(ctx)


@router.get("/me")
def me(ctx: Context) -> Response:
    return Response.text(f"user={ctx.params.get('user', 'anonymous')}")


@router.fallback
def missing(ctx: Context) -> Response:
    return Response.text(f"no route; user={ctx.params.get('user', 'anonymous')}", 404)


router.layer(sign_in)
app = router
