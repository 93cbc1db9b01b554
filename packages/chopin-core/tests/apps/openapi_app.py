"""An app exercising the OpenAPI generator: typed bodies, queries and responses, served with mount()."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from typing import Literal

from chopin_core import Chopin, Context, Json, Query, Response, Router, openapi


class Role(enum.Enum):
    ADMIN = "admin"
    MEMBER = "member"


@dataclasses.dataclass
class Address:
    street: str
    city: str


@dataclasses.dataclass
class NewUser:
    """A user to create."""

    name: str
    role: Role
    address: Address
    nickname: str | None = None
    plan: Literal["free", "pro"] = "free"


@dataclasses.dataclass
class User:
    id: uuid.UUID
    name: str
    role: Role
    created: datetime.datetime
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class UserSearch:
    q: str = ""
    limit: int = 10
    role: Role | None = None


router = Router()


@router.get("/users")
def list_users(ctx: Context) -> Response:
    """List users.

    Filtered by name and role.
    """
    search = ctx.extract(Query[UserSearch])
    return ctx.json({"q": search.q, "limit": search.limit, "users": []})


@router.post("/users")
@openapi.operation(body=NewUser, response=User, status=201, tags=["users"], summary="Create a user")
def create_user(ctx: Context) -> Response:
    body = ctx.extract(Json[NewUser])
    user = User(uuid.uuid4(), body.name, body.role, datetime.datetime.now(datetime.UTC))
    return Response.json(user, 201)


@router.get("/users/:id")
@openapi.operation(response=User, tags=["users"])
def get_user(ctx: Context) -> Response:
    """Fetch one user by id."""
    return ctx.json({"id": ctx.param("id")})


@router.get("/files/*path")
def files(ctx: Context) -> Response:
    """Echo a wildcard path."""
    return Response.text(ctx.param("path") or "")


app = Chopin(router)
openapi.mount(app, title="Users API", version="2.0.0")
