"""Response: constructors, builders, header safety and the encoded header block."""

from __future__ import annotations

import dataclasses

import pytest
from chopin_core.response import Response, content_length_line, http_date, status_line

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
JSON = "application/json"


def content_type(resp: Response) -> str | None:
    return dict(resp.headers).get("Content-Type")


@dataclasses.dataclass
class Point:
    x: int
    y: int


CONSTRUCTORS = [
    ("new", lambda: Response.new(202), 202, None, b""),
    ("text-str", lambda: Response.text("h\u00e9llo"), 200, TEXT, "h\u00e9llo".encode()),
    ("text-bytes", lambda: Response.text(b"raw", 201), 201, TEXT, b"raw"),
    ("text_static", lambda: Response.text_static(b"static"), 200, TEXT, b"static"),
    ("html-str", lambda: Response.html("<p>x</p>"), 200, HTML, b"<p>x</p>"),
    ("html-bytes", lambda: Response.html(b"<b>", 418), 418, HTML, b"<b>"),
    ("json", lambda: Response.json({"a": [1, 2], "b": None}), 200, JSON, b'{"a":[1,2],"b":null}'),
    ("json-dataclass", lambda: Response.json(Point(1, 2), 201), 201, JSON, b'{"x":1,"y":2}'),
    ("json_bytes", lambda: Response.json_bytes(b"[1]", 202), 202, JSON, b"[1]"),
    ("json_static", lambda: Response.json_static(b'{"ok":true}'), 200, JSON, b'{"ok":true}'),
    ("raw", lambda: Response.raw(b"\x00\x01"), 200, "application/octet-stream", b"\x00\x01"),
    ("raw-typed", lambda: Response.raw(b"GIF8", 203, "image/gif"), 203, "image/gif", b"GIF8"),
    ("redirect", lambda: Response.redirect("/there"), 302, None, b""),
    ("redirect-301", lambda: Response.redirect("/moved", 301), 301, None, b""),
    ("not_found", Response.not_found, 404, TEXT, b"Not Found"),
    ("bad_request", Response.bad_request, 400, TEXT, b"Bad Request"),
    ("bad_request-message", lambda: Response.bad_request("no \u00e9"), 400, TEXT, "no \u00e9".encode()),
    ("unauthorized", Response.unauthorized, 401, TEXT, b"Unauthorized"),
    ("forbidden", Response.forbidden, 403, TEXT, b"Forbidden"),
    ("server_error", Response.server_error, 500, TEXT, b"Internal Server Error"),
    ("method_not_allowed", lambda: Response.method_not_allowed(["GET", "HEAD"]), 405, TEXT, b"Method Not Allowed"),
]


@pytest.mark.parametrize(
    ("make", "status", "ctype", "body"), [c[1:] for c in CONSTRUCTORS], ids=[c[0] for c in CONSTRUCTORS]
)
def test_constructor(make: object, status: int, ctype: str | None, body: bytes) -> None:
    resp = make()  # type: ignore[operator]
    assert resp.status == status
    assert resp.body == body
    assert content_type(resp) == ctype
    assert dict(resp.headers)["Content-Length"] == str(len(body))
    assert resp.stream_body is None
    assert resp.close is False


def test_redirect_location() -> None:
    resp = Response.redirect("https://example.com/a?b=c", 307)
    assert resp.status == 307
    assert ("Location", "https://example.com/a?b=c") in resp.headers


def test_redirect_refuses_header_injection() -> None:
    with pytest.raises(ValueError):
        Response.redirect("/x\r\nSet-Cookie: evil=1")


def test_method_not_allowed_lists_allow() -> None:
    resp = Response.method_not_allowed(["GET", "HEAD", "POST"])
    assert ("Allow", "GET, HEAD, POST") in resp.headers


def test_stream_constructor() -> None:
    resp = Response.stream(iter([b"a", "b"]), "text/csv")
    assert resp.status == 200
    assert resp.body == b""
    assert resp.headers == [("Content-Type", "text/csv"), ("Transfer-Encoding", "chunked")]
    assert resp.stream_body is not None
    assert list(resp.stream_body) == [b"a", "b"]


def test_stream_accepts_any_iterable() -> None:
    resp = Response.stream([b"x", b"y"])
    assert resp.stream_body is not None
    assert list(resp.stream_body) == [b"x", b"y"]
    assert content_type(resp) == "application/octet-stream"


def test_large_body_content_length() -> None:
    resp = Response.raw(b"x" * 5000)
    assert dict(resp.headers)["Content-Length"] == "5000"


# -- headers listing and block ------------------------------------------------------------------


def test_headers_listing_in_order() -> None:
    resp = Response.text("hi").with_header("X-One", "1").with_header("X-Two", "two words")
    assert resp.headers == [
        ("Content-Type", TEXT),
        ("Content-Length", "2"),
        ("X-One", "1"),
        ("X-Two", "two words"),
    ]


def test_header_block_is_the_encoded_lines() -> None:
    resp = Response.text("hi").with_header("X-A", "b")
    assert resp.header_block() == (b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\nX-A: b\r\n")


def test_with_header_repeats_are_kept() -> None:
    resp = Response.new(200).with_header("Set-Cookie", "a=1").with_header("Set-Cookie", "b=2")
    assert [v for k, v in resp.headers if k == "Set-Cookie"] == ["a=1", "b=2"]


def test_with_header_returns_the_same_response() -> None:
    resp = Response.new(200)
    assert resp.with_header("X", "y") is resp
    assert resp.with_status(201) is resp


def test_with_header_latin1_value() -> None:
    resp = Response.new(200).with_header("X-Name", "caf\u00e9")
    assert resp.header_block().endswith(b"X-Name: caf\xe9\r\n")


# -- with_header safety ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-A", "a\rb"),
        ("X-A", "a\nb"),
        ("X-A", "a\r\nSet-Cookie: evil=1"),
        ("X-A", "a\x00b"),
        ("X\rA", "v"),
        ("X\nA", "v"),
        ("X\x00A", "v"),
        ("X A", "v"),
        ("X:A", "v"),
        ("Content-Type", "text/plain\r\nX-Evil: 1"),
    ],
    ids=[
        "cr",
        "lf",
        "crlf-injection",
        "nul",
        "name-cr",
        "name-lf",
        "name-nul",
        "name-space",
        "name-colon",
        "ctype-crlf",
    ],
)
def test_with_header_refuses_bytes_that_break_the_block(name: str, value: str) -> None:
    resp = Response.text("x")
    before = resp.header_block()
    with pytest.raises(ValueError):
        resp.with_header(name, value)
    assert resp.header_block() == before


@pytest.mark.parametrize("name", ["Content-Length", "content-length", "Transfer-Encoding", "TRANSFER-ENCODING"])
def test_with_header_refuses_framing_headers(name: str) -> None:
    with pytest.raises(ValueError, match="set by the engine"):
        Response.text("x").with_header(name, "5")


def test_with_header_content_type_replaces() -> None:
    resp = Response.text("x").with_header("Content-Type", "text/markdown")
    assert resp.headers == [("Content-Type", "text/markdown"), ("Content-Length", "1")]
    resp.with_header("content-type", "text/csv")
    assert [v for k, v in resp.headers if k == "Content-Type"] == ["text/csv"]


def test_with_header_content_type_on_a_response_without_one() -> None:
    resp = Response.new(200).with_header("Content-Type", "text/plain")
    assert resp.headers == [("Content-Type", "text/plain"), ("Content-Length", "0")]


def test_with_header_content_type_on_a_stream_keeps_chunked() -> None:
    resp = Response.stream([b"x"]).with_header("Content-Type", "text/event-stream")
    assert resp.headers == [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]


def test_with_header_connection_close_sets_close() -> None:
    resp = Response.text("bye").with_header("Connection", "Close")
    assert resp.close is True
    assert all(k != "Connection" for k, _ in resp.headers)


@pytest.mark.parametrize(
    "make",
    [lambda b, ct: Response.raw(b, content_type=ct), lambda b, ct: Response.stream([b], ct)],
    ids=["raw", "stream"],
)
def test_content_type_argument_refuses_crlf(make: object) -> None:
    with pytest.raises(ValueError):
        make(b"x", "text/plain\r\nSet-Cookie: evil=1")  # type: ignore[operator]


@pytest.mark.parametrize("name", ["", "X\tY", "X(Y)"], ids=["empty", "tab", "paren"])
def test_with_header_refuses_invalid_names(name: str) -> None:
    with pytest.raises(ValueError):
        Response.new(200).with_header(name, "v")


# -- status ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [100, 200, 299, 418, 599])
def test_with_status_accepts_codes_100_to_599(status: int) -> None:
    assert Response.new(200).with_status(status).status == status
    assert Response.new(status).status == status


@pytest.mark.parametrize("status", [0, 99, 600, 999, 1000, -200])
def test_with_status_refuses_codes_outside_100_to_599(status: int) -> None:
    # RFC 9110 15: 100..599 is all HTTP defines (issue 15: with_status(999) was accepted).
    resp = Response.new(200)
    with pytest.raises(ValueError, match=r"status: expected an integer in 100\.\.599"):
        resp.with_status(status)
    assert resp.status == 200
    with pytest.raises(ValueError, match="status"):
        Response.new(status)


def test_status_line_known_and_unknown() -> None:
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(404) == b"HTTP/1.1 404 Not Found\r\n"
    assert status_line(599) == b"HTTP/1.1 599 Unknown\r\n"


def test_content_length_line() -> None:
    assert content_length_line(0) == b"Content-Length: 0\r\n"
    assert content_length_line(4095) == b"Content-Length: 4095\r\n"
    assert content_length_line(123456) == b"Content-Length: 123456\r\n"


def test_http_date_is_imf_fixdate() -> None:
    value = http_date().decode()
    assert value.endswith(" GMT")
    assert len(value) == len("Sun, 06 Nov 1994 08:49:37 GMT")


def test_repr() -> None:
    assert repr(Response.text("abc", 201)) == "<Response 201 3 bytes>"
