"""gzip: Response.gzip(), streams, and the compression middleware over real sockets."""

from __future__ import annotations

import gzip
import subprocess
import zlib

import httpx
import pytest
from chopin_core import Response, TestClient
from chopin_core.compress import compression, gzip_stream, is_compressible
from chopin_core.router import Router

TEXT = ("All work and no play makes Jack a dull boy.\n" * 200).encode()


def test_gzip_body_sets_headers_and_length():
    resp = Response.text(TEXT).gzip()
    assert gzip.decompress(resp.body) == TEXT
    headers = dict(resp.headers)
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Vary"] == "Accept-Encoding"
    assert headers["Content-Length"] == str(len(resp.body))
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_gzip_refuses_files_and_double_encoding(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("x")
    with pytest.raises(ValueError, match="file responses"):
        Response.file(path).gzip()
    with pytest.raises(ValueError, match="already encoded"):
        Response.text("x").gzip().gzip()


def test_gzip_stream_flushes_each_chunk():
    decompressor = zlib.decompressobj(31)
    out = []
    for piece in gzip_stream([b"first ", "second"]):
        out.append(decompressor.decompress(piece))
    assert out[0] == b"first "  # available before the stream ends
    assert b"".join(out) == b"first second"


@pytest.mark.parametrize(
    ("ctype", "expected"),
    [
        ("text/html; charset=utf-8", True),
        ("application/json", True),
        ("application/problem+json", True),
        ("image/svg+xml", True),
        ("image/png", False),
        ("application/octet-stream", False),
        (None, False),
    ],
)
def test_is_compressible(ctype, expected):
    assert is_compressible(ctype) is expected


def test_middleware_in_process():
    router = Router()
    router.get("/t", lambda ctx: Response.text(TEXT))
    router.layer(compression())
    client = TestClient(router)
    zipped = client.get("/t", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.header("content-encoding") == "gzip"
    assert gzip.decompress(zipped.body) == TEXT
    plain = client.get("/t", headers={"Accept-Encoding": "br"})
    assert plain.header("content-encoding") is None
    assert plain.header("vary") == "Accept-Encoding"
    assert plain.body == TEXT


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("apps.forms_app:app")


def test_middleware_with_httpx(server):
    with httpx.Client(timeout=5.0) as client:
        text = client.get(f"{server.url}/text", headers={"Accept-Encoding": "gzip"})
        assert text.headers["content-encoding"] == "gzip"
        assert int(text.headers["content-length"]) < len(TEXT) // 10
        assert text.content == TEXT
        small = client.get(f"{server.url}/small", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers
        png = client.get(f"{server.url}/png", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in png.headers
        stream = client.get(f"{server.url}/stream", headers={"Accept-Encoding": "gzip"})
        assert stream.headers["content-encoding"] == "gzip"
        assert stream.headers["transfer-encoding"] == "chunked"
        assert stream.content == TEXT
        manual = client.get(f"{server.url}/manual", headers={"Accept-Encoding": "gzip"})
        assert manual.headers["content-encoding"] == "gzip"
        assert manual.json() == {"words": ["chopin"] * 500}


def test_middleware_with_curl(server):
    result = subprocess.run(
        ["curl", "-s", "--compressed", "-D", "-", f"{server.url}/text"], capture_output=True, timeout=10, check=True
    )
    head, _, data = result.stdout.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head
    assert data == TEXT


def test_no_accept_encoding_gets_identity(server, connect):
    conn = connect(server)
    response = conn.request("GET", "/text")
    assert response.header("content-encoding") is None
    assert response.header("vary") == "Accept-Encoding"
    assert response.body == TEXT
