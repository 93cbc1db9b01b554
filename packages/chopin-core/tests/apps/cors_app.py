"""The app of test_middleware.py: CORS and request-id layers over routes that answer, fail and are missing."""

from __future__ import annotations

from chopin_core import Chopin, Context, Response, Router, cors, request_id

router = Router()


@router.get("/data")
def data(ctx: Context) -> Response:
    return Response.text("data").with_header("X-Total", "3")


@router.options("/guarded")
def guarded(ctx: Context) -> Response:
    raise RuntimeError("a preflight must not reach the handler")


@router.get("/boom")
def boom(ctx: Context) -> Response:
    raise ValueError("boom")


router.layer(
    cors(
        allow_origins=["https://app.example"],
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "X-Token"],
        allow_credentials=True,
        max_age=120,
        expose_headers=["X-Total"],
    )
)
app = Chopin(router)


rid_router = Router()


@rid_router.get("/whoami")
def whoami(ctx: Context) -> Response:
    return Response.text(ctx.state["request_id"])


@rid_router.get("/boom")
def rid_boom(ctx: Context) -> Response:
    raise ValueError("boom")


rid_router.layer(request_id())


def rid_app() -> Chopin:
    return Chopin(rid_router).with_logging(access_log=True)
