"""Turning exceptions and error statuses into responses, inside the middleware chain.

A route that has middleware, or an app that registered error handlers, gets its
handler wrapped once, when the route table is compiled, in a guard that turns
whatever the handler raises into a response before the middleware sees it: so
a CORS or request-id layer decorates error answers too.  A route without either
is served bare, and the worker converts its exceptions the same way
(:func:`exception_response`): the plain path pays nothing for this module.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from .errors import ExtractError, HandlerTimeout
from .response import Response

if TYPE_CHECKING:
    from .context import Context
    from .request import Request
    from .types import Handler

__all__ = [
    "ErrorHandler",
    "ErrorHandlers",
    "StatusHandler",
    "accepts_json",
    "error_body",
    "exception_response",
    "failure_to_log",
    "not_a_response",
    "wrapper_of",
]

ErrorHandler: TypeAlias = "Callable[[Context, Exception], Response]"
"""Answers an exception a handler raised: ``fn(ctx, exc) -> Response``."""

StatusHandler: TypeAlias = "Callable[[Context, Response], Response]"
"""Replaces an error answer with that status: ``fn(ctx, response) -> Response``."""

# The worker's logger: 5xx tracebacks land where they always have.
log = logging.getLogger("chopin_core.worker")

W = TypeVar("W", bound=Callable[..., Any])


def not_a_response(handler: object, value: object) -> TypeError:
    """The error for a handler that returned ``value``, not a Response (the message names the handler)."""
    name = getattr(handler, "__name__", handler)
    return TypeError(f"handler {name!r} returned {type(value).__name__}, expected Response")


def wrapper_of(wrapper: W, wrapped: object, name: str) -> W:
    """Give ``wrapper`` the ``__name__`` (``name``), ``__doc__`` and ``__wrapped__`` of a composed handler."""
    wrapper.__name__ = name
    wrapper.__doc__ = getattr(wrapped, "__doc__", None)
    wrapper.__wrapped__ = wrapped  # type: ignore[attr-defined]
    return wrapper


def accepts_json(req: Request) -> bool:
    """Whether the client asked for JSON (``Accept: application/json`` or a ``+json`` type)."""
    accept = req.header("accept")
    return accept is not None and ("application/json" in accept or "+json" in accept)


def error_body(req: Request, status: int, message: str, detail: Sequence[tuple[str, str]] = ()) -> Response:
    """An error answer: ``{"error": message, "detail": [...]}`` when the client accepts JSON, else text.

    Args:
        req: the request answered (its ``Accept`` header picks the format).
        status: the status code.
        message: what went wrong, for a human.
        detail: ``(JSON path, message)`` pairs, as kowito-json reports them.
    """
    if accepts_json(req):
        doc: dict[str, object] = {"error": message}
        if detail:
            doc["detail"] = [{"path": path, "message": text} for path, text in detail]
        return Response.json(doc, status)
    return Response.text(message, status)


def exception_response(req: Request, exc: Exception) -> Response:
    """The default answer for ``exc``: an :class:`ExtractError`'s own response or status, else a 500.

    Logs nothing; the caller logs a 5xx with its traceback.
    """
    if isinstance(exc, ExtractError):
        answer = exc.response
        if isinstance(answer, Response):
            return answer
        return error_body(req, exc.status, exc.message, exc.detail)
    if isinstance(exc, HandlerTimeout):
        return error_body(req, 504, "Gateway Timeout: the handler did not answer in time")
    return error_body(req, 500, "Internal Server Error")


def failure_to_log(exc: BaseException) -> BaseException:
    """What a 5xx's log record carries: an :class:`ExtractError`'s cause (``raise ... from error``), else ``exc``.

    An extractor that turns a server-side failure into a 5xx ``ExtractError`` (chopin-auth's
    missing manager) wraps it; the traceback worth reading is the wrapped one.
    """
    cause = exc.__cause__
    return cause if isinstance(exc, ExtractError) and cause is not None else exc


def _log_failure(req: Request, exc: BaseException) -> None:
    log.error("handler for %s %s failed", req.method, req.path, exc_info=failure_to_log(exc))


class ErrorHandlers:
    """An app's error handlers by exception type and by status, frozen at compile time.

    Args:
        by_type: handlers by exception class; the most specific class of a raised
            exception's MRO wins.
        by_status: handlers by status code (400-599), applied to the error answers
            of handlers, extraction and the router's 404/405.
    """

    __slots__ = ("by_status", "by_type")

    def __init__(
        self,
        by_type: dict[type[Exception], ErrorHandler] | None = None,
        by_status: dict[int, StatusHandler] | None = None,
    ) -> None:
        self.by_type = dict(by_type or {})
        self.by_status = dict(by_status or {})

    def __bool__(self) -> bool:
        return bool(self.by_type or self.by_status)

    def answer(self, ctx: Context, exc: Exception) -> Response:
        """The response for ``exc`` raised by the handler of ``ctx``; a 5xx is logged with its traceback."""
        req = ctx.req
        for cls in type(exc).__mro__:
            handler = self.by_type.get(cls)
            if handler is not None:
                try:
                    resp = handler(ctx, exc)
                    if type(resp) is not Response:
                        raise TypeError(f"error handler {handler!r} returned {type(resp).__name__}, expected Response")
                except Exception as inner:
                    _log_failure(req, inner)
                    return error_body(req, 500, "Internal Server Error")
                if resp.status >= 500:
                    _log_failure(req, exc)
                return resp
        resp = exception_response(req, exc)
        if resp.status >= 500:
            _log_failure(req, exc)
        return resp

    def by_status_answer(self, ctx: Context, resp: Response) -> Response:
        """``resp``, or what the handler registered for its status answers instead."""
        handler = self.by_status.get(resp.status)
        if handler is None:
            return resp
        try:
            return handler(ctx, resp)
        except Exception as exc:
            _log_failure(ctx.req, exc)
            return error_body(ctx.req, 500, "Internal Server Error")

    def guard(self, handler: Handler) -> Handler:
        """Wrap ``handler`` so that it always returns a response (built once per route, at compile time).

        An ``async def`` handler gets an ``async def`` guard (what it raises while it waits is caught too).
        """
        answer = self.answer
        by_status = self.by_status
        status_answer = self.by_status_answer
        if inspect.iscoroutinefunction(handler):
            waiting: Handler = self._guard_waiting(handler)
            return waiting

        def guarded(ctx: Context) -> Response:
            try:
                resp = handler(ctx)
                if type(resp) is not Response:
                    raise not_a_response(handler, resp)
            except Exception as exc:
                resp = answer(ctx, exc)
            if by_status and resp.status in by_status:
                resp = status_answer(ctx, resp)
            return resp

        return wrapper_of(guarded, handler, getattr(handler, "__name__", "handler"))

    def _guard_waiting(self, handler: Any) -> Any:
        answer = self.answer
        by_status = self.by_status
        status_answer = self.by_status_answer

        async def guarded(ctx: Context) -> Response:
            try:
                resp = await handler(ctx)
                if type(resp) is not Response:
                    raise not_a_response(handler, resp)
            except Exception as exc:
                resp = answer(ctx, exc)
            if by_status and resp.status in by_status:
                resp = status_answer(ctx, resp)
            return resp

        return wrapper_of(guarded, handler, getattr(handler, "__name__", "handler"))
