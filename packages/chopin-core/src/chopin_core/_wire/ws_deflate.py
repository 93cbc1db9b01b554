"""Sans-IO permessage-deflate (RFC 7692), server side: negotiation and the per-message codec.

* :func:`negotiate` reads the client's ``Sec-WebSocket-Extensions`` offers and returns the
  accepted :class:`DeflateParams` (the first offer we can honour, RFC 7692 5), whose
  :meth:`~DeflateParams.response_value` is the server's answer in the 101 head.
* :class:`PerMessageDeflate` compresses outgoing and inflates incoming message payloads with
  zlib's raw deflate (negative ``wbits``); the inflated size is bounded so a small
  "compressed bomb" cannot make the server allocate past the message limit.

RSV1 handling (which frames may carry it) is the frame codec's job
(:class:`chopin_core._wire.ws_frames.WebSocketConnection`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

from ..errors import ChopinError

__all__ = ["DeflateError", "DeflateParams", "InflatedTooBig", "PerMessageDeflate", "negotiate"]

EXTENSION_NAME: Final = "permessage-deflate"

# RFC 7692 7.2.1: every compressed message ends with an empty stored block, whose last
# four octets the sender removes and the receiver appends back.
_TAIL: Final = b"\x00\x00\xff\xff"

# RFC 7692 7.1.2.1: window bits are 8..15.  zlib refuses a raw-deflate compressor with an
# 8-bit window (since 1.2.9 it silently means 9), so an offer that limits *our* window to
# 8 bits is declined; the client's window may be anything: a 15-bit inflater reads all.
_MIN_SERVER_WBITS: Final = 9
_MAX_WBITS: Final = 15

_FLAGS: Final = frozenset(("server_no_context_takeover", "client_no_context_takeover"))


class DeflateError(ChopinError):
    """A compressed message could not be inflated (close 1007)."""


class InflatedTooBig(DeflateError):
    """A compressed message inflates past the message size limit (close 1009)."""


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The negotiated permessage-deflate parameters (RFC 7692 7.1).

    Attributes:
        server_no_context_takeover: we reset our compressor after every message.
        client_no_context_takeover: the client resets its compressor after every message,
            so we reset our inflater too (and echo the parameter).
        server_max_window_bits: our compressor's window (8..15 as offered; 15 when not limited).
        server_window_limited: the client asked for ``server_max_window_bits``, so we echo it.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = _MAX_WBITS
    server_window_limited: bool = False

    def response_value(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value that accepts this offer (RFC 7692 7.1)."""
        parts = [EXTENSION_NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_window_limited:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        return "; ".join(parts)


def _window_bits(value: str | None) -> int | None:
    """An RFC 7692 7.1.2 window-bits value (``8``..``15``, no leading zero), or ``None`` if invalid."""
    if value is None or not value.isdigit() or value.startswith("0") or len(value) > 2:
        return None
    bits = int(value)
    return bits if 8 <= bits <= _MAX_WBITS else None


def _accept_offer(params: list[tuple[str, str | None]]) -> DeflateParams | None:
    """The parameters to accept one offer with, or ``None`` to decline it (RFC 7692 5, 7.1)."""
    seen: set[str] = set()
    server_nct = client_nct = limited = False
    server_bits = _MAX_WBITS
    for name, value in params:
        if name in seen:
            return None  # RFC 7692 7.1: a parameter given twice declines the offer
        seen.add(name)
        if name in _FLAGS:
            if value is not None:
                return None
            if name == "server_no_context_takeover":
                server_nct = True
            else:
                client_nct = True
        elif name == "server_max_window_bits":
            bits = _window_bits(value)
            if bits is None or bits < _MIN_SERVER_WBITS:
                return None
            server_bits, limited = bits, True
        elif name == "client_max_window_bits":
            # The client may limit its window if we ask; we need not (7.1.2.2): a 15-bit
            # inflater reads any smaller window, so the hint is only validated.
            if value is not None and _window_bits(value) is None:
                return None
        else:
            return None  # RFC 7692 5: an unknown parameter declines the offer
    return DeflateParams(server_nct, client_nct, server_bits, limited)


def _unquote(value: str) -> str:
    """RFC 7692 7.1: a parameter value may be a quoted-string."""
    value = value.strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def negotiate(header: str | None) -> DeflateParams | None:
    """Choose the permessage-deflate offer to accept from a ``Sec-WebSocket-Extensions`` value.

    Offers are tried in the client's order (RFC 6455 9.1); other extensions are ignored.
    An offer with an unknown, repeated or invalid parameter, or one that limits our window
    to 8 bits, is declined (RFC 7692 5) and the next one is tried.

    Args:
        header: the request's ``Sec-WebSocket-Extensions`` value (repeated fields joined by commas).

    Returns:
        The accepted parameters, or ``None`` to go on without compression.
    """
    if not header:
        return None
    for offer in header.split(","):
        name, *raw = offer.split(";")
        if name.strip(" \t").lower() != EXTENSION_NAME:
            continue
        params: list[tuple[str, str | None]] = []
        for item in raw:
            key, eq, value = item.partition("=")
            params.append((key.strip(" \t").lower(), _unquote(value) if eq else None))
        accepted = _accept_offer(params)
        if accepted is not None:
            return accepted
    return None


class PerMessageDeflate:
    """The compressor and inflater of one connection (RFC 7692 7.2).

    With context takeover (the default) the LZ77 window carries over from one message to
    the next in each direction; ``*_no_context_takeover`` resets it after every message.

    Args:
        params: what :func:`negotiate` accepted.
    """

    __slots__ = ("_compressor", "_inflater", "_params")

    def __init__(self, params: DeflateParams) -> None:
        self._params = params
        self._compressor = self._new_compressor()
        self._inflater = zlib.decompressobj(-_MAX_WBITS)

    def _new_compressor(self) -> zlib._Compress:
        return zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self._params.server_max_window_bits)

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        """One message's payload, compressed, the ``00 00 ff ff`` tail removed (RFC 7692 7.2.1)."""
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if self._params.server_no_context_takeover:
            self._compressor = self._new_compressor()
        if out.endswith(_TAIL):
            out = out[:-4]
        # RFC 7692 7.2.3.6: an empty payload still needs one (empty) block.
        return out or b"\x00"

    def inflate(self, data: bytes, final: bool, limit: int) -> bytes:
        """Inflate one frame's worth of a compressed message (RFC 7692 7.2.2).

        Args:
            data: the frame's (unmasked) payload.
            final: whether this frame ends the message (the tail is then appended).
            limit: how many inflated bytes the message may still grow by.

        Returns:
            The inflated bytes (at most ``limit``).

        Raises:
            InflatedTooBig: the data inflates past ``limit``.
            DeflateError: the data is not a valid deflate stream.
        """
        inflater = self._inflater
        try:
            # max_length bounds the allocation: a bomb stops at limit + 1 bytes.
            out = inflater.decompress(data + _TAIL if final else data, limit + 1)
        except zlib.error as exc:
            self._inflater = zlib.decompressobj(-_MAX_WBITS)
            raise DeflateError(f"compressed message is not valid deflate data: {exc}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise InflatedTooBig(f"compressed message inflates past the limit of {limit} more bytes")
        # RFC 7692 7.2.3.4: a block with BFINAL set ends the stream; the next message starts afresh.
        if final and (self._params.client_no_context_takeover or inflater.eof):
            self._inflater = zlib.decompressobj(-_MAX_WBITS)
        return out
