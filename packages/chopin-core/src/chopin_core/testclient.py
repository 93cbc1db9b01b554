"""An in-process test client: the real parser, router and serialiser, no socket.

``TestClient(app).get("/users/1")`` encodes an HTTP/1.1 request, feeds it to a
:class:`~chopin_core._wire.h1_request.RequestParser`, answers it with the same code the
worker runs, and parses the bytes that would have gone on the wire.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias
from urllib.parse import urlencode

import orjson

from ._wire.h1_request import CONTINUE, ParserLimits, RequestParser
from .errors import ProtocolError
from .request import Request
from .router import Router
from .settings import Settings
from .worker import Worker

__all__ = ["CookieJar", "FileSpec", "TestClient", "TestResponse"]

FileSpec: TypeAlias = bytes | str | tuple[str, bytes | str] | tuple[str, bytes | str, str]
"""A ``files=`` entry: the content, or ``(filename, content)``, or ``(filename, content, content_type)``;
the content type defaults to the one the file name suggests (``mimetypes``)."""

HeadersArg: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]]
FormArg: TypeAlias = Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]]


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

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order (e.g. ``Set-Cookie``)."""
        low = name.lower()
        return [value for key, value in self.headers if key.lower() == low]

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

    Cookies persist across calls as a browser keeps them for one host: each
    ``Set-Cookie`` the app answers is stored (``Max-Age``/``Expires`` and ``Path``
    honoured, ``Domain`` and ``Secure`` ignored: the client is the only origin) and
    sent back on later requests whose path matches.

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
        self._jar = CookieJar()

    @property
    def cookies(self) -> CookieJar:
        """The client's cookie jar (``client.cookies.set("sid", "x")``, ``.clear()``)."""
        return self._jar

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: HeadersArg | None = None,
        body: bytes | str = b"",
        json: Any = None,
        data: FormArg | None = None,
        files: Mapping[str, FileSpec] | None = None,
        cookies: Mapping[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> TestResponse:
        """Send one request; return its response.

        Args:
            method: the request method.
            path: the request target's path (a query string may follow ``?``).
            headers: extra fields (a mapping or ``(name, value)`` pairs); they replace
                the client's own ``Host``/``Content-Type``/``Cookie`` of the same name.
            body: the raw body.
            json: a value sent as a JSON body.
            data: form fields: sent ``application/x-www-form-urlencoded``, or as the text
                parts of a ``multipart/form-data`` body when ``files`` is given too.
            files: file parts by field name (see :data:`FileSpec`), sent as multipart.
            cookies: cookies for this request only, over those of the jar.
            query: query parameters, appended to ``path``.

        Raises:
            ValueError: more than one of ``body``, ``json`` and ``data``/``files``.
        """
        hdrs: list[tuple[str, str]] = [("Host", "testserver")]
        if sum((bool(body), json is not None, data is not None or files is not None)) > 1:
            raise ValueError("request: give one of body=, json= and data=/files=")
        if json is not None:
            body = orjson.dumps(json)
            hdrs.append(("Content-Type", "application/json"))
        elif files is not None:
            body, ctype = _encode_multipart(_form_pairs(data), files)
            hdrs.append(("Content-Type", ctype))
        elif data is not None:
            body = urlencode(_form_pairs(data)).encode()
            hdrs.append(("Content-Type", "application/x-www-form-urlencoded"))
        if isinstance(body, str):
            body = body.encode()
        if body or method.upper() in ("POST", "PUT", "PATCH"):
            hdrs.append(("Content-Length", str(len(body))))
        sent = self._jar.for_path(path.partition("?")[0])
        sent.update(cookies or {})
        if sent:
            hdrs.append(("Cookie", "; ".join(f"{name}={value}" for name, value in sent.items())))
        extra = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        replaced = {name.lower() for name, _ in extra}
        hdrs = [(name, value) for name, value in hdrs if name.lower() not in replaced] + extra
        target = path + ("?" + urlencode(query, doseq=True) if query else "")
        head = f"{method.upper()} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n"
        responses = self.raw(head.encode("latin-1") + body, head_request=method.upper() == "HEAD")
        if len(responses) != 1:
            raise AssertionError(f"expected one response, got {len(responses)}")
        for line in responses[0].header_all("set-cookie"):
            self._jar.store(line, path.partition("?")[0])
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


def _form_pairs(data: FormArg | None) -> list[tuple[str, str]]:
    if data is None:
        return []
    if not isinstance(data, Mapping):
        return list(data)
    pairs: list[tuple[str, str]] = []
    for name, value in data.items():
        if isinstance(value, str):
            pairs.append((name, value))
        else:
            pairs.extend((name, item) for item in value)
    return pairs


def _quote_param(value: str) -> str:
    # HTML's multipart/form-data encoding: '"', CR and LF in a name or filename are percent-escaped.
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _encode_multipart(fields: list[tuple[str, str]], files: Mapping[str, FileSpec]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body (RFC 7578) and its ``Content-Type`` value."""
    boundary = "chopin-" + os.urandom(12).hex()
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote_param(name)}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, spec in files.items():
        filename: str = name
        content: bytes | str
        ctype: str | None = None
        if isinstance(spec, tuple):
            filename, content = spec[0], spec[1]
            if len(spec) == 3:
                ctype = spec[2]
        else:
            content = spec
        # As httpx and requests do: the type from the file name unless given.
        ctype = ctype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        raw = content.encode() if isinstance(content, str) else content
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote_param(name)}"; '
            f'filename="{_quote_param(filename)}"\r\nContent-Type: {ctype}\r\n\r\n'
        ).encode()
        out += raw + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


class CookieJar:
    """The test client's cookies for its one host (RFC 6265 5.3, simplified).

    Cookies are kept by name and path; ``Max-Age`` and ``Expires`` are honoured
    (``Max-Age`` first), an expired cookie is removed, and a request gets the cookies
    whose path matches its own (RFC 6265 5.1.4), longest path first.
    """

    __test__ = False

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str], tuple[str, float | None]] = {}

    def set(self, name: str, value: str, path: str = "/") -> None:
        """Store a cookie by hand, as if the app had set it."""
        self._cookies[(name, path)] = (value, None)

    def clear(self) -> None:
        """Forget every cookie."""
        self._cookies.clear()

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of a live cookie ``name`` (any path), or ``default``."""
        return self.as_dict().get(name, default)

    def as_dict(self) -> dict[str, str]:
        """Every live cookie, name to value (the longest path wins a repeated name)."""
        return self.for_path(None)

    def __contains__(self, name: object) -> bool:
        return name in self.as_dict()

    def __len__(self) -> int:
        return len(self.as_dict())

    def for_path(self, request_path: str | None) -> dict[str, str]:
        """The cookies to send for ``request_path`` (all when ``None``), name to value."""
        now = time.time()
        out: dict[str, str] = {}
        for (name, path), (value, expires) in sorted(self._cookies.items(), key=lambda kv: -len(kv[0][1])):
            if expires is not None and expires <= now:
                del self._cookies[(name, path)]
                continue
            if request_path is None or _path_matches(request_path, path):
                out.setdefault(name, value)
        return out

    def store(self, set_cookie: str, request_path: str) -> None:
        """Take in one ``Set-Cookie`` field value answered to ``request_path``."""
        pair, *attributes = set_cookie.split(";")
        name, eq, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name:
            return  # RFC 6265 5.2: a pair without '=' or a name is ignored
        path = _default_path(request_path)
        expires: float | None = None
        max_age: float | None = None
        for attribute in attributes:
            key, _, arg = attribute.partition("=")
            key, arg = key.strip().lower(), arg.strip()
            if key == "path" and arg.startswith("/"):
                path = arg
            elif key == "max-age" and arg.lstrip("-").isdigit():
                max_age = time.time() + int(arg) if int(arg) > 0 else 0.0
            elif key == "expires":
                try:
                    expires = email.utils.parsedate_to_datetime(arg).timestamp()
                except (TypeError, ValueError):
                    pass
        until = max_age if max_age is not None else expires
        if until is not None and until <= time.time():
            self._cookies.pop((name, path), None)
        else:
            self._cookies[(name, path)] = (value, until)


def _default_path(request_path: str) -> str:
    # RFC 6265 5.1.4: the directory of the request path.
    if not request_path.startswith("/") or request_path.count("/") == 1:
        return "/"
    return request_path[: request_path.rindex("/")]


def _path_matches(request_path: str, cookie_path: str) -> bool:
    # RFC 6265 5.1.4 path-match.
    if request_path == cookie_path:
        return True
    if request_path.startswith(cookie_path):
        return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    return False
