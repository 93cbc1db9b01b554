"""chopin-core serving TechEmpower's plaintext and json over TLS, for the HTTP/2 rows.

The same two handlers as benchmarks/techempower/app.py; ALPN offers h2 (chopin-core's
``http2`` extra) and http/1.1. Run from benchmarks/peers:
    TLS_CERT=cert.pem TLS_KEY=key.pem PORT=8443 WORKERS=1 python chopin_tls_app.py
"""

from __future__ import annotations

import os

from chopin_core import Chopin, Context, Response, Router

router = Router()


def plaintext(ctx: Context) -> Response:
    return Response.text_static(b"Hello, World!")


def json_(ctx: Context) -> Response:
    return Response.json({"message": "Hello, World!"})


router.get("/plaintext", plaintext)
router.get("/json", json_)

if __name__ == "__main__":
    addr = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8443')}"
    Chopin(router).serve_tls(addr, os.environ["TLS_CERT"], os.environ["TLS_KEY"])
