"""multipart/form-data: the parser without sockets, and uploads from real clients."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import httpx
import pytest
from chopin_core.multipart import MultipartError, boundary_of, parse_multipart

CT = "multipart/form-data; boundary=XyZ"


def body(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    return preamble + b"".join(b"--XyZ\r\n" + p + b"\r\n" for p in parts) + b"--XyZ--\r\n" + epilogue


FIELD = b'Content-Disposition: form-data; name="title"\r\n\r\nHello'
FILE = b'Content-Disposition: form-data; name="doc"; filename="a; b\\".txt"\r\nContent-Type: text/csv\r\n\r\nx,y\r\n1,2'


def test_fields_and_files():
    parts = list(parse_multipart(body(FIELD, FILE), CT))
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("title", None, "text/plain"),
        ("doc", 'a; b".txt', "text/csv"),
    ]
    assert bytes(parts[0].body) == b"Hello"
    assert bytes(parts[1].body) == b"x,y\r\n1,2"
    assert isinstance(parts[1].body, memoryview)


def test_bodies_are_views_into_the_request():
    data = body(FIELD)
    part = next(parse_multipart(data, CT))
    assert part.body.obj is data


def test_preamble_epilogue_and_empty_parts():
    empty = b'Content-Disposition: form-data; name="e"\r\n\r\n'
    parts = list(parse_multipart(body(empty, FIELD, preamble=b"ignore me\r\n", epilogue=b"junk"), CT))
    assert [bytes(p.body) for p in parts] == [b"", b"Hello"]


def test_quoted_boundary_and_case():
    data = body(FIELD)
    assert len(list(parse_multipart(data, 'Multipart/Form-Data; charset=utf-8; boundary="XyZ"'))) == 1


@pytest.mark.parametrize(
    ("data", "ctype", "message"),
    [
        (body(FIELD), "application/json", "expected multipart/form-data"),
        (body(FIELD), None, "no Content-Type"),
        (body(FIELD), "multipart/form-data", "no valid boundary"),
        (body(FIELD), "multipart/form-data; boundary=" + "b" * 71, "no valid boundary"),
        (b"nothing here", CT, "first boundary is missing"),
        (b"--XyZ\r\n" + FIELD, CT, "no closing boundary"),
        (b"--XyZ junk\r\n" + FIELD + b"\r\n--XyZ--", CT, "expected CRLF after a boundary"),
        (b"--XyZ\r\nContent-Disposition: form-data; name=a", CT, "header block not terminated"),
        (body(b"Content-Type: text/plain\r\n\r\nx"), CT, "no Content-Disposition"),
        (body(b"Content-Disposition: attachment\r\n\r\nx"), CT, "expected form-data"),
        (body(b"Bad Header\r\n\r\nx"), CT, "malformed header line"),
    ],
)
def test_malformed_bodies(data, ctype, message):
    with pytest.raises(MultipartError, match=message) as info:
        list(parse_multipart(data, ctype))
    assert info.value.status == 400


def test_limits():
    with pytest.raises(MultipartError, match="more than 2 parts"):
        list(parse_multipart(body(FIELD, FIELD, FIELD), CT, max_parts=2))
    big_header = b"Content-Disposition: form-data; name=a\r\nX-Pad: " + b"p" * 9000 + b"\r\n\r\nx"
    with pytest.raises(MultipartError, match="header block over"):
        list(parse_multipart(body(big_header), CT))


def test_boundary_of():
    assert boundary_of(CT) == b"XyZ"


# -- over real sockets --------------------------------------------------------------


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("apps.forms_app:app")


def test_httpx_upload(server):
    blob = os.urandom(300_000)
    response = httpx.post(
        f"{server.url}/upload",
        data={"title": "Nocturne", "key": "é"},
        files={"score": ("op9.pdf", blob, "application/pdf")},
        timeout=10.0,
    )
    assert response.status_code == 200
    parts = {p["name"]: p for p in response.json()}
    assert parts["title"]["text"] == "Nocturne"
    assert parts["key"]["text"] == "é"
    assert parts["score"]["filename"] == "op9.pdf"
    assert parts["score"]["content_type"] == "application/pdf"
    assert parts["score"]["size"] == len(blob)
    assert parts["score"]["sha256"] == hashlib.sha256(blob).hexdigest()


def test_curl_upload(server, tmp_path):
    upload = tmp_path / "notes.txt"
    upload.write_bytes(b"line one\r\n--not a boundary\r\nline three")
    result = subprocess.run(
        ["curl", "-s", "-F", "name=Ada", "-F", f"file=@{upload};type=text/plain", f"{server.url}/upload"],
        capture_output=True,
        timeout=10,
        check=True,
    )
    parts = {p["name"]: p for p in json.loads(result.stdout)}
    assert parts["name"]["text"] == "Ada"
    assert parts["file"]["filename"] == "notes.txt"
    assert parts["file"]["sha256"] == hashlib.sha256(upload.read_bytes()).hexdigest()


def test_malformed_upload_is_400_and_the_connection_carries_on(server, connect):
    conn = connect(server)
    response = conn.request(
        "POST", "/upload", [("Content-Type", "multipart/form-data; boundary=abc")], b"--abc\r\nno end"
    )
    assert response.status == 400
    assert b"multipart body" in response.body
    assert conn.request("POST", "/upload/limited", [("Content-Type", CT)], body(FIELD)).status == 200
    too_many = conn.request("POST", "/upload/limited", [("Content-Type", CT)], body(FIELD, FIELD, FIELD))
    assert too_many.status == 400
    assert b"more than 2 parts" in too_many.body
