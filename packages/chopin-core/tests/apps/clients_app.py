"""The client's address, rate limits and client certificates, for the real-socket tests.

Routes: ``/client`` (``ctx.client`` as JSON), ``/async-client`` (the same from an
``async def`` handler), ``/wsgi/...`` (a WSGI app answering ``REMOTE_ADDR:REMOTE_PORT``),
``/limited`` (behind ``rate_limit(per_second=RATE_PER_SECOND, burst=RATE_BURST)``, from
the environment; default 0.001 and 5) and ``/async-limited`` (the same limit, sharing
nothing with ``/limited``, around an ``async def`` handler), ``/cert`` (``ctx.peer_cert``
as JSON, ``null`` without one), ``/order`` (notes ``c`` of the query in this worker's list),
``/order-log`` (that list, emptied), ``/slow`` (sleeps ``ms`` milliseconds, holding the worker).
With ``STOP_MARKER`` set, each worker appends ``start <index>`` to that file when it starts
and ``first <index>`` then ``stop <index> <pid>`` when it stops.  Served over TLS when ``TLS_CERT``/``TLS_KEY`` are set,
asking for client certificates signed by ``TLS_CLIENT_CA`` as ``TLS_CLIENT_AUTH`` says.
"""

from __future__ import annotations

import os
import time
from typing import Any

from chopin_core import Chopin, Context, Response, Router, rate_limit, sleep
from chopin_core.wsgi import mount

router = Router()


@router.get("/client")
def client(ctx: Context) -> Response:
    host, port = ctx.client
    return ctx.json({"host": host, "port": port})


@router.get("/async-client")
async def async_client(ctx: Context) -> Response:
    await sleep(0.001)
    host, port = ctx.client
    return ctx.json({"host": host, "port": port})


@router.get("/cert")
def cert(ctx: Context) -> Response:
    return ctx.json(ctx.peer_cert)


_ORDER: list[str] = []  # this worker's (deliberate test state)


@router.get("/order")
def order(ctx: Context) -> Response:
    _ORDER.append(ctx.req.query_params()["c"])
    return Response.text("noted")


@router.get("/order-log")
def order_log(ctx: Context) -> Response:
    noted = list(_ORDER)
    _ORDER.clear()
    return ctx.json(noted)


@router.get("/slow")
def slow(ctx: Context) -> Response:
    time.sleep(int(ctx.req.query_params().get("ms", "100")) / 1000)
    return Response.text("slow")


def remote(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['REMOTE_ADDR']}:{environ['REMOTE_PORT']}".encode()]


mount(router, "/wsgi", remote)

_RATE = float(os.environ.get("RATE_PER_SECOND", "0.001"))
_BURST = int(os.environ.get("RATE_BURST", "5"))


@router.get("/limited")
def limited(ctx: Context) -> Response:
    return Response.text(f"ok {os.getpid()}")


@router.get("/async-limited")
async def async_limited(ctx: Context) -> Response:
    await sleep(0)
    return Response.text(f"ok {os.getpid()}")


router.layer_path("/limited", rate_limit(per_second=_RATE, burst=_BURST))
router.layer_path("/async-limited", rate_limit(per_second=_RATE, burst=_BURST))


class TlsApp(Chopin):
    """Serves with TLS (and client certificates) from the files named in the environment."""

    def serve(self, addr: str | None = None) -> None:
        client_ca = os.environ.get("TLS_CLIENT_CA")
        self.serve_tls(
            addr,
            os.environ["TLS_CERT"],
            os.environ["TLS_KEY"],
            client_ca=client_ca,
            client_auth=os.environ.get("TLS_CLIENT_AUTH", "required") if client_ca else "none",  # type: ignore[arg-type]
        )


def app() -> Chopin:
    chopin = TlsApp(router) if os.environ.get("TLS_CERT") else Chopin(router)
    marker = os.environ.get("STOP_MARKER")
    if marker:

        @chopin.on_worker_start
        def started(index: int) -> None:
            with open(marker, "a") as f:
                f.write(f"start {index}\n")

        @chopin.on_worker_stop
        def noted(index: int) -> None:
            with open(marker, "a") as f:
                f.write(f"stop {index} {os.getpid()}\n")

        @chopin.on_worker_stop
        def first(index: int) -> None:  # registered last, runs first
            with open(marker, "a") as f:
                f.write(f"first {index}\n")

    return chopin
