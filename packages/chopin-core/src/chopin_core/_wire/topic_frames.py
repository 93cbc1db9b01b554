"""The frame a topic message travels in between workers and servers (sans-IO: bytes in, bytes out).

One frame holds one message::

    kind (1 byte: 0 text, 1 binary) | 0 | topic length (u16, network order) | origin (8 bytes)
    | topic (UTF-8) | payload (the message, UTF-8 for text)

``origin`` names the server that published it (a random id drawn by the supervisor),
so a server that hears its own message back from a backplane can skip it: its own
workers had it already over the sibling fan-out.  Sibling datagrams and Redis carry the
frame as is; PostgreSQL's NOTIFY payload must be text, so :func:`encode_text` writes
the same fields as text (binary payloads, and text holding NUL, base64-encoded).
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Final

from ..errors import ChopinError

__all__ = [
    "HEAD",
    "MAX_TOPIC_BYTES",
    "FrameError",
    "decode_frame",
    "decode_text",
    "encode_frame",
    "encode_text",
    "text_size",
]

HEAD: Final = struct.Struct("!BxH8s")
MAX_TOPIC_BYTES: Final = 255
_TEXT: Final = 0
_BINARY: Final = 1


class FrameError(ChopinError, ValueError):
    """A frame (from a sibling or a backplane) that is not one: truncated, unknown kind, bad UTF-8."""


def encode_frame(origin: bytes, topic: str, message: str | bytes) -> bytes:
    """The binary frame of ``message`` on ``topic`` published by server ``origin`` (8 bytes)."""
    name = topic.encode()
    if isinstance(message, str):
        return HEAD.pack(_TEXT, len(name), origin) + name + message.encode()
    return HEAD.pack(_BINARY, len(name), origin) + name + bytes(message)


def decode_frame(frame: bytes) -> tuple[bytes, str, str | bytes]:
    """``(origin, topic, message)`` of a binary frame.

    Raises:
        FrameError: the frame is shorter than its head says, of an unknown kind, or not UTF-8 where text is.
    """
    if len(frame) < HEAD.size:
        raise FrameError(f"topic frame: expected at least {HEAD.size} bytes, got {len(frame)}")
    kind, size, origin = HEAD.unpack_from(frame)
    end = HEAD.size + size
    if len(frame) < end or kind not in (_TEXT, _BINARY):
        raise FrameError(f"topic frame: kind {kind}, topic of {size} bytes in a frame of {len(frame)}")
    try:
        topic = frame[HEAD.size : end].decode()
        message: str | bytes = frame[end:].decode() if kind == _TEXT else frame[end:]
    except UnicodeDecodeError as exc:
        raise FrameError(f"topic frame: not UTF-8 at byte {exc.start}") from None
    return origin, topic, message


# The text form, for PostgreSQL NOTIFY: origin as 16 hex digits, a kind letter, the
# topic's length in characters, ":", the topic, then the message.
#   t  text as is;  n  text holding NUL (PostgreSQL text cannot), base64;  b  binary, base64.


def encode_text(origin: bytes, topic: str, message: str | bytes) -> str:
    """The text form of ``message`` on ``topic`` published by server ``origin``."""
    if isinstance(message, str):
        if "\0" in message:
            kind, body = "n", base64.b64encode(message.encode()).decode()
        else:
            kind, body = "t", message
    else:
        kind, body = "b", base64.b64encode(message).decode()
    return f"{origin.hex()}{kind}{len(topic)}:{topic}{body}"


def text_size(topic: str, message: str | bytes) -> int:
    """The size in bytes (UTF-8) of the text form of ``message`` on ``topic``."""
    head = 16 + 1 + len(str(len(topic))) + 1 + len(topic.encode())
    if isinstance(message, str) and "\0" not in message:
        return head + len(message.encode())
    raw = len(message.encode()) if isinstance(message, str) else len(message)
    return head + 4 * ((raw + 2) // 3)


def decode_text(text: str) -> tuple[bytes, str, str | bytes]:
    """``(origin, topic, message)`` of the text form.

    Raises:
        FrameError: the text is not in that form.
    """
    try:
        origin = bytes.fromhex(text[:16])
        kind = text[16]
        colon = text.index(":", 17)
        size = int(text[17:colon])
        topic = text[colon + 1 : colon + 1 + size]
        body = text[colon + 1 + size :]
        if len(origin) != 8 or len(topic) != size or kind not in "tnb":
            raise ValueError(kind)
        if kind == "t":
            return origin, topic, body
        raw = base64.b64decode(body, validate=True)
        return origin, topic, raw.decode() if kind == "n" else raw
    except (ValueError, IndexError, binascii.Error) as exc:
        raise FrameError(f"topic notification: not a chopin topic message ({text[:40]!r}): {exc}") from None
