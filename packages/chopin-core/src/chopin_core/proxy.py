"""A reverse proxy: a handler whose request the worker's epoll loop forwards to an upstream.

::

    router.get("/health", health)
    mount_proxy(router, "/api", "http://127.0.0.1:9000")      # /api/x -> upstream /x
    router.get("/legacy/*rest", proxy("http://10.0.0.5:8000", strip_prefix="/legacy"))

The handler does no I/O: it returns a :class:`~chopin_core.response.Response`
carrying a :class:`ProxyPlan`.  The worker then opens (or reuses) a non-blocking
connection to the upstream, registers it in its own ``epoll`` and goes on
serving other connections; the upstream's answer is streamed to the client as it
arrives (see :mod:`chopin_core._engine.upstream`).  The forwarded request keeps the
method, path and query, body and end-to-end header fields; hop-by-hop fields
(RFC 9110 7.6.1, also those named in ``Connection``) are dropped and
``X-Forwarded-For``/``-Proto``/``-Host`` and ``Via`` are added.

An upstream that cannot be reached answers 502, one that is too slow 504
(``ClientSettings.connect_timeout``/``read_timeout``); an upstream that closes in
the middle of its response makes the client connection close without a
complete message.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Final

from ._client_errors import ClientError
from ._wire.h1_response import end_to_end
from ._wire.h1_writer import VIA
from .client import ClientSettings, HttpClient, parse_url
from .errors import ConfigError
from .response import Response
from .router import METHODS

if TYPE_CHECKING:
    from .context import Context
    from .request import Request
    from .router import Router
    from .types import Handler

__all__ = ["ProxyPlan", "Upstream", "forward_blocking", "mount_proxy", "proxy"]

# Not forwarded: computed by the proxy (framing, Host) or already acted on by the
# worker (Expect: the body is complete before the handler runs).
_RECOMPUTED: Final = frozenset({"host", "content-length", "expect"})
_FORWARDED: Final = frozenset({"x-forwarded-proto", "x-forwarded-host"})


class Upstream:
    """Where a proxy forwards to: a resolved address, the ``Host`` to send and a base path.

    The name is resolved once, when the proxy is built (as nginx does at start-up);
    connecting tries each address in turn until one accepts.

    Attributes:
        host, port: as written in the URL.
        addresses: ``(family, sockaddr)`` of every address ``getaddrinfo`` gave, in its order.
        host_header: the ``Host`` value naming the upstream.
        base_path: the URL's path without a trailing ``/`` (``""`` for none).
        settings: timeouts and limits of the upstream side.
    """

    __slots__ = ("addresses", "base_path", "host", "host_header", "port", "settings")

    def __init__(self, url: str, settings: ClientSettings | None = None) -> None:
        host, port, target, host_header = parse_url(url)
        if "?" in target:
            raise ConfigError(f"proxy upstream {url!r}: a query string is not allowed")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConfigError(f"proxy upstream {url!r}: cannot resolve {host!r}: {exc}") from None
        self.addresses: list[tuple[int, tuple[str, int] | tuple[str, int, int, int]]] = []
        for family, _, _, _, sockaddr in infos:
            entry = (int(family), sockaddr)
            if entry not in self.addresses:
                self.addresses.append(entry)  # type: ignore[arg-type]
        self.host = host
        self.port = port
        self.host_header = host_header
        self.base_path = target.rstrip("/")
        self.settings = settings or ClientSettings()

    @property
    def key(self) -> tuple[str, int]:
        """The pool key of this upstream's connections."""
        return (self.host, self.port)

    def __repr__(self) -> str:
        return f"<Upstream http://{self.host_header}{self.base_path}>"


class ProxyPlan:
    """What the worker needs to forward one request: the upstream and the outgoing target and fields.

    Attributes:
        upstream: where to.
        target: path and query to send.
        headers: the end-to-end request fields plus ``Host``, ``Via`` and
            ``X-Forwarded-Host`` (the worker adds ``X-Forwarded-For`` and
            ``X-Forwarded-Proto``, which need the peer address and the listener's scheme).
        forwarded_for: the incoming ``X-Forwarded-For`` value, if any.
    """

    __slots__ = ("forwarded_for", "headers", "target", "upstream")

    def __init__(
        self, upstream: Upstream, target: str, headers: list[tuple[str, str]], forwarded_for: str | None
    ) -> None:
        self.upstream = upstream
        self.target = target
        self.headers = headers
        self.forwarded_for = forwarded_for

    def request_headers(self, peer: object, scheme: str = "http") -> list[tuple[str, str]]:
        """The fields to send: ``X-Forwarded-Proto: scheme``, and ``X-Forwarded-For`` naming
        ``peer`` appended to what came in."""
        ip = peer[0] if isinstance(peer, tuple) and peer else None
        fields = list(self.headers)
        fields.append(("X-Forwarded-Proto", scheme))
        if ip is not None:
            chain = f"{self.forwarded_for}, {ip}" if self.forwarded_for else str(ip)
            fields.append(("X-Forwarded-For", chain))
        elif self.forwarded_for:
            fields.append(("X-Forwarded-For", self.forwarded_for))
        return fields


def forwarded_target(upstream: Upstream, req: Request, strip_prefix: str) -> str:
    """The path and query to send: ``strip_prefix`` taken off the request path, the upstream's base path put on."""
    path = req.path
    if strip_prefix and (path == strip_prefix or path.startswith(strip_prefix + "/")):
        path = path[len(strip_prefix) :] or "/"
    target = upstream.base_path + path if upstream.base_path else path
    if req.query is not None:
        target += "?" + req.query
    return target


def plan_for(upstream: Upstream, req: Request, strip_prefix: str = "", preserve_host: bool = False) -> ProxyPlan:
    """Build the :class:`ProxyPlan` forwarding ``req`` to ``upstream``."""
    incoming = req.headers.items()
    original_host = req.header("host")
    host = original_host if preserve_host and original_host else upstream.host_header
    fields: list[tuple[str, str]] = [("Host", host)]
    forwarded_for = None
    for name, value in end_to_end(incoming):
        if name in _RECOMPUTED or name in _FORWARDED:
            continue
        if name == "x-forwarded-for":
            forwarded_for = f"{forwarded_for}, {value}" if forwarded_for else value
            continue
        if name == "via":
            continue  # ours is appended to it below
        fields.append((name, value))
    via = req.header("via")
    fields.append(("Via", f"{via}, {VIA}" if via else VIA))
    if original_host:
        fields.append(("X-Forwarded-Host", original_host))
    return ProxyPlan(upstream, forwarded_target(upstream, req, strip_prefix), fields, forwarded_for)


def proxy(
    upstream: str | Upstream,
    *,
    strip_prefix: str = "",
    preserve_host: bool = False,
    settings: ClientSettings | None = None,
) -> Handler:
    """A handler forwarding every request it gets to ``upstream``.

    Args:
        upstream: an ``http://host:port[/base]`` URL (or a built :class:`Upstream`).
        strip_prefix: taken off the front of the request path (at a segment
            boundary) before the upstream's base path is put on.
        preserve_host: send the client's ``Host`` instead of the upstream's.
        settings: connect/read timeouts and pool limits (``ClientSettings``).

    Raises:
        InvalidURL: ``upstream`` is not an ``http://`` URL.
        ConfigError: the upstream name cannot be resolved, or ``strip_prefix`` is malformed.
    """
    target = upstream if isinstance(upstream, Upstream) else Upstream(upstream, settings)
    if strip_prefix and (not strip_prefix.startswith("/") or strip_prefix.endswith("/")):
        raise ConfigError(f"proxy strip_prefix {strip_prefix!r}: expected '/name' with no trailing '/'")

    def forward(ctx: Context) -> Response:
        resp = Response(200)
        resp.takeover = plan_for(target, ctx.req, strip_prefix, preserve_host)
        return resp

    forward.__name__ = f"proxy_{target.host}_{target.port}"
    return forward


def mount_proxy(
    router: Router,
    prefix: str,
    upstream: str | Upstream,
    *,
    strip_prefix: bool = True,
    preserve_host: bool = False,
    settings: ClientSettings | None = None,
) -> Handler:
    """Forward ``prefix`` and everything under it, for every method, to ``upstream``.

    With ``strip_prefix`` (the default) ``/api/users`` under ``mount_proxy(r, "/api", "http://u")``
    reaches the upstream as ``/users``; without, as ``/api/users``.

    Returns:
        The proxy handler (registered on ``router`` for ``prefix`` and ``prefix/*rest``).
    """
    clean = prefix.rstrip("/")
    if prefix and not prefix.startswith("/"):
        raise ConfigError(f"proxy prefix {prefix!r}: expected a path starting with '/'")
    strip = clean if strip_prefix else ""
    handler = proxy(upstream, strip_prefix=strip, preserve_host=preserve_host, settings=settings)
    for method in METHODS:
        if method == "HEAD":
            continue  # GET routes answer HEAD
        router.route(method, clean or "/", handler)
        router.route(method, clean + "/*rest", handler)
    return handler


def forward_blocking(plan: ProxyPlan, req: Request, peer: object) -> Response:
    """Forward ``req`` with a blocking :class:`~chopin_core.client.HttpClient` and buffer the answer.

    For callers without an epoll loop (the in-process :class:`~chopin_core.TestClient`);
    a server's worker never blocks like this.  Failures answer 502/504 as the loop does.
    """
    upstream = plan.upstream
    fields = plan.request_headers(peer)
    url = f"http://{upstream.host_header}{plan.target}"
    with HttpClient(upstream.settings) as client:
        try:
            answer = client.request(req.method, url, fields, req.body or None)
        except ClientError as exc:
            reason = "Gateway Timeout" if exc.status == 504 else "Bad Gateway"
            return Response.text(reason, exc.status)
    resp = Response(answer.status, answer.body)
    via = None
    for name, value in end_to_end(answer.headers):
        lname = name.lower()
        if lname == "content-length":
            continue  # the engine sets it from the body
        if lname == "via":
            via = f"{via}, {value}" if via else value
            continue
        resp.with_header(name, value)
    return resp.with_header("Via", f"{via}, {VIA}" if via else VIA)
