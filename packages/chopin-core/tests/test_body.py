"""Request bodies over more than one read: spooling, the per-worker memory budget, the body timeout.

The parser's side (reporting a body's length and progress, diverting it to a sink)
is tested without sockets; the worker's side against ``apps/bodies_app.py`` served
in a subprocess, with raw sockets where the timing of every byte matters.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import time
from pathlib import Path

import httpx
import pytest
from chopin_core import Request, Settings
from chopin_core._wire.h1_request import RequestParser
from chopin_core.errors import ProtocolError
from chopin_core.request import SpooledRequest

APP = "apps.bodies_app:router"
KIB = 1024
MIB = 1024 * 1024


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ with ``seed`` (so a mixed-up body cannot hash right)."""
    block = hashlib.sha256(b"%d" % seed).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def head(size: int, target: str = "/digest") -> bytes:
    return f"POST {target} HTTP/1.1\r\nHost: test\r\nContent-Length: {size}\r\n\r\n".encode()


def digest_of(resp) -> dict:
    assert resp.status == 200, resp.body
    return json.loads(resp.body)


def server_fds_in(pid: int, directory: Path) -> int:
    """Open files of process ``pid`` under ``directory`` (unnamed temporary files included)."""
    prefix = os.path.realpath(directory) + "/"
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
                count += 1
        except OSError:
            pass
    return count


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def answered(conn, timeout: float) -> bool:
    """Whether the server sent anything on ``conn`` within ``timeout`` seconds."""
    return bool(conn.buffer) or bool(select.select([conn.sock], [], [], timeout)[0])


# -- the parser's side, no sockets ---------------------------------------------------------


class ListSink:
    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.finished: list[Request] = []

    def write(self, data: bytes) -> None:
        self.pieces.append(data)

    def finish(self, req: Request) -> Request:
        self.finished.append(req)
        return req


def test_parser_reports_a_body_in_progress_and_diverts_it():
    parser = RequestParser()
    assert parser.feed(head(10) + b"abc") == []
    req = parser.body_pending
    assert req is not None and req.method == "POST"
    assert (parser.body_expected, parser.body_received) == (10, 3)
    sink = ListSink()
    parser.divert_body(sink)
    assert sink.pieces == [b"abc"]
    events = parser.feed(b"defghij" + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert sink.pieces == [b"abc", b"defghij"]
    assert events[0] is req and sink.finished == [req]
    assert req.body == b""  # the sink has it
    assert type(events[1]) is Request and events[1].method == "GET"
    assert parser.body_pending is None


def test_parser_reports_chunked_progress_and_diverts_the_rest():
    parser = RequestParser()
    start = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert parser.feed(start + b"5\r\nhello\r\n3\r\nwo") == []
    assert (parser.body_expected, parser.body_received) == (-1, 7)
    sink = ListSink()
    parser.divert_body(sink)
    [req] = parser.feed(b"r\r\n0\r\n\r\n")
    assert b"".join(sink.pieces) == b"hellowor" and sink.finished == [req]


def test_parser_without_a_sink_keeps_bodies_in_memory():
    parser = RequestParser()
    assert parser.feed(head(6)) == []
    [req] = parser.feed(b"abcdef")
    assert req.body == b"abcdef" and not req.spooled and req.body_size == 6
    assert req.body_stream().read() == b"abcdef"
    with pytest.raises(RuntimeError):
        parser.divert_body(ListSink())


def test_a_sink_that_refuses_a_piece_is_a_protocol_error():
    class Full(ListSink):
        def write(self, data: bytes) -> None:
            if self.pieces:
                raise ProtocolError("request body could not be stored", 503)
            self.pieces.append(data)

    parser = RequestParser()
    parser.feed(head(10) + b"abc")
    parser.divert_body(Full())
    [error] = parser.feed(b"defg")
    assert isinstance(error, ProtocolError) and error.status == 503
    assert parser.broken and parser.body_pending is None


def test_spooled_request_reads_its_file_and_closes_it(tmp_path):
    file = open(tmp_path / "body", "w+b")  # noqa: SIM115 - the request owns it
    file.write(b"spooled body")
    req = SpooledRequest(Request("POST", "/", "/", None, True, True, [b"Host: a"]), file, 12)
    assert req.spooled and req.body_size == 12
    with req.body_stream() as stream:
        assert stream.read() == b"spooled body"
    assert req.body == b"spooled body" and req.header("host") == "a"
    del req
    assert file.closed


def test_body_settings_come_from_the_environment():
    settings = Settings.from_env(
        {"CHOPIN_MAX_BUFFERED_BODY_BYTES": "1000", "CHOPIN_BODY_SPOOL_THRESHOLD": "10", "CHOPIN_BODY_TIMEOUT": "2.5"}
    )
    assert (settings.max_buffered_body_bytes, settings.body_spool_threshold, settings.body_timeout) == (1000, 10, 2.5)
    defaults = Settings()
    assert (defaults.max_buffered_body_bytes, defaults.body_spool_threshold) == (64 * MIB, MIB)
    assert defaults.body_timeout == 30.0


# -- spooling, over real sockets ----------------------------------------------------------------


def test_large_body_goes_to_a_temporary_file_and_arrives_intact(serve, connect, tmp_path):
    size = 24 * MIB
    server = serve(APP, env={"TMPDIR": str(tmp_path)}, body_spool_threshold=64 * KIB, max_body_size=64 * MIB)
    data = payload(size, seed=1)
    conn = connect(server)
    assert conn.request("GET", "/").status == 200
    peak_before = peak_rss_kib(server.pid)
    conn.send(head(size) + data[: size // 2])
    # The first half is in a file of the worker's, not in its memory.
    assert wait_for(lambda: server_fds_in(server.pid, tmp_path) == 1, 5.0)
    conn.send(data[size // 2 :])
    got = digest_of(conn.read_response(timeout=20.0))
    assert got == {"sha256": hashlib.sha256(data).hexdigest(), "size": size, "body_size": size, "spooled": True}
    growth = peak_rss_kib(server.pid) - peak_before
    assert growth < size // KIB // 3, f"peak RSS grew by {growth} KiB for a {size // KIB} KiB body"
    # The file is closed once the request is answered.
    assert conn.request("GET", "/spool-files").body == b"0"
    assert server_fds_in(server.pid, tmp_path) == 0


def test_spool_file_of_an_abandoned_upload_is_closed(serve, connect, tmp_path):
    server = serve(APP, env={"TMPDIR": str(tmp_path)}, body_spool_threshold=64 * KIB)
    conn = connect(server)
    conn.send(head(MIB) + payload(200 * KIB))
    assert wait_for(lambda: server_fds_in(server.pid, tmp_path) == 1, 5.0)
    conn.close()
    assert wait_for(lambda: server_fds_in(server.pid, tmp_path) == 0, 5.0), "the spool file outlived its connection"
    assert httpx.get(server.url + "/spool-files", timeout=5.0).json() == 0


def test_spooled_bodies_work_with_body_json_and_multipart(serve, tmp_path):
    server = serve(APP, env={"TMPDIR": str(tmp_path)}, body_spool_threshold=16 * KIB)
    big = payload(300 * KIB, seed=2)
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        got = client.post("/digest/body", content=big).json()
        assert got == {"sha256": hashlib.sha256(big).hexdigest(), "size": len(big), "spooled": True}

        items = [f"item-{i:06d}" for i in range(20000)]  # ~300 KiB of JSON
        assert client.post("/json", json={"items": items}).json() == {"count": 20000, "spooled": True}

        resp = client.post("/upload", files={"file": ("a.bin", big)}, data={"note": "hi"}).json()
        assert resp["spooled"] is True
        assert {p["name"]: (p["size"], p["sha256"]) for p in resp["parts"]} == {
            "note": (2, hashlib.sha256(b"hi").hexdigest()),
            "file": (len(big), hashlib.sha256(big).hexdigest()),
        }

        small = client.post("/digest", content=b"tiny").json()
        assert small["spooled"] is False and small["size"] == 4
        assert client.get("/spool-files").json() == 0


def test_chunked_body_is_spooled_once_it_passes_the_threshold(serve, connect, tmp_path):
    server = serve(APP, env={"TMPDIR": str(tmp_path)}, body_spool_threshold=64 * KIB)
    data = payload(300 * KIB, seed=3)
    conn = connect(server)
    conn.send(b"POST /digest HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
    for at in range(0, len(data), 20 * KIB):
        piece = data[at : at + 20 * KIB]
        conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
    conn.send(b"0\r\n\r\n")
    got = digest_of(conn.read_response(timeout=10.0))
    assert (got["sha256"], got["size"], got["spooled"]) == (hashlib.sha256(data).hexdigest(), len(data), True)
    assert conn.request("GET", "/spool-files").body == b"0"


# -- the per-worker budget: back-pressure ----------------------------------------------------


def test_bodies_past_the_worker_budget_wait_unread_while_others_are_served(serve, connect, tmp_path):
    # Bodies of 100 KiB stay in memory (threshold 256 KiB) and reserve 100 KiB each
    # of the 256 KiB budget: two fit, a third waits.  100 KiB is more than one read
    # (64 KiB), so none is answered from its first read.
    size = 100 * KIB
    server = serve(
        APP,
        env={"TMPDIR": str(tmp_path)},
        max_buffered_body_bytes=256 * KIB,
        body_spool_threshold=256 * KIB,
    )
    other = connect(server)
    bodies = {name: payload(size, seed=i) for i, name in enumerate("abcgh")}
    a, b, c = connect(server), connect(server), connect(server)
    a.send(head(size) + bodies["a"][: 10 * KIB])
    b.send(head(size) + bodies["b"][: 10 * KIB])
    # Answered after the worker has read a and b (they were readable before this was sent).
    assert other.request("GET", "/").status == 200
    c.send(head(size) + bodies["c"])
    # The worker keeps serving: a GET, and a small upload that fits in one read.
    assert other.request("GET", "/").status == 200
    assert digest_of(other.request("POST", "/digest", body=b"x" * 1000))["size"] == 1000
    # c was readable before those answers, so had it been read, it would be answered by now.
    assert not answered(c, 0.3), "a body past the worker's budget was read and answered"

    # b gives up mid-body: its reservation comes back and c goes ahead.
    b.close()
    got = digest_of(c.read_response(timeout=5.0))
    assert got["sha256"] == hashlib.sha256(bodies["c"]).hexdigest() and not got["spooled"]
    a.send(bodies["a"][10 * KIB :])
    assert digest_of(a.read_response(timeout=5.0))["sha256"] == hashlib.sha256(bodies["a"]).hexdigest()

    # Everything was given back: two new bodies fit together again.
    g, h = connect(server), connect(server)
    g.send(head(size) + bodies["g"][: 10 * KIB])
    h.send(head(size) + bodies["h"][: 10 * KIB])
    assert other.request("GET", "/").status == 200
    h.send(bodies["h"][10 * KIB :])
    g.send(bodies["g"][10 * KIB :])
    assert digest_of(h.read_response(timeout=5.0))["sha256"] == hashlib.sha256(bodies["h"]).hexdigest()
    assert digest_of(g.read_response(timeout=5.0))["sha256"] == hashlib.sha256(bodies["g"]).hexdigest()


# -- timeouts --------------------------------------------------------------------------------


def test_steady_slow_upload_is_not_cut_by_the_head_timeout(serve, connect):
    server = serve(APP, header_timeout=1.0, body_timeout=5.0)
    data = payload(12 * 100, seed=4)
    conn = connect(server)
    conn.send(head(len(data)))
    started = time.monotonic()
    for at in range(0, len(data), 100):  # 100 bytes every 0.25 s: 3 s in all, past header_timeout
        time.sleep(0.25)
        conn.send(data[at : at + 100])
    assert time.monotonic() - started > 2.5
    got = digest_of(conn.read_response(timeout=5.0))
    assert got["sha256"] == hashlib.sha256(data).hexdigest()


def test_stalled_body_is_cut_after_the_body_timeout(serve, connect):
    server = serve(APP, header_timeout=10.0, body_timeout=1.0)
    conn = connect(server)
    conn.send(head(1000) + b"x" * 100)
    started = time.monotonic()
    resp = conn.read_response(timeout=5.0)
    elapsed = time.monotonic() - started
    assert resp.status == 408
    assert resp.header("connection") == "close"
    conn.assert_closed_by_server()
    assert 0.5 < elapsed < 4.0
    assert httpx.get(server.url + "/", timeout=5.0).status_code == 200
