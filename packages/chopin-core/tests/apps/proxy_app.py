"""A reverse proxy for the proxy tests, configured from the environment.

``PROXY_UPSTREAM`` (required) is mounted at ``/api`` (prefix stripped) and at
``/raw`` (path kept); ``PROXY_CHOPIN_UPSTREAM``, when set, at ``/chopin``;
``PROXY_DEAD_UPSTREAM`` at ``/dead``.  ``PROXY_READ_TIMEOUT`` and
``PROXY_CONNECT_TIMEOUT`` set the upstream timeouts; ``PROXY_METRICS=1`` adds ``/metrics``;
``TLS_CERT``/``TLS_KEY`` make it serve over TLS (HTTP/1.1 and h2 by ALPN).  ``/fast`` answers directly.
"""

from __future__ import annotations

import os

from chopin_core import Chopin, Context, Response, Router
from chopin_core.client import ClientSettings
from chopin_core.proxy import mount_proxy, proxy


class _TlsProxy(Chopin):
    def serve(self, addr: str | None = None) -> None:
        self.serve_tls(addr, os.environ["TLS_CERT"], os.environ["TLS_KEY"])


def app() -> Router | Chopin:
    env = os.environ
    settings = ClientSettings(
        connect_timeout=float(env.get("PROXY_CONNECT_TIMEOUT", "5")),
        read_timeout=float(env.get("PROXY_READ_TIMEOUT", "30")),
    )
    router = Router()

    @router.get("/fast")
    def fast(ctx: Context) -> Response:
        return Response.text("fast")

    mount_proxy(router, "/api", env["PROXY_UPSTREAM"], settings=settings)
    mount_proxy(router, "/raw", env["PROXY_UPSTREAM"], strip_prefix=False, settings=settings)
    if env.get("PROXY_CHOPIN_UPSTREAM"):
        mount_proxy(router, "/chopin", env["PROXY_CHOPIN_UPSTREAM"], settings=settings)
    if env.get("PROXY_DEAD_UPSTREAM"):
        router.get("/dead", proxy(env["PROXY_DEAD_UPSTREAM"], settings=settings))
    if env.get("TLS_CERT"):
        return _TlsProxy(router)
    if env.get("PROXY_METRICS"):
        return Chopin(router).with_metrics("/metrics")
    return router
