"""Sign-in with chopin-auth: Argon2id hashes in PostgreSQL, JWTs, a role-guarded route, revocation.

Run it with the libpq variables pointing at a database, and a secret of 32+ bytes:

    JWT_SECRET=$(python -c 'import secrets; print(secrets.token_hex(32))') \
    PGHOST=127.0.0.1 PGUSER=postgres PGDATABASE=test WORKERS=4 python app.py
"""

from __future__ import annotations

import dataclasses
import enum
import os

from chopin_auth import (
    Auth,
    JwtManager,
    PasswordHasher,
    TokenBlacklist,
    init_jwt_manager,
    require_role,
)
from chopin_auth.revocation_pg import PgRevocations
from chopin_core import Chopin, Context, Json, Response, Router
from chopin_pg import PgConfig, PgPool, connect


class Role(enum.Enum):
    ADMIN = "admin"
    USER = "user"


@dataclasses.dataclass
class Claims:
    sub: str
    role: str


@dataclasses.dataclass
class SignIn:
    name: str
    password: str


DEMO_USERS = {"alice": ("alice-password", Role.ADMIN), "bob": ("bob-password", Role.USER)}

hasher = PasswordHasher.interactive()
blacklist = TokenBlacklist(PgRevocations())  # every worker sees every revocation
manager = JwtManager(os.environ["JWT_SECRET"]).with_blacklist(blacklist)
pool = PgPool(PgConfig.from_env())  # one pool per worker, opened on first use


def create_users() -> None:
    """Create the users table and the demo users (in the parent, before the workers fork)."""
    with connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS app_users (name text PRIMARY KEY, hash text, role text)")
        for name, (password, role) in DEMO_USERS.items():
            conn.execute(
                "INSERT INTO app_users VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                (name, hasher.hash(password), role.value),
            )


def sign_in(ctx: Context) -> Response:
    body = ctx.extract(Json[SignIn])
    with pool.get() as conn:
        row = conn.query_opt("SELECT hash, role FROM app_users WHERE name = $1", (body.name,))
    if row is None:
        hasher.dummy_verify(body.password)  # as slow as a wrong password: names stay secret
        return Response.text("wrong name or password", 401)
    if not hasher.verify(body.password, row["hash"]):
        return Response.text("wrong name or password", 401)
    token = manager.encode(Claims(sub=body.name, role=row["role"]))
    return Response.json({"access_token": token, "token_type": "Bearer", "expires_in": 900})


def me(ctx: Context) -> Response:
    auth = ctx.extract(Auth[Claims])
    return Response.json({"sub": auth.claims.sub, "role": auth.claims.role, "pid": os.getpid()})


def admin_report(ctx: Context) -> Response:
    with pool.get() as conn:
        users = conn.query_scalar("SELECT count(*) FROM app_users")
    return Response.json({"users": users, "pid": os.getpid()})


def sign_out(ctx: Context) -> Response:
    auth = ctx.extract(Auth[Claims])
    assert auth.jti is not None  # the manager issues every token with a jti
    blacklist.revoke(auth.jti, auth.expires_at)
    return Response.new(204)


router = Router()
router.post("/login", sign_in)
router.get("/me", me)
router.get("/admin/report", admin_report)
router.post("/logout", sign_out)
router.layer_path("/admin", require_role(Role.ADMIN))

if __name__ == "__main__":
    create_users()
    init_jwt_manager(manager)
    Chopin(router).serve("0.0.0.0:8080")  # PORT and WORKERS override
