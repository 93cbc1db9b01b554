"""A Flask-free WSGI plaintext app, served by chopin (wsgi.serve), gunicorn and granian.

Run with `PORT=8080 WORKERS=1 python benchmarks/peers/wsgi_app.py` for chopin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BODY = b"Hello, World!"


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ["PATH_INFO"] == "/plaintext":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
        return [BODY]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"Not Found"]


if __name__ == "__main__":
    from chopin_core import wsgi

    wsgi.serve(app)  # PORT and WORKERS from the environment
