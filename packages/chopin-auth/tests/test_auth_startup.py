"""The start-up check: an app with ``Auth[...]`` routes and no JWT manager refuses to serve (issue 15, item 16).

Before, such an app started and answered every guarded request with a 500 that
nothing logged.  Now serving fails at once with an error naming
``init_jwt_manager``; and a 5xx an authentication step still produces (a
misconfigured key, an unreachable revocation list) is logged with its traceback.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import chopin_auth
import pytest
from auth_apps.guarded import build_router
from auth_testing import SECRET
from chopin_auth import Auth, JwtManager, ManagerNotInitialized, init_jwt_manager, require_role
from chopin_auth.startup import check_jwt_manager
from chopin_core import Chopin, Context, Response, Router, TestClient

TESTS_DIR = Path(__file__).resolve().parent

_SERVE = """\
import importlib, json, sys
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["sys_path"]
from chopin_core import Chopin
module_name, _, attr = spec["app"].partition(":")
Chopin(getattr(importlib.import_module(module_name), attr)()).serve("127.0.0.1:0")
"""


def test_serving_auth_routes_without_a_manager_fails_at_start_naming_init_jwt_manager() -> None:
    spec = json.dumps({"app": "auth_apps.guarded:router_without_manager", "sys_path": [str(TESTS_DIR)]})
    done = subprocess.run(
        [sys.executable, "-c", _SERVE, spec],
        capture_output=True,
        text=True,
        timeout=20,  # without the check the server would serve until killed
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CHOPIN_")}, "WORKERS": "2"},
        check=False,
    )
    assert done.returncode != 0, done.stderr
    assert "ManagerNotInitialized: init_jwt_manager(manager) was not called before serving" in done.stderr
    assert "GET /me" in done.stderr
    assert "chopin serving" not in done.stderr  # it never listened, no worker was forked


def _router_with(handler: object) -> Router:
    router = Router()
    router.get("/x", handler)  # type: ignore[arg-type]
    return router


def _uses_auth(ctx: Context) -> Response:
    return Response.text(str(ctx.extract(Auth[dict]).claims))  # type: ignore[type-arg]


def _uses_the_module(ctx: Context) -> Response:
    def inner() -> object:
        return chopin_auth.extract(ctx, chopin_auth.Auth[dict])  # type: ignore[type-arg]

    return Response.text(str(inner()))


def _plain(ctx: Context) -> Response:
    return Response.text("ok")


@pytest.mark.parametrize("handler", [_uses_auth, _uses_the_module])
def test_check_finds_handlers_that_read_the_token(handler: object) -> None:
    with pytest.raises(ManagerNotInitialized, match=r"init_jwt_manager\(manager\) was not called.*GET /x"):
        check_jwt_manager(_router_with(handler))


def test_check_finds_routes_behind_auth_middleware() -> None:
    router = _router_with(_plain)
    router.layer_path("/admin", require_role("admin"))
    router.get("/admin/panel", _plain)
    with pytest.raises(ManagerNotInitialized, match=r"chopin-auth middleware on /admin"):
        check_jwt_manager(router)
    nested = Router().nest("/api", router)
    with pytest.raises(ManagerNotInitialized, match="GET /api/admin/panel"):
        check_jwt_manager(nested)


def test_check_passes_without_auth_routes_or_with_a_manager() -> None:
    check_jwt_manager(_router_with(_plain))
    init_jwt_manager(JwtManager(SECRET))
    check_jwt_manager(build_router())
    Chopin(build_router()).compile()  # what serve() runs before listening


def test_compile_runs_the_check() -> None:
    with pytest.raises(ManagerNotInitialized):
        Chopin(build_router()).compile()


def test_5xx_from_authentication_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    # TestClient compiles the router itself (no start-up check), so the missing manager shows per request.
    client = TestClient(build_router())
    with caplog.at_level(logging.ERROR):
        assert client.get("/me", headers={"Authorization": "Bearer a.b.c"}).status == 500
        assert client.get("/admin/panel", headers={"Authorization": "Bearer a.b.c"}).status == 500
    failures = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], ManagerNotInitialized)]
    assert len(failures) == 2, caplog.text
    assert "Traceback (most recent call last)" in caplog.text
