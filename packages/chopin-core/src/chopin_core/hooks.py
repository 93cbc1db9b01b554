"""Lifecycle hooks: code the worker runs when a connection opens, before routing, and when it closes.

    app = Chopin(router)

    @app.connection_setup_hook
    def only_local(sock, peer):
        return PROCEED if peer[0].startswith("127.") else DROP

    @app.pre_routing_hook
    def no_http10(req):
        return PROCEED if req.http11 else Response.text("HTTP/1.1 only", 505)

Hooks run in the worker, synchronously: they must be quick and must not block.
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

__all__ = ["DROP", "PROCEED", "Hooks", "Verdict"]


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
