"""The basic app with /metrics and /health turned on, and /status/:code answering any code."""

from __future__ import annotations

from chopin_core import Chopin, Context, Response

from .basic import router


@router.get("/status/:code")
def any_status(ctx: Context) -> Response:
    """Answer with the status in the path (statuses outside 100..599 included: Response takes up to 999)."""
    return Response.text("status", int(ctx.param("code")))


app = Chopin(router).with_metrics("/metrics").with_health("/health")
