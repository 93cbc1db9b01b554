"""Request and Headers: case-insensitive, multi-valued headers; decoded path; query parsing."""

from __future__ import annotations

import pytest
from chopin_core.request import Headers, Request


def make_request(target: str = "/", *header_lines: bytes, http11: bool = True) -> Request:
    path, _, query = target.partition("?")
    return Request("GET", target, path, query if "?" in target else None, http11, http11, list(header_lines))


# -- Headers ----------------------------------------------------------------------------------


def test_headers_lookup_is_case_insensitive() -> None:
    headers = Headers([b"Content-Type: text/plain", b"X-Request-ID: abc"])
    assert headers.get("content-type") == "text/plain"
    assert headers.get("CONTENT-TYPE") == "text/plain"
    assert headers["x-request-id"] == "abc"
    assert headers["X-REQUEST-ID"] == "abc"
    assert "Content-type" in headers
    assert "missing" not in headers


def test_headers_missing_field() -> None:
    headers = Headers([b"A: 1"])
    assert headers.get("b") is None
    assert headers.get("b", "fallback") == "fallback"
    assert headers.get_all("b") == []
    with pytest.raises(KeyError):
        headers["b"]


def test_headers_contains_only_strings() -> None:
    headers = Headers([b"A: 1"])
    assert b"a" not in headers
    assert 1 not in headers


def test_repeated_fields_are_joined_with_comma_space() -> None:
    headers = Headers([b"Accept: text/html", b"X-Other: o", b"accept: application/json", b"ACCEPT: */*"])
    assert headers.get("Accept") == "text/html, application/json, */*"
    assert headers["accept"] == "text/html, application/json, */*"


def test_get_all_keeps_the_order_received() -> None:
    headers = Headers([b"Via: 1", b"X: x", b"via: 2", b"VIA: 3"])
    assert headers.get_all("via") == ["1", "2", "3"]
    assert headers.get_all("VIA") == ["1", "2", "3"]


def test_items_are_lower_case_names_in_order() -> None:
    headers = Headers([b"Host: example.com", b"X-A: 1", b"x-a: 2"])
    assert headers.items() == [("host", "example.com"), ("x-a", "1"), ("x-a", "2")]
    assert len(headers) == 3
    assert list(headers) == ["host", "x-a"]


def test_values_are_trimmed_of_optional_whitespace() -> None:
    headers = Headers([b"A:   spaced  ", b"B:\ttabbed\t", b"C:", b"D: inner  space"])
    assert headers["a"] == "spaced"
    assert headers["b"] == "tabbed"
    assert headers["c"] == ""
    assert headers["d"] == "inner  space"


def test_value_with_colon_keeps_everything_after_the_first() -> None:
    assert Headers([b"Host: example.com:8080"])["host"] == "example.com:8080"


def test_obs_text_values_decode_as_latin1() -> None:
    assert Headers([b"X-Name: caf\xe9"])["x-name"] == "caf\u00e9"


def test_items_returns_a_copy() -> None:
    headers = Headers([b"A: 1"])
    headers.items().append(("b", "2"))
    assert headers.items() == [("a", "1")]


# -- Request ----------------------------------------------------------------------------------


def test_request_headers_are_built_lazily_and_cached() -> None:
    req = make_request("/", b"Host: a", b"X-A: 1")
    assert req.headers is req.headers
    assert req.header("x-a") == "1"
    assert req.header("X-A") == "1"
    assert req.header("nope") is None


def test_request_version() -> None:
    assert make_request().version == "HTTP/1.1"
    assert make_request(http11=False).version == "HTTP/1.0"


def test_request_default_body_is_empty() -> None:
    assert make_request().body == b""


@pytest.mark.parametrize(
    ("path", "decoded"),
    [
        ("/plain", "/plain"),
        ("/a%20b", "/a b"),
        ("/caf%C3%A9", "/caf\u00e9"),
        ("/%E2%9C%93/x", "/\u2713/x"),
        ("/a%2Fb", "/a/b"),
        ("/100%25", "/100%"),
        ("/a+b", "/a+b"),  # '+' means space only in query strings
    ],
)
def test_decoded_path(path: str, decoded: str) -> None:
    assert make_request(path).decoded_path == decoded


def test_decoded_path_leaves_the_raw_path_alone() -> None:
    req = make_request("/a%20b")
    assert req.decoded_path == "/a b"
    assert req.path == "/a%20b"


def test_query_params_last_repeat_wins() -> None:
    req = make_request("/s?q=first&page=2&q=last")
    assert req.query_params() == {"q": "last", "page": "2"}


def test_query_list_keeps_repeats_in_order() -> None:
    req = make_request("/s?tag=a&x=1&tag=b&tag=c")
    assert req.query_list() == [("tag", "a"), ("x", "1"), ("tag", "b"), ("tag", "c")]


def test_query_decoding() -> None:
    req = make_request("/s?name=J%C3%BCrgen+M&amp%26=%3D&empty=&flag")
    assert req.query_params() == {"name": "J\u00fcrgen M", "amp&": "=", "empty": "", "flag": ""}


@pytest.mark.parametrize("target", ["/s", "/s?"])
def test_no_or_empty_query(target: str) -> None:
    req = make_request(target)
    assert req.query_params() == {}
    assert req.query_list() == []


def test_repr() -> None:
    assert repr(make_request("/x?y")) == "<Request GET /x?y HTTP/1.1>"


@pytest.mark.parametrize(
    ("header", "coding", "expected"),
    [
        (None, "gzip", False),
        ("gzip", "gzip", True),
        ("GZIP, br", "gzip", True),
        ("br;q=1.0, gzip;q=0.5", "gzip", True),
        ("gzip;q=0", "gzip", False),
        ("gzip; q=0.000", "gzip", False),
        ("*", "gzip", True),
        ("*;q=0", "gzip", False),
        ("*, gzip;q=0", "gzip", False),
        ("gzip;q=0.5, *;q=0", "gzip", True),
        ("deflate", "gzip", False),
        ("gzip;q=bogus", "gzip", False),
    ],
)
def test_accepts_encoding(header: str | None, coding: str, expected: bool) -> None:
    lines = [b"Host: x"] + ([b"Accept-Encoding: " + header.encode()] if header is not None else [])
    req = Request("GET", "/", "/", None, True, True, lines)
    assert req.accepts_encoding(coding) is expected
