"""WSGI apps for the tests: a plain PEP 3333 app under wsgiref's validator, and a Flask app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from wsgiref.validate import validator

from chopin_core import Router
from chopin_core.wsgi import mount
from flask import Flask, request

closed: list[str] = []  # paths whose result iterable was closed (this worker)


class Result:
    """A result iterable with close(), as PEP 3333 allows."""

    def __init__(self, path: str, chunks: list[bytes]) -> None:
        self.path = path
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        closed.append(self.path)


def plain_app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/closed":
        body = json.dumps(closed).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/echo":
        data = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("201 Created", [("Content-Type", "application/octet-stream"), ("X-Len", str(len(data)))])
        return [data]
    if path == "/environ":
        keys = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL", "HTTP_X_TOKEN")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({k: environ.get(k) for k in keys}).encode()]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"then returned"]
    if path == "/error":
        try:
            raise RuntimeError("inside the app")
        except RuntimeError:
            import sys

            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            return [b"app error page"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Result(path, [b"chunk one, ", b"chunk two"])


flask_app = Flask("chopin_test")


@flask_app.get("/")
def flask_index() -> str:
    return "hello from flask"


@flask_app.post("/json")
def flask_json() -> Any:
    return {"got": request.get_json(), "args": request.args.to_dict()}


router = Router()
mount(router, "/plain", validator(plain_app))
mount(router, "", flask_app)
app = router
