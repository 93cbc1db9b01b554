"""ws_deflate: permessage-deflate (RFC 7692) negotiation and codec, without sockets."""

from __future__ import annotations

import struct
import zlib

import pytest
from chopin_core._wire.ws_deflate import DeflateParams, PerMessageDeflate, negotiate
from chopin_core._wire.ws_frames import BinaryMessage, Ping, ProtocolFailure, TextMessage, WebSocketConnection

MASK = b"\x37\xfa\x21\x3d"


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """A masked client frame (RFC 6455 5.2); ``rsv`` is the three RSV bits as 0-7."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 0x10000:
        head = bytes([b0, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack("!Q", n)
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


HELLO = bytes.fromhex("f248cdc9c90700")  # RFC 7692 7.2.3.1: "Hello", compressed, tail removed
HELLO_AGAIN = bytes.fromhex("f200110000")  # RFC 7692 7.2.3.2: the second "Hello" with context takeover
RSV1 = 4  # client_frame's rsv is the three RSV bits as 0-7


def deflating(offer: str = "permessage-deflate", max_message_size: int = 1 << 20) -> WebSocketConnection:
    params = negotiate(offer)
    assert params is not None
    return WebSocketConnection(max_message_size, deflate=PerMessageDeflate(params))


def compress(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


# -- negotiation (RFC 7692 5, 7.1) -----------------------------------------------------


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        ("permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits=10", "permessage-deflate"),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        ("permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10"),
        ('permessage-deflate; server_max_window_bits="12"', "permessage-deflate; server_max_window_bits=12"),
        ("x-webkit-deflate-frame, Permessage-Deflate", "permessage-deflate"),
        # The first offer we cannot honour is declined, the next one accepted (RFC 7692 5).
        (
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
        ),
    ],
)
def test_offer_is_accepted_with_its_parameters(offer: str, answer: str) -> None:
    params = negotiate(offer)
    assert params is not None
    assert params.response_value() == answer


@pytest.mark.parametrize(
    "offer",
    [
        None,
        "",
        "x-webkit-deflate-frame",
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=8",  # zlib has no 8-bit raw compressor
        "permessage-deflate; client_max_window_bits=7",
    ],
)
def test_offer_that_cannot_be_honoured_is_declined(offer: str | None) -> None:
    assert negotiate(offer) is None


# -- RFC 7692 7.2.3 examples -----------------------------------------------------------


def test_rfc_hello_is_compressed_with_and_without_context_takeover() -> None:
    takeover = PerMessageDeflate(DeflateParams())
    assert takeover.compress(b"Hello") == HELLO
    assert takeover.compress(b"Hello") == HELLO_AGAIN  # 7.2.3.2: the window is reused
    fresh = PerMessageDeflate(DeflateParams(server_no_context_takeover=True))
    assert fresh.compress(b"Hello") == HELLO
    assert fresh.compress(b"Hello") == HELLO


def test_rfc_hello_frames_are_inflated() -> None:
    conn = deflating()
    assert conn.receive_data(client_frame(0x1, HELLO, rsv=RSV1)) == [TextMessage("Hello")]
    assert conn.receive_data(client_frame(0x1, HELLO_AGAIN, rsv=RSV1)) == [TextMessage("Hello")]
    # 7.2.3.3: a stored (uncompressed) block; 7.2.3.4 a block with BFINAL set.
    assert conn.receive_data(client_frame(0x1, bytes.fromhex("0005 00faff48656c6c6f 00"), rsv=RSV1)) == [
        TextMessage("Hello")
    ]


def test_rfc_hello_without_client_context_takeover() -> None:
    conn = deflating("permessage-deflate; client_no_context_takeover")
    for _ in range(2):
        assert conn.receive_data(client_frame(0x1, HELLO, rsv=RSV1)) == [TextMessage("Hello")]


def test_bfinal_block_then_next_message() -> None:
    conn = deflating()
    final = zlib.compressobj(wbits=-15)
    ended = final.compress(b"Hello") + final.flush()  # BFINAL set (RFC 7692 7.2.3.4)
    assert conn.receive_data(client_frame(0x2, ended, rsv=RSV1)) == [BinaryMessage(b"Hello")]
    assert conn.receive_data(client_frame(0x1, HELLO, rsv=RSV1)) == [TextMessage("Hello")]


def test_fragmented_compressed_message_with_a_ping_between() -> None:
    body = compress(b"chopin " * 1000)
    conn = deflating()
    a, b, c = body[:5], body[5:9], body[9:]
    events = conn.receive_data(
        client_frame(0x1, a, fin=False, rsv=RSV1)
        + client_frame(0x9, b"p")
        + client_frame(0x0, b, fin=False)
        + client_frame(0x0, c)
    )
    assert events == [Ping(b"p"), TextMessage("chopin " * 1000)]


def test_compressed_frame_split_across_reads() -> None:
    conn = deflating()
    wire = client_frame(0x1, compress("é".encode() * 5000), rsv=RSV1)
    events = []
    for i in range(0, len(wire), 7):
        events += conn.receive_data(wire[i : i + 7])
    assert events == [TextMessage("é" * 5000)]


def test_uncompressed_message_is_still_accepted() -> None:
    # RFC 7692 6: RSV1 unset means this message is not compressed.
    assert deflating().receive_data(client_frame(0x1, b"plain")) == [TextMessage("plain")]


def test_sent_messages_are_compressed_with_rsv1() -> None:
    conn = deflating()
    frame = conn.send_text("Hello")
    assert frame == bytes([0xC1, len(HELLO)]) + HELLO  # FIN + RSV1 + text
    assert conn.send_binary(b"Hello")[2:] == HELLO_AGAIN


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (client_frame(0x9, b"x", rsv=RSV1), "reserved bits"),  # RFC 7692 6.1: never on control frames
        (client_frame(0x1, HELLO, fin=False, rsv=RSV1) + client_frame(0x0, b"", rsv=RSV1), "reserved bits"),
        (client_frame(0x1, HELLO, rsv=2), "reserved bits"),  # RSV2 stays undefined
    ],
)
def test_rsv1_where_not_allowed_is_a_protocol_error(frame: bytes, reason: str) -> None:
    events = deflating().receive_data(frame)
    assert isinstance(events[-1], ProtocolFailure)
    assert events[-1].code == 1002
    assert reason in events[-1].reason


def test_rsv1_without_negotiation_is_a_protocol_error() -> None:
    events = WebSocketConnection().receive_data(client_frame(0x1, HELLO, rsv=RSV1))
    assert isinstance(events[-1], ProtocolFailure)
    assert events[-1].code == 1002


def test_compressed_bomb_fails_with_1009_before_inflating_it_all() -> None:
    bomb = compress(b"\x00" * 10_000_000)
    assert len(bomb) < 20_000
    conn = deflating(max_message_size=64 * 1024)
    events = conn.receive_data(client_frame(0x2, bomb, rsv=RSV1))
    assert len(events) == 1
    assert isinstance(events[0], ProtocolFailure)
    assert events[0].code == 1009
    assert conn.broken


def test_fragmented_bomb_counts_every_fragment() -> None:
    conn = deflating(max_message_size=1000)
    c = zlib.compressobj(wbits=-15)
    first = c.compress(b"a" * 600) + c.flush(zlib.Z_SYNC_FLUSH)
    second = c.compress(b"a" * 600) + c.flush(zlib.Z_SYNC_FLUSH)
    events = conn.receive_data(client_frame(0x2, first, fin=False, rsv=RSV1) + client_frame(0x0, second[:-4]))
    assert isinstance(events[-1], ProtocolFailure)
    assert events[-1].code == 1009


def test_message_exactly_at_the_limit_is_accepted() -> None:
    conn = deflating(max_message_size=1000)
    assert conn.receive_data(client_frame(0x2, compress(b"z" * 1000), rsv=RSV1)) == [BinaryMessage(b"z" * 1000)]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\xff\xff\xff", 1007),  # not deflate data
        (compress(b"\xff\xfe"), 1007),  # inflates to invalid UTF-8
    ],
)
def test_invalid_compressed_text_fails_with_1007(payload: bytes, code: int) -> None:
    events = deflating().receive_data(client_frame(0x1, payload, rsv=RSV1))
    assert isinstance(events[-1], ProtocolFailure)
    assert events[-1].code == code
