"""Context: path parameters, headers, per-request state and the Json/Query extractors."""

from __future__ import annotations

import dataclasses
import enum
from typing import Generic, Literal, TypeVar

import orjson
import pytest
from chopin_core.context import Context, Json, Query
from chopin_core.errors import ExtractError
from chopin_core.request import Request
from chopin_core.response import Response
from chopin_core.router import Router

T = TypeVar("T")


def make_ctx(
    target: str = "/", *, body: bytes = b"", params: dict[str, str] | None = None, headers: list[bytes] | None = None
) -> Context:
    path, sep, query = target.partition("?")
    req = Request("POST", target, path, query if sep else None, True, True, headers or [b"Host: t"], body)
    return Context(req, params or {})


class Size(enum.Enum):
    S = "s"
    M = "m"


@dataclasses.dataclass
class Line:
    sku: str
    price: float
    size: Size = Size.M


@dataclasses.dataclass
class Customer:
    name: str
    email: str | None = None


@dataclasses.dataclass
class NewOrder:
    customer: Customer
    items: list[Line]
    kind: Literal["retail", "wholesale"]
    meta: dict[str, str] = dataclasses.field(default_factory=dict)
    coupon: str | None = None


# -- path parameters, headers, state --------------------------------------------------------------


def test_param_is_percent_decoded() -> None:
    ctx = make_ctx(params={"name": "J%C3%BCrgen%20M", "plain": "abc", "slash": "a%2Fb"})
    assert ctx.param("name") == "J\u00fcrgen M"
    assert ctx.param("plain") == "abc"
    assert ctx.param("slash") == "a/b"
    assert ctx.params["name"] == "J%C3%BCrgen%20M"  # the raw value stays as sent


def test_param_missing_gives_default() -> None:
    ctx = make_ctx(params={"a": "1"})
    assert ctx.param("b") is None
    assert ctx.param("b", "fallback") == "fallback"


def test_header_is_case_insensitive() -> None:
    ctx = make_ctx(headers=[b"Host: t", b"X-Token: abc"])
    assert ctx.header("x-token") == "abc"
    assert ctx.header("X-TOKEN") == "abc"
    assert ctx.header("missing") is None


def test_state_is_a_per_request_dict() -> None:
    ctx = make_ctx()
    assert ctx.state == {}
    ctx.state["user"] = "ada"
    assert ctx.state is ctx.state
    assert ctx.state == {"user": "ada"}
    assert make_ctx().state == {}


def test_json_response_helper() -> None:
    resp = make_ctx().json({"ok": True}, status=201)
    assert resp.status == 201
    assert orjson.loads(resp.body) == {"ok": True}
    assert ("Content-Type", "application/json") in resp.headers


# -- Json[T] -------------------------------------------------------------------------------------------


def test_json_extract_happy_path() -> None:
    body = orjson.dumps(
        {
            "customer": {"name": "Ada"},
            "items": [{"sku": "A1", "price": 9.5, "size": "s"}, {"sku": "B2", "price": 3}],
            "kind": "retail",
            "meta": {"channel": "web"},
        }
    )
    order = make_ctx(body=body).extract(Json[NewOrder])
    assert order == NewOrder(
        customer=Customer("Ada"),
        items=[Line("A1", 9.5, Size.S), Line("B2", 3.0)],
        kind="retail",
        meta={"channel": "web"},
        coupon=None,
    )


def test_json_extract_non_dataclass_types() -> None:
    assert make_ctx(body=b"[1, 2, 3]").extract(Json[list[int]]) == [1, 2, 3]
    assert make_ctx(body=b'{"a": [1]}').extract(Json[dict[str, list[int]]]) == {"a": [1]}


@pytest.mark.parametrize("body", [b"", b"{", b"{'a': 1}", b"[1,]", b"nope", b"\xff"], ids=repr)
def test_json_extract_invalid_json_is_400(body: bytes) -> None:
    with pytest.raises(ExtractError) as info:
        make_ctx(body=body).extract(Json[NewOrder])
    assert info.value.status == 400
    assert info.value.message.startswith("request body is not valid JSON")


def test_json_extract_wrong_types_is_422_with_paths() -> None:
    body = orjson.dumps(
        {
            "customer": {"name": "Ada"},
            "items": [{"sku": "A1", "price": 1}, {"sku": "B2", "price": "12.50"}],
            "kind": "retail",
        }
    )
    with pytest.raises(ExtractError) as info:
        make_ctx(body=body).extract(Json[NewOrder])
    assert info.value.status == 422
    assert info.value.message == "$.items[1].price: expected number, got string"


def test_json_extract_missing_required_field() -> None:
    body = orjson.dumps({"customer": {}, "items": [], "kind": "retail"})
    with pytest.raises(ExtractError) as info:
        make_ctx(body=body).extract(Json[NewOrder])
    assert info.value.status == 422
    assert info.value.message == "$.customer.name: required field missing"


def test_json_extract_bad_literal_and_enum() -> None:
    body = orjson.dumps({"customer": {"name": "A"}, "items": [{"sku": "x", "price": 1, "size": "xl"}], "kind": "x"})
    with pytest.raises(ExtractError) as info:
        make_ctx(body=body).extract(Json[NewOrder])
    assert info.value.message.split("\n") == [
        "$.items[0].size: expected one of ['s', 'm'], got 'xl'",
        "$.kind: expected one of ['retail', 'wholesale'], got 'x'",
    ]


def test_json_extract_wrong_top_level_kind() -> None:
    with pytest.raises(ExtractError) as info:
        make_ctx(body=b"[]").extract(Json[NewOrder])
    assert info.value.status == 422
    assert info.value.message == "$: expected object, got array"


# -- Query[T] ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Page:
    q: str
    page: int = 1
    per: float = 10.0
    desc: bool = False
    tag: list[str] = dataclasses.field(default_factory=list)
    cursor: int | None = None


def test_query_extract_conversions() -> None:
    ctx = make_ctx("/s?q=red+shoes&page=2&per=2.5&desc=yes&tag=a&tag=b%20c&cursor=99")
    assert ctx.extract(Query[Page]) == Page("red shoes", 2, 2.5, True, ["a", "b c"], 99)


def test_query_extract_defaults_and_optional() -> None:
    assert make_ctx("/s?q=x").extract(Query[Page]) == Page("x")


def test_query_extract_blank_value_for_str() -> None:
    assert make_ctx("/s?q=").extract(Query[Page]).q == ""


def test_query_extract_missing_is_422() -> None:
    with pytest.raises(ExtractError) as info:
        make_ctx("/s").extract(Query[Page])
    assert info.value.status == 422
    assert info.value.message == "query parameter 'q': required field missing"


def test_query_extract_malformed_is_422() -> None:
    with pytest.raises(ExtractError) as info:
        make_ctx("/s?q=x&page=last").extract(Query[Page])
    assert info.value.status == 422
    assert info.value.message == "query parameter 'page': expected integer, got string"


# -- misuse -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Page, Json, Query, list[int], dict], ids=repr)
def test_extract_refuses_anything_but_json_or_query(kind: object) -> None:
    with pytest.raises(TypeError, match="Json"):
        make_ctx(body=b"{}").extract(kind)  # type: ignore[call-overload]


def test_repr() -> None:
    assert repr(make_ctx("/x", params={"a": "1"})) == "<Context POST /x params={'a': '1'}>"


# ---------------------------------------------------------------- the extractor hook


class Bearer:
    """A third-party extractor: ``ctx.extract(Bearer)`` is the Authorization header's token."""

    def __init__(self, token: str) -> None:
        self.token = token

    @classmethod
    def __chopin_extract__(cls, ctx: Context, kind: object) -> Bearer:
        assert kind is cls
        value = ctx.header("authorization") or ""
        if not value.startswith("Bearer "):
            from chopin_core.response import Response

            denied = Response.text("no token", 401).with_header("WWW-Authenticate", "Bearer")
            raise ExtractError("no token", 401, denied)
        return cls(value.removeprefix("Bearer "))


def test_a_type_with_the_hook_extracts_itself() -> None:
    ctx = make_ctx(headers=[b"Host: t", b"Authorization: Bearer abc"])
    assert ctx.extract(Bearer).token == "abc"


def test_the_hook_sees_the_exact_generic_type_asked_for() -> None:
    seen: list[object] = []

    class Box(Generic[T]):
        @classmethod
        def __chopin_extract__(cls, ctx: Context, kind: object) -> Box[int]:
            seen.append(kind)
            return Box()

    ctx = make_ctx()
    assert isinstance(ctx.extract(Box[int]), Box)
    assert seen == [Box[int]]


def test_a_type_without_the_hook_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="__chopin_extract__"):
        make_ctx().extract(int)  # type: ignore[arg-type]


def test_an_extract_error_with_a_response_is_answered_as_is() -> None:
    from chopin_core import Response, Router
    from chopin_core.testclient import TestClient

    def me(ctx: Context) -> Response:
        return Response.text(ctx.extract(Bearer).token)

    router = Router()
    router.get("/me", me)
    client = TestClient(router)
    assert client.get("/me", headers={"Authorization": "Bearer xyz"}).text == "xyz"
    refused = client.get("/me")
    assert refused.status == 401
    assert refused.header("WWW-Authenticate") == "Bearer"
    assert refused.text == "no token"


# -- extractors that wait -------------------------------------------------------------------


class _User:
    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    async def __chopin_extract__(cls, ctx: Context, kind: object) -> _User:
        from chopin_core import sleep

        await sleep(0.01)  # say, a database lookup
        name = ctx.header("x-user")
        if name is None:
            raise ExtractError("who are you?", 401)
        return cls(name)


def test_aextract_awaits_an_extractor_that_waits_and_extract_refuses_it() -> None:
    from chopin_core import TestClient, run_blocking

    router = Router()

    @router.get("/me")
    async def me(ctx: Context) -> Response:
        user = await ctx.aextract(_User)
        return Response.text(user.name)

    client = TestClient(router)
    assert client.get("/me", headers={"X-User": "ada"}).text == "ada"
    assert client.get("/me").status == 401
    ctx = Context(Request("GET", "/", "/", None, True, True, [b"x-user: ada"], b""), {})
    with pytest.raises(TypeError, match=r"await ctx\.aextract"):
        ctx.extract(_User)
    assert run_blocking(ctx.aextract(_User)).name == "ada"


def test_the_workers_inlined_context_matches_context_init() -> None:
    """Worker.respond builds a Context without calling the class: it must set what __init__ sets."""
    import inspect

    from chopin_core import worker

    source = inspect.getsource(worker.Worker.respond)
    req = Request("GET", "/", "/", None, True, True, [b"Host: x"])
    origin = object()
    made = Context(req, {"a": "1"}, origin)  # type: ignore[arg-type]
    inlined = object.__new__(Context)
    assigned = []
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("ctx.") and " = " in line:
            name, _, value = line.partition(" = ")
            assigned.append(name.removeprefix("ctx."))
            setattr(
                inlined,
                name.removeprefix("ctx."),
                {"req": req, "params": made.params, "conn": origin}[value.split()[0]],
            )
    assert assigned == ["req", "params", "_origin"]
    for slot in Context.__slots__:
        assert hasattr(made, slot) == hasattr(inlined, slot), slot
        if hasattr(made, slot):
            assert getattr(made, slot) is getattr(inlined, slot), slot
