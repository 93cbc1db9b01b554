"""The topic frame (sibling datagrams, Redis) and its text form (PostgreSQL NOTIFY); the RESP2 codec."""

from __future__ import annotations

import pytest
from chopin_core._engine.backplane import PG_MAX_PAYLOAD
from chopin_core._wire.resp import RespError, RespParser, RespProtocolError, command
from chopin_core._wire.topic_frames import (
    HEAD,
    FrameError,
    decode_frame,
    decode_text,
    encode_frame,
    encode_text,
    text_size,
)

ORIGIN = bytes(range(8))
MESSAGES: list[str | bytes] = ["", "hello", "é:ü\n", "nul\0inside", b"", b"\x00\xff\x80binary", "x" * 70_000]


@pytest.mark.parametrize("message", MESSAGES)
@pytest.mark.parametrize("topic", ["t", "room:42", "ü" * 10])
def test_frame_and_text_form_round_trip(topic: str, message: str | bytes) -> None:
    assert decode_frame(encode_frame(ORIGIN, topic, message)) == (ORIGIN, topic, message)
    text = encode_text(ORIGIN, topic, message)
    assert "\0" not in text  # PostgreSQL text cannot hold NUL
    assert decode_text(text) == (ORIGIN, topic, message)
    assert text_size(topic, message) == len(text.encode())


def test_frame_head_is_kind_topic_length_origin() -> None:
    frame = encode_frame(ORIGIN, "ab", b"z")
    assert frame[: HEAD.size] == b"\x01\x00\x00\x02" + ORIGIN
    assert frame[HEAD.size :] == b"abz"
    assert encode_frame(ORIGIN, "ab", "z")[0] == 0


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (b"\x00\x00\x00", "expected at least 12 bytes, got 3"),
        (b"\x00\x00\x00\x09" + ORIGIN + b"ab", "topic of 9 bytes in a frame of 14"),
        (b"\x07\x00\x00\x01" + ORIGIN + b"a", "kind 7"),
        (b"\x00\x00\x00\x01" + ORIGIN + b"a\xff", "not UTF-8 at byte 0"),
    ],
)
def test_broken_frames_say_what_is_wrong(frame: bytes, problem: str) -> None:
    with pytest.raises(FrameError, match=problem):
        decode_frame(frame)


@pytest.mark.parametrize("text", ["", "hello", "00" * 8 + "x1:ab", "00" * 8 + "t9:ab", "00" * 8 + "b1:a!!!"])
def test_text_that_is_not_a_topic_message_is_refused(text: str) -> None:
    with pytest.raises(FrameError, match="not a chopin topic message"):
        decode_text(text)


def test_postgres_limit_is_the_notify_payload_limit() -> None:
    # NOTIFY refuses a payload of 8000 bytes or more (PostgreSQL docs, NOTIFY).
    assert PG_MAX_PAYLOAD == 7999
    head = text_size("chat", "")
    assert text_size("chat", "x" * (PG_MAX_PAYLOAD - head)) == PG_MAX_PAYLOAD


# -- RESP2 ------------------------------------------------------------------------------


def test_command_is_an_array_of_bulk_strings() -> None:
    assert command("PUBLISH", b"ch", b"a\r\nb") == b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$4\r\na\r\nb\r\n"


def test_parser_returns_complete_replies_and_waits_for_the_rest() -> None:
    wire = b"+OK\r\n-ERR wrong\r\n:42\r\n$-1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhe\r\nl\r\n*0\r\n"
    parser = RespParser()
    got = []
    for i in range(len(wire)):  # one byte at a time: every split point
        got += parser.feed(wire[i : i + 1])
    assert got[0] == "OK"
    assert isinstance(got[1], RespError) and str(got[1]) == "ERR wrong"
    assert got[2:] == [42, None, [b"message", b"ch", b"he\r\nl"], []]
    assert RespParser().feed(wire)[2:] == got[2:]


@pytest.mark.parametrize("wire", [b"?what\r\n", b"$abc\r\n", b"$99999999999\r\n", b"\r\n", b"+" + b"x" * 5000])
def test_parser_refuses_what_is_not_resp(wire: bytes) -> None:
    with pytest.raises(RespProtocolError):
        RespParser().feed(wire)
