"""Files over real sockets: sendfile, ranges, validators and the static mount."""

from __future__ import annotations

import email.utils
import gzip
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from chopin_core.files import CONTENT_TYPES, content_type_for, parse_range

BIG = 5 * 1024 * 1024
OLD_MTIME = 1_000_000_000  # 2001-09-09


@pytest.fixture(scope="module")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("static")
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "style.css").write_text("body { color: red }\n" * 50)
    (root / "style.css.gz").write_bytes(gzip.compress((root / "style.css").read_bytes()))
    (root / "big.bin").write_bytes(os.urandom(BIG))
    (root / "<b>&.txt").write_text("escaped")
    (root / "sub").mkdir()
    (root / "sub" / "note.txt").write_text("note")
    (root / "empty").mkdir()
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("secret")
    (root / "leak.txt").symlink_to(outside)
    (root / "old.bin").write_bytes(os.urandom(4096))
    os.utime(root / "old.bin", (OLD_MTIME, OLD_MTIME))  # Last-Modified is then a strong validator
    return root


@pytest.fixture(scope="module")
def server(serve_module, static_root):
    return serve_module("apps.files_app:app", env={"STATIC_ROOT": str(static_root)})


def test_file_is_sent_whole_with_type_and_validators(server, static_root):
    response = httpx.get(f"{server.url}/assets/big.bin", timeout=10.0)
    assert response.status_code == 200
    assert response.content == (static_root / "big.bin").read_bytes()
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"].startswith('"')
    mtime = email.utils.parsedate_to_datetime(response.headers["last-modified"]).timestamp()
    assert int(mtime) == int((static_root / "big.bin").stat().st_mtime)
    css = httpx.get(f"{server.url}/assets/style.css", timeout=5.0)
    assert css.headers["content-type"] == "text/css; charset=utf-8"


def test_a_slow_reader_gets_the_whole_file_while_others_are_served(server, connect, static_root):
    conn = connect(server, rcvbuf=8 * 1024, timeout=30.0)
    conn.send(conn.build("GET", "/assets/big.bin"))
    time.sleep(0.3)  # the server fills the socket and waits for EPOLLOUT
    assert httpx.get(f"{server.url}/", timeout=5.0).text == "hello"
    response = conn.read_response(timeout=60.0)
    assert response.body == (static_root / "big.bin").read_bytes()
    assert conn.request("GET", "/").body == b"hello"


def test_pipelined_file_and_request_come_back_in_order(server, connect, static_root):
    conn = connect(server)
    conn.send(conn.build("GET", "/file/style.css") + conn.build("HEAD", "/file/big.bin") + conn.build("GET", "/"))
    first = conn.read_response()
    second = conn.read_response(head=True)
    third = conn.read_response()
    assert first.body == (static_root / "style.css").read_bytes()
    assert second.status == 200
    assert second.header("content-length") == str(BIG)
    assert second.body == b""
    assert third.body == b"hello"


def test_missing_file_is_404(server):
    assert httpx.get(f"{server.url}/file/nope.txt", timeout=5.0).status_code == 404
    assert httpx.get(f"{server.url}/assets/nope.txt", timeout=5.0).status_code == 404


def test_range_with_curl(server, static_root):
    data = (static_root / "big.bin").read_bytes()
    result = subprocess.run(
        ["curl", "-s", "-D", "-", "-r", "10-19", f"{server.url}/range/big.bin"],
        capture_output=True,
        timeout=10,
        check=True,
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206")
    assert f"Content-Range: bytes 10-19/{BIG}".encode() in head
    assert body == data[10:20]


@pytest.mark.parametrize(
    ("header", "status", "span"),
    [
        ("bytes=0-0", 206, (0, 1)),
        (f"bytes={BIG - 5}-", 206, (BIG - 5, BIG)),
        ("bytes=-100", 206, (BIG - 100, BIG)),
        (f"bytes=100-{BIG * 2}", 206, (100, BIG)),
        ("bytes=0-1,5-6", 200, (0, BIG)),
        ("items=0-1", 200, (0, BIG)),
    ],
)
def test_ranges(server, static_root, header, status, span):
    data = (static_root / "big.bin").read_bytes()
    response = httpx.get(f"{server.url}/range/big.bin", headers={"Range": header}, timeout=10.0)
    assert response.status_code == status
    assert response.content == data[span[0] : span[1]]
    if status == 206:
        assert response.headers["content-range"] == f"bytes {span[0]}-{span[1] - 1}/{BIG}"


def test_unsatisfiable_range_is_416(server):
    response = httpx.get(f"{server.url}/range/big.bin", headers={"Range": f"bytes={BIG}-"}, timeout=5.0)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{BIG}"


def test_sendfile_of_an_open_descriptor(server, static_root):
    response = httpx.get(f"{server.url}/fd", timeout=5.0)
    assert response.headers["content-type"] == "application/x-test"
    assert response.content == (static_root / "big.bin").read_bytes()[100:1100]


def test_conditional_requests_get_304(server):
    first = httpx.get(f"{server.url}/assets/style.css", timeout=5.0)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    same = httpx.get(f"{server.url}/assets/style.css", headers={"If-None-Match": etag}, timeout=5.0)
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    weak = httpx.get(f"{server.url}/assets/style.css", headers={"If-None-Match": f'"x", W/{etag}'}, timeout=5.0)
    assert weak.status_code == 304
    assert httpx.get(f"{server.url}/assets/style.css", headers={"If-Modified-Since": modified}).status_code == 304
    old = email.utils.formatdate(0, usegmt=True)
    assert httpx.get(f"{server.url}/assets/style.css", headers={"If-Modified-Since": old}).status_code == 200
    other = httpx.get(f"{server.url}/assets/style.css", headers={"If-None-Match": '"other"'}, timeout=5.0)
    assert other.status_code == 200


def test_static_index_and_directory_redirect(server):
    response = httpx.get(f"{server.url}/assets/", timeout=5.0)
    assert response.text == "<h1>home</h1>"
    redirect = httpx.get(f"{server.url}/assets/sub", timeout=5.0)
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "/assets/sub/"
    assert httpx.get(f"{server.url}/assets", timeout=5.0).headers["location"] == "/assets/"


def test_listing_escapes_names(server):
    response = httpx.get(f"{server.url}/assets/sub/", timeout=5.0)
    assert response.status_code == 200
    assert 'href="note.txt"' in response.text
    top = httpx.get(f"{server.url}/assets/empty/", timeout=5.0)
    assert top.status_code == 200
    root_listing = httpx.get(f"{server.url}/assets/sub/../", timeout=5.0)
    assert root_listing.status_code in (200, 404)
    raw = httpx.get(f"{server.url}/assets/", timeout=5.0)
    assert "<b>" not in raw.text


def test_listing_of_the_root_escapes_html(serve, static_root):
    no_index = static_root.parent / "noindex"
    no_index.mkdir(exist_ok=True)
    (no_index / "<b>&.txt").write_text("x")
    server = serve("apps.files_app:app", env={"STATIC_ROOT": str(no_index)})
    response = httpx.get(f"{server.url}/assets/", timeout=5.0)
    assert "&lt;b&gt;&amp;.txt" in response.text
    assert "<b>&" not in response.text
    assert 'href="%3Cb%3E%26.txt"' in response.text


@pytest.mark.parametrize(
    "target",
    [
        "/assets/../test_files.py",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%2f..%2fetc%2fpasswd",
        "/assets/sub/../../outside",
        "/assets/leak.txt",
        "/assets/%00",
    ],
)
def test_paths_out_of_the_root_are_refused(server, connect, target):
    conn = connect(server)
    response = conn.request("GET", target)
    assert response.status == 404
    assert b"secret" not in response.body


def test_precompressed_sidecar(server, static_root):
    plain = (static_root / "style.css").read_bytes()
    with httpx.Client(timeout=5.0) as client:
        gz = client.get(f"{server.url}/assets/style.css", headers={"Accept-Encoding": "gzip"})
        assert gz.headers["content-encoding"] == "gzip"
        assert gz.headers["vary"] == "Accept-Encoding"
        assert gz.headers["content-type"] == "text/css; charset=utf-8"
        assert gz.content == plain  # httpx decodes it
        identity = client.get(f"{server.url}/assets/style.css", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in identity.headers
        assert identity.headers["vary"] == "Accept-Encoding"
        assert identity.content == plain
        refused = client.get(f"{server.url}/assets/style.css", headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused.headers


def test_no_descriptor_leaks(server):
    pid = server.pid
    before = len(os.listdir(f"/proc/{pid}/fd"))
    with httpx.Client(timeout=5.0) as client:
        etag = client.get(f"{server.url}/assets/style.css").headers["etag"]
        for _ in range(50):
            client.get(f"{server.url}/assets/style.css")
            client.head(f"{server.url}/assets/big.bin")
            client.get(f"{server.url}/assets/style.css", headers={"If-None-Match": etag})
            client.get(f"{server.url}/range/big.bin", headers={"Range": f"bytes={BIG}-"})
    after = len(os.listdir(f"/proc/{pid}/fd"))
    assert after <= before + 2  # the client's own keep-alive connection


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 900)),
        ("bytes=-10", (990, 10)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=990-5000", (990, 10)),
        ("bytes=1000-", False),
        ("bytes=1000-1001", False),
        ("bytes=-0", False),
        ("bytes=5-1", None),
        ("bytes=a-b", None),
        ("bytes=0-1,4-5", None),
        ("pages=1-2", None),
        ("bytes", None),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


def test_parse_range_of_an_empty_file():
    assert parse_range("bytes=0-", 0) is False
    assert parse_range("bytes=-1", 0) is False


def test_content_types_cover_the_common_web_types():
    assert len(CONTENT_TYPES) >= 30
    assert content_type_for("a/b/app.JS") == "text/javascript; charset=utf-8"
    assert content_type_for("x.wasm") == "application/wasm"
    assert content_type_for("noext") == "application/octet-stream"


def test_a_path_swapped_for_a_symlink_after_it_was_served_cannot_lead_out(serve, tmp_path):
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "page.txt").write_text("public")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "page.txt").write_text("secret")
    server = serve("apps.files_app:app", env={"STATIC_ROOT": str(root)})
    with httpx.Client(timeout=5.0) as client:
        assert client.get(f"{server.url}/assets/docs/page.txt").text == "public"  # resolved and remembered
        # Swap the file itself, then a directory on its path, for symlinks out of the root.
        (root / "docs" / "page.txt").unlink()
        (root / "docs" / "page.txt").symlink_to(outside / "page.txt")
        swapped_file = client.get(f"{server.url}/assets/docs/page.txt")
        (root / "docs" / "page.txt").unlink()
        (root / "docs").rmdir()
        (root / "docs").symlink_to(outside)
        swapped_dir = client.get(f"{server.url}/assets/docs/page.txt")
    for response in (swapped_file, swapped_dir):
        assert response.status_code == 404
        assert "secret" not in response.text


# -- issue 15: dates and numbers from the client, If-Range, slice validators -------------------


@pytest.mark.parametrize(
    "since",
    [
        "Sun, 06 Nov 99999999999999999999 08:49:37 GMT",  # OverflowError in email.utils
        "Sun, 06 Nov 1994 08:49:37 +99999999999999",
        "Sun, 06 Nov 10000 08:49:37 GMT",
        "Sun, 31 Feb 2000 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:61:61 GMT",
        "not a date",
        "\xe9t\xe9",
    ],
)
@pytest.mark.parametrize("path", ["/file/style.css", "/assets/style.css"])
def test_an_invalid_if_modified_since_is_ignored_and_the_worker_lives(server, connect, static_root, since, path):
    # One worker (the fixture's default): before the fix the OverflowError took the server down.
    conn = connect(server)
    response = conn.request("GET", path, [("If-Modified-Since", since)])
    assert response.status == 200
    assert response.body == (static_root / "style.css").read_bytes()
    assert conn.request("GET", "/").body == b"hello"
    assert connect(server).request("GET", "/").body == b"hello"


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("bytes=0-" + "9" * 5000, 200),  # past int()'s digit limit: ignored
        ("bytes=" + "9" * 5000 + "-", 200),
        ("bytes=-" + "9" * 30, 206),  # the whole file, as a suffix range
        ("bytes=" + "9" * 30 + "-", 416),
        ("bytes=0-" + "9" * 30, 206),
        ("bytes=+1-2", 200),
        ("bytes=1_0-20", 200),
    ],
)
def test_huge_or_odd_range_numbers_are_answered(server, connect, header, status):
    conn = connect(server)
    response = conn.request("GET", "/range/old.bin", [("Range", header)])
    assert response.status == status
    assert conn.request("GET", "/").body == b"hello"


def _validators(server, path):
    conn_response = httpx.get(f"{server.url}{path}", timeout=5.0)
    return conn_response.headers["etag"], conn_response.headers["last-modified"]


@pytest.mark.parametrize("path", ["/range/old.bin", "/assets/old.bin"])
def test_if_range_with_a_stale_validator_sends_the_whole_file(server, connect, static_root, path):
    data = (static_root / "old.bin").read_bytes()
    etag, modified = _validators(server, path)
    assert modified == email.utils.formatdate(OLD_MTIME, usegmt=True)
    stale_date = email.utils.formatdate(OLD_MTIME - 3600, usegmt=True)
    conn = connect(server)
    for if_range in ('"0-0"', f"W/{etag}", stale_date, "Sun, 06 Nov 99999999999999999999 08:49:37 GMT", "junk"):
        response = conn.request("GET", path, [("Range", "bytes=10-19"), ("If-Range", if_range)])
        assert response.status == 200, if_range
        assert response.body == data, if_range
        assert response.header("content-range") is None
        assert response.header("content-length") == str(len(data))
        assert response.header("etag") == etag
    # HEAD answers the same way, with the whole length.
    head = conn.request("HEAD", path, [("Range", "bytes=10-19"), ("If-Range", '"0-0"')])
    assert head.status == 200
    assert head.header("content-length") == str(len(data))


@pytest.mark.parametrize("path", ["/range/old.bin", "/assets/old.bin"])
def test_if_range_with_the_current_validator_sends_the_range(server, connect, static_root, path):
    data = (static_root / "old.bin").read_bytes()
    etag, modified = _validators(server, path)
    conn = connect(server)
    for if_range in (etag, modified):
        response = conn.request("GET", path, [("Range", "bytes=10-19"), ("If-Range", if_range)])
        assert response.status == 206, if_range
        assert response.body == data[10:20]
        assert response.header("content-range") == f"bytes 10-19/{len(data)}"


def test_if_range_date_of_a_file_changed_within_the_second_is_not_strong(server, connect, static_root):
    # RFC 9110 8.8.2.2: a Last-Modified less than a second old is weak; If-Range then fails.
    fresh = static_root / "fresh.bin"
    fresh.write_bytes(os.urandom(1000))
    etag, modified = _validators(server, "/range/fresh.bin")
    conn = connect(server)
    by_date = conn.request("GET", "/range/fresh.bin", [("Range", "bytes=0-9"), ("If-Range", modified)])
    by_tag = conn.request("GET", "/range/fresh.bin", [("Range", "bytes=0-9"), ("If-Range", etag)])
    assert (by_date.status, len(by_date.body)) == (200, 1000)
    assert (by_tag.status, len(by_tag.body)) == (206, 10)


def test_a_sendfile_slice_does_not_carry_the_whole_files_etag(server, connect, static_root):
    whole_etag, _ = _validators(server, "/file/big.bin")
    conn = connect(server)
    part = conn.request("GET", "/fd")
    assert part.body == (static_root / "big.bin").read_bytes()[100:1100]
    assert part.header("etag") not in (None, whole_etag)
    # The whole file's tag does not validate the slice, and the slice's own tag does.
    assert conn.request("GET", "/fd", [("If-None-Match", whole_etag)]).status == 200
    assert conn.request("GET", "/fd", [("If-None-Match", part.header("etag"))]).status == 304
    assert conn.request("GET", "/file/big.bin", [("If-None-Match", part.header("etag"))]).status == 200
