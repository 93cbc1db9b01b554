"""``chopin generate auth``: sign-up, sign-in, sign-out and me with Argon2id and JWT, its migration and tests.

Writes the ``User`` model and its migration (through ``chopin generate model``),
``src/<pkg>/auth.py`` (the routes under ``/auth``; the JWT manager is installed when
``mount_all_routes`` imports the module) on the project's ``src/<pkg>/db.py`` pool,
``tests/test_auth.py`` (on ``tests/conftest.py``'s ``client`` and ``database_url``), and a
random ``JWT_SECRET`` in ``.env`` when it has none.  A project without ``db.py`` or
``conftest.py`` gets compatible ones, as with ``chopin generate scaffold``.
Sign-out revokes the token's ``jti`` in PostgreSQL (chopin-auth's ``PgRevocations``),
so every worker refuses it.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from string import Template

from .errors import ProjectError
from .fields import snake_case
from .generate_scaffold import check_db_wiring, write_db_wiring
from .modelgen import generate_model
from .project import Project

__all__ = ["USER_FIELDS", "generate_auth"]

#: The fields of the generated ``User`` model.
USER_FIELDS = ("email:str:unique", "password_hash:str")

AUTH_MODULE = Template('''\
"""Accounts: sign-up, sign-in, sign-out and me, written by ``chopin generate auth``.

Passwords are hashed with Argon2id (chopin-auth's ``PasswordHasher.interactive()``);
sign-in returns a JWT (HS256, 15 minutes) signed with ``JWT_SECRET`` (32+ bytes, from the
environment or ``.env``); sign-out revokes the token in PostgreSQL, for every worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from chopin_auth import Auth, JwtManager, PasswordHasher, TokenBlacklist, init_jwt_manager
from chopin_auth.registry import has_jwt_manager
from chopin_auth.revocation_pg import PgRevocations
from chopin_core import Context, Json, Response, get, post
from chopin_pg import UniqueViolation

from $package import db

from .models.user import User

MIN_PASSWORD_LENGTH = 8
_ENV_FILE = Path(__file__).resolve().parents[2] / ".env"


@dataclass
class Credentials:
    """The body of sign-up and sign-in."""

    email: str
    password: str


@dataclass
class Claims:
    """What a token says: the user's id (``sub``) and email."""

    sub: str
    email: str


def _secret() -> str:
    # The environment wins; else the project's .env (``python -m`` does not load it).
    secret = os.environ.get("JWT_SECRET")
    if secret is None and _ENV_FILE.is_file():
        for line in _ENV_FILE.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and key.strip() == "JWT_SECRET":
                secret = value.strip().strip("\\"'")
    if not secret:
        raise RuntimeError("JWT_SECRET is not set (environment or .env); use 32 random bytes or more")
    return secret


hasher = PasswordHasher.interactive()
# Connects on first use, to the database db.pool() uses (DATABASE_URL, then the libpq variables).
blacklist = TokenBlacklist(PgRevocations())
manager = JwtManager(_secret()).with_blacklist(blacklist)
if not has_jwt_manager():
    init_jwt_manager(manager)  # mount_all_routes imports this module before the app serves


def _user_json(user: User) -> dict[str, object]:
    return {"id": user.id, "email": user.email}


@post("/auth/sign-up")
def sign_up(ctx: Context) -> Response:
    """Create an account (201); 409 when the email is taken, 422 for a bad email or short password."""
    body = ctx.extract(Json[Credentials])
    email = body.email.strip().lower()
    if "@" not in email:
        return Response.json({"error": "email: expected an address"}, 422)
    if len(body.password) < MIN_PASSWORD_LENGTH:
        return Response.json({"error": f"password: at least {MIN_PASSWORD_LENGTH} characters"}, 422)
    user = User(email=email, password_hash=hasher.hash(body.password))
    try:
        with db.pool().get() as conn:
            user.insert(conn)
    except UniqueViolation:
        return Response.json({"error": "email already registered"}, 409)
    return Response.json(_user_json(user), 201)


@post("/auth/sign-in")
def sign_in(ctx: Context) -> Response:
    """Exchange an email and password for a bearer token (401 when either is wrong)."""
    body = ctx.extract(Json[Credentials])
    with db.pool().get() as conn:
        user = User.query().filter(User.email == body.email.strip().lower()).first(conn)
    if user is None:
        hasher.dummy_verify(body.password)  # as slow as a wrong password: emails stay secret
        return Response.json({"error": "wrong email or password"}, 401)
    if not hasher.verify(body.password, user.password_hash):
        return Response.json({"error": "wrong email or password"}, 401)
    token = manager.encode(Claims(sub=str(user.id), email=user.email))
    ttl = int(manager.config.validation.ttl)
    return Response.json({"access_token": token, "token_type": "Bearer", "expires_in": ttl})


@post("/auth/sign-out")
def sign_out(ctx: Context) -> Response:
    """Revoke the bearer token (204); every worker refuses it from now on."""
    auth = ctx.extract(Auth[Claims])
    if auth.jti is not None:
        blacklist.revoke(auth.jti, auth.expires_at)
    return Response.new(204)


@get("/auth/me")
def me(ctx: Context) -> Response:
    """The signed-in user (401 without a valid token)."""
    auth = ctx.extract(Auth[Claims])
    with db.pool().get() as conn:
        user = User.get_or_none(conn, int(auth.claims.sub))
    if user is None:
        return Response.json({"error": "no such user"}, 404)
    return Response.json(_user_json(user))
''')

AUTH_TEST = Template('''\
"""Sign-up, sign-in, me and sign-out on the test run's own database (``tests/conftest.py``)."""

from __future__ import annotations

import chopin_pg
import pytest
from chopin_core import TestClient

EMAIL, PASSWORD = "ada@example.com", "correct horse battery"


@pytest.fixture(autouse=True)
def empty_users(database_url: str) -> None:
    """Each test starts without accounts (ids from 1 again)."""
    with chopin_pg.connect(database_url) as conn:
        conn.execute("TRUNCATE users RESTART IDENTITY CASCADE")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _sign_in(client: TestClient, password: str = PASSWORD) -> str:
    answer = client.post("/auth/sign-in", json={"email": EMAIL, "password": password})
    assert answer.status == 200, answer.text
    return str(answer.json()["access_token"])


def test_sign_up_sign_in_and_me(client: TestClient) -> None:
    created = client.post("/auth/sign-up", json={"email": EMAIL, "password": PASSWORD})
    assert created.status == 201, created.text
    assert created.json()["email"] == EMAIL
    me = client.get("/auth/me", headers=_bearer(_sign_in(client)))
    assert me.status == 200
    assert me.json() == created.json()


def test_sign_up_refuses_a_taken_email_and_a_short_password(client: TestClient) -> None:
    assert client.post("/auth/sign-up", json={"email": EMAIL, "password": PASSWORD}).status == 201
    assert client.post("/auth/sign-up", json={"email": EMAIL.upper(), "password": PASSWORD}).status == 409
    assert client.post("/auth/sign-up", json={"email": "b@example.com", "password": "short"}).status == 422


def test_wrong_password_and_unknown_email_are_401(client: TestClient) -> None:
    assert client.post("/auth/sign-up", json={"email": EMAIL, "password": PASSWORD}).status == 201
    wrong = client.post("/auth/sign-in", json={"email": EMAIL, "password": "not the password"})
    assert wrong.status == 401
    unknown = client.post("/auth/sign-in", json={"email": "nobody@example.com", "password": PASSWORD})
    assert unknown.status == 401


def test_me_needs_a_valid_token(client: TestClient) -> None:
    assert client.get("/auth/me").status == 401
    assert client.get("/auth/me", headers=_bearer("not.a.token")).status == 401


def test_sign_out_revokes_the_token(client: TestClient) -> None:
    assert client.post("/auth/sign-up", json={"email": EMAIL, "password": PASSWORD}).status == 201
    token = _sign_in(client)
    assert client.post("/auth/sign-out", headers=_bearer(token)).status == 204
    assert client.get("/auth/me", headers=_bearer(token)).status == 401
    assert client.get("/auth/me", headers=_bearer(_sign_in(client))).status == 200
''')


def _ensure_secret(dotenv: Path) -> bool:
    """Append a random ``JWT_SECRET`` to ``dotenv`` unless it sets one; True when it wrote."""
    text = dotenv.read_text(encoding="utf-8") if dotenv.is_file() else ""
    if any(line.strip().startswith("JWT_SECRET=") for line in text.splitlines()):
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    text += "# Signs the JWTs of auth.py (chopin generate auth); keep it secret.\n"
    text += f"JWT_SECRET={secrets.token_hex(32)}\n"
    dotenv.write_text(text, encoding="utf-8")
    return True


def generate_auth(project: Project) -> tuple[list[Path], bool]:
    """Write the accounts feature; returns the files created, in order, and whether ``.env`` got a secret.

    Raises:
        ProjectError: a file it would write exists, or ``tests/conftest.py`` lacks the
            fixtures the tests use (nothing is written then).
    """
    auth = project.package_dir / "auth.py"
    test = project.root / "tests" / "test_auth.py"
    model = project.package_dir / "models" / f"{snake_case('User')}.py"
    for path in (auth, test, model):
        if path.exists():
            raise ProjectError(f"{path} already exists (has `chopin generate auth` run already?)")
    check_db_wiring(project)
    written = list(generate_model(project, "User", list(USER_FIELDS)))
    written += write_db_wiring(project)
    auth.write_text(AUTH_MODULE.substitute(package=project.package), encoding="utf-8")
    written.append(auth)
    test.parent.mkdir(exist_ok=True)
    test.write_text(AUTH_TEST.substitute(), encoding="utf-8")
    written.append(test)
    return written, _ensure_secret(project.root / ".env")
