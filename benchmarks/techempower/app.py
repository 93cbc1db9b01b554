"""Chopin TechEmpower app: GET /plaintext and GET /json.

Run with `PORT=8080 WORKERS=1 python benchmarks/techempower/app.py`.
Chopin adds the Server and Date headers itself.
"""

from chopin_core import Chopin, Context, Response, Router

router = Router()


def plaintext(ctx: Context) -> Response:
    return Response.text_static(b"Hello, World!")


def json_(ctx: Context) -> Response:
    # Serialized per request, as TechEmpower requires.
    return Response.json({"message": "Hello, World!"})


router.get("/plaintext", plaintext)
router.get("/json", json_)

if __name__ == "__main__":
    Chopin(router).serve()
