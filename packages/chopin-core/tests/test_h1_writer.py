"""The twin tests: the worker's inlined HTTP/1.1 framing equals the readable writer, byte for byte.

``Worker.respond`` writes a response as pre-encoded pieces (measured on the hot
path); ``_wire/h1_writer.frame_response`` states the same rules as one readable
function.  Every combination of method, status, version, keep-alive and body kind
is served by a real worker (``Worker.answer``: the real parser and the inlined
code, no socket) and compared with what the writer frames.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from chopin_core import Response, Router, Settings
from chopin_core._wire.h1_writer import (
    LAST_CHUNK,
    NO_BODY,
    TEXT_PLAIN,
    chunk,
    content_length_line,
    error_answer,
    frame_response,
    head_end,
    status_line,
    timeout_answer,
)
from chopin_core.worker import Worker

METHODS = ("GET", "HEAD")
STATUSES = (200, 204, 304)
# (request version, what the client says about the connection, whether it persists)
CONNECTIONS = (
    ("HTTP/1.1", "", True),
    ("HTTP/1.1", "Connection: close\r\n", False),
    ("HTTP/1.0", "", False),
    ("HTTP/1.0", "Connection: keep-alive\r\n", True),
)
BODY_KINDS = ("bytes", "empty", "stream", "empty-stream", "file")
CHUNKS = (b"first", b"", b"second chunk", b"x" * 300)
BODY = b"Hello, World!"
EXTRA = "X-Twin: 1"


def _serve(tmp_path: Path, kind: str, status: int, close: bool) -> tuple[Worker, bytes, bytes]:
    """A worker whose one route answers with ``kind``; the content and extra header lines it must send."""
    router = Router()
    path = tmp_path / "body.txt"
    path.write_bytes(BODY)

    def chunks() -> Iterator[bytes]:
        yield from CHUNKS

    def handler(_ctx: object) -> Response:
        if kind == "bytes":
            resp = Response.text(BODY)
        elif kind == "empty":
            resp = Response.text(b"")
        elif kind == "stream":
            resp = Response.stream(chunks(), "text/plain")
        elif kind == "empty-stream":
            resp = Response.stream(iter(()), "text/plain")
        else:
            resp = Response.file(path, "text/plain")
        resp.close = close
        return resp.with_status(status).with_header(*EXTRA.split(": "))

    router.get("/twin", handler)
    sample = handler(None)
    block = sample.header_block()
    if sample.file_body is not None:
        sample.file_body.close()
    if kind in ("stream", "empty-stream"):
        content = b"Content-Type: text/plain\r\n"
    elif kind == "file":
        content = b"Content-Type: text/plain\r\n" + content_length_line(len(BODY))
    else:
        content = TEXT_PLAIN + content_length_line(len(BODY) if kind == "bytes" else 0)
    assert block.startswith(content)
    return Worker(router.compile(), Settings()), content, block[len(content) :]


# A file response's status comes from its validators and ranges (test_files.py covers its 304 and 206).
CASES = [
    case
    for case in itertools.product(METHODS, STATUSES, CONNECTIONS, BODY_KINDS, (False, True))
    if not (case[3] == "file" and case[1] in NO_BODY)
]


@pytest.mark.parametrize(
    ("method", "status", "connection", "kind", "resp_close"),
    CASES,
    ids=[f"{m}-{s}-{c[0][5:]}{'-close' if not c[2] else ''}-{k}{'-respclose' if r else ''}" for m, s, c, k, r in CASES],
)
def test_inlined_framing_equals_frame_response(
    tmp_path: Path, method: str, status: int, connection: tuple[str, str, bool], kind: str, resp_close: bool
) -> None:
    version, header, persists = connection
    worker, content, extra = _serve(tmp_path, kind, status, resp_close)
    wire = worker.answer(f"{method} /twin {version}\r\nHost: t\r\n{header}\r\n".encode())
    keep = persists and not resp_close
    streamed = kind in ("stream", "empty-stream")
    expected, stays_open = frame_response(
        status=status,
        date_line=worker.date_line,
        content=content,
        extra=extra,
        method=method,
        http11=version == "HTTP/1.1",
        keep_alive=keep,
        body=BODY if kind in ("bytes", "file") else b"",
        chunks=(CHUNKS if kind == "stream" else ()) if streamed else None,
    )
    assert wire == expected
    assert stays_open == (keep and not (streamed and version == "HTTP/1.0" and status not in NO_BODY))


def test_pipelined_answers_are_the_writer_frames_in_order(tmp_path: Path) -> None:
    worker, content, extra = _serve(tmp_path, "bytes", 200, False)
    wire = worker.answer(b"GET /twin HTTP/1.1\r\nHost: t\r\n\r\nHEAD /twin HTTP/1.1\r\nHost: t\r\n\r\n")
    one = frame_response(status=200, date_line=worker.date_line, content=content, extra=extra, body=BODY)[0]
    head = frame_response(status=200, date_line=worker.date_line, content=content, extra=extra, method="HEAD")[0]
    assert wire == one + head


def test_protocol_error_answer_is_the_writer_error_answer() -> None:
    worker = Worker(Router().compile(), Settings())
    wire = worker.answer(b"GET / HTTP/1.1\r\nHost: t\r\nBad Header : x\r\n\r\n")
    assert wire.startswith(status_line(400))
    message = wire.split(b"\r\n\r\n", 1)[1]
    assert wire == error_answer(400, message, worker.date_line)


def test_writer_pieces() -> None:
    assert chunk(b"") == b""
    assert chunk(b"a" * 26) == b"1a\r\n" + b"a" * 26 + b"\r\n"
    assert head_end(True, True) == b"\r\n"
    assert head_end(True, False) == b"Connection: keep-alive\r\n\r\n"
    assert head_end(False, True) == head_end(False, False) == b"Connection: close\r\n\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"
    assert status_line(299) == b"HTTP/1.1 299 Unknown\r\n"
    with pytest.raises(ValueError, match=r"expected 100\.\.999"):
        status_line(1000)
    assert timeout_answer(b"D: 1\r\n") == (
        b"HTTP/1.1 408 Request Timeout\r\nD: 1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 15\r\nConnection: close\r\n\r\nRequest Timeout"
    )
