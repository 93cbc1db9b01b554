"""``chopin check`` CHK006-CHK008: handler signatures chopin-core cannot call, return annotations
that are not ``Response``, and ``extract`` arguments no extractor builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from chopin_cli.lint import check_source
from conftest import run_chopin

HEADER = """\
from dataclasses import dataclass
from typing import Any

from chopin_auth import Auth
from chopin_core import Context, Json, Query, Request, Response, Router, get, post
from chopin_core import Context as Ctx


@dataclass
class Item:
    name: str

"""


def _codes(body: str) -> list[tuple[str, str]]:
    findings, _, _ = check_source(HEADER + body, "handlers.py")
    return [(f.code, f.message) for f in findings if f.code in ("CHK006", "CHK007", "CHK008")]


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (
            '@post("/items")\ndef create(item: Item) -> Response:\n    """C."""\n',
            "CHK006",
            "parameter 'item' of handler 'create' is annotated Item: nothing builds it",
        ),
        ('@get("/a")\nasync def a(ctx: Context) -> Response:\n    """A."""\n', "CHK006", "handler 'a' is async"),
        ('@get("/b")\ndef b() -> Response:\n    """B."""\n', "CHK006", "handler 'b' takes no parameter"),
        (
            '@get("/c")\ndef c(ctx: Context, item: Item) -> Response:\n    """C."""\n',
            "CHK006",
            "handler 'c' needs 2 arguments (ctx, item)",
        ),
        (
            '@get("/k")\ndef k(ctx: Context, *, user: str) -> Response:\n    """K."""\n',
            "CHK006",
            "needs 2 arguments (ctx, user)",
        ),
        (
            '@get("/d")\ndef d(ctx: Context) -> dict[str, Any]:\n    """D."""\n',
            "CHK007",
            "handler 'd' is annotated to return dict[str, Any]",
        ),
        ('@get("/n")\ndef n(ctx: Context) -> None:\n    """N."""\n', "CHK007", "annotated to return None"),
        ('@get("/e")\ndef e(ctx: Context) -> Response:\n    """E."""\n    ctx.extract(Json)\n', "CHK008", "Json needs"),
        (
            '@get("/f")\ndef f(ctx: Context) -> Response:\n    """F."""\n    ctx.extract(Query[int])\n',
            "CHK008",
            "Query[int]: Query[T] builds a dataclass from the query string, and int is not one",
        ),
        (
            '@get("/g")\ndef g(ctx: Context) -> Response:\n    """G."""\n    ctx.extract(dict)\n',
            "CHK008",
            "nothing extracts dict",
        ),
        (
            '@get("/h")\ndef h(ctx: Context) -> Response:\n    """H."""\n    ctx.extract(Request)\n',
            "CHK008",
            "nothing extracts Request",
        ),
        (
            '@get("/i")\ndef i(ctx: Context) -> Response:\n    """I."""\n    ctx.extract(Auth)\n',
            "CHK008",
            "Auth needs its type: Auth[Claims]",
        ),
        (
            'def registered(req: Request) -> Response:\n    """R."""\n\n\n'
            'router = Router()\nrouter.get("/r", registered)\n',
            "CHK006",
            "parameter 'req' of handler 'registered' is annotated Request",
        ),
    ],
)
def test_a_signature_that_cannot_work_is_flagged(body: str, code: str, fragment: str) -> None:
    found = _codes(body)
    assert any(c == code and fragment in m for c, m in found), found


def test_handlers_that_work_are_not_flagged() -> None:
    body = '''
@get("/ok")
def ok(ctx: Context) -> Response:
    """Every extractor, used right."""
    ctx.extract(Json[Item])
    ctx.extract(Json[list[Item]])
    ctx.extract(Query[Item])
    ctx.extract(Auth[Item])
    return Response.new(200)


@get("/aliased")
def aliased(ctx: Ctx, page: int = 1) -> "Response":
    """An aliased Context, a defaulted extra parameter, a string annotation."""
    return Response.new(200)


@get("/bare")
def bare(ctx):
    """No annotations at all."""
    return Response.new(200)


def plain(ctx: "Context") -> Response:
    """Registered with the router."""
    return Response.new(200)


def helper(item: Item) -> dict[str, Any]:
    """Not a handler: never flagged."""
    return {}


router = Router()
router.get("/plain", plain)
lookup = {}.get("key", helper)
'''
    assert _codes(body) == []


def test_chopin_check_reports_a_bad_signature_as_a_real_subprocess(project: Path) -> None:
    handlers = project / "src/shop/handlers.py"
    handlers.write_text(
        handlers.read_text()
        + '\n\n@get("/broken")\ndef broken(name: str) -> dict:\n    """Broken."""\n    return {"name": name}\n'
    )
    run = run_chopin("check", cwd=project)
    assert run.code == 1, run
    assert "CHK006 parameter 'name' of handler 'broken' is annotated str" in run.out, run
    assert "CHK007 handler 'broken' is annotated to return dict" in run.out, run
    assert "hint:" in run.out
