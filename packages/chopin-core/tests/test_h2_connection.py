"""The sans-IO HTTP/2 server connection (``_wire/h2_connection.py``) against ``h2`` as its client, no socket.

The h2spec cases run over real sockets in ``test_conformance_http2.py``; here each
exchange is bytes handed between an ``h2`` client connection and ours, so what
``h2`` makes of our frames (and we of its) is checked frame by frame.
"""

from __future__ import annotations

import struct
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from chopin_core._wire import h2_connection as core
from chopin_core._wire.hpack import FieldEncoder
from hypothesis import given, settings
from hypothesis import strategies as st

REQUEST = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/x"), (b":authority", b"example.com")]
RESPONSE = [(b":status", b"200"), (b"content-type", b"text/plain")]


def _decode_with(decoder: hpack.Decoder) -> Any:
    def decode(block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            return list(decoder.decode(block, raw=True))
        except hpack.HPACKError as exc:
            raise core.HeaderBlockError(core.ErrorCodes.COMPRESSION_ERROR, str(exc)) from exc

    return decode


class Pair:
    """An h2 client and our server connection, wired back to back."""

    def __init__(self, settings: dict[int, int] | None = None, client_settings: dict[int, int] | None = None) -> None:
        self.server = core.H2ServerConnection(
            _decode_with(hpack.Decoder()),
            FieldEncoder().encode,
            settings or {4: 1 << 20, 5: 16384},
            connection_window=1 << 20,
            max_header_block=65536,
        )
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.client.initiate_connection()
        if client_settings:
            self.client.update_settings(client_settings)
        self.client_events: list[Any] = []
        self.server_events = self.to_server()
        self.to_client()

    def to_server(self) -> list[core.Event]:
        return self.server.receive_data(self.client.data_to_send())

    def to_client(self) -> list[Any]:
        events = self.client.receive_data(self.server.data_to_send())
        self.client_events += events
        self.client.data_to_send()  # the client's ACKs are not looked at
        return events


def test_a_request_and_its_response() -> None:
    pair = Pair()
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(stream_id, REQUEST, end_stream=True)
    events = pair.to_server()
    assert [type(e) for e in events] == [core.RequestReceived, core.StreamEnded]
    assert events[0].headers == REQUEST  # type: ignore[attr-defined]
    pair.server.send_headers(stream_id, RESPONSE)
    pair.server.send_data(stream_id, b"hello", end_stream=True)
    got = pair.to_client()
    kinds = [type(e) for e in got]
    assert kinds == [h2.events.ResponseReceived, h2.events.DataReceived, h2.events.StreamEnded]
    assert got[0].headers == RESPONSE
    assert got[1].data == b"hello"
    assert stream_id not in pair.server.streams  # both sides ended
    with pytest.raises(core.StreamClosedError):
        pair.server.send_data(stream_id, b"more")


def test_a_body_arrives_and_its_window_is_given_back() -> None:
    pair = Pair()
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(stream_id, [(b":method", b"POST"), *REQUEST[1:], (b"content-length", b"640000")])
    pair.to_server()
    before = pair.client.local_flow_control_window(stream_id)
    assert before == 1 << 20  # our SETTINGS and connection WINDOW_UPDATE reached the client
    events = []
    for n in range(40):
        pair.client.send_data(stream_id, b"x" * 16000)
        events += pair.to_server()
        if n == 0:
            pair.server.acknowledge_received_data(16000, stream_id)
            assert pair.server.data_to_send() == b""  # under half a window owed: no WINDOW_UPDATE yet
            continue
        pair.server.acknowledge_received_data(16000, stream_id)
    assert sum(len(e.data) for e in events if isinstance(e, core.DataReceived)) == 640000  # type: ignore[attr-defined]
    pair.to_client()
    # Half a window owed (512 KiB) was given back; what was acknowledged after waits for the next half.
    assert pair.client.local_flow_control_window(stream_id) == before - 640000 + 528000
    pair.client.end_stream(stream_id)
    assert [type(e) for e in pair.to_server()] == [core.DataReceived, core.StreamEnded]  # an empty DATA ends it


def test_content_length_mismatch_is_a_stream_error() -> None:
    pair = Pair()
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(stream_id, [(b":method", b"POST"), *REQUEST[1:], (b"content-length", b"3")])
    pair.client.send_data(stream_id, b"four", end_stream=True)
    events = pair.to_server()
    reset = [e for e in events if isinstance(e, core.StreamReset)]
    assert reset and reset[0].error_code == core.ErrorCodes.PROTOCOL_ERROR and not reset[0].remote_reset
    pair.to_client()
    assert any(isinstance(e, h2.events.StreamReset) for e in pair.client_events)


def test_a_large_header_block_goes_out_in_continuations() -> None:
    pair = Pair()
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(stream_id, REQUEST, end_stream=True)
    pair.to_server()
    big = [(b":status", b"200"), *[(b"x-%d" % i, b"v" * 1000) for i in range(40)]]
    pair.server.send_headers(stream_id, big, end_stream=True)
    data = pair.server.data_to_send()
    kinds = []
    at = 0
    while at < len(data):
        length = int.from_bytes(data[at : at + 3])
        kinds.append(data[at + 3])
        at += 9 + length
    assert kinds == [1, 9, 9]  # HEADERS, then CONTINUATIONs of at most 16,384 bytes
    got = pair.client.receive_data(data)
    assert got[0].headers == big


def test_the_peers_settings_bound_what_is_sent() -> None:
    pair = Pair(client_settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10})
    pair.to_server()
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(stream_id, REQUEST, end_stream=True)
    pair.to_server()
    assert pair.server.local_flow_control_window(stream_id) == 10
    with pytest.raises(ValueError, match="past the window"):
        pair.server.send_data(stream_id, b"x" * 11)
    pair.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100})
    events = pair.to_server()
    assert any(isinstance(e, core.WindowUpdated) and e.stream_id == 0 for e in events)
    assert pair.server.local_flow_control_window(stream_id) == 100


def test_an_oversized_frame_is_refused_from_its_header() -> None:
    pair = Pair()
    head = struct.pack(">I", 16385)[1:] + bytes((0, 0)) + struct.pack(">I", 1)
    with pytest.raises(core.H2ConnectionError) as caught:
        pair.server.receive_data(head)  # the 9 bytes alone: no payload is waited for
    assert caught.value.error_code == core.ErrorCodes.FRAME_SIZE_ERROR
    assert pair.server.data_to_send()[3] == 7  # GOAWAY
    assert pair.server.receive_data(b"anything") == []  # the connection refuses further input


def test_frames_in_flight_on_a_stream_we_reset_are_ignored() -> None:
    pair = Pair()
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(stream_id, [(b":method", b"POST"), *REQUEST[1:]])
    pair.to_server()
    pair.server.reset_stream(stream_id, core.ErrorCodes.REFUSED_STREAM)
    pair.server.data_to_send()
    pair.client.send_data(stream_id, b"late")  # sent before the client saw our RST_STREAM
    assert pair.to_server() == []
    assert pair.server.data_to_send() == b""  # no RST_STREAM answers them


def test_ping_is_answered_and_goaway_ends_the_input() -> None:
    pair = Pair()
    pair.client.ping(b"12345678")
    pair.to_server()
    got = pair.to_client()
    assert any(isinstance(e, h2.events.PingAckReceived) and e.ping_data == b"12345678" for e in got)
    pair.client.close_connection()
    ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00after---"  # h2 sends nothing after its GOAWAY: by hand
    events = pair.server.receive_data(pair.client.data_to_send() + ping)
    assert [type(e) for e in events] == [core.ConnectionTerminated]
    assert pair.server.closed


def test_two_connections_with_one_encoder_type_do_not_share_state() -> None:
    first, second = Pair(), Pair()
    for one, other in ((first, second), (second, first)):
        for pair in (one, other):
            stream_id = pair.client.get_next_available_stream_id()
            pair.client.send_headers(stream_id, REQUEST, end_stream=True)
            assert pair.to_server()[0].headers == REQUEST  # type: ignore[attr-defined]
            pair.server.send_headers(stream_id, RESPONSE, end_stream=True)
            assert pair.to_client()[0].headers == RESPONSE


def _valid_exchange() -> bytes:
    """A client's bytes: preface, SETTINGS, requests with bodies, trailers, PING, WINDOW_UPDATE, PRIORITY, RST."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    for n in range(3):
        stream_id = client.get_next_available_stream_id()
        client.send_headers(stream_id, [(b":method", b"POST"), *REQUEST[1:], (b"x-n", b"%d" % n)])
        client.send_data(stream_id, b"body" * n, pad_length=n)
        client.send_headers(stream_id, [(b"x-trailer", b"t")], end_stream=True)
    client.ping(b"pingpong")
    client.increment_flow_control_window(1000)
    client.prioritize(1, weight=20)
    stream_id = client.get_next_available_stream_id()
    client.send_headers(stream_id, REQUEST)
    client.reset_stream(stream_id)
    return client.data_to_send()


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutated_input_only_ever_ends_in_a_connection_error(data: st.DataObject) -> None:
    """Bytes flipped, dropped or inserted anywhere in a valid exchange: events or H2ConnectionError, nothing else."""
    raw = bytearray(_valid_exchange())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "drop":
            del raw[at]
        else:
            raw[at:at] = bytes([data.draw(st.integers(0, 255))])
    cut = data.draw(st.integers(0, len(raw)))
    server = core.H2ServerConnection(
        _decode_with(hpack.Decoder()), FieldEncoder().encode, {}, connection_window=65535, max_header_block=65536
    )
    try:
        for piece in (bytes(raw[:cut]), bytes(raw[cut:])):  # in two reads, split anywhere
            for event in server.receive_data(piece):
                assert isinstance(event, core.Event)
    except core.H2ConnectionError as exc:
        assert exc.error_code in range(0xE)
        assert server.closed
        assert server.data_to_send()[-17 + 3] == 7  # the last frame queued is the GOAWAY
