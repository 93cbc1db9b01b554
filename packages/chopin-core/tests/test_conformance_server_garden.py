"""The HTTP Garden's server bug classes, one test each, against a chopin server over sockets.

The Garden (narfindustries/http-garden, ``TROPHIES.md``, "Server Bugs"; commit ffb9164 of
2025-12-09) lists 48 classes of what HTTP servers got wrong in accepting and interpreting
requests, numbered 1-48, each with a payload.  :data:`SERVER_CLASSES` gives each class one
stream and the answer RFC 9112/9110 asks for; the stream goes over a socket to
``apps.garden_app`` (a chopin server on 127.0.0.1 that logs every request its handler
sees), and again through chopin's reverse proxy in front of that server.  A class passes
when

* a stream the RFC says to refuse gets its status (400, or 501 for a transfer coding we do
  not implement), then the connection closes, and the handler saw only the requests before
  it;
* a stream the RFC says to read one way is answered request by request, and the handler
  sees exactly those requests (method, path, body length) and, where the class is about
  a field value, that value as sent;
* and the worker is still alive (the same process answers the next connection).

Streams are the Garden's payloads with ``{P}`` before the path (empty against the server,
``/chopin`` through the proxy) and a ``Host`` field where the payload had none (else
every one would be refused for that alone).  Where ``test_conformance_http11.GARDEN``
already holds a stream for the class, the class names it instead of repeating it.
:data:`VARIANTS` isolate one trick of a stream that mixes several.  No class is left out
as not applicable: each is about parsing we do.  :data:`SECTIONS` groups the classes the
way the README's results table counts them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from test_conformance_http11 import GARDEN, SMUGGLED

Seen = tuple[str, str, int]  # what the handler sees: method, path (prefix stripped), body length

HOST = b"Host: a\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"


@dataclass(frozen=True)
class ServerClass:
    """One Garden server class: its stream and the RFC's answer to it.

    Attributes:
        title: the Garden's description of the bug, shortened.
        stream: the bytes to send, in pieces (each piece after the first goes out once
            the first request's answer is in), or the name of a ``GARDEN`` stream.
        refused: the status the stream is refused with, or None when it is read.
        seen: the requests the handler sees, in order.
        field: a header field (lower-case name, value) the first request's handler sees as sent.
        why: the RFC text that makes this the answer.
    """

    title: str
    stream: tuple[bytes, ...] | str
    refused: int | None
    seen: tuple[Seen, ...] = ()
    field: tuple[str, str] | None = None
    why: str = ""


# TROPHIES.md, Server Bugs: "number name" -> the class.
SERVER_CLASSES: dict[str, ServerClass] = {
    "01 int() chunk sizes": ServerClass(
        "int() parses chunk sizes, so 0x, _, + and - are read",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + CHUNKED + b"\r\n0_2e\r\n\r\n"
         b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\n0\r\n\r\n",),
        400, why="RFC 9112 7.1: chunk-size = 1*HEXDIG",
    ),
    "02 NUL CR LF in values": ServerClass(
        "NUL, CR or LF allowed in field values",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Header: v\x00\ralue\r\n\r\n",),
        400, why="RFC 9110 5.5: field-value holds no CTL but HTAB; RFC 9112 2.2: bare CR is refused",
    ),
    "03 whitespace before colon": ServerClass(
        "whitespace stripped from the end of field names",
        "TE space before colon",
        400, why="RFC 9112 5.1: a server MUST reject whitespace between field name and colon with 400",
    ),
    "04 whitespace before first field": ServerClass(
        "whitespace stripped from the start of the first field name",
        "first field folded",
        400, why="RFC 9112 2.2: whitespace-preceded line after the start-line: reject or ignore; we reject",
    ),
    "05 version longest prefix": ServerClass(
        "HTTP versions read as their longest valid prefix (HTTP/1.32 as 1.3)",
        "HTTP/1.10",
        400, why='RFC 9112 2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT',
    ),
    "06 method longest prefix": ServerClass(
        "methods read as their longest valid prefix",
        (b'G=":<>(e),[T];?" {P}/get HTTP/1.1\r\n' + HOST + b"\r\n",),
        400, why="RFC 9110 9.1: method = token",
    ),
    "07 target not validated": ServerClass(
        "request targets not validated",
        (b"GET ! HTTP/1.1\r\n" + HOST + b"\r\n",),
        400, why="RFC 9112 3.2: origin-, absolute-, authority- or asterisk-form only",
    ),
    "08 non-ASCII in names": ServerClass(
        "non-ASCII bytes allowed in field names",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"\xefoo: bar\r\n\r\n",),
        400, why="RFC 9110 5.1: field-name = token",
    ),
    "09 LF in the request line": ServerClass(
        "LF accepted as the separator in a request line",
        (b"GET {P}/\nHTTP/1.1\r\n" + HOST + b"\r\n",),
        400, why="RFC 9112 3: request-line = method SP request-target SP HTTP-version; 2.2: no bare LF",
    ),
    "10 int() Content-Length": ServerClass(
        "int() parses Content-Length, so _, + and - are read",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Content-Length: +1_0\r\n\r\n0123456789",),
        400, why="RFC 9110 8.6: Content-Length = 1*DIGIT",
    ),
    "11 TE chunked twice": ServerClass(
        "two Transfer-Encoding: chunked fields read as no body",
        "TE twice",
        400, why="RFC 9112 6.1/7: chunked is applied once; 6.3: a body length that cannot be determined is a 400",
    ),
    "12 NBSP NEL stripped from values": ServerClass(
        "\\xa0 and \\x85 stripped from the ends of field values",
        (b"POST {P}/ HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: \xa0chunked\xa0\r\n\r\n0\r\n\r\n",),
        501, why="RFC 9110 5.5: OWS is SP/HTAB only, so the coding is '\\xa0chunked\\xa0'; "
        "RFC 9112 6.1: 501 for a coding we do not implement",
    ),
    "13 CR ends a field line": ServerClass(
        "CR read as a line end in field lines",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Visible: :/\rSmuggled: :)\r\n\r\n",),
        400, why="RFC 9112 2.2: a bare CR is refused",
    ),
    "14 ASCII delimiters in names": ServerClass(
        "control bytes and delimiters allowed in field names",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + bytes(range(0x09)) + b"\t\x0b\x0c" + bytes(range(0x0E, 0x20))
         + b' "(),/;<=>?@[/]{}: whatever\r\n\r\n',),
        400, why="RFC 9110 5.1: field-name = token",
    ),
    "15 version not validated": ServerClass(
        "HTTP versions not validated",
        (b"GET {P}/ HTTP/\r\r1.1\r\n" + HOST + b"\r\n",),
        400, why="RFC 9112 2.3: HTTP-version grammar; 2.2: bare CR",
    ),
    "16 empty CL as 0": ServerClass(
        "an empty Content-Length read as 0",
        "CL empty",
        400, why="RFC 9110 8.6: 1*DIGIT; RFC 9112 6.3: an invalid Content-Length is a 400",
    ),
    "17 empty chunk size as 0": ServerClass(
        "an empty chunk size read as 0",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + CHUNKED + b"\r\n\r\n\r\n",),
        400, why="RFC 9112 7.1: chunk-size = 1*HEXDIG",
    ),
    "18 empty field name": ServerClass(
        "empty field names accepted",
        (b"GET {P}/ HTTP/1.1\r\n: ignored\r\n" + HOST + b"\r\n",),
        400, why="RFC 9110 5.1: field-name = token (1*tchar)",
    ),
    "19 LF stripped before a value": ServerClass(
        "any whitespace, LF included, stripped from the start of values",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Useless:\n\nGET {P}/ HTTP/1.1\r\n\r\n",),
        400, why="RFC 9112 2.2: a bare LF MAY be a line end, we refuse it; OWS is SP/HTAB",
    ),
    "20 NBSP NEL stripped from names": ServerClass(
        "\\xa0 and \\x85 stripped from the end of field names",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Content-Length\x85: 10\r\n\r\n0123456789",),
        400, why="RFC 9110 5.1: field-name = token",
    ),
    "21 ,chunked not chunked": ServerClass(
        "Transfer-Encoding ',chunked' read as a coding other than chunked",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: ,chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",),
        400, why="RFC 9110 5.6.1.2: empty list elements are ignored, so this is chunked; "
        "RFC 9112 6.1: with Content-Length too a server MAY reject, we do",
    ),
    "22 chunk size longest prefix": ServerClass(
        "chunk sizes read as their longest valid prefix (the Garden's payload is class 1's; here 4z)",
        (b"POST {P}/ HTTP/1.1\r\n" + HOST + CHUNKED + b"\r\n4z\r\nabcd\r\n0\r\n\r\n",),
        400, why="RFC 9112 7.1: chunk-size = 1*HEXDIG, then chunk-ext or CRLF",
    ),
    "23 two CLs first wins": ServerClass(
        "conflicting Content-Length fields accepted, the first one used",
        "CL 4 then 5",
        400, why="RFC 9110 8.6 / RFC 9112 6.3: differing Content-Length values are a 400",
    ),
    "24 version overflow": ServerClass(
        "HTTP version numbers overflow 8 bits",
        (b"GET {P}/ HTTP/4294967295.255\r\n" + HOST + b"\r\n",),
        400, why='RFC 9112 2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT',
    ),
    "25 strtoll chunk sizes": ServerClass(
        "strtoll(,,16) parses chunk sizes, so 0x, + and - are read (the Garden's payload has no chunk)",
        "chunk size 0x4",
        400, why="RFC 9112 7.1: chunk-size = 1*HEXDIG",
    ),
    "26 negative CL": ServerClass(
        "a negative Content-Length loops the server",
        "CL -1",
        400, why="RFC 9110 8.6: Content-Length = 1*DIGIT",
    ),
    "27 empty field ends the head": ServerClass(
        "a field line with neither name nor value ends the head",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b":\r\nI: am chopped off\r\n\r\n",),
        400, why="RFC 9110 5.1: field-name = token",
    ),
    "28 no colon needed": ServerClass(
        "name and value split on a space, no colon",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Content-Length 10\r\n\r\n0123456789",),
        400, why='RFC 9112 5: field-line = field-name ":" OWS field-value OWS',
    ),
    "29 CL longest prefix": ServerClass(
        "Content-Length read as its longest valid prefix",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Content-Length: 1Z\r\n\r\nZ",),
        400, why="RFC 9110 8.6: Content-Length = 1*DIGIT",
    ),
    "30 head ends at CRLF CR X": ServerClass(
        "the head ends at CRLF CR and any byte",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"\rZGET /evil: HTTP/1.1\r\n" + HOST + b"\r\n",),
        400, why="RFC 9112 2.2: a bare CR is refused",
    ),
    "31 chunk line ends at CR X": ServerClass(
        "chunk lines end at CR and any byte",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + CHUNKED + b"\r\n5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n"
         b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\n0\r\n\r\n",),
        400, why="RFC 9112 7.1: chunk-size [chunk-ext] CRLF; 2.2: a bare CR is refused",
    ),
    "32 strtoll CL (010 as octal)": ServerClass(
        "strtoll(,,0) parses Content-Length: leading 0 as octal, 0x as hex (payload completed to 10 bytes)",
        (b"GET {P}/ HTTP/1.1\r\nHost: whatever\r\nContent-Length: 010\r\n\r\n0123456789",),
        None, (("GET", "/", 10),), why="RFC 9110 8.6: Content-Length is decimal; leading zeros are digits",
    ),
    "33 two CLs last wins": ServerClass(
        "conflicting Content-Length fields accepted, the last one used",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Content-Length: 0\r\nContent-Length: 1\r\n\r\nZ",),
        400, why="RFC 9110 8.6 / RFC 9112 6.3: differing Content-Length values are a 400",
    ),
    "34 CR in a value": ServerClass(
        "CR allowed in field values",
        "bare CR in a value",
        400, why="RFC 9110 5.5: no CTL in a field value; RFC 9112 2.2: bare CR",
    ),
    "35 value cut at NUL": ServerClass(
        "field values cut at NUL",
        "NUL in a value",
        400, why="RFC 9110 5.5: NUL is not allowed in a field value",
    ),
    "36 CR in chunk-ext": ServerClass(
        "CR forwarded in the whitespace after a chunk extension's ';'",
        "chunk ext with bare CR",
        400, why="RFC 9112 7.1.1: chunk-ext holds tokens, quoted strings and BWS; 2.2: bare CR",
    ),
    "37 names continued across lines": ServerClass(
        "a field name continued on the next line",
        (b"POST {P}/ HTTP/1.1\r\nHost: whatever\r\nTransfer-\r\nEncoding: chunked\r\nContent-Length: 5\r\n\r\n"
         b"0\r\n\r\n",),
        400, why='RFC 9112 5: every field line holds ":"',
    ),
    "38 empty CL reads to timeout": ServerClass(
        "an empty Content-Length reads the body until a timeout",
        (b"GET {P}/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: \r\n\r\n"
         b"GET {P}/ HTTP/1.1\r\nHost: localhost\r\n\r\n",),
        400, why="RFC 9110 8.6: 1*DIGIT; RFC 9112 6.3: an invalid Content-Length is a 400 (at once)",
    ),
    "39 chunked ends at CRLF XX": ServerClass(
        "a chunked body ends at CRLF and any two bytes (a valid trailer field, then a second request)",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + CHUNKED + b"\r\n0\r\nX:POST / HTTP/1.1\r\n\r\n"
         b"GET {P}/next HTTP/1.1\r\n" + HOST + b"\r\n",),
        None, (("GET", "/", 0), ("GET", "/next", 0)),
        why="RFC 9112 7.1.2: 'X:POST / HTTP/1.1' is a trailer field line; the body ends at the empty line",
    ),
    "40 method and version not validated": ServerClass(
        "methods and versions not validated",
        (b"\x00 {P}/ HTTP/............0596.7407.\r\n" + HOST + b"\r\n",),
        400, why="RFC 9110 9.1: method = token; RFC 9112 2.3: HTTP-version grammar",
    ),
    "41 NBSP NEL kept in values": ServerClass(
        "\\xa0 and \\x85 stripped from the ends of values (but Transfer-Encoding's)",
        (b"GET {P}/login HTTP/1.1\r\n" + HOST + b"User: \x85admin\xa0\r\n\r\n",),
        None, (("GET", "/login", 0),), ("user", "\x85admin\xa0"),
        why="RFC 9110 5.5: obs-text is part of a value; only SP and HTAB are OWS",
    ),
    "42 empty CL then 43": ServerClass(
        "an empty Content-Length read as 0 and preferred to the next one",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Content-Length: \r\nContent-Length: 43\r\n\r\n"
         b"POST /evil HTTP/1.1\r\nContent-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n",),
        400, why="RFC 9110 8.6 / RFC 9112 6.3: an invalid or differing Content-Length is a 400",
    ),
    "43 NUL stripped from value end": ServerClass(
        "NUL stripped from the end of field values",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"Evil: evil\x00\r\n\r\n",),
        400, why="RFC 9110 5.5: NUL is not allowed in a field value",
    ),
    "44 unknown codings as chunked": ServerClass(
        "every unknown transfer coding read as chunked",
        "TE xchunked",
        501, why="RFC 9112 6.1: 501 for a transfer coding the server does not understand",
    ),
    "45 invalid after valid": ServerClass(
        "a valid request unanswered when an invalid one follows it (sent here without the payload's "
        "Connection: close, so the invalid one is read too)",
        (b"GET {P}/ HTTP/1.1\r\n" + HOST + b"\r\nInvalid\r\n\r\n",),
        400, (("GET", "/", 0),),
        why="RFC 9112 9.3.2: pipelined requests are answered in order; the invalid one gets 400, then close",
    ),
    "46 bytes over 0x80 stripped": ServerClass(
        "bytes over \\x80 stripped from the ends of values (Host and Transfer-Encoding)",
        (b"POST {P}/ HTTP/1.1\r\nHost: \xffa\xff\r\nTransfer-Encoding: \xffchunked\xff\r\n\r\n1\r\nZ\r\n0\r\n\r\n",),
        400, why='RFC 9112 3.2: 400 for a Host value that is not uri-host [":" port]; 6.1: "\\xffchunked\\xff" '
        "is no coding we implement (501; the Host check comes first)",
    ),
    "47 invalid chunk skipped": ServerClass(
        "after an invalid chunk the connection stays open, the next message after the next CRLF",
        (b"POST {P}/ HTTP/1.1\r\nHost: whatever\r\n" + CHUNKED + b"\r\nINVALID!!!\r\n"
         b"GET {P}/ HTTP/1.1\r\nHost: whatever\r\n\r\n",),
        400, why="RFC 9112 7.1: chunk-size = 1*HEXDIG; 6.3: framing errors close the connection",
    ),
    "48 pipelined read as body": ServerClass(
        "a pipelined request read as the body of one with Content-Length: 0",
        (b"POST {P}/ HTTP/1.1\r\nContent-Length: 0\r\nConnection:keep-alive\r\n" + HOST + b"id: 0\r\n\r\n"
         b"POST {P}/ HTTP/1.1\r\n" + HOST + b"id: 1\r\nContent-Length: 34\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\nid: 2\r\n\r\n"),
        None, (("POST", "/", 0), ("POST", "/", 34)),
        why="RFC 9112 6.3: Content-Length: 0 is an empty body; the second request's 34 bytes are its body",
    ),
}  # fmt: skip

# Where a class's stream mixes tricks, or refusing it could hide a wrong reading of a legal
# spelling, the trick alone: what the RFC says to read, we read.
VARIANTS: dict[str, ServerClass] = {
    "12b OWS around chunked": ServerClass(
        "SP and HTAB around a value are OWS, stripped",
        (b"POST {P}/ HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: \tchunked \r\n\r\n1\r\nZ\r\n0\r\n\r\n",),
        None, (("POST", "/", 1),), why="RFC 9110 5.5: field-value is surrounded by OWS = *( SP / HTAB )",
    ),
    "21b ,chunked alone": ServerClass(
        "Transfer-Encoding ',chunked' without Content-Length",
        (b"POST {P}/ HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: ,chunked\r\n\r\n1\r\nZ\r\n0\r\n\r\n",),
        None, (("POST", "/", 1),), why="RFC 9110 5.6.1.2: a recipient MUST accept and ignore empty list elements",
    ),
    "32b leading zeros": ServerClass(
        "Content-Length 0004, then a request",
        "CL 0004",
        None, (("POST", "/echo", 4), ("GET", "/admin", 0)), why="RFC 9110 8.6: 1*DIGIT, decimal",
    ),
    "46b Host over 0x80 alone": ServerClass(
        "a Host value with bytes over \\x80 around it, nothing else wrong",
        (b"GET {P}/ HTTP/1.1\r\nHost: \xffa\xff\r\n\r\n",),
        400, why='RFC 9112 3.2: 400 for a Host value that is not uri-host [":" port] (was accepted; fixed)',
    ),
}  # fmt: skip
CASES = {**SERVER_CLASSES, **VARIANTS}

# The Garden lists the classes in the order they were found; the README counts them by
# what they are about.
SECTIONS: dict[str, list[int]] = {
    "request line (method, target, version)": [5, 6, 7, 9, 15, 24, 40],
    "field lines (names, values, line ends)": [2, 3, 4, 8, 13, 14, 18, 19, 20, 27, 28, 30, 34, 35, 37, 41, 43, 46],
    "Content-Length": [10, 16, 23, 26, 29, 32, 33, 38, 42],
    "Transfer-Encoding and chunked bodies": [1, 11, 12, 17, 21, 22, 25, 31, 36, 39, 44, 47],
    "pipelining": [45, 48],
}


def stream_of(cls: ServerClass, prefix: bytes) -> list[bytes]:
    """The bytes of ``cls`` to send, in pieces, with ``prefix`` before each path."""
    if isinstance(cls.stream, str):
        data = GARDEN[cls.stream][0]
        # {N}: the length of the smuggled request, as test_conformance_http11 fills it in.
        pieces: tuple[bytes, ...] = (data.replace(b"{N}", b"%d" % len(SMUGGLED.replace(b"{P}", prefix))),)
    else:
        pieces = cls.stream
    return [piece.replace(b"{P}", prefix) for piece in pieces]


def read_log(connect, server) -> list[list[object]]:
    """The requests the garden server's handler saw since the last call (it forgets them)."""
    conn = connect(server)
    resp = conn.request("GET", "/__log")
    conn.close()
    assert resp.status == 200
    return json.loads(resp.body)


def exchange(connect, server, cls: ServerClass, prefix: bytes) -> None:
    """Send ``cls``'s stream to ``server``; check each answer and, for a refusal, the close."""
    conn = connect(server)
    pieces = stream_of(cls, prefix)
    conn.send(pieces[0])
    rest = pieces[1:]
    for method, path, length in cls.seen:
        resp = conn.read_response(timeout=10.0)
        assert (resp.status, resp.body) == (200, f"{method} {path} {length}".encode()), resp
        for piece in rest:  # the next pieces go out once the first answer is in
            conn.send(piece)
        rest = []
    for piece in rest:
        conn.send(piece)
    if cls.refused is not None:
        resp = conn.read_response(timeout=10.0)
        assert resp.status == cls.refused, resp
        conn.assert_closed_by_server(timeout=10.0)
    conn.close()


def test_the_table_holds_the_48_classes() -> None:
    assert [int(name.split()[0]) for name in SERVER_CLASSES] == list(range(1, 49))
    assert sorted(n for numbers in SECTIONS.values() for n in numbers) == list(range(1, 49))
    for cls in CASES.values():
        assert cls.why, cls.title
        assert isinstance(cls.stream, tuple) or cls.stream in GARDEN
        # A refused stream of the GARDEN table is refused there too.
        if isinstance(cls.stream, str):
            assert GARDEN[cls.stream][1] is (cls.refused is None), cls.title


@pytest.fixture(scope="module")
def garden(serve_module):
    return serve_module("apps.garden_app:app")


@pytest.fixture(scope="module")
def garden_proxy(serve_module, garden):
    return serve_module("apps.proxy_app:app", env={"PROXY_UPSTREAM": garden.url, "PROXY_CHOPIN_UPSTREAM": garden.url})


@pytest.mark.parametrize("name", list(CASES))
def test_server_class(garden, connect, name: str) -> None:
    cls = CASES[name]
    read_log(connect, garden)  # start from an empty log
    exchange(connect, garden, cls, b"")
    log = read_log(connect, garden)
    assert [entry[:3] for entry in log] == [list(seen) for seen in cls.seen]
    if cls.field is not None:
        assert cls.field in [tuple(item) for item in log[0][4]], log[0][4]
    assert garden.process.poll() is None, "the worker died"


@pytest.mark.parametrize("name", list(CASES))
def test_server_class_through_the_proxy(garden, garden_proxy, connect, name: str) -> None:
    # The proxy reads the stream with the same parser: it gives the same answer, and the
    # upstream behind it sees exactly the requests the proxy read, fields as sent.
    cls = CASES[name]
    read_log(connect, garden)
    exchange(connect, garden_proxy, cls, b"/chopin")
    log = read_log(connect, garden)
    assert [entry[:3] for entry in log] == [list(seen) for seen in cls.seen]
    if cls.field is not None:
        assert cls.field in [tuple(item) for item in log[0][4]], log[0][4]
    assert garden_proxy.process.poll() is None and garden.process.poll() is None, "a worker died"
