"""The wire protocol core without sockets: encoders byte for byte, the parser on split input."""

from __future__ import annotations

import struct

import pytest
from chopin_pg import protocol as p
from chopin_pg.errors import ProtocolViolation
from hypothesis import given
from hypothesis import strategies as st


def msg(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("!i", len(body) + 4) + body


def test_startup_message_layout() -> None:
    data = p.startup_message({"user": "bob", "database": "db"})
    assert data == struct.pack("!ii", len(data), 196608) + b"user\x00bob\x00database\x00db\x00\x00"


def test_ssl_and_cancel_requests() -> None:
    assert p.ssl_request() == struct.pack("!ii", 8, 80877103)
    assert p.cancel_request(42, -7) == struct.pack("!iiii", 16, 80877102, 42, -7)


def test_simple_frontend_messages() -> None:
    assert p.query("SELECT 1") == msg(b"Q", b"SELECT 1\x00")
    assert p.sync() == b"S\x00\x00\x00\x04"
    assert p.flush() == b"H\x00\x00\x00\x04"
    assert p.terminate() == b"X\x00\x00\x00\x04"
    assert p.copy_done() == b"c\x00\x00\x00\x04"
    assert p.copy_data(b"1\t2\n") == msg(b"d", b"1\t2\n")
    assert p.copy_fail("no") == msg(b"f", b"no\x00")
    assert p.password_message(b"secret") == msg(b"p", b"secret\x00")
    assert p.describe(b"S", "s1") == msg(b"D", b"Ss1\x00")
    assert p.close(b"P", "") == msg(b"C", b"P\x00")
    assert p.execute("", 0) == msg(b"E", b"\x00\x00\x00\x00\x00")


def test_sasl_messages() -> None:
    assert p.sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc") == msg(
        b"p", b"SCRAM-SHA-256\x00" + struct.pack("!i", 11) + b"n,,n=,r=abc"
    )
    assert p.sasl_response(b"c=biws") == msg(b"p", b"c=biws")


def test_parse_and_bind_layout() -> None:
    assert p.parse("s", "SELECT $1", (23,)) == msg(b"P", b"s\x00SELECT $1\x00" + struct.pack("!hI", 1, 23))
    data = p.bind("", "s", p.format_codes([1, 0]), [b"\x00\x00\x00\x01", None], p.format_codes([1]))
    body = (
        b"\x00s\x00"
        + struct.pack("!hhh", 2, 1, 0)
        + struct.pack("!h", 2)
        + struct.pack("!i", 4)
        + b"\x00\x00\x00\x01"
        + struct.pack("!i", -1)
        + struct.pack("!hh", 1, 1)
    )
    assert data == msg(b"B", body)


def test_format_codes_shortcuts() -> None:
    assert p.format_codes([]) == b"\x00\x00"
    assert p.format_codes([0, 0]) == b"\x00\x00"
    assert p.format_codes([1, 1, 1]) == b"\x00\x01\x00\x01"


def test_nul_in_protocol_string_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        p.query("SELECT '\x00'")


def backend_stream() -> bytes:
    row_desc = struct.pack("!h", 1) + b"a\x00" + struct.pack("!ihihih", 0, 0, 23, 4, -1, 1)
    return b"".join(
        [
            msg(b"R", struct.pack("!i", 0)),
            msg(b"R", struct.pack("!i", 5) + b"salt"),
            msg(b"R", struct.pack("!i", 10) + b"SCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"),
            msg(b"R", struct.pack("!i", 11) + b"r=x,s=y,i=1"),
            msg(b"R", struct.pack("!i", 12) + b"v=sig"),
            msg(b"R", struct.pack("!i", 3)),
            msg(b"R", struct.pack("!i", 7)),
            msg(b"S", b"TimeZone\x00UTC\x00"),
            msg(b"K", struct.pack("!ii", 123, 456)),
            msg(b"Z", b"I"),
            msg(b"T", row_desc),
            msg(b"D", struct.pack("!hi", 2, 4) + b"\x00\x00\x00\x07" + struct.pack("!i", -1)),
            msg(b"C", b"SELECT 1\x00"),
            msg(b"I", b""),
            msg(b"E", b"SERROR\x00C42601\x00Msyntax error\x00P8\x00\x00"),
            msg(b"N", b"SNOTICE\x00Mhello\x00\x00"),
            msg(b"1", b""),
            msg(b"2", b""),
            msg(b"3", b""),
            msg(b"n", b""),
            msg(b"t", struct.pack("!hII", 2, 23, 25)),
            msg(b"s", b""),
            msg(b"G", struct.pack("!bhh", 0, 1, 0)),
            msg(b"H", struct.pack("!bhhh", 1, 2, 1, 1)),
            msg(b"W", struct.pack("!bh", 0, 0)),
            msg(b"d", b"row\n"),
            msg(b"c", b""),
            msg(b"A", struct.pack("!i", 99) + b"chan\x00payload\x00"),
            msg(b"v", struct.pack("!ii", 0, 1) + b"_pq_.x\x00"),
        ]
    )


EXPECTED = [
    p.AuthenticationOk(),
    p.AuthenticationMD5Password(b"salt"),
    p.AuthenticationSASL(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
    p.AuthenticationSASLContinue(b"r=x,s=y,i=1"),
    p.AuthenticationSASLFinal(b"v=sig"),
    p.AuthenticationCleartextPassword(),
    p.AuthenticationUnsupported(7),
    p.ParameterStatus("TimeZone", "UTC"),
    p.BackendKeyData(123, 456),
    p.ReadyForQuery("I"),
    p.RowDescription([p.ColumnDescription("a", 0, 0, 23, 4, -1, 1)]),
    p.DataRow([b"\x00\x00\x00\x07", None]),
    p.CommandComplete("SELECT 1"),
    p.EmptyQueryResponse(),
    p.ErrorResponse({"S": "ERROR", "C": "42601", "M": "syntax error", "P": "8"}),
    p.NoticeResponse({"S": "NOTICE", "M": "hello"}),
    p.ParseComplete(),
    p.BindComplete(),
    p.CloseComplete(),
    p.NoData(),
    p.ParameterDescription((23, 25)),
    p.PortalSuspended(),
    p.CopyInResponse(0, (0,)),
    p.CopyOutResponse(1, (1, 1)),
    p.CopyBothResponse(0, ()),
    p.CopyData(b"row\n"),
    p.CopyDone(),
    p.NotificationResponse(99, "chan", "payload"),
    p.NegotiateProtocolVersion(0, ["_pq_.x"]),
]


def drain(parser: p.MessageParser) -> list[p.BackendMessage]:
    out = []
    while (event := parser.next_event()) is not None:
        out.append(event)
    return out


def test_decoder_every_backend_message_in_one_feed() -> None:
    parser = p.MessageParser()
    parser.feed(backend_stream())
    assert drain(parser) == EXPECTED
    assert parser.buffered == 0


def test_decoder_byte_at_a_time() -> None:
    parser = p.MessageParser()
    events = []
    for byte in backend_stream():
        parser.feed(bytes([byte]))
        events += drain(parser)
    assert events == EXPECTED


@given(st.lists(st.integers(min_value=1, max_value=50), max_size=40))
def test_decoder_any_split(cuts: list[int]) -> None:
    stream = backend_stream()
    parser = p.MessageParser()
    events = []
    pos = 0
    for cut in cuts:
        parser.feed(stream[pos : pos + cut])
        pos += cut
        events += drain(parser)
    parser.feed(stream[pos:])
    events += drain(parser)
    assert events == EXPECTED


def test_oversized_message_enters_error_state() -> None:
    parser = p.MessageParser(max_message_size=1024)
    parser.feed(b"D" + struct.pack("!i", 4096))
    with pytest.raises(ProtocolViolation, match="length 4096"):
        parser.next_raw()
    with pytest.raises(ProtocolViolation):
        parser.feed(b"more")


def test_impossible_length_is_refused() -> None:
    parser = p.MessageParser()
    parser.feed(b"Z" + struct.pack("!i", 3))
    with pytest.raises(ProtocolViolation):
        parser.next_raw()


def test_unknown_tag_is_a_violation() -> None:
    parser = p.MessageParser()
    parser.feed(msg(b"?", b""))
    with pytest.raises(ProtocolViolation, match="unknown backend message"):
        parser.next_event()


def test_buffer_compacts_after_partial_consumption() -> None:
    parser = p.MessageParser()
    one = msg(b"Z", b"I")
    parser.feed(one * 3 + one[:2])
    for _ in range(3):
        assert parser.next_raw() == (ord("Z"), b"I")
    parser.feed(one[2:])
    assert parser.buffered == len(one)
    assert parser.next_raw() == (ord("Z"), b"I")


def test_take_byte_for_ssl_answer() -> None:
    parser = p.MessageParser()
    assert parser.take_byte() is None
    parser.feed(b"N")
    assert parser.take_byte() == ord("N")


def test_command_tag_counts() -> None:
    assert p.parse_command_tag("INSERT 0 3") == 3
    assert p.parse_command_tag("UPDATE 10") == 10
    assert p.parse_command_tag("CREATE TABLE") == -1
