"""``_wire/h2_fields.py`` gives the verdicts of h2's inbound validation, on well-formed and malformed sections."""

from __future__ import annotations

import h2.exceptions
import h2.utilities
import pytest
from chopin_core._wire.h2_fields import request_problem, trailers_problem

Fields = list[tuple[bytes, bytes]]

BASE: Fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"example.com")]


def _with(*extra: tuple[bytes, bytes]) -> Fields:
    return [*BASE, *extra]


def _without(name: bytes) -> Fields:
    return [f for f in BASE if f[0] != name]


REQUESTS: list[Fields] = [
    BASE,
    _with((b"user-agent", b"h2load"), (b"accept", b"*/*")),
    _with((b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"x-empty", b"")),
    _with((b"te", b"trailers"), (b"te", b"Trailers")),
    _with((b"host", b"example.com")),
    [*_without(b":authority"), (b"host", b"example.com")],
    [(b":method", b"CONNECT"), (b":authority", b"example.com:443")],
    _with((b"x-a", b"in side")),
    # malformed
    _with((b"X-Upper", b"1")),
    _with((b"x a", b"1")),
    _with((b"x:a", b"1")),
    _with((b"x\x7f", b"1")),
    _with((b"\xc3\xa9", b"1")),
    _with((b"", b"1")),
    _with((b"x-a", b"1\r\n2")),
    _with((b"x-a", b"1\x002")),
    _with((b"x-a", b"1\n")),
    _with((b"x-a", b" 1")),
    _with((b"x-a", b"1\t")),
    _with((b"connection", b"keep-alive")),
    _with((b"keep-alive", b"5")),
    _with((b"proxy-connection", b"x")),
    _with((b"transfer-encoding", b"chunked")),
    _with((b"upgrade", b"h2c")),
    _with((b"te", b"trailers, deflate")),
    _with((b"te", b"gzip")),
    _with((b":test", b"ok")),
    _with((b":status", b"200")),
    [(b"x-a", b"1"), *BASE],
    [*BASE[:2], (b"x-a", b"1"), *BASE[2:]],
    _with((b":method", b"GET")),
    _with((b":path", b"/")),
    _with((b":scheme", b"https")),
    _without(b":method"),
    _without(b":scheme"),
    _without(b":path"),
    _without(b":authority"),
    [(n, b"" if n == b":path" else v) for n, v in BASE],
    _with((b"host", b"other.example")),
    _with((b"host", b"example.com"), (b"host", b"example.com")),
    [(b":method", b"CONNECT"), (b":authority", b"a:443"), (b":path", b"/")],
    [(b":method", b"CONNECT"), (b":authority", b"a:443"), (b":scheme", b"http")],
    _with((b":protocol", b"websocket")),
    [(b":method", b"CONNECT"), (b":protocol", b"websocket"), *BASE[1:]],
    [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":authority", b"a")],
]

TRAILERS: list[Fields] = [
    [(b"x-checksum", b"abc")],
    [],
    [(b":method", b"POST")],
    [(b":status", b"200")],
    [(b"X-A", b"1")],
    [(b"x-a", b"1\r")],
    [(b"connection", b"close")],
]


def _h2_verdict(fields: Fields, *, trailer: bool) -> bool:
    flags = h2.utilities.HeaderValidationFlags(
        is_client=False, is_trailer=trailer, is_response_header=False, is_push_promise=False
    )
    try:
        list(h2.utilities.validate_headers(fields, flags))
    except h2.exceptions.ProtocolError:
        return False
    return True


@pytest.mark.parametrize("fields", REQUESTS, ids=range(len(REQUESTS)))
def test_requests_agree_with_h2(fields: Fields) -> None:
    problem = request_problem(fields)
    assert (problem is None) == _h2_verdict(fields, trailer=False), problem


@pytest.mark.parametrize("fields", TRAILERS, ids=range(len(TRAILERS)))
def test_trailers_agree_with_h2(fields: Fields) -> None:
    problem = trailers_problem(fields)
    assert (problem is None) == _h2_verdict(fields, trailer=True), problem


def test_messages_say_which_field() -> None:
    assert request_problem(_with((b"X-Upper", b"1"))) == (
        "field 5: name b'X-Upper' has a byte RFC 9113 8.2.1 forbids (upper case, space, colon, control)"
    )
    assert request_problem(_without(b":method")) == "no :method"
    assert trailers_problem([(b"ok", b"1"), (b":path", b"/")]) == "field 2: pseudo-header b':path' in trailers"
