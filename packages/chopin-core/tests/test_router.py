"""Router and RouteTable: precedence, parameters, 404/405, composition and middleware order."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chopin_core.context import Context
from chopin_core.errors import RouteConflict
from chopin_core.request import Request
from chopin_core.response import Response
from chopin_core.router import Router, RouteTable

Handler = Callable[[Context], Response]


def named(name: str) -> Handler:
    """A handler answering its own name, so a test can see which route matched."""

    def handler(ctx: Context) -> Response:
        return Response.text(name)

    handler.__name__ = name
    return handler


def call(table: RouteTable, method: str, path: str) -> tuple[Response, dict[str, str]]:
    handler, params = table.lookup(method, path)
    req = Request(method, path, path, None, True, True, [b"Host: test"])
    return handler(Context(req, params)), params


def answer(table: RouteTable, method: str, path: str) -> tuple[int, str]:
    resp, _ = call(table, method, path)
    return resp.status, resp.body.decode()


def allow(resp: Response) -> str | None:
    return dict(resp.headers).get("Allow")


# -- matching -------------------------------------------------------------------------------------


def test_static_route() -> None:
    router = Router()
    router.get("/", named("root"))
    router.get("/a/b", named("ab"))
    table = router.compile()
    assert answer(table, "GET", "/") == (200, "root")
    assert answer(table, "GET", "/a/b") == (200, "ab")
    assert answer(table, "GET", "/a/b/")[0] == 404
    assert answer(table, "GET", "/a")[0] == 404


def test_static_beats_param() -> None:
    router = Router()
    router.get("/users/:id", named("by-id"))
    router.get("/users/me", named("me"))
    table = router.compile()
    assert answer(table, "GET", "/users/me") == (200, "me")
    assert answer(table, "GET", "/users/42") == (200, "by-id")


def test_static_segment_beats_param_inside_the_trie() -> None:
    router = Router()
    router.get("/a/:x/c", named("axc"))
    router.get("/a/b/:y", named("aby"))
    table = router.compile()
    resp, params = call(table, "GET", "/a/b/c")
    assert (resp.body, params) == (b"aby", {"y": "c"})
    resp, params = call(table, "GET", "/a/z/c")
    assert (resp.body, params) == (b"axc", {"x": "z"})
    resp, params = call(table, "GET", "/a/b/q")
    assert (resp.body, params) == (b"aby", {"y": "q"})


def test_backtracks_from_a_static_dead_end_to_the_param() -> None:
    router = Router()
    router.get("/a/:x/c", named("axc"))
    router.get("/a/b/:y/e", named("abye"))
    table = router.compile()
    resp, params = call(table, "GET", "/a/b/c")  # /a/b/... leads nowhere for 'c' alone
    assert (resp.body, params) == (b"axc", {"x": "b"})
    resp, params = call(table, "GET", "/a/b/d/e")
    assert (resp.body, params) == (b"abye", {"y": "d"})


def test_backtracks_from_param_to_wildcard_without_stale_params() -> None:
    router = Router()
    router.get("/files/:name/info", named("info"))
    router.get("/files/*rest", named("wild"))
    table = router.compile()
    resp, params = call(table, "GET", "/files/a/info")
    assert (resp.body, params) == (b"info", {"name": "a"})
    resp, params = call(table, "GET", "/files/a/other")
    assert (resp.body, params) == (b"wild", {"rest": "a/other"})


def test_param_beats_wildcard() -> None:
    router = Router()
    router.get("/s/*path", named("wild"))
    router.get("/s/:one", named("one"))
    table = router.compile()
    assert answer(table, "GET", "/s/x") == (200, "one")
    assert answer(table, "GET", "/s/x/y") == (200, "wild")


def test_param_values() -> None:
    router = Router()
    router.get("/orgs/:org/repos/:repo", named("repo"))
    _, params = call(router.compile(), "GET", "/orgs/acme/repos/rocket%20ship")
    assert params == {"org": "acme", "repo": "rocket%20ship"}  # still percent-encoded


def test_param_does_not_match_an_empty_segment() -> None:
    router = Router()
    router.get("/users/:id", named("id"))
    table = router.compile()
    assert answer(table, "GET", "/users/")[0] == 404
    assert answer(table, "GET", "/users")[0] == 404
    assert answer(table, "GET", "/users/1/more")[0] == 404


def test_wildcard_captures_the_rest_including_slashes() -> None:
    router = Router()
    router.get("/static/*path", named("static"))
    table = router.compile()
    assert call(table, "GET", "/static/css/site/main.css")[1] == {"path": "css/site/main.css"}
    assert call(table, "GET", "/static/a")[1] == {"path": "a"}
    assert call(table, "GET", "/static/")[1] == {"path": ""}
    assert call(table, "GET", "/static/a//b/")[1] == {"path": "a//b/"}
    assert answer(table, "GET", "/static")[0] == 404


def test_wildcard_at_the_root() -> None:
    router = Router()
    router.get("/*all", named("all"))
    router.get("/health", named("health"))
    table = router.compile()
    assert answer(table, "GET", "/health") == (200, "health")
    assert call(table, "GET", "/x/y")[1] == {"all": "x/y"}


# -- 404 / 405 / HEAD ---------------------------------------------------------------------------


def test_unknown_path_is_404() -> None:
    router = Router()
    router.get("/a", named("a"))
    router.get("/b/:x", named("b"))
    table = router.compile()
    resp, params = call(table, "GET", "/nope")
    assert resp.status == 404
    assert resp.body == b"Not Found"
    assert params == {}
    assert answer(table, "GET", "/b")[0] == 404


def test_known_path_other_method_is_405_with_sorted_allow() -> None:
    router = Router()
    router.put("/item", named("put"))
    router.get("/item", named("get"))
    router.delete("/item", named("delete"))
    resp, _ = call(router.compile(), "POST", "/item")
    assert resp.status == 405
    assert allow(resp) == "DELETE, GET, HEAD, PUT"


def test_405_on_a_dynamic_path() -> None:
    router = Router()
    router.post("/users/:id", named("post"))
    router.patch("/users/:id", named("patch"))
    resp, _ = call(router.compile(), "GET", "/users/7")
    assert resp.status == 405
    assert allow(resp) == "PATCH, POST"


def test_405_on_a_wildcard_path() -> None:
    router = Router()
    router.get("/w/*rest", named("get"))
    resp, _ = call(router.compile(), "DELETE", "/w/a/b")
    assert resp.status == 405
    assert allow(resp) == "GET, HEAD"


def test_get_implies_head() -> None:
    router = Router()
    router.get("/static", named("get-static"))
    router.get("/dyn/:x", named("get-dyn"))
    router.get("/wild/*x", named("get-wild"))
    table = router.compile()
    assert answer(table, "HEAD", "/static") == (200, "get-static")
    assert answer(table, "HEAD", "/dyn/1") == (200, "get-dyn")
    assert answer(table, "HEAD", "/wild/1/2") == (200, "get-wild")


def test_explicit_head_route_wins_over_get() -> None:
    router = Router()
    router.get("/x", named("get"))
    router.head("/x", named("head"))
    assert answer(router.compile(), "HEAD", "/x") == (200, "head")


def test_head_not_implied_without_get() -> None:
    router = Router()
    router.post("/x", named("post"))
    resp, _ = call(router.compile(), "HEAD", "/x")
    assert resp.status == 405
    assert allow(resp) == "POST"


def test_fallback_replaces_404_and_405() -> None:
    router = Router()
    router.get("/x", named("x"))
    router.fallback(named("fallback"))
    table = router.compile()
    assert answer(table, "GET", "/missing") == (200, "fallback")
    assert answer(table, "POST", "/x") == (200, "fallback")
    assert answer(table, "GET", "/x") == (200, "x")


def test_every_registrar_and_route() -> None:
    router = Router()
    for method in ("get", "post", "put", "patch", "delete", "head", "options"):
        getattr(router, method)("/m", named(method))
    router.route("purge", "/m", named("purge-handler"))
    table = router.compile()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
        assert answer(table, method, "/m") == (200, method.lower())
    assert answer(table, "PURGE", "/m") == (200, "purge-handler")
    assert [(r.method, r.path) for r in router.routes][-1] == ("PURGE", "/m")


def test_registrars_work_as_decorators() -> None:
    router = Router()

    @router.get("/deco/:id")
    def deco(ctx: Context) -> Response:
        return Response.text(ctx.param("id") or "")

    assert deco.__name__ == "deco"  # the decorator hands the function back
    assert answer(router.compile(), "GET", "/deco/9") == (200, "9")


# -- nest / merge --------------------------------------------------------------------------------


def test_nest_under_a_prefix() -> None:
    api = Router()
    api.get("/", named("api-root"))
    api.get("/users/:id", named("api-user"))
    app = Router()
    app.get("/", named("root"))
    app.nest("/api/v1", api)
    table = app.compile()
    assert answer(table, "GET", "/") == (200, "root")
    assert answer(table, "GET", "/api/v1") == (200, "api-root")
    resp, params = call(table, "GET", "/api/v1/users/3")
    assert (resp.body, params) == (b"api-user", {"id": "3"})
    assert answer(table, "GET", "/users/3")[0] == 404


def test_nest_prefix_with_trailing_slash() -> None:
    sub = Router()
    sub.get("/x", named("x"))
    app = Router().nest("/p/", sub)
    assert answer(app.compile(), "GET", "/p/x") == (200, "x")


def test_nest_under_root_prefix() -> None:
    sub = Router()
    sub.get("/", named("sub-root"))
    sub.get("/x", named("x"))
    app = Router().nest("/", sub)
    table = app.compile()
    assert answer(table, "GET", "/") == (200, "sub-root")
    assert answer(table, "GET", "/x") == (200, "x")


def test_nest_refuses_a_bad_prefix() -> None:
    with pytest.raises(RouteConflict):
        Router().nest("api", Router())


def test_merge_adds_routes_as_they_are() -> None:
    a = Router()
    a.get("/a", named("a"))
    b = Router()
    b.get("/b/:x", named("b"))
    app = Router()
    app.merge(a).merge(b)
    table = app.compile()
    assert answer(table, "GET", "/a") == (200, "a")
    assert answer(table, "GET", "/b/1") == (200, "b")


def test_merge_conflict_is_detected() -> None:
    a = Router()
    a.get("/x", named("a"))
    b = Router()
    b.get("/x", named("b"))
    with pytest.raises(RouteConflict):
        Router().merge(a).merge(b).compile()


# -- middleware --------------------------------------------------------------------------------


def recorder(log: list[str], name: str) -> Callable[[Context, Handler], Response]:
    def mw(ctx: Context, nxt: Handler) -> Response:
        log.append(f"{name}>")
        resp = nxt(ctx)
        log.append(f"<{name}")
        return resp

    mw.__name__ = name
    return mw


def recording_handler(log: list[str], name: str) -> Handler:
    def handler(ctx: Context) -> Response:
        log.append(name)
        return Response.text(name)

    return handler


def test_layers_first_added_is_outermost() -> None:
    log: list[str] = []
    router = Router()
    router.get("/x", recording_handler(log, "handler"))
    router.layer(recorder(log, "first")).layer(recorder(log, "second")).layer(recorder(log, "third"))
    call(router.compile(), "GET", "/x")
    assert log == ["first>", "second>", "third>", "handler", "<third", "<second", "<first"]


def test_layer_added_before_or_after_routes_applies_to_all() -> None:
    log: list[str] = []
    router = Router()
    router.get("/before", recording_handler(log, "before"))
    router.layer(recorder(log, "mw"))
    router.get("/after/:x", recording_handler(log, "after"))
    table = router.compile()
    call(table, "GET", "/before")
    call(table, "GET", "/after/1")
    assert log == ["mw>", "before", "<mw", "mw>", "after", "<mw"]


def test_layer_applies_to_404_and_405() -> None:
    log: list[str] = []
    router = Router()
    router.get("/x", recording_handler(log, "x"))
    router.layer(recorder(log, "mw"))
    table = router.compile()
    assert call(table, "GET", "/missing")[0].status == 404
    assert log == ["mw>", "<mw"]
    log.clear()
    assert call(table, "DELETE", "/x")[0].status == 405
    assert log == ["mw>", "<mw"]


def test_layer_applies_to_fallback() -> None:
    log: list[str] = []
    router = Router()
    router.fallback(recording_handler(log, "fallback"))
    router.layer(recorder(log, "mw"))
    call(router.compile(), "GET", "/anything")
    assert log == ["mw>", "fallback", "<mw"]


def test_middleware_can_answer_without_calling_next() -> None:
    router = Router()
    router.get("/x", named("x"))

    def deny(ctx: Context, nxt: Handler) -> Response:
        return Response.forbidden()

    router.layer(deny)
    assert answer(router.compile(), "GET", "/x") == (403, "Forbidden")


def test_middleware_state_reaches_the_handler() -> None:
    router = Router()

    def who(ctx: Context) -> Response:
        return Response.text(ctx.state["user"])

    def auth(ctx: Context, nxt: Handler) -> Response:
        ctx.state["user"] = "ada"
        return nxt(ctx)

    router.get("/me", who)
    router.layer(auth)
    assert answer(router.compile(), "GET", "/me") == (200, "ada")


def test_layer_path_is_scoped_at_a_segment_boundary() -> None:
    log: list[str] = []
    router = Router()
    for path in ("/admin", "/admin/users", "/admin/:id/edit", "/administrator", "/adminx/y", "/public"):
        router.get(path, recording_handler(log, path))
    router.layer_path("/admin", recorder(log, "admin-mw"))
    table = router.compile()
    for path in ("/admin", "/admin/users", "/admin/3/edit"):
        log.clear()
        call(table, "GET", path)
        assert log[0] == "admin-mw>", path
    for path in ("/administrator", "/adminx/y", "/public"):
        log.clear()
        call(table, "GET", path)
        assert "admin-mw>" not in log, path


def test_layer_path_does_not_apply_to_404() -> None:
    log: list[str] = []
    router = Router()
    router.get("/admin/x", recording_handler(log, "x"))
    router.layer_path("/admin", recorder(log, "admin-mw"))
    assert call(router.compile(), "GET", "/admin/missing")[0].status == 404
    assert log == []


def test_layer_path_and_global_layers_keep_declaration_order() -> None:
    log: list[str] = []
    router = Router()
    router.get("/admin/x", recording_handler(log, "h"))
    router.layer(recorder(log, "global"))
    router.layer_path("/admin", recorder(log, "admin"))
    call(router.compile(), "GET", "/admin/x")
    assert log == ["global>", "admin>", "h", "<admin", "<global"]


def test_nested_router_layers_stay_on_its_routes() -> None:
    log: list[str] = []
    api = Router()
    api.get("/items", recording_handler(log, "items"))
    api.layer(recorder(log, "api-mw"))
    app = Router()
    app.get("/home", recording_handler(log, "home"))
    app.layer(recorder(log, "app-mw"))
    app.nest("/api", api)
    table = app.compile()

    call(table, "GET", "/api/items")
    assert log == ["app-mw>", "api-mw>", "items", "<api-mw", "<app-mw"]
    log.clear()
    call(table, "GET", "/home")
    assert log == ["app-mw>", "home", "<app-mw"]
    log.clear()
    call(table, "GET", "/api/missing")
    assert log == ["app-mw>", "<app-mw"]


def test_nested_router_layer_path_is_relative_to_the_nested_router() -> None:
    log: list[str] = []
    api = Router()
    api.get("/admin/x", recording_handler(log, "admin-x"))
    api.get("/open", recording_handler(log, "open"))
    api.layer_path("/admin", recorder(log, "api-admin"))
    table = Router().nest("/api", api).compile()
    call(table, "GET", "/api/admin/x")
    assert log == ["api-admin>", "admin-x", "<api-admin"]
    log.clear()
    call(table, "GET", "/api/open")
    assert log == ["open"]


def test_merged_router_layers_stay_on_its_routes() -> None:
    log: list[str] = []
    other = Router()
    other.get("/o", recording_handler(log, "o"))
    other.layer(recorder(log, "other-mw"))
    app = Router()
    app.get("/a", recording_handler(log, "a"))
    app.merge(other)
    table = app.compile()
    call(table, "GET", "/a")
    assert log == ["a"]
    log.clear()
    call(table, "GET", "/o")
    assert log == ["other-mw>", "o", "<other-mw"]


def test_composed_handler_keeps_the_middleware_name() -> None:
    router = Router()
    router.get("/x", named("x"))
    router.layer(recorder([], "timing"))
    handler, _ = router.compile().lookup("GET", "/x")
    assert handler.__name__ == "timing"


# -- conflicts and bad patterns --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [("/x", "/x"), ("/u/:id", "/u/:id"), ("/w/*rest", "/w/*rest"), ("/a/:x/b", "/a/:x/b")],
)
def test_duplicate_route_is_a_conflict(first: str, second: str) -> None:
    router = Router()
    router.get(first, named("one"))
    router.get(second, named("two"))
    with pytest.raises(RouteConflict, match="declared twice"):
        router.compile()


def test_same_path_other_method_is_not_a_conflict() -> None:
    router = Router()
    router.get("/x/:id", named("get"))
    router.post("/x/:id", named("post"))
    table = router.compile()
    assert answer(table, "POST", "/x/1") == (200, "post")


def test_lowercase_method_is_normalised_for_conflicts() -> None:
    router = Router()
    router.route("get", "/x", named("one"))
    router.get("/x", named("two"))
    with pytest.raises(RouteConflict):
        router.compile()


@pytest.mark.parametrize(
    "pattern",
    ["", "users", "users/:id", "/files/*rest/more", "/a/*", "/a/:", "/a/:1x", "/a/:x/:x", "/a/:x/*x"],
    ids=[
        "empty",
        "no-leading-slash",
        "relative-with-param",
        "wildcard-not-last",
        "unnamed-wildcard",
        "unnamed-param",
        "param-not-identifier",
        "param-twice",
        "param-and-wildcard-same-name",
    ],
)
def test_bad_pattern_is_refused_at_declaration(pattern: str) -> None:
    router = Router()
    with pytest.raises(RouteConflict):
        router.get(pattern, named("h"))
    with pytest.raises(RouteConflict):
        router.get(pattern)
    assert router.routes == []


def test_bad_layer_path_prefix() -> None:
    with pytest.raises(RouteConflict):
        Router().layer_path("admin", recorder([], "mw"))


def test_clashing_param_names_at_the_same_position() -> None:
    router = Router()
    router.get("/users/:id", named("a"))
    router.get("/users/:user_id/posts", named("b"))
    with pytest.raises(RouteConflict, match="clashes"):
        router.compile()


def test_clashing_wildcard_names_at_the_same_position() -> None:
    router = Router()
    router.get("/w/*a", named("a"))
    router.post("/w/*b", named("b"))
    with pytest.raises(RouteConflict, match="clashes"):
        router.compile()


def test_same_param_name_at_the_same_position_is_fine() -> None:
    router = Router()
    router.get("/users/:id", named("a"))
    router.get("/users/:id/posts", named("b"))
    table = router.compile()
    resp, params = call(table, "GET", "/users/5/posts")
    assert (resp.body, params) == (b"b", {"id": "5"})


def test_patterns_are_listed() -> None:
    router = Router()
    router.get("/a", named("a"))
    router.post("/b/:x", named("b"))
    assert router.compile().patterns == [("GET", "/a"), ("POST", "/b/:x")]


def test_options_asterisk_lists_the_methods_the_app_serves() -> None:
    router = Router()
    router.get("/a", lambda ctx: Response.text("a"))
    router.delete("/b/:id", lambda ctx: Response.new(204))
    handler, _ = router.compile().lookup("OPTIONS", "*")
    resp = handler(None)  # type: ignore[arg-type]
    assert resp.status == 200
    assert dict(resp.headers)["Allow"] == "DELETE, GET, HEAD, OPTIONS"


# -- per-request params over a real server --------------------------------------------------------


def test_params_set_by_middleware_do_not_leak_into_the_next_request(serve, connect) -> None:
    """Issue 15 item 2: every request gets its own params dict, static routes and 404 included."""
    server = serve("apps.params_app:app")
    conn = connect(server)
    for path, anonymous in (("/me", "user=anonymous"), ("/not-a-route", "no route; user=anonymous")):
        signed_in = conn.request("GET", path, [("X-User", "alice")])
        assert signed_in.body == anonymous.replace("anonymous", "alice").encode()
        # The next request, on the same connection and on a new one, is nobody's.
        assert conn.request("GET", path).body == anonymous.encode()
        assert connect(server).request("GET", path).body == anonymous.encode()


def test_lookup_returns_a_new_params_dict_every_time() -> None:
    router = Router()
    router.get("/static", named("static"))
    router.get("/user/:id", named("user"))
    table = router.compile()
    for path in ("/static", "/missing", "/user/1"):
        first = table.lookup("GET", path)[1]
        first["user"] = "alice"
        assert "user" not in table.lookup("GET", path)[1]


# -- handlers that wait (async def) ------------------------------------------------------


def test_a_handler_that_cannot_take_ctx_fails_at_compile_time() -> None:
    from chopin_core import ConfigError

    router = Router()

    @router.get("/two")
    def two(ctx: Context, extra: int) -> Response:
        return Response.text("never")

    with pytest.raises(ConfigError, match=r"GET /two: handler .*two\(ctx: 'Context', extra: 'int'\)"):
        router.compile()


def test_a_plain_middleware_around_a_waiting_handler_fails_at_compile_time() -> None:
    from chopin_core import ConfigError

    router = Router()

    @router.get("/w")
    async def waits(ctx: Context) -> Response:
        return Response.text("w")

    def plain(ctx: Context, nxt: Handler) -> Response:
        return nxt(ctx)

    router.layer(plain)
    with pytest.raises(ConfigError, match=r"middleware plain is synchronous.*async def plain"):
        router.compile()


def test_waiting_routes_are_served_through_the_test_client() -> None:
    from chopin_core import TestClient, sleep

    router = Router()

    @router.get("/w")
    async def waits(ctx: Context) -> Response:
        await sleep(0.01)
        return Response.text("waited")

    async def mark(ctx: Context, nxt: Handler) -> Response:
        resp = await nxt(ctx)  # type: ignore[misc]
        return resp.with_header("X-Mark", "1")

    router.layer(mark)
    client = TestClient(router)
    resp = client.get("/w")
    assert (resp.status, resp.body, resp.header("x-mark")) == (200, b"waited", "1")


# -- typed path parameters ----------------------------------------------------------------


def test_a_typed_parameter_matches_only_its_type_and_else_404() -> None:
    from chopin_core import TestClient

    router = Router()

    @router.get("/users/:id<int>")
    def by_id(ctx: Context) -> Response:
        return Response.text(f"id {ctx.param_parse('id', int) + 1}")

    @router.get("/keys/:key<uuid>")
    def by_key(ctx: Context) -> Response:
        return Response.text(f"key {ctx.param('key')}")

    client = TestClient(router)
    assert client.get("/users/41").body == b"id 42"
    assert client.get("/users/-3").body == b"id -2"
    assert client.get("/users/abc").status == 404
    assert client.get("/users/4%D9%A2").status == 404  # percent-encoded non-ASCII digits are not an int
    key = "12345678-1234-5678-1234-567812345678"
    assert client.get(f"/keys/{key}").body == f"key {key}".encode()
    assert client.get("/keys/not-a-uuid").status == 404


def test_a_typed_parameter_of_an_unknown_type_or_a_clash_fails_at_declaration() -> None:
    router = Router()
    with pytest.raises(RouteConflict, match="unknown type 'date'"):
        router.get("/d/:when<date>", lambda ctx: Response.text(""))
    table = RouteTable()
    table.add("GET", "/u/:id<int>", lambda ctx: Response.text(""))
    with pytest.raises(RouteConflict, match="clashes"):
        table.add("GET", "/u/:id/x", lambda ctx: Response.text(""))


def test_param_parse_body_json_and_query_sugar() -> None:
    import dataclasses

    from chopin_core import TestClient

    @dataclasses.dataclass
    class Page:
        n: int = 1

    @dataclasses.dataclass
    class Item:
        name: str

    router = Router()

    @router.post("/items/:id")
    def make(ctx: Context) -> Response:
        item = ctx.body_json(Item)
        page = ctx.query(Page)
        return Response.text(f"{ctx.param_parse('id', int)} {item.name} {page.n}")

    client = TestClient(router)
    assert client.post("/items/7?n=3", json={"name": "pen"}).body == b"7 pen 3"
    bad = client.post("/items/x", json={"name": "pen"})
    assert bad.status == 400 and b"path parameter 'id': expected int, got 'x'" in bad.body
    assert client.post("/items/7", json={"nome": "pen"}).status == 422
