"""WSGI applications (PEP 3333) on the Chopin engine.

``wsgi.serve(flask_app)`` serves a WSGI app with Chopin's workers, and
``wsgi.mount(router, "/legacy", app)`` puts one under a prefix of a Chopin router.
Each request becomes a PEP 3333 ``environ`` (``wsgi.input`` over the buffered body,
``wsgi.errors`` on stderr); a list or tuple result is sent whole, any other
iterable is streamed with chunked coding as the socket drains, and the result's
``close()`` is always called.  WSGI apps run synchronously in the worker, like
every handler.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import unquote_to_bytes

from .response import Response
from .router import METHODS, Router

if TYPE_CHECKING:
    from .context import Context
    from .settings import Settings
    from .types import Handler

__all__ = ["WSGIApp", "environ_for", "mount", "serve", "wsgi_handler"]

WSGIApp: TypeAlias = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Headers the engine writes itself from the body it sends.
_ENGINE_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


def environ_for(ctx: Context, script_name: str = "", server: tuple[str, int] = ("localhost", 80)) -> dict[str, Any]:
    """The PEP 3333 environ of ``ctx``'s request, mounted at ``script_name``.

    ``REMOTE_ADDR`` and ``REMOTE_PORT`` are ``ctx.client``'s (trusted-proxy aware; the
    port is ``"0"`` when a proxy did not report it).
    """
    req = ctx.req
    remote_addr, remote_port = ctx.client
    # PATH_INFO is the decoded path as latin-1 text (PEP 3333 "native strings").
    path = unquote_to_bytes(req.path).decode("latin-1")
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": req.query or "",
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": req.version,
        "REMOTE_ADDR": remote_addr,
        "REMOTE_PORT": str(remote_port),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(req.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in req.headers.items():
        key = name.upper().replace("-", "_")
        if key in {"CONTENT_TYPE", "CONTENT_LENGTH"}:
            environ[key] = value
        elif "HTTP_" + key in environ:
            environ["HTTP_" + key] += "," + value
        else:
            environ["HTTP_" + key] = value
    if req.body and "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = str(len(req.body))  # a de-chunked body has a length now
    host = environ.get("HTTP_HOST")
    if host:
        name, _, port = host.rpartition(":") if host.rfind(":") > host.rfind("]") else (host, "", "")
        environ["SERVER_NAME"] = name or host
        if port.isdigit():
            environ["SERVER_PORT"] = port
    return environ


class _StartResponse:
    """The ``start_response`` callable of one request."""

    __slots__ = ("headers", "status", "written")

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.written: list[bytes] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        # Nothing is sent before the app returns, so a second call with exc_info
        # (an error page) simply replaces the first (PEP 3333); without it, it is a bug.
        if self.status is not None and exc_info is None:
            raise AssertionError("start_response called twice without exc_info")
        code = status.split(" ", 1)[0]
        if len(code) != 3 or not code.isdigit():
            raise ValueError(f"start_response: status {status!r} does not start with a 3-digit code")
        self.status = int(code)
        self.headers = list(headers)
        return self.written.append


def wsgi_handler(app: WSGIApp, script_name: str = "") -> Handler:
    """A Chopin handler that runs the WSGI ``app`` (mounted at ``script_name``)."""
    prefix = script_name.rstrip("/")

    def handle(ctx: Context) -> Response:
        start = _StartResponse()
        result = app(environ_for(ctx, prefix), start)
        try:
            if isinstance(result, (list, tuple)):
                body = b"".join([*start.written, *result])
                return _finish(Response(start.status or 500, body), start)
            iterator = iter(result)
            first = next(iterator, None)  # start_response may come with the first chunk
        except BaseException:
            _close(result)
            raise
        if start.status is None:
            _close(result)
            raise RuntimeError("WSGI app returned without calling start_response")
        resp = Response.stream(_chunks(start.written, first, iterator, result))
        resp.status = start.status
        resp.content_lines = b""  # the app's own Content-Type comes with its headers
        return _finish(resp, start)

    handle.__name__ = getattr(app, "__name__", "wsgi_app")
    handle.__doc__ = getattr(app, "__doc__", None)
    return handle


def _finish(resp: Response, start: _StartResponse) -> Response:
    for name, value in start.headers:
        if name.lower() not in _ENGINE_HEADERS:
            resp.with_header(name, value)
    return resp


def _chunks(
    written: list[bytes], first: bytes | None, rest: Iterator[bytes], result: Iterable[bytes]
) -> Iterator[bytes]:
    try:
        yield from written
        if first is not None:
            yield first
        yield from rest
    finally:
        _close(result)


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def mount(router: Router, prefix: str, app: WSGIApp) -> Router:
    """Serve the WSGI ``app`` for every method under ``prefix`` (``SCRIPT_NAME`` is the prefix)."""
    base = prefix.rstrip("/")
    handler = wsgi_handler(app, base)
    for method in METHODS:  # HEAD too: a WSGI app expects to see it
        router.route(method, base + "/*wsgi_path", handler)
        if base:
            router.route(method, base, handler)
    return router


def serve(app: WSGIApp, addr: str | None = None, settings: Settings | None = None) -> None:
    """Serve the WSGI ``app`` at the root with Chopin's workers (``PORT``/``WORKERS`` apply)."""
    from .server import Chopin

    Chopin(mount(Router(), "", app), settings).serve(addr)
