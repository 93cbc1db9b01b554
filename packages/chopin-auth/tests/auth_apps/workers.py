"""A multi-worker app whose answers name the worker: tokens checked against a PostgreSQL revocation list.

Environment: ``AUTH_TEST_SECRET``, ``AUTH_TEST_TABLE`` (the revocation table) and the
libpq ``PG*`` variables.
"""

from __future__ import annotations

import os
from typing import Any

from chopin_auth import (
    Auth,
    AuthError,
    JwtManager,
    TokenBlacklist,
    auth_errors,
    default_error_response,
    extract,
    init_jwt_manager,
    set_error_handler,
)
from chopin_auth.revocation_pg import PgRevocations
from chopin_core import Context, Response, Router


def whoami(ctx: Context) -> Response:
    extract(ctx, Auth[dict[str, Any]])
    return Response.json({"pid": os.getpid()})


def revoke(ctx: Context) -> Response:
    auth = extract(ctx, Auth[dict[str, Any]])
    blacklist = auth_blacklist[0]
    assert auth.jti is not None
    blacklist.revoke(auth.jti, auth.expires_at)
    return Response.json({"pid": os.getpid()})


def with_pid(error: AuthError) -> Response:
    return default_error_response(error).with_header("X-Worker-Pid", str(os.getpid()))


auth_blacklist: list[TokenBlacklist] = []


def router() -> Router:
    blacklist = TokenBlacklist(PgRevocations(table=os.environ["AUTH_TEST_TABLE"]))
    auth_blacklist.append(blacklist)
    init_jwt_manager(JwtManager(os.environ["AUTH_TEST_SECRET"]).with_blacklist(blacklist))
    set_error_handler(with_pid)
    r = Router()
    r.get("/whoami", whoami)
    r.post("/revoke", revoke)
    r.layer(auth_errors)
    return r
