"""Lifecycle hooks: code the worker runs when a connection opens, before routing, and when it closes.

    app = Chopin(router)

    @app.connection_setup_hook
    def only_local(sock, peer):
        return PROCEED if peer[0].startswith("127.") else DROP

    @app.pre_routing_hook
    def no_http10(req):
        return PROCEED if req.http11 else Response.text("HTTP/1.1 only", 505)

Hooks run in the worker, synchronously: they must be quick and must not block.

Start-up checks (:func:`add_startup_check`) are the extensions' hook: they run
once, before the server listens, and stop it with a clear error when an app
cannot work (chopin-auth's ``Auth[...]`` routes without ``init_jwt_manager``).
"""

from __future__ import annotations

import enum
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from .request import Request
    from .response import Response
    from .router import Router

__all__ = ["DROP", "PROCEED", "Hooks", "StartupCheck", "Verdict", "add_startup_check", "run_startup_checks"]


class Verdict(enum.Enum):
    """What a hook decides."""

    PROCEED = "proceed"
    DROP = "drop"


PROCEED = Verdict.PROCEED
"""Go on: accept the connection, or route the request."""
DROP = Verdict.DROP
"""Close the connection now, answering nothing more."""

Peer: TypeAlias = Any  # the address accept() returned: (host, port) for TCP
SetupHook: TypeAlias = Callable[[socket.socket, Peer], Verdict]
PreRoutingHook: TypeAlias = "Callable[[Request], Verdict | Response]"
TeardownHook: TypeAlias = Callable[[Peer, BaseException | None], None]
StartupCheck: TypeAlias = "Callable[[Router], None]"


@dataclass(slots=True)
class Hooks:
    """The hooks an app registered (each optional).

    Attributes:
        setup: ``(sock, peer) -> PROCEED | DROP`` for each accepted connection.
        pre_routing: ``(req) -> PROCEED | Response | DROP`` before each request is routed.
        teardown: ``(peer, error)`` once a connection set up by ``setup`` closes;
            ``error`` is the exception that ended it, if any.
    """

    setup: SetupHook | None = None
    pre_routing: PreRoutingHook | None = None
    teardown: TeardownHook | None = None


# A deliberate registry, like the route decorators': an extension adds its check
# once, when it is imported, and every app served in the process runs it.
_STARTUP_CHECKS: list[StartupCheck] = []


def add_startup_check(check: StartupCheck) -> StartupCheck:
    """Run ``check(router)`` before any app of this process serves; it raises to refuse to start.

    For extensions: a check looks at the routes (``router.routes``, ``router.layers``)
    and raises an error that names the missing set-up step.  Adding the same check
    twice keeps one.
    """
    if check not in _STARTUP_CHECKS:
        _STARTUP_CHECKS.append(check)
    return check


def run_startup_checks(router: Router) -> None:
    """Run every registered start-up check on ``router`` (``Chopin.compile`` does, before serving)."""
    for check in list(_STARTUP_CHECKS):
        check(router)
