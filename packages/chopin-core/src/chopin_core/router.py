"""Routing: an O(1) table for static paths and a segment trie for dynamic ones.

Routes are declared on a :class:`Router` (methods, decorators, ``nest``/``merge``,
``layer``/``layer_path``) and compiled once at start-up into a
:class:`RouteTable`: middleware is composed per route then, so a request pays
one dict lookup for a static path, or one walk down the trie for a dynamic one,
and then a single call.
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from .error_handlers import ErrorHandler, ErrorHandlers, StatusHandler, accepts_json, error_body, wrapper_of
from .errors import ConfigError, RouteConflict
from .filecache import DEFAULT_FILE_CACHE, FileCacheLimits
from .response import Response

if TYPE_CHECKING:
    from .context import Context
    from .types import Handler, Middleware
    from .websocket import WebSocketHandler

__all__ = ["Route", "RouteTable", "Router"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class Route(NamedTuple):
    """One declared route.

    Attributes:
        method: the HTTP method, upper case.
        path: the pattern (``/users/:id``, ``/static/*path``).
        handler: the function answering it.
        layers: middleware that came with it from a nested or merged router,
            outermost first.
    """

    method: str
    path: str
    handler: Handler
    layers: tuple[Middleware, ...] = ()


def _is_int(text: str) -> bool:
    digits = text[1:] if text[:1] == "-" else text
    return digits.isascii() and digits.isdigit()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# The types a path parameter may declare (``/users/:id<int>``): a segment that does not
# fit is not a match, so the request goes on to other routes, then 404.
PARAM_TYPES: dict[str, Callable[[str], bool]] = {"int": _is_int, "uuid": _is_uuid, "str": bool}


def split_param(seg: str) -> tuple[str, str]:
    """``":id<int>"`` → ``("id", "int")``; an untyped ``":id"`` or ``"*rest"`` → ``(name, "str")``."""
    name = seg[1:]
    if name.endswith(">") and "<" in name:
        name, _, kind = name[:-1].partition("<")
        return name, kind
    return name, "str"


def _check_pattern(path: str) -> None:
    if not path.startswith("/"):
        raise RouteConflict(f"route {path!r}: a path must start with '/'")
    segments = path.split("/")[1:]
    names: set[str] = set()
    for i, seg in enumerate(segments):
        if seg[:1] in (":", "*"):
            name, kind = split_param(seg)
            if kind not in PARAM_TYPES or (seg[0] == "*" and kind != "str"):
                raise RouteConflict(
                    f"route {path!r}: parameter {seg!r}: unknown type {kind!r} "
                    f"(expected one of {', '.join(PARAM_TYPES)})"
                )
            if not name.isidentifier():
                raise RouteConflict(f"route {path!r}: parameter {seg!r} needs a name")
            if name in names:
                raise RouteConflict(f"route {path!r}: parameter {name!r} used twice")
            names.add(name)
            if seg[0] == "*" and i != len(segments) - 1:
                raise RouteConflict(f"route {path!r}: a wildcard must be the last segment")


def _join(prefix: str, path: str) -> str:
    prefix = prefix.rstrip("/")
    if path == "/":
        return prefix or "/"
    return prefix + path


def _under(path: str, prefix: str) -> bool:
    """Whether ``path`` lies under ``prefix`` at a segment boundary."""
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


class Router:
    """Declares routes, sub-routers and middleware.

    Every method-named registrar works both ways::

        router.get("/users", list_users)

        @router.get("/users/:id")
        def get_user(ctx): ...
    """

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._layers: list[tuple[str, Middleware]] = []
        self._fallback: Handler | None = None
        self._by_type: dict[type[Exception], ErrorHandler] = {}
        self._by_status: dict[int, StatusHandler] = {}

    # -- declaring routes --------------------------------------------------------

    @overload
    def route(self, method: str, path: str) -> Callable[[Handler], Handler]: ...
    @overload
    def route(self, method: str, path: str, handler: Handler) -> Handler: ...
    def route(self, method: str, path: str, handler: Handler | None = None) -> Handler | Callable[[Handler], Handler]:
        """Register ``handler`` for ``method`` and ``path``; without a handler, return a decorator.

        Raises:
            RouteConflict: the pattern is malformed.
        """
        _check_pattern(path)
        method = method.upper()
        if handler is None:

            def decorate(fn: Handler) -> Handler:
                self._routes.append(Route(method, path, fn))
                return fn

            return decorate
        self._routes.append(Route(method, path, handler))
        return handler

    def get(self, path: str, handler: Handler | None = None) -> Handler | Callable[[Handler], Handler]:
        """Register a GET route (see :meth:`route`)."""
        return self.route("GET", path, handler)  # type: ignore[arg-type]

    def post(self, path: str, handler: Handler | None = None) -> Handler | Callable[[Handler], Handler]:
        """Register a POST route (see :meth:`route`)."""
        return self.route("POST", path, handler)  # type: ignore[arg-type]

    def put(self, path: str, handler: Handler | None = None) -> Handler | Callable[[Handler], Handler]:
        """Register a PUT route (see :meth:`route`)."""
        return self.route("PUT", path, handler)  # type: ignore[arg-type]

    def patch(self, path: str, handler: Handler | None = None) -> Handler | Callable[[Handler], Handler]:
        """Register a PATCH route (see :meth:`route`)."""
        return self.route("PATCH", path, handler)  # type: ignore[arg-type]

    def delete(self, path: str, handler: Handler | None = None) -> Handler | Callable[[Handler], Handler]:
        """Register a DELETE route (see :meth:`route`)."""
        return self.route("DELETE", path, handler)  # type: ignore[arg-type]

    def head(self, path: str, handler: Handler | None = None) -> Handler | Callable[[Handler], Handler]:
        """Register a HEAD route (see :meth:`route`); GET routes answer HEAD by themselves."""
        return self.route("HEAD", path, handler)  # type: ignore[arg-type]

    def options(self, path: str, handler: Handler | None = None) -> Handler | Callable[[Handler], Handler]:
        """Register an OPTIONS route (see :meth:`route`)."""
        return self.route("OPTIONS", path, handler)  # type: ignore[arg-type]

    def static(
        self,
        prefix: str,
        directory: str | os.PathLike[str],
        *,
        index: str | None = "index.html",
        listing: bool = False,
        precompressed: bool = True,
        cache: FileCacheLimits | None = DEFAULT_FILE_CACHE,
    ) -> Router:
        """Serve the files under ``directory`` at ``prefix`` (GET and HEAD).

        Paths that would leave the directory (``..``, symlinks out of it) get 404;
        a directory serves ``index`` or, with ``listing=True``, an HTML listing;
        ``.br``/``.gz`` sidecars are served when the client accepts them.  Small
        files are kept in memory per worker within ``cache``'s limits and checked
        against the disk at most every ``cache.valid`` seconds
        (:mod:`chopin_core.filecache`); ``cache=None`` opens every file per request.
        """
        from .staticfiles import static_handler

        handler = static_handler(
            prefix, directory, index=index, listing=listing, precompressed=precompressed, cache=cache
        )
        base = prefix.rstrip("/")
        self.route("GET", (base or "") + "/*path", handler)
        if base:
            self.route("GET", base, handler)
        return self

    def websocket(
        self,
        path: str,
        factory: Callable[[], WebSocketHandler],
        *,
        subprotocols: Sequence[str] = (),
        max_message_size: int = 16 * 1024 * 1024,
        compression: bool = True,
    ) -> Router:
        """Serve a WebSocket endpoint at ``path`` (a GET route that upgrades).

        Args:
            factory: called once per connection for its handler (a
                :class:`~chopin_core.websocket.WebSocketHandler` subclass works).
            subprotocols: the subprotocols offered, in order of preference.
            max_message_size: a bigger message closes the connection with 1009; for a
                compressed message this bounds its inflated size.
            compression: negotiate permessage-deflate (RFC 7692) when the client offers it.
        """
        from .websocket import websocket_endpoint

        self.route(
            "GET",
            path,
            websocket_endpoint(
                factory, subprotocols=subprotocols, max_message_size=max_message_size, compression=compression
            ),
        )
        return self

    def fallback(self, handler: Handler) -> Handler:
        """Answer requests no route matches with ``handler`` instead of 404/405."""
        self._fallback = handler
        return handler

    # -- composing routers ----------------------------------------------------------

    def nest(self, prefix: str, router: Router) -> Router:
        """Mount every route of ``router`` under ``prefix``; its middleware comes along."""
        _check_pattern(prefix)
        for route in router._compiled_routes():
            self._routes.append(route._replace(path=_join(prefix, route.path)))
        return self

    def merge(self, router: Router) -> Router:
        """Add every route of ``router`` as is; its middleware stays on its own routes."""
        self._routes.extend(router._compiled_routes())
        return self

    def _compiled_routes(self) -> list[Route]:
        """The routes with this router's own layers folded into each (for nest/merge)."""
        out = []
        for route in self._routes:
            mine = tuple(mw for prefix, mw in self._layers if _under(route.path, prefix))
            out.append(route._replace(layers=mine + route.layers))
        return out

    # -- middleware --------------------------------------------------------------

    def layer(self, middleware: Middleware) -> Router:
        """Wrap every route (and the 404/405 answers) in ``middleware``; the first added is outermost."""
        self._layers.append(("", middleware))
        return self

    def layer_path(self, prefix: str, middleware: Middleware) -> Router:
        """Wrap the routes under ``prefix`` in ``middleware``."""
        _check_pattern(prefix)
        self._layers.append((prefix, middleware))
        return self

    # -- error handlers -----------------------------------------------------------

    @overload
    def error_handler(self, key: type[Exception]) -> Callable[[ErrorHandler], ErrorHandler]: ...
    @overload
    def error_handler(self, key: int) -> Callable[[StatusHandler], StatusHandler]: ...
    @overload
    def error_handler(self, key: type[Exception], handler: ErrorHandler) -> ErrorHandler: ...
    @overload
    def error_handler(self, key: int, handler: StatusHandler) -> StatusHandler: ...
    def error_handler(
        self, key: type[Exception] | int, handler: ErrorHandler | StatusHandler | None = None
    ) -> ErrorHandler | StatusHandler | Callable[[Any], Any]:
        """Answer an exception type, or replace the error answers of a status, app-wide.

        ``@router.error_handler(LookupError)`` registers ``fn(ctx, exc) -> Response``
        for that class and its subclasses (the most specific wins);
        ``@router.error_handler(404)`` registers ``fn(ctx, response) -> Response``,
        called with the error answer of a handler, an extractor or the router.
        Both run inside the route's middleware.  Only the router that is compiled
        (the app's) counts: a nested router's error handlers are not carried over.

        Raises:
            ValueError: ``key`` is neither an exception class nor a status 400-599.
        """
        if isinstance(key, int):
            if not 400 <= key <= 599:
                raise ValueError(f"error_handler: expected a status 400-599, got {key}")
        elif not (isinstance(key, type) and issubclass(key, Exception)):
            raise ValueError(f"error_handler: expected an Exception subclass or a status, got {key!r}")

        def register(fn: Any) -> Any:
            if isinstance(key, int):
                self._by_status[key] = fn
            else:
                self._by_type[key] = fn
            return fn

        return register if handler is None else register(handler)

    @property
    def routes(self) -> list[Route]:
        """The declared routes, in order."""
        return list(self._routes)

    @property
    def layers(self) -> list[tuple[str, Middleware]]:
        """This router's own middleware as ``(path prefix, middleware)`` (``""``: every route), first added first.

        The layers of nested or merged routers travel with their routes (``Route.layers``).
        """
        return list(self._layers)

    def compile(self) -> RouteTable:
        """Build the lookup table, composing each route's middleware once.

        Raises:
            RouteConflict: two routes claim the same method and path.
        """
        table = RouteTable()
        errors = ErrorHandlers(self._by_type, self._by_status)
        global_layers = tuple(mw for prefix, mw in self._layers if not prefix)
        for route in self._routes:
            layers = tuple(mw for prefix, mw in self._layers if _under(route.path, prefix)) + route.layers
            handler = route.handler
            _check_handler(route.method, route.path, handler)
            if layers or errors:
                # Errors become responses inside the middleware; a bare route is left to the worker.
                handler = errors.guard(handler)
            table.add(route.method, route.path, _compose(handler, layers))
        table.finish(global_layers, self._fallback, errors)
        return table


def _check_handler(method: str, path: str, handler: Handler) -> None:
    """A handler that cannot be called as ``handler(ctx)`` fails at start-up, not on its first request.

    Raises:
        ConfigError: ``handler`` is not callable with one positional argument.
    """
    if not callable(handler):
        raise ConfigError(f"route {method} {path}: handler {handler!r} is not callable")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return  # a builtin without a signature: it is called and judged per request
    try:
        signature.bind(None)
    except TypeError:
        name = getattr(handler, "__qualname__", repr(handler))
        raise ConfigError(
            f"route {method} {path}: handler {name}{signature} cannot be called as handler(ctx); "
            "a handler takes the request context and returns a Response (async def: awaits, then returns one)"
        ) from None


def _compose(handler: Handler, layers: tuple[Middleware, ...]) -> Handler:
    """Wrap ``handler`` in ``layers``, outermost first; the chain waits if the handler or a layer does.

    Raises:
        ConfigError: a synchronous layer without an async form would wrap a handler that waits.
    """
    waiting = inspect.iscoroutinefunction(handler)
    if not waiting and any(inspect.iscoroutinefunction(mw) for mw in layers):
        handler = _as_waiting(handler)
        waiting = True
    for mw in reversed(layers):
        handler = _bind_waiting(mw, handler) if waiting else _bind(mw, handler)
    return handler


def _as_waiting(handler: Handler) -> Any:
    async def waiting(ctx: Context) -> Response:
        return handler(ctx)

    return wrapper_of(waiting, handler, getattr(handler, "__name__", "handler"))


def _bind_waiting(mw: Middleware, nxt: Any) -> Any:
    amw: Any = mw if inspect.iscoroutinefunction(mw) else getattr(mw, "asynchronous", None)
    if amw is None:
        name = getattr(mw, "__name__", repr(mw))
        raise ConfigError(
            f"middleware {name} is synchronous and cannot wrap a handler that waits: write it as "
            f"`async def {name}(ctx, call_next)` and `return await call_next(ctx)`"
        )

    async def layered(ctx: Context) -> Response:
        return await amw(ctx, nxt)  # type: ignore[no-any-return]

    return wrapper_of(layered, nxt, getattr(mw, "__name__", "middleware"))


def _bind(mw: Middleware, nxt: Handler) -> Handler:
    def layered(ctx: Context) -> Response:
        return mw(ctx, nxt)

    return wrapper_of(layered, nxt, getattr(mw, "__name__", "middleware"))


class _Node:
    """A trie node: static children by segment, then one :param child, then a *wildcard."""

    __slots__ = (
        "children",
        "handlers",
        "param",
        "param_check",
        "param_kind",
        "param_name",
        "wild_handlers",
        "wild_name",
    )

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.param_name = ""
        self.param_kind = "str"
        self.param_check: Callable[[str], bool] | None = None  # None: any non-empty segment
        self.handlers: dict[str, Handler] = {}
        self.wild_name = ""
        self.wild_handlers: dict[str, Handler] = {}


class RouteTable:
    """The compiled, read-only routing table one worker uses.

    :meth:`lookup` returns ``(handler, params)``; for an unknown path the handler
    answers 404, for a known path with another method 405 with ``Allow``.
    """

    def __init__(self) -> None:
        self.static: dict[str, dict[str, Handler]] = {}
        self._root = _Node()
        self._not_found: Handler = _not_found
        self.patterns: list[tuple[str, str]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        """Add one composed handler."""
        if ":" not in path and "*" not in path:
            methods = self.static.setdefault(path, {})
        else:
            node = self._root
            segments = path.split("/")[1:]
            methods = node.handlers
            for seg in segments:
                if seg[0] == ":":
                    name, kind = split_param(seg)
                    if node.param is None:
                        node.param = _Node()
                        node.param_name = name
                        node.param_kind = kind
                        node.param_check = None if kind == "str" else PARAM_TYPES[kind]
                    elif node.param_name != name or node.param_kind != kind:
                        raise RouteConflict(
                            f"route {path!r}: parameter {seg} clashes with :{node.param_name}"
                            f"{'' if node.param_kind == 'str' else '<' + node.param_kind + '>'} at the same place"
                        )
                    node = node.param
                    methods = node.handlers
                elif seg[0] == "*":
                    if node.wild_name and node.wild_name != seg[1:]:
                        raise RouteConflict(f"route {path!r}: wildcard *{seg[1:]} clashes with *{node.wild_name}")
                    node.wild_name = seg[1:]
                    methods = node.wild_handlers
                else:
                    node = node.children.setdefault(seg, _Node())
                    methods = node.handlers
        if method in methods:
            raise RouteConflict(f"route {method} {path} declared twice")
        methods[method] = handler
        self.patterns.append((method, path))

    def finish(
        self, global_layers: tuple[Middleware, ...], fallback: Handler | None, errors: ErrorHandlers | None = None
    ) -> None:
        """Fix the not-found answer; GET routes also answer HEAD."""
        errors = errors if errors is not None else ErrorHandlers()
        self._guard: Callable[[Handler], Handler] = errors.guard if global_layers or errors else _bare
        self._not_found = _compose(self._guard(fallback or _not_found), global_layers)
        self._global_layers = global_layers
        self._fallback = fallback
        if "*" not in self.static:
            # OPTIONS * asks about the server as a whole (RFC 9110 9.3.7).
            served = {m for m, _ in self.patterns} | {"OPTIONS"}
            if "GET" in served:
                served.add("HEAD")
            allow = sorted(served)

            def server_options(ctx: Context) -> Response:
                return Response.new(200).with_header("Allow", ", ".join(allow))

            self.static["*"] = {"OPTIONS": _compose(self._guard(server_options), global_layers)}
        for methods in self.static.values():
            if "GET" in methods and "HEAD" not in methods:
                methods["HEAD"] = methods["GET"]
        stack = [self._root]
        while stack:
            node = stack.pop()
            for methods in (node.handlers, node.wild_handlers):
                if "GET" in methods and "HEAD" not in methods:
                    methods["HEAD"] = methods["GET"]
            stack.extend(node.children.values())
            if node.param is not None:
                stack.append(node.param)

    def lookup(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """Find the handler for ``method`` and ``path`` (percent-encoded, as sent).

        The params dict is new on every call: handlers and middleware may write
        to ``ctx.params``, and a dict shared between requests would carry one
        request's values into the next.
        """
        methods = self.static.get(path)
        params: dict[str, str] = {}
        if methods is None:
            found = self._match(path)
            if found is None:
                return self._not_found, params
            methods, params = found
        handler = methods.get(method)
        if handler is None:
            return self._method_not_allowed(methods), params
        return handler, params

    def _match(self, path: str) -> tuple[dict[str, Handler], dict[str, str]] | None:
        segments = path.split("/")[1:]
        params: dict[str, str] = {}
        found = self._walk(self._root, segments, 0, params)
        return None if found is None else (found, params)

    def _walk(self, node: _Node, segs: list[str], i: int, params: dict[str, str]) -> dict[str, Handler] | None:
        # Static children first, then :param, then *wildcard (with backtracking).
        if i == len(segs):
            return node.handlers or None
        seg = segs[i]
        child = node.children.get(seg)
        if child is not None:
            found = self._walk(child, segs, i + 1, params)
            if found is not None:
                return found
        if node.param is not None and seg and (node.param_check is None or node.param_check(seg)):
            found = self._walk(node.param, segs, i + 1, params)
            if found is not None:
                params[node.param_name] = seg
                return found
        if node.wild_handlers:
            params[node.wild_name] = "/".join(segs[i:])
            return node.wild_handlers
        return None

    def _method_not_allowed(self, methods: dict[str, Handler]) -> Handler:
        if self._fallback is not None:
            return self._not_found
        allow = sorted(methods)

        def not_allowed(ctx: Context) -> Response:
            if accepts_json(ctx.req):
                return error_body(ctx.req, 405, "Method Not Allowed").with_header("Allow", ", ".join(allow))
            return Response.method_not_allowed(allow)

        return _compose(self._guard(not_allowed), self._global_layers)


def _bare(handler: Handler) -> Handler:
    return handler


def _not_found(ctx: Context) -> Response:
    # Not the hot path: a 404 may read the Accept header to answer in JSON.
    if accepts_json(ctx.req):
        return error_body(ctx.req, 404, "Not Found")
    return Response.not_found()
