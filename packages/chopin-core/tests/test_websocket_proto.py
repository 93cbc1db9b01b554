"""websocket_proto: the RFC 6455 handshake helpers and frame codec, without sockets."""

from __future__ import annotations

import struct

import pytest
from chopin_core._wire.ws_frames import (
    BinaryMessage,
    CloseReceived,
    Event,
    LocalProtocolError,
    Ping,
    Pong,
    ProtocolFailure,
    TextMessage,
    UpgradeRejection,
    WebSocketConnection,
    WebSocketState,
    accept_key,
    check_upgrade,
    handshake_response,
    rejection_response,
    select_subprotocol,
    wants_upgrade,
)
from chopin_core.request import Headers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# -- helpers ------------------------------------------------------------------------

MASK = b"\x37\xfa\x21\x3d"  # the mask of the RFC 6455 5.7 examples


def mask_bytes(payload: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def client_frame(
    opcode: int,
    payload: bytes,
    fin: bool = True,
    mask: bytes | None = MASK,
    rsv: int = 0,
    length_form: int | None = None,
) -> bytes:
    """A client frame: masked unless ``mask`` is None; ``length_form`` 7/16/64 forces an encoding."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask is not None else 0
    form = length_form or (7 if n < 126 else 16 if n < 0x10000 else 64)
    if form == 7:
        head = bytes([b0, mbit | n])
    elif form == 16:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + mask_bytes(payload, mask)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def feed_bytewise(conn: WebSocketConnection, data: bytes) -> list[Event]:
    events: list[Event] = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
    return events


def failure(data: bytes, **kwargs: int) -> ProtocolFailure:
    """Feed ``data`` whole and byte by byte; both must end in the same failure, which is returned."""
    whole = WebSocketConnection(**kwargs).receive_data(data)
    conn = WebSocketConnection(**kwargs)
    bytewise = feed_bytewise(conn, data)
    assert isinstance(whole[-1], ProtocolFailure), whole
    assert bytewise == whole
    assert conn.state is WebSocketState.ERROR and conn.broken
    return whole[-1]


def upgrade_headers(**overrides: str | None) -> Headers:
    fields = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return Headers([f"{k}: {v}".encode("latin-1") for k, v in fields.items()])


# -- handshake ----------------------------------------------------------------------


def test_accept_key_rfc_example() -> None:
    # RFC 6455 1.3.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_upgrade() -> None:
    assert check_upgrade("GET", True, upgrade_headers()) is None
    headers = upgrade_headers(Upgrade="WebSocket", Connection="keep-alive, Upgrade")
    assert check_upgrade("GET", True, headers) is None
    assert wants_upgrade(headers)
    assert not wants_upgrade(upgrade_headers(Upgrade=None))


def test_plain_dict_with_lower_case_keys_works() -> None:
    headers = {
        "upgrade": "websocket",
        "connection": "upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
    }
    assert check_upgrade("GET", True, headers) is None


@pytest.mark.parametrize(
    ("method", "http11", "overrides", "fragment"),
    [
        ("POST", True, {}, "expected method GET"),
        ("GET", False, {}, "expected HTTP/1.1"),
        ("GET", True, {"Upgrade": None}, "Upgrade: websocket"),
        ("GET", True, {"Upgrade": "h2c"}, "Upgrade: websocket"),
        ("GET", True, {"Connection": None}, "Connection: Upgrade"),
        ("GET", True, {"Connection": "keep-alive"}, "Connection: Upgrade"),
        ("GET", True, {"Sec-WebSocket-Version": None}, "Sec-WebSocket-Version missing"),
        ("GET", True, {"Sec-WebSocket-Key": None}, "Sec-WebSocket-Key missing"),
        ("GET", True, {"Sec-WebSocket-Key": "not base64!"}, "not base64 of 16 bytes"),
        ("GET", True, {"Sec-WebSocket-Key": "dGhlIHNhbXBsZQ=="}, "not base64 of 16 bytes"),  # 10 bytes
        ("GET", True, {"Sec-WebSocket-Key": ""}, "not base64 of 16 bytes"),
    ],
)
def test_upgrade_refused_with_400(method: str, http11: bool, overrides: dict[str, str | None], fragment: str) -> None:
    rejection = check_upgrade(method, http11, upgrade_headers(**overrides))
    assert rejection is not None
    assert rejection.status == 400
    assert fragment in rejection.message
    assert rejection.headers == ()


@pytest.mark.parametrize("version", ["8", "12", "13, 8", "abc"])
def test_wrong_version_is_426_with_supported_version(version: str) -> None:
    rejection = check_upgrade("GET", True, upgrade_headers(**{"Sec-WebSocket-Version": version}))
    assert rejection == UpgradeRejection(
        426,
        f"WebSocket upgrade: Sec-WebSocket-Version {version!r} not supported, expected 13",
        (("Sec-WebSocket-Version", "13"),),
    )
    response = rejection_response(rejection)
    head, body = response.split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert b"\r\nSec-WebSocket-Version: 13" in head
    assert b"\r\nConnection: close" in head
    assert f"Content-Length: {len(body)}".encode() in head


def test_rejection_response_400() -> None:
    response = rejection_response(UpgradeRejection(400, "nope"))
    assert response == (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 4\r\nConnection: close\r\n\r\nnope"
    )


@pytest.mark.parametrize(
    ("offered", "supported", "chosen"),
    [
        (None, ["chat"], None),
        ("", ["chat"], None),
        ("chat", [], None),
        ("chat, superchat", ["superchat", "chat"], "superchat"),  # server preference wins
        ("chat,superchat", ["chat", "superchat"], "chat"),
        ("  v2.bookings  ,v1", ["v1"], "v1"),
        ("CHAT", ["chat"], None),  # case-sensitive
        ("mqtt", ["chat"], None),
    ],
)
def test_select_subprotocol(offered: str | None, supported: list[str], chosen: str | None) -> None:
    assert select_subprotocol(offered, supported) == chosen


def test_handshake_response_exact() -> None:
    assert handshake_response("dGhlIHNhbXBsZSBub25jZQ==") == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )


def test_handshake_response_with_subprotocol_and_extra_headers() -> None:
    response = handshake_response("dGhlIHNhbXBsZSBub25jZQ==", "chat", [("Set-Cookie", "a=b")])
    assert response.endswith(b"Sec-WebSocket-Protocol: chat\r\nSet-Cookie: a=b\r\n\r\n")


@pytest.mark.parametrize(
    ("subprotocol", "extra"),
    [("bad proto", []), ("", []), (None, [("X-A", "1\r\nX-B: 2")]), (None, [("Bad Name", "1")])],
)
def test_handshake_response_refuses_injection(subprotocol: str | None, extra: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError):
        handshake_response("dGhlIHNhbXBsZSBub25jZQ==", subprotocol, extra)


# -- RFC 6455 5.7 examples ----------------------------------------------------------------


def test_rfc_single_frame_masked_text() -> None:
    frame = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    assert WebSocketConnection().receive_data(frame) == [TextMessage("Hello")]
    assert feed_bytewise(WebSocketConnection(), frame) == [TextMessage("Hello")]
    assert client_frame(0x1, b"Hello") == frame


def test_rfc_single_frame_unmasked_text_is_refused() -> None:
    # A server MUST close on an unmasked client frame (RFC 6455 5.1).
    fail = failure(bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F]))
    assert fail.code == 1002
    assert "not masked" in fail.reason


def test_rfc_fragmented_unmasked_text_is_refused() -> None:
    assert failure(bytes([0x01, 0x03, 0x48, 0x65, 0x6C])).code == 1002


def test_rfc_fragmented_text_masked() -> None:
    # The 5.7 fragmented example ("Hel" + "lo"), masked as a client must.
    data = client_frame(0x1, b"Hel", fin=False) + client_frame(0x0, b"lo", mask=b"\x01\x02\x03\x04")
    assert WebSocketConnection().receive_data(data) == [TextMessage("Hello")]
    assert feed_bytewise(WebSocketConnection(), data) == [TextMessage("Hello")]


def test_rfc_ping_and_pong() -> None:
    conn = WebSocketConnection()
    ping = client_frame(0x9, b"Hello")
    assert ping[:2] == b"\x89\x85"
    (event,) = conn.receive_data(ping)
    assert event == Ping(b"Hello")
    # The 5.7 unmasked pong is exactly what the server answers.
    assert conn.reply_to(event) == bytes([0x8A, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
    assert conn.receive_data(client_frame(0xA, b"Hello")) == [Pong(b"Hello")]
    assert conn.reply_to(Pong(b"Hello")) is None


@pytest.mark.parametrize(
    ("size", "head"), [(256, b"\x82\x7e\x01\x00"), (65536, b"\x82\x7f" + bytes([0, 0, 0, 0, 0, 1, 0, 0]))]
)
def test_rfc_binary_16_and_64_bit_lengths(size: int, head: bytes) -> None:
    payload = bytes(range(256)) * (size // 256)
    frame = client_frame(0x2, payload)
    assert frame[: len(head)] == bytes([head[0], head[1] | 0x80]) + head[2:]
    assert WebSocketConnection().receive_data(frame) == [BinaryMessage(payload)]
    # Server side: the same header without the mask bit (RFC 6455 5.7).
    assert WebSocketConnection().send_binary(payload) == head + payload


def test_binary_split_at_every_byte() -> None:
    payload = bytes(range(256)) * 2
    frame = client_frame(0x2, payload, mask=b"\xaa\x55\x0f\xf0")
    assert feed_bytewise(WebSocketConnection(), frame) == [BinaryMessage(payload)]
    for cut in range(len(frame)):
        conn = WebSocketConnection()
        assert conn.receive_data(frame[:cut]) + conn.receive_data(frame[cut:]) == [BinaryMessage(payload)]


def test_many_frames_in_one_chunk_and_empty_messages() -> None:
    data = (
        client_frame(0x1, b"")
        + client_frame(0x2, b"")
        + client_frame(0x9, b"")
        + client_frame(0x1, "żółw".encode())
        + client_frame(0x2, b"\x00\xff")
    )
    expected = [TextMessage(""), BinaryMessage(b""), Ping(b""), TextMessage("żółw"), BinaryMessage(b"\x00\xff")]
    assert WebSocketConnection().receive_data(data) == expected
    assert feed_bytewise(WebSocketConnection(), data) == expected


def test_non_minimal_length_encoding_is_accepted() -> None:
    data = client_frame(0x1, b"hi", length_form=16) + client_frame(0x2, b"yo", length_form=64)
    assert WebSocketConnection().receive_data(data) == [TextMessage("hi"), BinaryMessage(b"yo")]


def test_empty_receive_is_harmless() -> None:
    conn = WebSocketConnection()
    assert conn.receive_data(b"") == []
    assert conn.state is WebSocketState.OPEN


# -- fragmentation ------------------------------------------------------------------------


def test_control_frames_interleaved_inside_fragments() -> None:
    data = (
        client_frame(0x2, b"ab", fin=False)
        + client_frame(0x9, b"p1")
        + client_frame(0x0, b"cd", fin=False)
        + client_frame(0xA, b"p2")
        + client_frame(0x0, b"ef")
    )
    expected = [Ping(b"p1"), Pong(b"p2"), BinaryMessage(b"abcdef")]
    assert WebSocketConnection().receive_data(data) == expected
    assert feed_bytewise(WebSocketConnection(), data) == expected


def test_close_inside_fragmented_message() -> None:
    data = client_frame(0x1, b"ab", fin=False) + client_frame(0x8, close_payload(1001))
    assert WebSocketConnection().receive_data(data) == [CloseReceived(1001, "")]


def test_utf8_split_across_fragments() -> None:
    encoded = "a€😀".encode()  # 1 + 3 + 4 bytes
    for cut1 in range(len(encoded) + 1):
        for cut2 in range(cut1, len(encoded) + 1):
            data = (
                client_frame(0x1, encoded[:cut1], fin=False)
                + client_frame(0x0, encoded[cut1:cut2], fin=False)
                + client_frame(0x0, encoded[cut2:])
            )
            assert WebSocketConnection().receive_data(data) == [TextMessage("a€😀")]


def test_invalid_utf8_in_a_middle_fragment_fails_before_the_message_ends() -> None:
    conn = WebSocketConnection()
    assert conn.receive_data(client_frame(0x1, b"ok", fin=False)) == []
    (event,) = conn.receive_data(client_frame(0x0, b"\xff", fin=False))
    assert isinstance(event, ProtocolFailure)
    assert event.code == 1007


def test_truncated_utf8_at_message_end_is_1007() -> None:
    data = client_frame(0x1, "€".encode()[:2], fin=False) + client_frame(0x0, b"")
    assert failure(data).code == 1007


@pytest.mark.parametrize("payload", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"abc\xe2\x82", b"\xf4\x90\x80\x80"])
def test_invalid_utf8_single_frame_is_1007(payload: bytes) -> None:
    assert failure(client_frame(0x1, payload)).code == 1007


def test_binary_is_not_utf8_checked() -> None:
    assert WebSocketConnection().receive_data(client_frame(0x2, b"\xff")) == [BinaryMessage(b"\xff")]


# -- every refusal -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code", "fragment"),
    [
        (client_frame(0x1, b"x", rsv=4), 1002, "reserved bits"),
        (client_frame(0x1, b"x", rsv=1), 1002, "reserved bits"),
        (client_frame(0x3, b"x"), 1002, "unknown data opcode"),
        (client_frame(0x7, b"x"), 1002, "unknown data opcode"),
        (client_frame(0xB, b"x"), 1002, "unknown control opcode"),
        (client_frame(0xF, b"x"), 1002, "unknown control opcode"),
        (client_frame(0x9, b"x", fin=False), 1002, "fragmented"),
        (client_frame(0x8, b"", fin=False), 1002, "fragmented"),
        (client_frame(0x9, b"x" * 126), 1002, "limit 125"),
        (client_frame(0xA, b"x" * 5, length_form=16), 1002, "limit 125"),  # 126 length marker
        (client_frame(0x0, b"x"), 1002, "continuation frame without"),
        (client_frame(0x1, b"a", fin=False) + client_frame(0x1, b"b"), 1002, "new data frame"),
        (client_frame(0x2, b"a", fin=False) + client_frame(0x2, b"b", fin=False), 1002, "new data frame"),
        (client_frame(0x8, b"\x03"), 1002, "1 byte"),
        (client_frame(0x8, close_payload(1000, b"\xff")), 1007, "not valid UTF-8"),
        (b"\x82\xff" + b"\x80" + b"\x00" * 7 + MASK, 1002, "most significant bit"),
    ],
)
def test_protocol_failures(data: bytes, code: int, fragment: str) -> None:
    fail = failure(data)
    assert fail.code == code
    assert fragment in fail.reason


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_invalid_close_codes_are_1002(code: int) -> None:
    fail = failure(client_frame(0x8, close_payload(code)))
    assert fail.code == 1002
    assert str(code) in fail.reason


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
)
def test_valid_close_codes(code: int) -> None:
    payload = close_payload(code, "bye ✓".encode())
    assert WebSocketConnection().receive_data(client_frame(0x8, payload)) == [CloseReceived(code, "bye ✓")]


@pytest.mark.parametrize("code", [1012, 1013, 1014])
def test_iana_registered_close_codes_are_echoed_and_can_be_sent(code: int) -> None:
    # 1012 Service Restart, 1013 Try Again Later, 1014 Bad Gateway (IANA registry, after RFC 6455).
    conn = WebSocketConnection()
    (event,) = conn.receive_data(client_frame(0x8, close_payload(code, b"later")))
    assert event == CloseReceived(code, "later")
    assert conn.reply_to(event) == b"\x88\x02" + close_payload(code)  # the code echoed (RFC 6455 5.5.1)
    assert WebSocketConnection().send_close(code, "x") == b"\x88\x03" + close_payload(code, b"x")


def test_events_before_a_failure_are_kept() -> None:
    data = client_frame(0x1, b"ok") + client_frame(0x9, b"p") + client_frame(0x3, b"") + client_frame(0x1, b"lost")
    events = WebSocketConnection().receive_data(data)
    assert events[:2] == [TextMessage("ok"), Ping(b"p")]
    assert isinstance(events[2], ProtocolFailure)
    assert len(events) == 3


def test_error_state_refuses_further_input() -> None:
    conn = WebSocketConnection()
    (fail,) = conn.receive_data(client_frame(0x1, b"x", mask=None))
    assert isinstance(fail, ProtocolFailure)
    assert conn.receive_data(client_frame(0x1, b"x")) == []
    # The failing close frame carries the failure's code; only once.
    reply = conn.reply_to(fail)
    assert reply is not None
    assert reply[:4] == b"\x88" + bytes([len(reply) - 2]) + b"\x03\xea"  # 1002
    assert conn.reply_to(fail) is None
    assert conn.state is WebSocketState.ERROR
    with pytest.raises(LocalProtocolError):
        conn.send_text("no")


def test_events_before_a_failure_can_be_answered_before_the_failing_close() -> None:
    # Autobahn 3.2 / 4.1.3: a message, a ping, then a bad frame in one read: the echo and
    # the pong go out, then the close 1002.
    conn = WebSocketConnection()
    text, ping, fail = conn.receive_data(client_frame(0x1, b"hi") + client_frame(0x9, b"p") + client_frame(0x3, b""))
    assert isinstance(text, TextMessage) and isinstance(ping, Ping) and isinstance(fail, ProtocolFailure)
    assert conn.broken
    assert conn.send_text("hi") == b"\x81\x02hi"
    assert conn.reply_to(ping) == b"\x8a\x01p"
    assert conn.reply_to(fail) is not None
    with pytest.raises(LocalProtocolError):
        conn.send_text("late")


def test_long_failure_reason_is_truncated_in_close_frame() -> None:
    conn = WebSocketConnection()
    fail = ProtocolFailure(1002, "é" * 200)
    reply = conn.reply_to(fail)
    assert reply is not None
    assert len(reply) <= 2 + 125
    (event,) = WebSocketConnection().receive_data(client_frame(0x8, reply[2:]))
    assert isinstance(event, CloseReceived)
    assert event.reason == "é" * 61


# -- size limits ----------------------------------------------------------------------------


def test_oversize_frame_refused_from_its_header_alone() -> None:
    conn = WebSocketConnection(max_message_size=1000)
    head = client_frame(0x2, b"x" * 1001)[:8]  # 2 + 2 (16-bit length) + 4 mask, no payload
    (fail,) = conn.receive_data(head[:4])  # even before the mask arrives
    assert isinstance(fail, ProtocolFailure)
    assert fail.code == 1009
    assert "limit 1000" in fail.reason


def test_oversize_64_bit_length_refused_before_payload() -> None:
    conn = WebSocketConnection()
    head = b"\x82\xff" + struct.pack("!Q", 2**40) + MASK
    (fail,) = conn.receive_data(head)
    assert isinstance(fail, ProtocolFailure)
    assert fail.code == 1009


def test_frame_at_the_limit_is_accepted() -> None:
    conn = WebSocketConnection(max_message_size=1000)
    assert conn.receive_data(client_frame(0x2, b"x" * 1000)) == [BinaryMessage(b"x" * 1000)]


def test_fragmented_message_over_the_limit() -> None:
    conn = WebSocketConnection(max_message_size=10)
    assert conn.receive_data(client_frame(0x1, b"x" * 6, fin=False)) == []
    (fail,) = conn.receive_data(client_frame(0x0, b"x" * 5)[:4])
    assert isinstance(fail, ProtocolFailure)
    assert fail.code == 1009
    # Exactly at the limit is fine, and the count restarts for the next message.
    conn = WebSocketConnection(max_message_size=10)
    data = client_frame(0x1, b"x" * 6, fin=False) + client_frame(0x0, b"x" * 4)
    assert conn.receive_data(data + data) == [TextMessage("x" * 10)] * 2


def test_max_frame_size() -> None:
    conn = WebSocketConnection(max_frame_size=4)
    data = client_frame(0x2, b"abcd", fin=False) + client_frame(0x0, b"efgh")
    assert conn.receive_data(data) == [BinaryMessage(b"abcdefgh")]
    assert failure(client_frame(0x2, b"abcde"), max_frame_size=4).code == 1009


def test_control_frames_do_not_count_against_message_size() -> None:
    conn = WebSocketConnection(max_message_size=1)
    assert conn.receive_data(client_frame(0x9, b"x" * 125)) == [Ping(b"x" * 125)]


# -- encoders ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "head"),
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_send_binary_exact_bytes(size: int, head: bytes) -> None:
    payload = b"\x5a" * size
    assert WebSocketConnection().send_binary(payload) == head + payload
    assert WebSocketConnection().send_binary(bytearray(payload)) == head + payload


def test_send_text_and_control_frames() -> None:
    conn = WebSocketConnection()
    assert conn.send_text("Hello") == b"\x81\x05Hello"
    assert conn.send_text("€") == b"\x81\x03\xe2\x82\xac"
    assert conn.send_ping() == b"\x89\x00"
    assert conn.send_ping(b"hb") == b"\x89\x02hb"
    assert conn.send_pong(b"x" * 125) == b"\x8a\x7d" + b"x" * 125
    with pytest.raises(ValueError):
        conn.send_ping(b"x" * 126)
    with pytest.raises(ValueError):
        conn.send_pong(b"x" * 126)


def test_send_close_payloads() -> None:
    assert WebSocketConnection().send_close() == b"\x88\x02\x03\xe8"
    assert WebSocketConnection().send_close(None) == b"\x88\x00"
    assert WebSocketConnection().send_close(4000, "bye") == b"\x88\x05\x0f\xa0bye"
    assert len(WebSocketConnection().send_close(1000, "x" * 123)) == 2 + 125
    for code, reason in [(1005, ""), (1006, ""), (999, ""), (None, "why"), (1000, "x" * 124)]:
        with pytest.raises(ValueError):
            WebSocketConnection().send_close(code, reason)


def test_server_frames_decode_with_the_same_codec() -> None:
    # A server frame plus a mask bit and mask is a valid client frame: check the encoder
    # against the decoder for every length form.
    for size in (0, 125, 126, 65535, 65536):
        frame = WebSocketConnection().send_binary(b"q" * size)
        head_len = {0: 2, 125: 2, 126: 4, 65535: 4, 65536: 10}[size]
        masked = bytes([frame[0], frame[1] | 0x80]) + frame[2:head_len] + b"\x00\x00\x00\x00" + frame[head_len:]
        assert WebSocketConnection().receive_data(masked) == [BinaryMessage(b"q" * size)]


# -- closing handshake --------------------------------------------------------------------------


def test_peer_initiated_close() -> None:
    conn = WebSocketConnection()
    events = conn.receive_data(client_frame(0x8, close_payload(1000, b"done")) + client_frame(0x1, b"ignored"))
    assert events == [CloseReceived(1000, "done")]
    assert conn.state is WebSocketState.CLOSING
    assert conn.close_received and not conn.close_sent
    assert conn.receive_data(client_frame(0x1, b"ignored")) == []
    # Data may still go out before our close (RFC 6455 5.5.1 lets us finish a message).
    assert conn.send_text("last") == b"\x81\x04last"
    assert conn.reply_to(events[0]) == b"\x88\x02\x03\xe8"  # echo of the code
    assert conn.closed
    assert conn.reply_to(events[0]) is None
    with pytest.raises(LocalProtocolError):
        conn.send_close()


def test_peer_close_without_code_is_1005_and_echoed_empty() -> None:
    conn = WebSocketConnection()
    (event,) = conn.receive_data(client_frame(0x8, b""))
    assert event == CloseReceived(1005, "")
    assert conn.reply_to(event) == b"\x88\x00"
    assert conn.closed


def test_server_initiated_close() -> None:
    conn = WebSocketConnection()
    assert conn.send_close(1001, "going away") == b"\x88\x0c\x03\xe9going away"
    assert conn.state is WebSocketState.CLOSING
    with pytest.raises(LocalProtocolError):
        conn.send_text("late")
    with pytest.raises(LocalProtocolError):
        conn.send_ping()
    with pytest.raises(LocalProtocolError):
        conn.send_close()
    # Messages the peer sent before it saw our close are still delivered; its ping needs no answer now.
    events = conn.receive_data(client_frame(0x1, b"in flight") + client_frame(0x9, b"p"))
    assert events == [TextMessage("in flight"), Ping(b"p")]
    assert conn.reply_to(events[1]) is None
    (close,) = conn.receive_data(client_frame(0x8, close_payload(1001)))
    assert close == CloseReceived(1001, "")
    assert conn.closed
    assert conn.reply_to(close) is None
    assert conn.receive_data(client_frame(0x1, b"x")) == []


def test_close_split_byte_by_byte() -> None:
    conn = WebSocketConnection()
    assert feed_bytewise(conn, client_frame(0x8, close_payload(3000, b"r"))) == [CloseReceived(3000, "r")]
    assert conn.state is WebSocketState.CLOSING


def test_reply_to_messages_is_none() -> None:
    conn = WebSocketConnection()
    assert conn.reply_to(TextMessage("x")) is None
    assert conn.reply_to(BinaryMessage(b"x")) is None


# -- property: round trip --------------------------------------------------------------------------

_message = st.one_of(
    st.text(max_size=300).map(TextMessage),
    st.binary(max_size=300).map(BinaryMessage),
)


@st.composite
def _wire(draw: st.DrawFn) -> tuple[list[Event], bytes, list[int]]:
    """Messages, their frames (random fragmentation, masks, interleaved pings), and split points."""
    messages = draw(st.lists(_message, max_size=8))
    expected: list[Event] = []
    wire = b""
    for message in messages:
        if isinstance(message, TextMessage):
            opcode, payload = 0x1, message.data.encode()
        else:
            opcode, payload = 0x2, message.data
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for i, piece in enumerate(pieces):
            mask = draw(st.binary(min_size=4, max_size=4))
            final = i == len(pieces) - 1
            wire += client_frame(opcode if i == 0 else 0x0, piece, fin=final, mask=mask)
            if final:
                expected.append(message)
            if draw(st.integers(0, 4)) == 0:
                ping = draw(st.binary(max_size=10))
                wire += client_frame(0x9, ping, mask=draw(st.binary(min_size=4, max_size=4)))
                expected.append(Ping(ping))
    splits = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    return expected, wire, splits


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_wire())
def test_round_trip_any_fragmentation_and_split(case: tuple[list[Event], bytes, list[int]]) -> None:
    expected, wire, splits = case
    conn = WebSocketConnection()
    events: list[Event] = []
    for a, b in zip([0, *splits], [*splits, len(wire)], strict=True):
        events += conn.receive_data(wire[a:b])
    assert events == expected
    assert conn.state is WebSocketState.OPEN


def test_a_text_frame_arriving_in_pieces_fails_at_the_bad_piece() -> None:
    # Autobahn 6.4.3: the invalid UTF-8 sits in the middle piece of one frame; the
    # connection fails when that piece arrives, not once the whole frame is in.
    payload = "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"edited"
    whole = client_frame(0x1, payload)
    cut = len(whole) - len(payload) + len("κόσμε".encode())
    conn = WebSocketConnection()
    assert conn.receive_data(whole[:cut]) == []
    (failure,) = conn.receive_data(whole[cut : cut + 4])
    assert isinstance(failure, ProtocolFailure) and failure.code == 1007


def test_a_character_split_across_fragments_and_reads_is_no_error() -> None:
    # The partial check carries the message's decoder state into a continuation frame.
    text = "aé€😀" * 50
    data = text.encode()
    first, rest = data[:7], data[7:]  # 7 bytes end inside a character
    stream = client_frame(0x1, first, fin=False) + client_frame(0x0, rest)
    conn = WebSocketConnection()
    events = [e for i in range(0, len(stream), 5) for e in conn.receive_data(stream[i : i + 5])]
    assert events == [TextMessage(text)]
