"""The sans-IO client core without sockets: response framing (RFC 9112 6, 7.1), limits, request serialisation."""

from __future__ import annotations

import pytest
from chopin_core._client_errors import ResponseProtocolError, ResponseTooLarge, UpstreamClosed
from chopin_core._wire.h1_response import (
    END,
    BodyKind,
    ResponseHead,
    ResponseLimits,
    ResponseParser,
    build_request,
    end_to_end,
)
from hypothesis import given
from hypothesis import strategies as st


def parse(data: bytes, method: str = "GET", eof: bool = False) -> tuple[ResponseHead, bytes, bool]:
    """Feed ``data`` in one piece; return the head, the body and whether END came."""
    parser = ResponseParser(method)
    events = parser.feed(data)
    if eof:
        events += parser.feed_eof()
    heads = [e for e in events if isinstance(e, ResponseHead)]
    assert len(heads) == 1, events
    body = b"".join(e for e in events if isinstance(e, bytes))
    return heads[0], body, events[-1] is END


def test_content_length_body():
    head, body, done = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello")
    assert (head.status, head.reason, head.http11) == (200, "OK", True)
    assert head.body_kind == BodyKind.LENGTH and head.length == 5
    assert head.headers == [("Content-Length", "5"), ("X-A", "1")]
    assert head.get("x-a") == "1"
    assert head.keep_alive
    assert body == b"hello" and done


def test_chunked_body_with_extensions_and_trailers():
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    data += b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n"
    head, body, done = parse(data)
    assert head.body_kind == BodyKind.CHUNKED
    assert body == b"hello world" and done


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=8), st.data())
def test_chunked_body_split_anywhere_gives_the_same_body(chunks, data):
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    wire += b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    parser = ResponseParser("GET")
    events = []
    last = 0
    for cut in [*cuts, len(wire)]:
        events += parser.feed(wire[last:cut])
        last = cut
    assert b"".join(e for e in events if isinstance(e, bytes)) == b"".join(chunks)
    assert events[-1] is END and parser.done


def test_close_delimited_body_ends_at_eof():
    head, body, done = parse(b"HTTP/1.0 200 OK\r\n\r\nuntil close", eof=True)
    assert head.body_kind == BodyKind.CLOSE
    assert not head.keep_alive
    assert body == b"until close" and done


def test_no_body_for_head_204_304():
    head, body, done = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", method="HEAD")
    assert head.body_kind == BodyKind.NONE and body == b"" and done
    for status in (204, 304):
        head, body, done = parse(b"HTTP/1.1 %d X\r\n\r\n" % status)
        assert head.body_kind == BodyKind.NONE and done


def test_interim_responses_are_skipped():
    head, _, _ = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 201 C\r\n\r\n")
    assert head.status == 201
    assert head.body_kind == BodyKind.CLOSE  # no length: read until close


def test_keep_alive_rules():
    assert not parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")[0].keep_alive
    assert parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")[0].keep_alive
    assert not parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")[0].keep_alive


def test_transfer_encoding_wins_over_content_length_and_forbids_reuse():
    wire = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    head, body, _ = parse(wire)
    assert head.body_kind == BodyKind.CHUNKED and body == b"ok"
    assert not head.keep_alive


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", r"expected 'HTTP/1\.x NNN reason'"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "3-digit status"),
        (b"HTTP/1.1 099 Low\r\n\r\n", "below 100"),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "header line 1"),
        (b"HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n", "bare CR or LF"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 101 Switching\r\n\r\n", "switched protocols"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXY", "not followed by CRLF"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", "after the end"),
    ],
)
def test_malformed_responses_are_refused(wire, message):
    parser = ResponseParser("GET")
    with pytest.raises(ResponseProtocolError, match=message):
        parser.feed(wire)
    with pytest.raises(ResponseProtocolError, match="already failed"):
        parser.feed(b"more")


def test_limits():
    with pytest.raises(ResponseTooLarge, match="head"):
        ResponseParser("GET", ResponseLimits(max_head=100)).feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 200)
    with pytest.raises(ResponseTooLarge, match="header fields"):
        ResponseParser("GET", ResponseLimits(max_headers=2)).feed(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
    with pytest.raises(ValueError, match="expected >= 1"):
        ResponseLimits(max_head=0)


def test_eof_before_the_end_is_an_error():
    parser = ResponseParser("GET")
    assert not parser.received
    with pytest.raises(UpstreamClosed, match="before the response head"):
        parser.feed_eof()
    parser = ResponseParser("GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert parser.received
    with pytest.raises(UpstreamClosed, match="middle of the response body"):
        parser.feed_eof()


def test_build_request():
    wire = build_request("POST", "/a?b=1", [("Host", "h"), ("X-A", "1")], b"body")
    assert wire == b"POST /a?b=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nContent-Length: 4\r\n\r\nbody"
    assert build_request("GET", "/", [("Host", "h")], None) == b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    assert b"Content-Length: 0" in build_request("POST", "/", [], b"")


@pytest.mark.parametrize(
    ("method", "target", "headers", "message"),
    [
        ("GE T", "/", [], "method"),
        ("GET", "no-slash", [], "target"),
        ("GET", "/a b", [], "target"),
        ("GET", "/", [("Bad Name", "x")], "header name"),
        ("GET", "/", [("X", "a\r\nInjected: 1")], "CR, LF or NUL"),
        ("GET", "/", [("Content-Length", "3")], "computed from the body"),
    ],
)
def test_build_request_refuses_what_would_break_the_message(method, target, headers, message):
    with pytest.raises(ValueError, match=message):
        build_request(method, target, headers, None)


def test_end_to_end_drops_hop_by_hop_and_connection_named_fields():
    fields = [
        ("Connection", "close, X-Private"),
        ("X-Private", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "websocket"),
        ("TE", "trailers"),
        ("X-Public", "2"),
    ]
    assert end_to_end(fields) == [("X-Public", "2")]
