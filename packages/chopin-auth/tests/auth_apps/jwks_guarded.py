"""A resource server that verifies tokens with a provider's JWKS (``JWKS_URL``).

The key set is kept for a millisecond and refetched without a cooldown, so the test
sees the provider go down at once (a real app keeps the defaults: max-age, 30 s).
"""

from __future__ import annotations

import os

from chopin_auth import Auth, JwksClient, JwtManager, init_jwt_manager
from chopin_core import Context, Response, Router


def me(ctx: Context) -> Response:
    auth = ctx.extract(Auth[dict])
    return Response.json({"sub": auth.claims["sub"]})


def router() -> Router:
    client = JwksClient(os.environ["JWKS_URL"], default_ttl=0.001, refetch_cooldown=0)
    init_jwt_manager(JwtManager.from_jwks(client))
    found = Router()
    found.get("/me", me)
    return found
