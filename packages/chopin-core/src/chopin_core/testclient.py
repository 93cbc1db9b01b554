"""An in-process test client: the real parser, router and serialiser, no socket.

``TestClient(app).get("/users/1")`` encodes an HTTP/1.1 request, feeds it to a
:class:`~chopin_core._wire.h1_request.RequestParser`, answers it with the same code the
worker runs, and parses the bytes that would have gone on the wire.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

from ._wire.h1_request import CONTINUE, ParserLimits, RequestParser
from .errors import ProtocolError
from .request import Request
from .router import Router
from .settings import Settings
from .worker import Worker

__all__ = ["TestClient", "TestResponse"]


class TestResponse:
    """A response as a client saw it.

    Attributes:
        status: the status code.
        headers: ``(name, value)`` pairs as sent.
        body: the body, de-chunked.
        raw: the exact bytes of this response.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes, raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.raw = raw

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        low = name.lower()
        for key, value in self.headers:
            if key.lower() == low:
                return value
        return None

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode()

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)

    def __repr__(self) -> str:
        return f"<TestResponse {self.status} {len(self.body)} bytes>"


class TestClient:
    """Drives an app's routes in-process through the real protocol code.

    Args:
        app: a :class:`~chopin_core.Chopin` app or a :class:`Router`.
        settings: limits to apply (defaults otherwise).
    """

    __test__ = False

    def __init__(self, app: Any, settings: Settings | None = None) -> None:
        router: Router = app if isinstance(app, Router) else app.router
        self.settings = settings or Settings()
        self._worker = Worker(router.compile(), self.settings)
        s = self.settings
        self._limits = ParserLimits(s.max_request_head_size, s.max_header_count, s.max_uri_length, s.max_body_size)

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str = b"",
        json: Any = None,
        query: dict[str, Any] | None = None,
    ) -> TestResponse:
        """Send one request; return its response."""
        hdrs = {"Host": "testserver"}
        if json is not None:
            body = orjson.dumps(json)
            hdrs["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode()
        if body or method.upper() in ("POST", "PUT", "PATCH"):
            hdrs["Content-Length"] = str(len(body))
        hdrs.update(headers or {})
        target = path + ("?" + urlencode(query, doseq=True) if query else "")
        head = f"{method.upper()} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        responses = self.raw(head.encode("latin-1") + body, head_request=method.upper() == "HEAD")
        if len(responses) != 1:
            raise AssertionError(f"expected one response, got {len(responses)}")
        return responses[0]

    def get(self, path: str, **kw: Any) -> TestResponse:
        """Send a GET request."""
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> TestResponse:
        """Send a POST request."""
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> TestResponse:
        """Send a PUT request."""
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> TestResponse:
        """Send a PATCH request."""
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        """Send a DELETE request."""
        return self.request("DELETE", path, **kw)

    def head(self, path: str, **kw: Any) -> TestResponse:
        """Send a HEAD request."""
        return self.request("HEAD", path, **kw)

    def options(self, path: str, **kw: Any) -> TestResponse:
        """Send an OPTIONS request."""
        return self.request("OPTIONS", path, **kw)

    def raw(self, data: bytes, head_request: bool = False) -> list[TestResponse]:
        """Feed raw request bytes (several, pipelined, or malformed); return every response."""
        # The worker answers; a parser of our own tells which answers belong to HEAD requests.
        methods: list[str] = []
        for event in RequestParser(self._limits).feed(data):
            if isinstance(event, Request):
                methods.append(event.method)
            elif event is not CONTINUE:
                assert isinstance(event, ProtocolError)
                methods.append("")
                break
        return _parse_responses(self._worker.answer(data), methods)


def _parse_responses(data: bytes, methods: list[str]) -> list[TestResponse]:
    responses = []
    pos = 0
    for method in methods:
        if pos >= len(data):
            break  # the connection closed before this request was answered
        end = data.index(b"\r\n\r\n", pos)
        lines = data[pos:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = [(k, v) for k, _, v in (line.partition(": ") for line in lines[1:])]
        lower = {k.lower(): v for k, v in headers}
        pos = end + 4
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif lower.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                eol = data.index(b"\r\n", pos)
                size = int(data[pos:eol], 16)
                pos = eol + 2
                if size == 0:
                    pos += 2
                    break
                parts.append(data[pos : pos + size])
                pos += size + 2
            body = b"".join(parts)
        elif "content-length" in lower:
            size = int(lower["content-length"])
            body = data[pos : pos + size]
            pos += size
        else:
            body = data[pos:]
            pos = len(data)
        responses.append(TestResponse(status, headers, body, data))
    return responses
