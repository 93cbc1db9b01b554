"""Ready-made middleware factories for :meth:`Router.layer` and :meth:`Router.layer_path`.

Each factory checks its arguments once and returns a plain
:data:`~chopin_core.Middleware`; the values it writes into headers are encoded
then, not per request.  Error answers (a handler's exception, a 400/422 from an
extractor, the router's 404/405) pass through middleware like any other answer
(see :mod:`chopin_core.error_handlers`), so these decorate them too.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .response import Response

if TYPE_CHECKING:
    from .context import Context
    from .types import AsyncHandler, AsyncMiddleware, Handler, Middleware

__all__ = ["REQUEST_ID_HEADER", "REQUEST_ID_MAX_LENGTH", "cors", "request_id", "with_async_form"]


def with_async_form(middleware: Middleware, asynchronous: AsyncMiddleware) -> Middleware:
    """Give a synchronous middleware the form it takes around handlers that wait.

    A route whose handler (or another layer) is ``async def`` is composed from each
    layer's async form: a plain ``def`` layer without one is refused at start-up.
    The ready-made layers here carry both forms; write yours as ``async def`` if it
    only wraps handlers that wait, or give it both with this function.

    Returns:
        ``middleware``, carrying ``asynchronous`` as its ``asynchronous`` attribute.
    """
    middleware.asynchronous = asynchronous  # type: ignore[attr-defined]
    return middleware


DEFAULT_CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _tokens(values: Iterable[str], what: str) -> tuple[str, ...]:
    out = tuple(values)
    for value in out:
        if not value or any(c in value for c in "\r\n\0,"):
            raise ValueError(f"cors: {what} entry {value!r} is empty or holds CR, LF, NUL or a comma")
    return out


def cors(
    allow_origins: Iterable[str],
    *,
    allow_methods: Iterable[str] = DEFAULT_CORS_METHODS,
    allow_headers: Iterable[str] = (),
    allow_credentials: bool = False,
    max_age: int = 600,
    expose_headers: Iterable[str] = (),
) -> Middleware:
    """Cross-origin resource sharing (the Fetch standard's CORS protocol) as middleware.

    A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
    is answered here without calling the handler: 204 with the allowed methods and
    headers when the origin, method and headers are allowed, else 403 without any
    ``Access-Control-Allow-*`` field.  Other requests from an allowed origin get
    ``Access-Control-Allow-Origin`` (and ``-Credentials``, ``-Expose-Headers``) on
    whatever answers them, errors included.  Every answer carries ``Vary: Origin``
    unless the allowed origin is a plain ``*``, so caches keep one copy per origin.
    Layer it with :meth:`Router.layer` so that preflights to paths without an
    ``OPTIONS`` route (answered by the router's 405) are seen too.

    Args:
        allow_origins: origins as the browser sends them (``https://app.example``),
            or ``"*"`` for any.
        allow_methods: methods a preflight may ask for.
        allow_headers: request headers a preflight may ask for (case-insensitive),
            or ``"*"`` for any.
        allow_credentials: send ``Access-Control-Allow-Credentials: true``; the
            origin is then echoed, never ``*`` (the standard forbids ``*`` with credentials).
        max_age: seconds a browser may cache a preflight answer.
        expose_headers: response headers scripts may read.

    Raises:
        ValueError: no origin, a malformed entry, or a negative ``max_age``.
    """
    origins = _tokens(allow_origins, "allow_origins")
    if not origins:
        raise ValueError("cors: allow_origins is empty; name the origins, or '*' for any")
    if max_age < 0:
        raise ValueError(f"cors: max_age must be >= 0, got {max_age}")
    any_origin = "*" in origins
    allowed_origins = frozenset(origins)
    methods = tuple(m.upper() for m in _tokens(allow_methods, "allow_methods"))
    method_set = frozenset(methods)
    headers = _tokens(allow_headers, "allow_headers")
    any_header = "*" in headers
    header_set = frozenset(h.lower() for h in headers)
    exposed = ", ".join(_tokens(expose_headers, "expose_headers"))
    star = any_origin and not allow_credentials  # "*" can be sent as is
    methods_value = ", ".join(methods)
    age_value = str(max_age)

    def allow(resp: Response, origin: str) -> Response:
        resp.with_header("Access-Control-Allow-Origin", "*" if star else origin)
        if allow_credentials:
            resp.with_header("Access-Control-Allow-Credentials", "true")
        return resp

    def preflight(ctx: Context, origin: str, method: str) -> Response:
        asked = ctx.req.header("access-control-request-headers") or ""
        names = [h.strip().lower() for h in asked.split(",") if h.strip()]
        if method.upper() not in method_set or not (any_header or all(h in header_set for h in names)):
            resp = Response.forbidden()
        else:
            resp = allow(Response.new(204), origin)
            resp.with_header("Access-Control-Allow-Methods", methods_value)
            if names:
                resp.with_header("Access-Control-Allow-Headers", ", ".join(names))
            resp.with_header("Access-Control-Max-Age", age_value)
        if not star:
            resp.with_header("Vary", "Origin")
        return resp

    def before(ctx: Context) -> tuple[Response | None, str | None]:
        """A preflight's answer (or None), and the permitted origin (or None)."""
        req = ctx.req
        origin = req.header("origin")
        permitted = origin is not None and (any_origin or origin in allowed_origins)
        if req.method == "OPTIONS" and origin is not None:
            method = req.header("access-control-request-method")
            if method is not None:
                if not permitted:
                    resp = Response.forbidden()
                    return (resp if star else resp.with_header("Vary", "Origin")), None
                return preflight(ctx, origin, method), None
        return None, origin if permitted else None

    def after(resp: Response, origin: str | None) -> Response:
        if origin is not None:
            allow(resp, origin)
            if exposed:
                resp.with_header("Access-Control-Expose-Headers", exposed)
        if not star:
            resp.with_header("Vary", "Origin")
        return resp

    def cors_middleware(ctx: Context, nxt: Handler) -> Response:
        early, origin = before(ctx)
        return early if early is not None else after(nxt(ctx), origin)

    async def cors_waiting(ctx: Context, nxt: AsyncHandler) -> Response:
        early, origin = before(ctx)
        return early if early is not None else after(await nxt(ctx), origin)

    return with_async_form(cors_middleware, cors_waiting)


REQUEST_ID_HEADER = "X-Request-ID"
"""The header a request id comes in and goes out in (and that the access log reads)."""

REQUEST_ID_MAX_LENGTH = 128
"""The longest incoming request id kept; a longer one is replaced."""

# What an incoming id may hold: enough for UUIDs, ULIDs, base64 and the ids proxies
# make, nothing that could forge a log line or a header (no spaces, quotes, CR/LF).
_REQUEST_ID_CHARS = frozenset(string.ascii_letters + string.digits + "-_.:+=/@")


def request_id(*, trust_incoming: bool = True, max_length: int = REQUEST_ID_MAX_LENGTH) -> Middleware:
    """Give every request an id: the client's ``X-Request-ID`` if sane, else a new one.

    The id is in ``ctx.state["request_id"]`` for handlers, echoed in the answer's
    ``X-Request-ID`` (errors included) and logged as ``request_id`` by the access log.
    A new id is 32 random hex digits.

    Args:
        trust_incoming: keep an incoming id of 1 to ``max_length`` characters from
            ``A-Z a-z 0-9 - _ . : + = / @``; False always makes a new one.
        max_length: the longest incoming id kept.

    Raises:
        ValueError: ``max_length`` is below 1.
    """
    if max_length < 1:
        raise ValueError(f"request_id: max_length must be >= 1, got {max_length}")
    chars = _REQUEST_ID_CHARS
    urandom = os.urandom

    def assign(ctx: Context) -> str:
        rid = ctx.req.header(REQUEST_ID_HEADER) if trust_incoming else None
        if rid is None or not 0 < len(rid) <= max_length or not chars.issuperset(rid):
            rid = urandom(16).hex()
        ctx.state["request_id"] = rid
        return rid

    def request_id_middleware(ctx: Context, nxt: Handler) -> Response:
        rid = assign(ctx)
        return nxt(ctx).with_header(REQUEST_ID_HEADER, rid)

    async def request_id_waiting(ctx: Context, nxt: AsyncHandler) -> Response:
        rid = assign(ctx)
        return (await nxt(ctx)).with_header(REQUEST_ID_HEADER, rid)

    return with_async_form(request_id_middleware, request_id_waiting)
