"""``async def`` handlers that call other services with ``AsyncHttpClient``, for test_client_async.py.

``UPSTREAM`` is the base URL called by ``/call``; ``CLIENT_CA`` (optional) is the CA
bundle an ``https://`` upstream is verified with.  ``/call-blocking`` makes the same call
with ``HttpClient`` (for comparison); ``/stats`` reports the async client's pool:
connections opened by this worker, and idle ones.
"""

from __future__ import annotations

import os

from chopin_core import AsyncHttpClient, Chopin, ClientError, ClientSettings, Context, HttpClient, Response, Router

router = Router()
api = AsyncHttpClient(ClientSettings(read_timeout=5.0, verify=os.environ.get("CLIENT_CA") or True))
blocking_api = HttpClient(ClientSettings(read_timeout=5.0))
UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:1")


@router.get("/plaintext")
def plaintext(ctx: Context) -> Response:
    return Response.text("Hello, World!")


@router.get("/call")
async def call(ctx: Context) -> Response:
    path = ctx.req.query_params().get("path", "/")
    try:
        resp = await api.get(UPSTREAM + path)
    except ClientError as exc:
        return Response.text(f"{type(exc).__name__}: {exc}", exc.status)
    return Response.text(resp.body, resp.status)


@router.get("/call-blocking")
def call_blocking(ctx: Context) -> Response:
    """The same call with the blocking client (holds the worker while it waits), for comparison."""
    resp = blocking_api.get(UPSTREAM + ctx.req.query_params().get("path", "/"))
    return Response.text(resp.body, resp.status)


@router.get("/stats")
def stats(ctx: Context) -> Response:
    return Response.json({"opened": api.connections_opened, "idle": api.idle_count()})


app = Chopin(router)
