"""A sign-in that hashes with Argon2id off the worker's loop (test_auth_passwords.py)."""

from __future__ import annotations

from chopin_auth import PasswordHasher
from chopin_core import Context, Response, Router

router = Router()
hasher = PasswordHasher.interactive()
STORED = hasher.hash("correct horse")


@router.post("/signin")
async def signin(ctx: Context) -> Response:
    ok = await hasher.averify(ctx.req.body.decode(), STORED)
    return Response.text("welcome" if ok else "no", 200 if ok else 401)


@router.get("/posts")
def posts(ctx: Context) -> Response:
    return Response.json([{"id": 1}])
