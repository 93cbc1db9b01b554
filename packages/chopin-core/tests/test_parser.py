"""RequestParser: framing, pipelining, limits and every refusal (RFC 9112), without sockets."""

from __future__ import annotations

from itertools import pairwise

import pytest
from chopin_core._wire.h1_request import CONTINUE, Continue, ParserLimits, RequestParser
from chopin_core.errors import (
    BadRequest,
    BodyTooLarge,
    HeadTooLarge,
    ProtocolError,
    UnsupportedTransferCoding,
    UnsupportedVersion,
    UriTooLong,
)
from chopin_core.request import Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Event = Request | Continue | ProtocolError


# -- helpers ------------------------------------------------------------------------


def feed_whole(data: bytes, limits: ParserLimits | None = None) -> list[Event]:
    parser = RequestParser(limits) if limits is not None else RequestParser()
    return parser.feed(data)


def feed_bytewise(data: bytes, limits: ParserLimits | None = None) -> list[Event]:
    """Feed one byte at a time; stop at the first protocol error (later feeds only repeat it)."""
    parser = RequestParser(limits) if limits is not None else RequestParser()
    events: list[Event] = []
    for i in range(len(data)):
        events += parser.feed(data[i : i + 1])
        if events and isinstance(events[-1], ProtocolError):
            break
    return events


def feed_split(data: bytes, cuts: list[int], limits: ParserLimits | None = None) -> list[Event]:
    parser = RequestParser(limits) if limits is not None else RequestParser()
    events: list[Event] = []
    bounds = [0, *sorted(set(cuts)), len(data)]
    for lo, hi in pairwise(bounds):
        if hi > lo:
            events += parser.feed(data[lo:hi])
    return events


def snapshot(event: Event) -> object:
    """A comparable picture of an event."""
    if isinstance(event, Request):
        return (
            "request",
            event.method,
            event.target,
            event.path,
            event.query,
            event.http11,
            event.keep_alive,
            event.body,
            event.headers.items(),
        )
    if isinstance(event, ProtocolError):
        return ("error", type(event).__name__, event.status)
    return ("continue",)


def requests_of(events: list[Event]) -> list[Request]:
    assert all(isinstance(e, Request) for e in events), events
    return [e for e in events if isinstance(e, Request)]


def only_request(data: bytes, limits: ParserLimits | None = None) -> Request:
    events = feed_whole(data, limits)
    assert len(events) == 1, events
    req = events[0]
    assert isinstance(req, Request), req
    return req


def error_of(events: list[Event]) -> ProtocolError:
    assert events, "expected a protocol error, got no event"
    err = events[-1]
    assert isinstance(err, ProtocolError), events
    assert not any(isinstance(e, ProtocolError) for e in events[:-1])
    return err


def get(target: str = "/", *headers: str, version: str = "HTTP/1.1", host: bool = True) -> bytes:
    lines = [f"GET {target} {version}"]
    if host:
        lines.append("Host: example.com")
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def post(body: bytes, *headers: str) -> bytes:
    head = "POST /submit HTTP/1.1\r\nHost: example.com\r\n" + "".join(h + "\r\n" for h in headers)
    return head.encode("latin-1") + b"\r\n" + body


def chunked_post(framed_body: bytes, *headers: str) -> bytes:
    return post(framed_body, "Transfer-Encoding: chunked", *headers)


# -- well-formed requests ---------------------------------------------------------------


def test_single_request_fields() -> None:
    req = only_request(get("/users/42?x=1&y=2", "User-Agent: test/1.0", "Accept: */*"))
    assert req.method == "GET"
    assert req.target == "/users/42?x=1&y=2"
    assert req.path == "/users/42"
    assert req.query == "x=1&y=2"
    assert req.http11 is True
    assert req.version == "HTTP/1.1"
    assert req.keep_alive is True
    assert req.body == b""
    assert req.headers.items() == [("host", "example.com"), ("user-agent", "test/1.0"), ("accept", "*/*")]


def test_parser_is_idle_after_a_whole_request() -> None:
    parser = RequestParser()
    assert not parser.in_request
    parser.feed(get())
    assert not parser.in_request
    assert not parser.broken


def test_pipelined_burst_of_16_in_one_feed_returns_16_in_order() -> None:
    burst = b""
    for i in range(16):
        if i % 3 == 0:
            burst += post(f"body-{i}".encode(), f"Content-Length: {len(f'body-{i}')}").replace(
                b"/submit", f"/r/{i}".encode()
            )
        elif i % 3 == 1:
            burst += chunked_post(b"3\r\nabc\r\n0\r\n\r\n").replace(b"/submit", f"/r/{i}".encode())
        else:
            burst += get(f"/r/{i}")
    events = feed_whole(burst)
    reqs = requests_of(events)
    assert [r.path for r in reqs] == [f"/r/{i}" for i in range(16)]
    assert [r.body for r in reqs[:3]] == [b"body-0", b"abc", b""]


def test_pipelined_requests_then_error_puts_error_last() -> None:
    events = feed_whole(get("/a") + get("/b") + b"BROKEN\r\n\r\n" + get("/c"))
    assert [snapshot(e)[0] for e in events] == ["request", "request", "error"]
    assert [r.path for r in events[:2]] == ["/a", "/b"]  # type: ignore[union-attr]


SAMPLES = {
    "get": get("/a/b?c=d", "Accept: text/html", "X-Empty:"),
    "content-length": post(b"hello world", "Content-Length: 11"),
    "chunked-with-ext-and-trailers": chunked_post(
        b'5;name=value\r\nhello\r\n6 ; quoted="a;b"\r\n world\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n'
    ),
    "leading-empty-line": b"\r\n" + get("/lead"),
    "pipelined-mixed": get("/1") + post(b"xyz", "Content-Length: 3") + chunked_post(b"1\r\nq\r\n0\r\n\r\n") + get("/4"),
    "http10": get("/old", version="HTTP/1.0", host=False),
    "expect-continue": post(b"abc", "Content-Length: 3", "Expect: 100-continue"),
}


@pytest.mark.parametrize("data", SAMPLES.values(), ids=SAMPLES.keys())
def test_feeding_byte_by_byte_gives_the_same_requests(data: bytes) -> None:
    whole = [snapshot(e) for e in feed_whole(data) if e is not CONTINUE]
    bytewise = [snapshot(e) for e in feed_bytewise(data) if e is not CONTINUE]
    assert whole
    assert bytewise == whole


@pytest.mark.parametrize("data", SAMPLES.values(), ids=SAMPLES.keys())
def test_every_two_piece_split_gives_the_same_requests(data: bytes) -> None:
    whole = [snapshot(e) for e in feed_whole(data) if e is not CONTINUE]
    for cut in range(1, len(data)):
        split = [snapshot(e) for e in feed_split(data, [cut]) if e is not CONTINUE]
        assert split == whole, f"split at {cut}"


# -- Content-Length bodies ---------------------------------------------------------------


def test_content_length_body_whole() -> None:
    req = only_request(post(b"0123456789", "Content-Length: 10"))
    assert req.body == b"0123456789"


def test_content_length_zero_has_empty_body() -> None:
    assert only_request(post(b"", "Content-Length: 0")).body == b""


def test_content_length_body_partial_then_rest() -> None:
    parser = RequestParser()
    assert parser.feed(post(b"0123", "Content-Length: 10")) == []
    assert parser.in_request
    assert parser.feed(b"456") == []
    events = parser.feed(b"789" + get("/next"))
    reqs = requests_of(events)
    assert [r.body for r in reqs] == [b"0123456789", b""]
    assert reqs[1].path == "/next"
    assert not parser.in_request


def test_content_length_head_and_body_split() -> None:
    data = post(b"abcdef", "Content-Length: 6")
    head_end = data.index(b"\r\n\r\n") + 4
    parser = RequestParser()
    assert parser.feed(data[: head_end - 1]) == []
    assert parser.feed(data[head_end - 1 : head_end]) == []  # head complete, body pending
    (req,) = parser.feed(data[head_end:])
    assert isinstance(req, Request)
    assert req.body == b"abcdef"


def test_body_bytes_are_not_parsed_as_a_request() -> None:
    inner = get("/smuggled")
    reqs = requests_of(feed_whole(post(inner, f"Content-Length: {len(inner)}")))
    assert len(reqs) == 1
    assert reqs[0].body == inner


def test_identical_repeated_content_length_is_accepted() -> None:
    assert only_request(post(b"abc", "Content-Length: 3", "Content-Length: 3")).body == b"abc"
    assert only_request(post(b"abc", "Content-Length: 3, 3")).body == b"abc"


# -- chunked bodies ----------------------------------------------------------------------


def test_chunked_body_is_dechunked() -> None:
    req = only_request(chunked_post(b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n"))
    assert req.body == b"Wikipedia in\r\n\r\nchunks."


def test_chunked_extensions_are_ignored() -> None:
    req = only_request(chunked_post(b'3;ext\r\nabc\r\n2;a=b;c="d"\r\nde\r\n0;last\r\n\r\n'))
    assert req.body == b"abcde"


def test_chunked_trailers_are_ignored() -> None:
    req = only_request(chunked_post(b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nX-Other: y\r\n\r\n"))
    assert req.body == b"abc"
    assert "x-checksum" not in req.headers


def test_chunked_hex_sizes_any_case_and_leading_zeros() -> None:
    req = only_request(chunked_post(b"00a\r\n" + b"x" * 10 + b"\r\nA\r\n" + b"y" * 10 + b"\r\n0\r\n\r\n"))
    assert req.body == b"x" * 10 + b"y" * 10


def test_chunked_byte_by_byte_with_extensions_and_trailers() -> None:
    data = chunked_post(b"3;e=1\r\nabc\r\n10\r\n" + b"z" * 16 + b"\r\n0\r\nT: v\r\n\r\n") + get("/after")
    reqs = requests_of(feed_bytewise(data))
    assert [r.body for r in reqs] == [b"abc" + b"z" * 16, b""]
    assert reqs[1].path == "/after"


def test_chunked_request_stays_pending_until_last_chunk() -> None:
    parser = RequestParser()
    assert parser.feed(chunked_post(b"3\r\nabc\r\n")) == []
    assert parser.in_request
    assert parser.feed(b"0\r\n") == []
    (req,) = parser.feed(b"\r\n")
    assert isinstance(req, Request)
    assert req.body == b"abc"


def test_transfer_encoding_chunked_is_case_insensitive() -> None:
    assert only_request(post(b"1\r\nx\r\n0\r\n\r\n", "transfer-encoding: Chunked")).body == b"x"


# -- connection persistence (RFC 9112 9.3) ---------------------------------------------------


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Close", False),
        ("HTTP/1.1", "keep-alive", True),
        ("HTTP/1.1", "keep-alive, close", False),
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "keep-alive", True),
        ("HTTP/1.0", "Keep-Alive", True),
        ("HTTP/1.0", "close", False),
    ],
)
def test_keep_alive(version: str, connection: str | None, keep_alive: bool) -> None:
    headers = [f"Connection: {connection}"] if connection else []
    req = only_request(get("/", *headers, version=version))
    assert req.http11 is (version == "HTTP/1.1")
    assert req.keep_alive is keep_alive


def test_http10_needs_no_host() -> None:
    req = only_request(get("/", version="HTTP/1.0", host=False))
    assert req.version == "HTTP/1.0"


# -- request line forms ------------------------------------------------------------------------


def test_leading_empty_lines_are_ignored() -> None:
    assert only_request(b"\r\n" + get("/x")).path == "/x"
    assert only_request(b"\r\n\r\n" + get("/y")).path == "/y"


def test_empty_line_between_pipelined_requests_is_ignored() -> None:
    reqs = requests_of(feed_whole(get("/a") + b"\r\n" + get("/b")))
    assert [r.path for r in reqs] == ["/a", "/b"]


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("http://example.com/a/b", "/a/b", None),
        ("http://example.com/a?x=1", "/a", "x=1"),
        ("https://example.com:8443/p/q?r", "/p/q", "r"),
        ("http://example.com", "/", None),
        ("http://example.com//a", "//a", None),
    ],
)
def test_absolute_form_target_routes_on_its_path(target: str, path: str, query: str | None) -> None:
    req = only_request(get(target))
    assert req.target == target
    assert req.path == path
    assert req.query == query


def test_absolute_form_with_empty_path_keeps_query() -> None:
    req = only_request(get("http://example.com?x=1"))
    assert req.path == "/"
    assert req.query == "x=1"


def test_absolute_form_scheme_is_case_insensitive() -> None:
    assert only_request(get("HTTP://example.com/x")).path == "/x"


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("http://evil.example/p?q", "evil.example"),
        ("https://evil.example:8443/p", "evil.example:8443"),
        ("http://[::1]:8080/p", "[::1]:8080"),
        ("http://evil.example?q", "evil.example"),
    ],
)
def test_absolute_form_authority_replaces_host(target: str, host: str) -> None:
    # RFC 9112 3.2.2: the target's authority wins over the Host field, which is replaced.
    req = only_request(get(target, "X-A: b", host=False).replace(b"\r\n\r\n", b"\r\nHost: good.example\r\n\r\n"))
    assert req.headers.get_all("host") == [host]
    assert req.headers.get("x-a") == "b"
    # HTTP/1.0 may send no Host at all: the authority still becomes one.
    assert only_request(get(target, version="HTTP/1.0", host=False)).headers.get_all("host") == [host]


@pytest.mark.parametrize(
    "target",
    [
        "http://user@example.com/u",
        "http://user:pw@example.com/",
        "http:///path",
        "http://",
        'http://a"b/',
        "http://a<b>/",
    ],
)
def test_absolute_form_without_a_valid_host_is_refused(target: str) -> None:
    err = error_of(feed_whole(get(target)))
    assert type(err) is BadRequest
    assert err.status == 400


def test_options_asterisk() -> None:
    req = only_request(b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert req.method == "OPTIONS"
    assert req.path == "*"
    assert req.query is None


def test_asterisk_form_only_for_options() -> None:
    assert error_of(feed_whole(get("*"))).status == 400


def test_connect_authority_form() -> None:
    req = only_request(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert req.path == "example.com:443"


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/a", "/a", None),
        ("/a?b=1&c", "/a", "b=1&c"),
        ("/a?", "/a", ""),
        ("/a?b=1?c=2", "/a", "b=1?c=2"),
        ("/?x", "/", "x"),
        ("/p%20q?r=%2F", "/p%20q", "r=%2F"),
    ],
)
def test_query_split(target: str, path: str, query: str | None) -> None:
    req = only_request(get(target))
    assert (req.path, req.query) == (path, query)


def test_extension_method_token_is_accepted() -> None:
    req = only_request(b"PURGE /cache HTTP/1.1\r\nHost: a\r\n\r\n")
    assert req.method == "PURGE"


def test_header_values_keep_obs_text_and_inner_whitespace() -> None:
    req = only_request(get("/", "X-A: \t a \t b \t", "X-B: caf\xe9"))
    assert req.headers["x-a"] == "a \t b"
    assert req.headers["x-b"] == "caf\xe9"


# -- Expect: 100-continue (RFC 9110 10.1.1) ------------------------------------------------------


def test_continue_emitted_when_body_not_yet_arrived() -> None:
    parser = RequestParser()
    head = post(b"", "Content-Length: 5", "Expect: 100-continue")
    assert parser.feed(head) == [CONTINUE]
    (req,) = parser.feed(b"hello")
    assert isinstance(req, Request)
    assert req.body == b"hello"


def test_continue_emitted_for_chunked_body() -> None:
    parser = RequestParser()
    assert parser.feed(chunked_post(b"", "Expect: 100-Continue")) == [CONTINUE]
    (req,) = parser.feed(b"2\r\nhi\r\n0\r\n\r\n")
    assert isinstance(req, Request)
    assert req.body == b"hi"


def test_continue_not_emitted_when_body_already_present() -> None:
    events = feed_whole(post(b"hello", "Content-Length: 5", "Expect: 100-continue"))
    assert [snapshot(e)[0] for e in events] == ["request"]


def test_continue_not_emitted_when_part_of_body_present() -> None:
    parser = RequestParser()
    assert parser.feed(post(b"he", "Content-Length: 5", "Expect: 100-continue")) == []


def test_continue_not_emitted_without_body() -> None:
    assert [snapshot(e)[0] for e in feed_whole(get("/", "Expect: 100-continue"))] == ["request"]


def test_continue_not_emitted_for_http10() -> None:
    data = b"POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    assert feed_whole(data) == []


def test_continue_not_emitted_without_expect() -> None:
    assert feed_whole(post(b"", "Content-Length: 3")) == []


# -- refusals -----------------------------------------------------------------------------------

BAD_INPUTS: list[tuple[str, bytes, int]] = [
    # request line (RFC 9112 3)
    ("request-line-2-tokens", b"GET /\r\nHost: a\r\n\r\n", 400),
    ("request-line-4-tokens", b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", 400),
    ("request-line-double-space", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("request-line-1-token", b"GET\r\nHost: a\r\n\r\n", 400),
    ("version-lowercase", b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    ("version-malformed", b"GET / HTTP/1.1.1\r\nHost: a\r\n\r\n", 400),
    ("version-no-dot", b"GET / HTTP/11\r\nHost: a\r\n\r\n", 400),
    ("empty-method", b" / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("method-not-token", b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("target-obs-text", b"GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("target-tab", b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("target-del", b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("target-relative", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("target-ftp-scheme", b"GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("http-2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ("http-3.0", b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    ("http-0.9", b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    # header fields (RFC 9112 5)
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400),
    ("tab-before-colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", 400),
    ("obs-fold-space", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    ("obs-fold-tab", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400),
    ("obs-fold-first-header", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    ("header-no-colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n", 400),
    ("empty-header-name", b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400),
    ("header-name-not-token", b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400),
    ("bare-lf-everywhere", b"GET / HTTP/1.1\nHost: a\n\n", 400),
    ("bare-lf-request-line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    ("bare-lf-last-line", b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    ("bare-cr", b"GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", 400),
    ("bare-cr-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400),
    ("nul-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400),
    ("ctl-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n", 400),
    ("missing-host-http11", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
    ("two-host-http11", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("two-host-same-value", b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400),
    # RFC 9112 3.2: a Host field with an invalid value (RFC 9110 7.2: uri-host [":" port])
    ("host-obs-text", b"GET / HTTP/1.1\r\nHost: \xffa\xff\r\n\r\n", 400),
    ("host-nbsp", b"GET / HTTP/1.1\r\nHost: \xa0a\r\n\r\n", 400),
    ("host-inner-space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("host-userinfo", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
    ("host-path", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    ("host-port-not-digits", b"GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", 400),
    ("host-two-ports", b"GET / HTTP/1.1\r\nHost: a:80:81\r\n\r\n", 400),
    ("host-unclosed-ip-literal", b"GET / HTTP/1.1\r\nHost: [::1:80\r\n\r\n", 400),
    ("host-stray-bracket", b"GET / HTTP/1.1\r\nHost: a]\r\n\r\n", 400),
    ("host-http10-invalid", b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n", 400),
    # framing (RFC 9112 6)
    ("cl-and-te", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ("te-and-cl", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
    ("differing-cl-lines", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    ("differing-cl-list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nab", 400),
    ("cl-negative", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    ("cl-exponent", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n", 400),
    ("cl-hex", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400),
    ("cl-empty", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400),
    ("cl-plus", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400),
    ("cl-inner-space", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400),
    ("cl-superscript-digit", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xb2\r\n\r\n", 400),
    ("te-gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ("te-gzip-chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    ("te-chunked-chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
    (
        "te-chunked-two-lines",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    ),
    ("te-http10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    # chunked body (RFC 9112 7.1)
    ("chunk-size-zz", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ("chunk-size-empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400),
    (
        "chunk-size-17-hex",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 17 + b"\r\n",
        400,
    ),
    ("chunk-size-negative", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
    ("chunk-size-0x", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n", 400),
    ("chunk-size-leading-space", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\n", 400),
    (
        "chunk-data-no-crlf",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        400,
    ),
    (
        "chunk-data-bare-lf",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-data-too-long",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
        400,
    ),
]


@pytest.mark.parametrize(("data", "status"), [(d, s) for _, d, s in BAD_INPUTS], ids=[i for i, _, _ in BAD_INPUTS])
def test_bad_input_is_refused_with_its_status(data: bytes, status: int) -> None:
    err = error_of(feed_whole(data))
    assert err.status == status
    assert err.message


@pytest.mark.parametrize(("data", "status"), [(d, s) for _, d, s in BAD_INPUTS], ids=[i for i, _, _ in BAD_INPUTS])
def test_bad_input_fed_byte_by_byte_is_refused_with_the_same_status(data: bytes, status: int) -> None:
    assert error_of(feed_bytewise(data)).status == status


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "example.com:8080",
        "127.0.0.1:80",
        "[::1]",
        "[::1]:8080",
        "",
        "a.example:",
        "xn--bcher-kva.example",
    ],
)
def test_valid_host_values_are_accepted(host: str) -> None:
    # RFC 9110 7.2: Host = uri-host [":" port]; empty for a target without an authority.
    req = only_request(get("/", host=False).replace(b"\r\n\r\n", f"\r\nHost: {host}\r\n\r\n".encode()))
    assert req.headers.get("host") == host


def test_invalid_host_message_shows_the_value() -> None:
    assert error_of(feed_whole(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n")).message == (
        "Host header: expected host[:port], got 'a b'"
    )


def test_error_classes_carry_their_status() -> None:
    assert error_of(feed_whole(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n")).__class__ is UnsupportedVersion
    te = post(b"", "Transfer-Encoding: gzip")
    assert type(error_of(feed_whole(te))) is UnsupportedTransferCoding
    assert type(error_of(feed_whole(get("/", "X-A : b")))) is BadRequest


def test_header_error_message_names_line_and_problem() -> None:
    assert error_of(feed_whole(get("/", "X-A: ok", "X-B : b"))).message == "header line 3: whitespace before colon"
    assert (
        error_of(feed_whole(get("/", "X-A: b", " folded"))).message
        == "header line 3: obsolete line folding not allowed"
    )
    assert error_of(feed_whole(get("/", "nocolon"))).message == "header line 2: expected 'name: value', found no colon"
    assert error_of(feed_whole(get("/", ": v"))).message == "header line 2: empty field name"


def test_chunk_size_line_without_end_is_bounded() -> None:
    data = chunked_post(b"1" + b";" * 5000)
    assert error_of(feed_whole(data)).status == 400


# -- limits ------------------------------------------------------------------------------------


def test_head_over_max_head_is_431() -> None:
    limits = ParserLimits(max_head=64)
    err = error_of(feed_whole(get("/", "X-Long: " + "a" * 80), limits))
    assert isinstance(err, HeadTooLarge)
    assert err.status == 431


def test_partial_head_over_max_head_is_431_before_it_ends() -> None:
    limits = ParserLimits(max_head=64)
    parser = RequestParser(limits)
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n") == []
    err = error_of(parser.feed(b"X-Long: " + b"a" * 80))
    assert err.status == 431


def test_head_of_exactly_max_head_is_accepted() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 20
    limits = ParserLimits(max_head=len(head))
    assert requests_of(feed_whole(head + b"\r\n\r\n", limits))
    assert error_of(feed_whole(head + b"p\r\n\r\n", limits)).status == 431


@pytest.mark.parametrize("slack", [0, 1, 2])
def test_head_near_max_head_is_accepted_however_split(slack: int) -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 20
    limits = ParserLimits(max_head=len(head) + slack)
    assert [snapshot(e) for e in feed_bytewise(head + b"\r\n\r\n", limits)] == [
        snapshot(e) for e in feed_whole(head + b"\r\n\r\n", limits)
    ]


def test_too_many_headers_is_431() -> None:
    limits = ParserLimits(max_headers=3)
    assert requests_of(feed_whole(get("/", "A: 1", "B: 2"), limits))  # Host + 2 = 3 fields
    err = error_of(feed_whole(get("/", "A: 1", "B: 2", "C: 3"), limits))
    assert isinstance(err, HeadTooLarge)
    assert err.status == 431


def test_target_over_max_uri_is_414() -> None:
    limits = ParserLimits(max_uri=32)
    assert requests_of(feed_whole(get("/" + "a" * 31), limits))
    err = error_of(feed_whole(get("/" + "a" * 32), limits))
    assert isinstance(err, UriTooLong)
    assert err.status == 414


def test_partial_request_line_over_max_uri_is_414_before_it_ends() -> None:
    limits = ParserLimits(max_head=64, max_uri=32)
    parser = RequestParser(limits)
    assert parser.feed(b"GET /" + b"a" * 50) == []
    err = error_of(parser.feed(b"a" * 50))
    assert isinstance(err, UriTooLong)
    assert err.status == 414


def test_partial_request_line_over_max_uri_fed_byte_by_byte_is_414() -> None:
    limits = ParserLimits(max_head=64, max_uri=32)
    assert error_of(feed_bytewise(b"GET /" + b"a" * 200, limits)).status == 414


def test_content_length_over_max_body_is_413_before_the_body() -> None:
    limits = ParserLimits(max_body=100)
    parser = RequestParser(limits)
    err = error_of(parser.feed(post(b"", "Content-Length: 101")))
    assert isinstance(err, BodyTooLarge)
    assert err.status == 413


def test_content_length_of_exactly_max_body_is_accepted() -> None:
    limits = ParserLimits(max_body=100)
    assert only_request(post(b"x" * 100, "Content-Length: 100"), limits).body == b"x" * 100


def test_huge_content_length_is_413_not_a_crash() -> None:
    assert error_of(feed_whole(post(b"", "Content-Length: " + "9" * 40))).status == 413


def test_chunked_total_over_max_body_is_413() -> None:
    limits = ParserLimits(max_body=100)
    parser = RequestParser(limits)
    assert parser.feed(chunked_post(b"40\r\n" + b"a" * 64 + b"\r\n")) == []
    err = error_of(parser.feed(b"25\r\n"))  # 64 + 37 = 101, refused before the data arrives
    assert isinstance(err, BodyTooLarge)
    assert err.status == 413


def test_chunked_total_of_exactly_max_body_is_accepted() -> None:
    limits = ParserLimits(max_body=100)
    data = chunked_post(b"40\r\n" + b"a" * 64 + b"\r\n24\r\n" + b"b" * 36 + b"\r\n0\r\n\r\n")
    assert len(only_request(data, limits).body) == 100


def test_chunked_trailer_section_is_bounded() -> None:
    limits = ParserLimits(max_head=100)
    data = chunked_post(b"0\r\n" + b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 20) for i in range(5)))
    assert error_of(feed_whole(data, limits)).status == 431


# -- the error state ----------------------------------------------------------------------------


def test_parser_refuses_input_after_an_error() -> None:
    parser = RequestParser()
    err = error_of(parser.feed(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"))
    assert err.status == 505
    assert parser.broken
    again = parser.feed(get("/fine"))
    assert len(again) == 1
    assert isinstance(again[0], ProtocolError)
    assert again[0].status == 400
    assert parser.broken
    assert not any(isinstance(e, Request) for e in parser.feed(get("/still-fine")))


def test_error_mid_body_refuses_the_rest() -> None:
    parser = RequestParser()
    parser.feed(chunked_post(b"3\r\nabc"))
    assert error_of(parser.feed(b"XX")).status == 400
    assert isinstance(parser.feed(b"\r\n0\r\n\r\n")[0], ProtocolError)


# -- bugs found ---------------------------------------------------------------------------------


def test_empty_duplicate_content_length_is_refused() -> None:
    data = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: \r\n\r\nx"
    assert error_of(feed_whole(data)).status == 400


def test_two_host_headers_on_http10_are_refused() -> None:
    assert error_of(feed_whole(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n")).status == 400


def test_bare_lf_in_chunk_extension_is_refused() -> None:
    data = chunked_post(b"5;a\nb\r\nhello\r\n0\r\n\r\n")
    assert error_of(feed_whole(data)).status == 400


def test_bare_lf_in_trailer_section_does_not_swallow_the_next_request() -> None:
    data = chunked_post(b"5\r\nhello\r\n0\r\n\n") + get("/next")
    assert error_of(feed_whole(data)).status == 400


# -- property: serialise, split anywhere, parse back -----------------------------------------------

_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:@"
_QCHAR = _PCHAR + "/?"
_VCHAR = "".join(chr(c) for c in range(0x21, 0x7F)) + "".join(chr(c) for c in range(0x80, 0x100))

methods = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
    st.text(_TCHAR, min_size=1, max_size=8),
)
paths = st.lists(st.text(_PCHAR, max_size=6), max_size=4).map(lambda segs: "/" + "/".join(segs))
queries = st.one_of(st.none(), st.text(_QCHAR, max_size=12))
field_names = st.text(_TCHAR, min_size=1, max_size=10).map(lambda n: "X-" + n)
field_values = st.text(_VCHAR + " \t", max_size=16).map(lambda v: v.strip(" \t"))


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, tuple[object, ...]]:
    """One serialised request and what parsing it must give back."""
    method = draw(methods)
    path = draw(paths)
    query = draw(queries)
    target = path if query is None else f"{path}?{query}"
    drawn = draw(st.lists(st.tuples(field_names, field_values), max_size=5))
    wire_fields = [("Host", "example.com"), *drawn]
    fields = [(n.lower(), v) for n, v in wire_fields]
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["content-length", "chunked"] if body else ["none", "content-length", "chunked"]))
    if framing == "content-length":
        wire_fields.append(("Content-Length", str(len(body))))
        fields.append(("content-length", str(len(body))))
        framed = body
    elif framing == "chunked":
        wire_fields.append(("Transfer-Encoding", "chunked"))
        fields.append(("transfer-encoding", "chunked"))
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=4)))) if body else []
        framed = b""
        for lo, hi in zip([0, *cuts], [*cuts, len(body)], strict=True):
            if hi > lo:
                size = b"%x" % (hi - lo)
                if draw(st.booleans()):
                    size = size.upper()
                ext = draw(st.sampled_from([b"", b";e", b";e=v", b' ;q="x;y"']))
                framed += size + ext + b"\r\n" + body[lo:hi] + b"\r\n"
        trailer = draw(st.sampled_from([b"", b"X-Trailer: t\r\n"]))
        framed += b"0\r\n" + trailer + b"\r\n"
    else:
        framed = b""
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in wire_fields) + "\r\n"
    expected = ("request", method, target, path, query, True, True, body, fields)
    return head.encode("latin-1") + framed, expected


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests(), min_size=1, max_size=5), st.data())
def test_serialised_requests_parse_back_however_split(
    reqs: list[tuple[bytes, tuple[object, ...]]], data: st.DataObject
) -> None:
    wire = b"".join(w for w, _ in reqs)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=12), label="cuts")
    events = feed_split(wire, cuts)
    assert [snapshot(e) for e in events] == [expected for _, expected in reqs]
    for event, (_, expected) in zip(events, reqs, strict=True):
        assert isinstance(event, Request)
        fields = expected[8]
        assert isinstance(fields, list)
        for name in {n for n, _ in fields}:
            values = [v for n, v in fields if n == name]
            assert event.headers.get_all(name.upper()) == values
            assert event.headers.get(name.title()) == ", ".join(values)


UPGRADE = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n"


def test_upgrade_request_pauses_and_keeps_what_follows() -> None:
    parser = RequestParser()
    events = parser.feed(UPGRADE + b"\x81\x85frame")
    assert [e.path for e in events if isinstance(e, Request)] == ["/ws"]
    assert parser.paused
    assert parser.feed(b"more") == []
    assert parser.take_remaining() == b"\x81\x85framemore"


def test_upgrade_not_taken_resumes_http_parsing() -> None:
    parser = RequestParser()
    assert len(parser.feed(UPGRADE + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")) == 1
    resumed = parser.resume()
    assert [e.path for e in resumed if isinstance(e, Request)] == ["/next"]
    assert not parser.paused


def test_upgrade_header_without_connection_token_does_not_pause() -> None:
    parser = RequestParser()
    events = parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(events) == 2
    assert not parser.paused
