"""Answering one request off the HTTP/1.1 hot path: the pre-routing hook, the route, the handler, the accounting.

How it works: the worker's HTTP/1.1 path (``Worker.respond``) inlines these steps
for speed; the other protocols (HTTP/2 streams, through
:meth:`Routing.serve`) and the pieces the inline path
shares (a hook's verdict, a handler's failure, the metrics and access log of a
response finished elsewhere) come here.  An ``async def`` handler that waits is
handed to :func:`~chopin_core._engine.awaiting.await_handler`.  The worker is reached
only through :class:`~chopin_core._engine.channel.Loop`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic_ns
from typing import TYPE_CHECKING, Literal

from ..context import Context
from ..error_handlers import exception_response, failure_to_log
from ..hooks import PROCEED, Verdict
from ..response import AsyncStream, Response
from .awaiting import Awaiting, await_handler
from .streams import Primed, first_chunk

if TYPE_CHECKING:
    from ..forwarded import Origin
    from ..hooks import PreRoutingHook
    from ..request import Request
    from ..types import Handler
    from .channel import Loop, Pending

__all__ = ["Routing"]

# The worker's logger: these messages were the worker's before they moved here.
log = logging.getLogger("chopin_core.worker")


class Routing:
    """How one worker answers a request: its route table, its pre-routing hook and its metrics.

    Args:
        loop: the worker.
        lookup: the route table's ``lookup(method, path) -> (handler, params)``.
        pre_routing: the app's pre-routing hook, or None.
        tally: the worker's metrics counters by status (``WorkerMetrics.tally``), or None.
    """

    __slots__ = ("lookup", "loop", "pre_routing", "tally")

    def __init__(
        self,
        loop: Loop,
        lookup: Callable[[str, str], tuple[Handler, dict[str, str]]],
        pre_routing: PreRoutingHook | None,
        tally: tuple[Callable[[int], None], ...] | None,
    ) -> None:
        self.loop = loop
        self.lookup = lookup
        self.pre_routing = pre_routing
        self.tally = tally

    def pre_route(self, req: Request) -> Response | Literal[Verdict.DROP] | None:
        """The pre-routing hook's answer: a response, DROP, or None to route as usual."""
        assert self.pre_routing is not None
        index = self.loop.index
        try:
            verdict = self.pre_routing(req)
        except Exception:
            log.exception("worker %d: pre_routing_hook failed for %s %s", index, req.method, req.path)
            return Response.server_error()
        if verdict is PROCEED:
            return None
        if verdict is Verdict.DROP:
            return Verdict.DROP
        if isinstance(verdict, Response):
            return verdict
        log.error("worker %d: pre_routing_hook returned %r, expected PROCEED, DROP or a Response", index, verdict)
        return Response.server_error()

    def handler_failed(self, req: Request, exc: Exception) -> Response:
        """The response for a handler's exception; every 5xx one is logged with its traceback.

        An :class:`~chopin_core.ExtractError` answers with its own response or status
        (a 4xx is the client's fault and is not logged); anything else is a 500.  Only
        routes served bare (no middleware, no error handlers) and failing streams come
        here: the others are answered inside their middleware chain.
        """
        resp = exception_response(req, exc)  # the same answer a guarded route gives (error_handlers.py)
        if resp.status < 500:
            return resp
        index = self.loop.index
        log.error("worker %d: handler for %s %s failed", index, req.method, req.path, exc_info=failure_to_log(exc))
        return resp

    def serve(
        self, req: Request, later: Callable[[Response], None] | None = None, origin: Origin | None = None
    ) -> Response | Pending | None:
        """Route and answer one request that came over ``origin``, for a protocol other than HTTP/1.1.

        Runs the pre-routing hook, the handler and its middleware, and records metrics
        and the access log, the steps the HTTP/1.1 path (``Worker.respond``) inlines.
        Returns None when the hook said DROP.  An ``async def`` handler that waits gives
        a :class:`~chopin_core._engine.channel.Pending` (cancel it if the stream goes
        away; its ``expire`` once a second enforces ``handler_timeout``) and its response
        goes to ``later``; without ``later`` it runs to its end here.  ``origin`` (the
        HTTP/2 session) is what ``ctx.client`` and ``ctx.peer_cert`` read.
        """
        access = self.loop.access_log
        started = monotonic_ns() if self.tally is not None or access is not None else 0
        resp: Response | None = None
        if self.pre_routing is not None:
            early = self.pre_route(req)
            if early is Verdict.DROP:
                return None
            resp = early
        if resp is None:
            handler, params = self.lookup(req.method, req.path)
            try:
                resp = handler(Context(req, params, origin))
                if type(resp) is not Response:
                    waited = await_handler(self.loop, None, req, handler, resp, started, later, origin)
                    if type(waited) is Awaiting:
                        return waited
                    assert isinstance(waited, Response)
                    resp = waited
            except Exception as exc:
                resp = self.handler_failed(req, exc)
        return self.served(req, resp, started, origin)

    def served(self, req: Request, resp: Response, started: int, origin: Origin | None = None) -> Response:
        """The end of :meth:`serve`: a stream's first chunk pulled (a 500 if it fails), metrics and the log."""
        stream = resp.stream_body
        if stream is not None:
            # As on HTTP/1.1: a stream that fails before its first chunk is a 500, not a reset.
            resp, first = first_chunk(self.loop, req, resp, stream)
            stream = resp.stream_body  # started: an async body's pump, an in-process one's BlockingStream
            if first and stream is not None and not isinstance(stream, AsyncStream):
                resp.stream_body = Primed(first, stream)
        self.account(req, resp, started, origin)
        return resp

    def account(self, req: Request, resp: Response, started: int, origin: Origin | None = None) -> None:
        """Metrics and access log for a response finished off the HTTP/1.1 path (proxied, HTTP/2)."""
        if self.tally is not None:
            self.tally[resp.status](started)
        access = self.loop.access_log
        if access is not None:
            access(req, resp, monotonic_ns() - started, origin)
