"""Routes guarded by ``Auth[Claims]``, ``require_role`` and ``require_scope``.

``build_router()`` is used in-process (TestClient); the factories ``router`` (a manager
installed, secret from ``AUTH_TEST_SECRET``) and ``router_without_manager`` are served
in a subprocess.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from typing import Any

from chopin_auth import (
    Auth,
    JwtManager,
    auth_errors,
    extract,
    init_jwt_manager,
    require_role,
    require_scope,
)
from chopin_core import Context, Response, Router


class Role(enum.Enum):
    ADMIN = "admin"
    USER = "user"


@dataclasses.dataclass
class Claims:
    sub: str
    role: str


@dataclasses.dataclass
class RoleClaims:
    sub: str
    groups: list[str]

    def has_role(self, role: Role) -> bool:
        return f"group-{role.value}" in self.groups


def me(ctx: Context) -> Response:
    auth = ctx.extract(Auth[Claims])  # chopin-core's extractor hook
    return Response.json({"sub": auth.claims.sub, "role": auth.claims.role, "jti": auth.jti, "pid": os.getpid()})


def me_dict(ctx: Context) -> Response:
    auth = extract(ctx, Auth[dict[str, Any]])
    return Response.json({"claims": auth.claims})


def ok(ctx: Context) -> Response:
    return Response.text("ok")


def build_router(with_error_layer: bool = True) -> Router:
    router = Router()
    router.get("/me", me)
    router.get("/me-dict", me_dict)
    router.get("/admin/panel", ok)
    router.get("/staff/panel", ok)
    router.get("/groups/admin", ok)
    router.get("/reports", ok)
    if with_error_layer:
        router.layer(auth_errors)
    router.layer_path("/admin", require_role(Role.ADMIN))
    router.layer_path("/staff", require_role(Role.ADMIN, Role.USER))
    router.layer_path("/groups", require_role(Role.ADMIN, claims=RoleClaims))
    router.layer_path("/reports", require_scope("reports:read", "reports:list"))
    return router


def _served() -> Router:
    init_jwt_manager(JwtManager(os.environ["AUTH_TEST_SECRET"]))
    return build_router()


def _served_without_manager() -> Router:
    return build_router()


router = _served
router_without_manager = _served_without_manager
