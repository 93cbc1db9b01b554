"""The per-request context handed to handlers, and the ``Json``/``Query`` extractors."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar, overload

from kowito_json import ValidationError, decoder_for

from .cookies import parse_cookie_header
from .errors import ExtractError
from .forms import MAX_FORM_FIELD_SIZE, MAX_FORM_FIELDS, URLENCODED, FormData, parse_urlencoded
from .forwarded import Origin, client_of
from .multipart import MAX_PART_HEADER, MAX_PARTS, Part, parse_multipart
from .request import Request
from .response import Response

__all__ = ["Context", "Extractor", "Json", "Query"]

T = TypeVar("T")
P = TypeVar("P")


class Extractor(Protocol):
    """A type other packages make extractable: ``ctx.extract(Kind[...])`` calls its hook.

    ``__chopin_extract__(ctx, kind)`` (a classmethod) gets the context and the exact type
    asked for (``Auth[Claims]``, say) and returns an instance of it, or raises an
    :class:`~chopin_core.ExtractError` (whose ``response``, when set, is answered as is).
    """

    @classmethod
    def __chopin_extract__(cls, ctx: Context, kind: Any) -> Any: ...


E = TypeVar("E", bound=Extractor)


class Json(Generic[T]):
    """Extractor marker: ``ctx.extract(Json[T])`` decodes the body as JSON into ``T``."""


class Query(Generic[T]):
    """Extractor marker: ``ctx.extract(Query[T])`` builds dataclass ``T`` from the query string."""


class Context:
    """What a handler receives: the request, the path parameters and per-request state.

    Attributes:
        req: the :class:`~chopin_core.request.Request`.
        params: path parameters by name (still percent-encoded; see :meth:`param`).
        state: a dict middleware may use to pass values to handlers.

    Args:
        req: the request.
        params: its path parameters.
        origin: the connection (or HTTP/2 session) it came over, which
            :attr:`client` and :attr:`peer_cert` read; None: no client is known.
    """

    # The hot path builds one Context per request, and each attribute set here costs it
    # (measured with benchmarks/metrics_cost.py): _state and _cookies are left unset
    # until asked for, and the origin is stored as is, its address resolved on demand.
    __slots__ = ("_cookies", "_origin", "_state", "params", "req")
    _cookies: Mapping[str, str]
    _state: dict[str, Any]

    def __init__(self, req: Request, params: dict[str, str], origin: Origin | None = None) -> None:
        self.req = req
        self.params = params
        self._origin = origin

    @property
    def client(self) -> tuple[str, int]:
        """The client's ``(host, port)``.

        The connection's peer, or, when that peer is one of ``Settings.trusted_proxies``,
        the rightmost hop of ``Settings.forwarded_header`` that is not a trusted proxy
        (its port is 0 when the header gives none).  ``("", 0)`` when unknown (a Unix
        socket, a context built by hand); ``TestClient`` requests come from
        ``("testclient", 50000)``.
        """
        return client_of(self._origin, self.req)

    @property
    def peer_cert(self) -> dict[str, Any] | None:
        """The client's verified TLS certificate, as :meth:`ssl.SSLSocket.getpeercert` gives it, or None.

        None on plain HTTP, and under TLS when the client sent no certificate
        (``serve_tls(..., client_auth="optional")``; with ``"required"`` such a
        client never gets this far).  A certificate is only ever here once it
        verified against ``client_ca``.
        """
        sock = getattr(self._origin, "sock", None)
        getpeercert = getattr(sock, "getpeercert", None)
        if getpeercert is None:
            return None
        try:
            cert = getpeercert()
        except (OSError, ValueError):  # the connection closed under a waiting handler
            return None
        return dict(cert) if cert else None

    @property
    def state(self) -> dict[str, Any]:
        """Per-request storage for middleware and handlers."""
        try:
            return self._state
        except AttributeError:
            state = self._state = {}
            return state

    def param(self, name: str, default: str | None = None) -> str | None:
        """The path parameter ``name``, percent-decoded, or ``default``."""
        value = self.params.get(name)
        if value is None:
            return default
        if "%" in value:
            from urllib.parse import unquote

            return unquote(value)
        return value

    def param_parse(self, name: str, kind: Callable[[str], P]) -> P:
        """The path parameter ``name`` converted by ``kind`` (``int``, ``uuid.UUID``, ``Decimal``...).

        Raises:
            ExtractError: 400 when the parameter is missing or ``kind`` refuses it
                (``path parameter 'id': expected int, got 'abc'``).
        """
        value = self.param(name)
        what = getattr(kind, "__name__", repr(kind))
        if value is None:
            raise ExtractError(f"path parameter {name!r}: missing (expected {what})", 400)
        try:
            return kind(value)
        except (ValueError, TypeError, ArithmeticError):
            raise ExtractError(f"path parameter {name!r}: expected {what}, got {value!r}", 400) from None

    def body_json(self, kind: type[T]) -> T:
        """The body decoded as JSON into ``kind``: ``ctx.extract(Json[kind])`` (400 unreadable, 422 wrong shape)."""
        result: T = self.extract(Json[kind])  # type: ignore[valid-type]
        return result

    def query(self, kind: type[T]) -> T:
        """Dataclass ``kind`` built from the query string: ``ctx.extract(Query[kind])`` (422 when it does not fit)."""
        result: T = self.extract(Query[kind])  # type: ignore[valid-type]
        return result

    @property
    def cookies(self) -> Mapping[str, str]:
        """The request's cookies by name, parsed from ``Cookie`` on first use (RFC 6265 5.4).

        Malformed pairs are skipped, never guessed at; see
        :func:`chopin_core.cookies.parse_cookie_header`.
        """
        try:
            return self._cookies
        except AttributeError:
            cookies = self._cookies = parse_cookie_header(self.req.headers.get_all("cookie"))
            return cookies

    def header(self, name: str) -> str | None:
        """The request header ``name`` (case-insensitive), or ``None``."""
        return self.req.headers.get(name)

    @overload
    def extract(self, kind: type[Json[T]]) -> T: ...
    @overload
    def extract(self, kind: type[Query[T]]) -> T: ...
    @overload
    def extract(self, kind: type[E]) -> E: ...
    def extract(self, kind: Any) -> Any:
        """Decode the request into the type ``kind`` names.

        ``Json[T]`` parses the body (400 if it is not JSON, 422 if it does not fit
        ``T``); ``Query[T]`` reads the query string (422 on a missing or malformed
        parameter); any other type with an :class:`Extractor` hook
        (``__chopin_extract__``, e.g. chopin-auth's ``Auth[Claims]``) resolves itself.
        Left uncaught, the :class:`ExtractError` becomes that response.

        Raises:
            ExtractError: the request does not fit.
        """
        origin = typing.get_origin(kind)
        args = typing.get_args(kind)
        if origin is Json and len(args) == 1:
            try:
                return decoder_for(args[0]).decode(self.req.body)
            except ValidationError as exc:
                # Unreadable JSON is a 400; JSON of the wrong shape is a 422.
                for path, message in exc.errors:
                    if path == "$" and message.startswith("invalid JSON"):
                        detail = message.removeprefix("invalid JSON").lstrip(": ")
                        raise ExtractError(
                            f"request body is not valid JSON: {detail}", 400, detail=tuple(exc.errors)
                        ) from None
                raise ExtractError(str(exc), 422, detail=tuple(exc.errors)) from None
        if origin is Query and len(args) == 1:
            try:
                return decoder_for(args[0]).from_query(self.req.query_list())
            except ValidationError as exc:
                lines = [f"query parameter {path.removeprefix('$.')!r}: {message}" for path, message in exc.errors]
                raise ExtractError("\n".join(lines), 422, detail=tuple(exc.errors)) from None
        hook = getattr(origin if origin is not None else kind, "__chopin_extract__", None)
        if hook is not None:
            value = hook(self, kind)
            if inspect.isawaitable(value):
                close = getattr(value, "close", None)
                if close is not None:
                    close()  # never awaited: do not leave a coroutine behind
                raise TypeError(
                    f"extract: {kind!r} waits (its __chopin_extract__ is async): use await ctx.aextract(...)"
                )
            return value
        raise TypeError(f"extract: expected Json[T], Query[T] or a type with __chopin_extract__, got {kind!r}")

    @overload
    async def aextract(self, kind: type[Json[T]]) -> T: ...
    @overload
    async def aextract(self, kind: type[Query[T]]) -> T: ...
    @overload
    async def aextract(self, kind: type[E]) -> E: ...
    async def aextract(self, kind: Any) -> Any:
        """:meth:`extract` for ``async def`` handlers: an extractor whose hook waits is awaited.

        ``__chopin_extract__`` may be ``async def`` (an extractor that loads the user
        from the database, say); plain extractors work here too.

        Raises:
            ExtractError: the request does not fit.
        """
        origin = typing.get_origin(kind)
        hook = getattr(origin if origin is not None else kind, "__chopin_extract__", None)
        if hook is not None and origin is not Json and origin is not Query:
            value = hook(self, kind)
            return await value if inspect.isawaitable(value) else value
        return self.extract(kind)

    def multipart(self, *, max_parts: int = MAX_PARTS, max_part_header: int = MAX_PART_HEADER) -> Iterator[Part]:
        """Iterate the parts of a ``multipart/form-data`` body (RFC 7578).

        Each part's ``body`` is a memoryview into the request body (no copy).
        Left uncaught, a :class:`~chopin_core.multipart.MultipartError` becomes a
        400 response naming what is wrong.
        """
        return parse_multipart(
            self.req.body, self.req.headers.get("content-type"), max_parts=max_parts, max_part_header=max_part_header
        )

    def form(self, *, max_fields: int = MAX_FORM_FIELDS, max_field_size: int = MAX_FORM_FIELD_SIZE) -> FormData:
        """The ``application/x-www-form-urlencoded`` body as a :class:`~chopin_core.forms.FormData`.

        ``form["name"]`` is the first value of a field, ``form.getlist("name")`` all of
        them (repeated keys are kept, in order).  For ``multipart/form-data`` use
        :meth:`multipart`.  Left uncaught, the :class:`ExtractError` becomes its response.

        Args:
            max_fields: fields allowed (413 past it; default ``MAX_FORM_FIELDS``, 1000).
            max_field_size: bytes of one encoded ``name=value`` pair (413 past it;
                default ``MAX_FORM_FIELD_SIZE``, 64 KiB).

        Raises:
            ExtractError: 415 for another content type, 413 past a bound, 400 for
                bytes that are not UTF-8.
        """
        ctype = self.req.headers.get("content-type") or ""
        if ctype.partition(";")[0].strip().lower() != URLENCODED:
            hint = "; use ctx.multipart() for multipart/form-data" if "multipart/" in ctype.lower() else ""
            raise ExtractError(f"form: expected Content-Type {URLENCODED}, got {ctype or 'none'!r}{hint}", 415)
        return parse_urlencoded(self.req.body, max_fields=max_fields, max_field_size=max_field_size)

    def json(self, value: Any, status: int = 200) -> Response:
        """A JSON response of ``value``."""
        return Response.json(value, status)

    def __repr__(self) -> str:
        return f"<Context {self.req.method} {self.req.path} params={self.params!r}>"
