"""The basic app with JSON logging (``CHOPIN_LOG`` level), plus routes that log.

``app`` has the access log off (the default); ``access_app`` turns it on.
"""

from __future__ import annotations

import logging

from chopin_core import Chopin, Context, Response, Router

from .basic import router as basic

router = Router()
router.merge(basic)
app_log = logging.getLogger("myapp")


@router.get("/log")
def log_lines(ctx: Context) -> Response:
    app_log.debug("debug from myapp")
    app_log.info("info from myapp", extra={"user": "ada"})
    app_log.warning("warning from myapp")
    return Response.text("logged")


@router.get("/fail")
def fail(ctx: Context) -> Response:
    raise RuntimeError("boom in handler")


def app() -> Chopin:
    return Chopin(router).with_logging()


def access_app() -> Chopin:
    return Chopin(router).with_logging(access_log=True)
