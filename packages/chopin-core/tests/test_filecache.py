"""The static mount's file cache: what it keeps, when it looks at the disk again, and the answers it makes."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import httpx
import pytest
from chopin_core.errors import ConfigError
from chopin_core.filecache import ENTRY_OVERHEAD, FileCache, FileCacheLimits, cached_response
from chopin_core.files import FileBody, has_range_or_precondition
from chopin_core.request import Request
from chopin_core.response import Response

OLD = 1_000_000_000  # 2001-09-09: a file this old is settled


def _write(path: Path, data: bytes, mtime: int | None = OLD) -> Path:
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _request(*headers: tuple[str, str]) -> Request:
    lines = [b"Host: test", *(f"{name}: {value}".encode() for name, value in headers)]
    return Request("GET", "/", "/", None, True, True, lines)


# -- the cache alone (no sockets): times are passed in, so nothing here waits --------------------


def test_an_entry_is_served_without_a_look_at_the_disk_until_valid_has_passed(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", b"one")
    cache = FileCache(FileCacheLimits(valid=1.0))
    first = cache.get(str(path), str(tmp_path), 100.0)
    assert first is not None
    assert first.content == b"one"
    _write(path, b"two!", OLD + 5)
    again = cache.get(str(path), str(tmp_path), 100.9)
    assert again is first
    assert again.content == b"one"  # inside the window: not looked at
    later = cache.get(str(path), str(tmp_path), 101.0)
    assert later is not None
    assert later.content == b"two!"  # the window is over: the stat saw the change
    assert cache.get(str(path), str(tmp_path), 101.5) is later


def test_an_unchanged_file_is_checked_not_read_again(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", b"same")
    cache = FileCache(FileCacheLimits(valid=1.0))
    first = cache.get(str(path), str(tmp_path), 0.0)
    assert first is not None
    second = cache.get(str(path), str(tmp_path), 5.0)
    assert second is first
    assert first.checked == 5.0


def test_valid_0_looks_at_the_disk_every_time(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", b"one")
    cache = FileCache(FileCacheLimits(valid=0))
    assert cache.get(str(path), str(tmp_path), 0.0) is not None
    _write(path, b"two", OLD + 1)  # same size: the modification time tells
    entry = cache.get(str(path), str(tmp_path), 0.0)
    assert entry is not None
    assert entry.content == b"two"


def test_a_file_changed_without_its_size_or_time_moving_is_read_again_while_it_is_young(tmp_path: Path) -> None:
    # Timestamps come from a coarse clock: two writes can leave the same size and mtime.
    path = tmp_path / "young.txt"
    path.write_bytes(b"first")
    st = path.stat()
    cache = FileCache(FileCacheLimits(valid=1.0))
    entry = cache.get(str(path), str(tmp_path), 0.0)
    assert entry is not None
    assert not entry.settled
    path.write_bytes(b"later")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the stat is exactly as before
    entry = cache.get(str(path), str(tmp_path), 2.0)
    assert entry is not None
    assert entry.content == b"later"


def test_a_deleted_file_is_dropped(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", b"gone soon")
    cache = FileCache(FileCacheLimits(valid=1.0))
    assert cache.get(str(path), str(tmp_path), 0.0) is not None
    path.unlink()
    assert cache.get(str(path), str(tmp_path), 0.5) is not None  # inside the window
    assert cache.get(str(path), str(tmp_path), 1.0) is None
    assert len(cache) == 0
    assert cache.total_bytes == 0


def test_what_is_not_kept(tmp_path: Path) -> None:
    cache = FileCache(FileCacheLimits(max_file_size=10))
    big = _write(tmp_path / "big.bin", b"x" * 11)
    assert cache.get(str(big), str(tmp_path), 0.0) is None
    assert cache.get(str(tmp_path), str(tmp_path.parent), 0.0) is None  # a directory
    assert cache.get(str(tmp_path / "missing"), str(tmp_path), 0.0) is None
    outside = _write(tmp_path.parent / f"{tmp_path.name}-outside.txt", b"secret")
    (tmp_path / "link.txt").symlink_to(outside)
    # Given the link's own path (as if it had been resolved before the swap): the open checks where it leads.
    assert cache.get(str(tmp_path / "link.txt"), str(tmp_path), 0.0) is None
    assert len(cache) == 0
    tiny = FileCache(FileCacheLimits(max_bytes=ENTRY_OVERHEAD + 3))
    assert tiny.get(str(_write(tmp_path / "four.txt", b"four")), str(tmp_path), 0.0) is None


def test_a_file_that_grew_past_the_limit_is_dropped(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", b"small")
    cache = FileCache(FileCacheLimits(max_file_size=10, valid=0))
    assert cache.get(str(path), str(tmp_path), 0.0) is not None
    _write(path, b"not small any more", OLD + 1)
    assert cache.get(str(path), str(tmp_path), 0.0) is None
    assert len(cache) == 0


def test_the_oldest_entries_go_first_and_the_total_stays_bounded(tmp_path: Path) -> None:
    limit = 3 * (100 + ENTRY_OVERHEAD)
    cache = FileCache(FileCacheLimits(max_bytes=limit))
    paths = [str(_write(tmp_path / f"{n}.bin", bytes([n]) * 100)) for n in range(5)]
    for path in paths:
        assert cache.get(path, str(tmp_path), 0.0) is not None
        assert cache.total_bytes <= limit
    assert len(cache) == 3
    # The first two were dropped: asking again reads them (and drops the next oldest).
    entry = cache.get(paths[0], str(tmp_path), 0.0)
    assert entry is not None
    assert entry.content == bytes([0]) * 100
    assert len(cache) == 3
    assert cache.total_bytes == limit
    cache.clear()
    assert (len(cache), cache.total_bytes) == (0, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_bytes", -1), ("max_file_size", -1), ("valid", -0.5), ("valid", float("nan")), ("valid", float("inf"))],
)
def test_limits_are_checked(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"FileCacheLimits.{field}"):
        FileCacheLimits(**{field: value})  # type: ignore[arg-type]


def test_the_inlined_body_of_respond_is_filebody_in_memory(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.html", b"<p>twin</p>")
    cache = FileCache(FileCacheLimits())
    resp = cache.respond(str(path), str(tmp_path), _request(), 0.0)
    assert resp is not None
    entry = cache.get(str(path), str(tmp_path), 0.0)
    assert entry is not None
    body = resp.file_body
    twin = FileBody.in_memory(entry.content, entry.etag, entry.mtime)
    assert body is not None
    for name in FileBody.__slots__:
        assert getattr(body, name) == getattr(twin, name), name


@pytest.mark.parametrize(
    "range_header",
    [None, "bytes=0-0", "bytes=5-", "bytes=-3", "bytes=2-4", "bytes=0-1,3-4", "items=0-1", "bytes=50-", "bytes=x"],
)
@pytest.mark.parametrize("second", [False, True])
def test_a_cached_answer_is_the_answer_of_file_range(tmp_path: Path, range_header: str | None, second: bool) -> None:
    path = _write(tmp_path / "page.css", b"0123456789abcdef")
    cache = FileCache(FileCacheLimits())
    headers = [("Range", range_header)] if range_header is not None else []
    if second:  # the same entry used again, after another answer
        cache.respond(str(path), str(tmp_path), _request(("Range", "bytes=1-2")), 0.0)
    cached = cache.respond(str(path), str(tmp_path), _request(*headers), 0.0)
    on_disk = Response.file_range(str(path), range_header, within=str(tmp_path))
    assert cached is not None
    assert (cached.status, cached.content_lines, cached.extra_lines) == (
        on_disk.status,
        on_disk.content_lines,
        on_disk.extra_lines,
    )
    if on_disk.file_body is None:
        assert cached.file_body is None
    else:
        assert cached.file_body is not None
        assert cached.file_body.fd == -1  # nothing opened
        assert cached.file_body.read_all() == on_disk.file_body.read_all()
        assert (cached.file_body.etag, cached.file_body.mtime) == (on_disk.file_body.etag, on_disk.file_body.mtime)
        on_disk.file_body.close()


def test_cached_response_with_another_type_and_extra_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "style.css.gz", gzip.compress(b"body {}"))
    cache = FileCache(FileCacheLimits())
    entry = cache.get(str(path), str(tmp_path), 0.0)
    assert entry is not None
    resp = cached_response(entry, None, b"Content-Type: text/css\r\n", b"Content-Encoding: gzip\r\n")
    assert resp.content_lines == b"Content-Type: text/css\r\n" + f"Content-Length: {len(entry.content)}\r\n".encode()
    assert resp.extra_lines.endswith(b"Accept-Ranges: bytes\r\nContent-Encoding: gzip\r\n")


def test_in_memory_bodies_read_their_region() -> None:
    body = FileBody.in_memory(b"0123456789", '"t"', 7, 2, 5)
    assert (body.fd, body.size, body.offset, body.length) == (-1, 10, 2, 5)
    assert body.read_all() == b"23456"
    assert body.read(3) == b"234"
    assert body.read(100) == b"23456"
    whole = FileBody.in_memory(b"abc", '"t"', 7)
    assert whole.read_all() is whole.content  # the whole file: not copied
    whole.close()
    whole.close()


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([], False),
        ([b"Host: x", b"Connection: keep-alive", b"Referer: http://x/", b"Range-Unit: x"], False),
        ([b"Host: x", b"range: bytes=0-1"], True),
        ([b"RANGE: bytes=0-1"], True),
        ([b'If-None-Match: "x"'], True),
        ([b"if-modified-since: x"], True),
        ([b"IF-RANGE: x"], True),
        ([b"Ifx: y"], False),
    ],
)
def test_has_range_or_precondition(lines: list[bytes], expected: bool) -> None:
    assert has_range_or_precondition(lines) is expected


# -- over a real socket: the default window (one second) and the uncached mount ---------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    directory = tmp_path / "root"
    directory.mkdir()
    _write(directory / "page.txt", b"version one")
    return directory


@pytest.fixture
def server(serve, root):
    return serve("apps.files_app:app", env={"STATIC_ROOT": str(root)})


WINDOW = 1.0  # FileCacheLimits().valid
PAST_WINDOW = WINDOW + 0.3  # the test's clock and the server's both run at least this long


def test_a_changed_file_is_served_once_the_window_is_over(server, connect, root):
    conn = connect(server)
    assert conn.request("GET", "/cached/page.txt").body == b"version one"
    _write(root / "page.txt", b"version two, longer", OLD + 10)
    soon = conn.request("GET", "/cached/page.txt").body
    assert soon in (b"version one", b"version two, longer")  # inside the window, either
    assert conn.request("GET", "/assets/page.txt").body == b"version two, longer"  # valid=0: at once
    assert conn.request("GET", "/uncached/page.txt").body == b"version two, longer"
    time.sleep(PAST_WINDOW)
    response = conn.request("GET", "/cached/page.txt")
    assert response.body == b"version two, longer"
    assert response.header("content-length") == str(len(b"version two, longer"))


def test_a_deleted_file_is_404_once_the_window_is_over(server, connect, root):
    conn = connect(server)
    assert conn.request("GET", "/cached/page.txt").status == 200
    (root / "page.txt").unlink()
    assert conn.request("GET", "/assets/page.txt").status == 404
    time.sleep(PAST_WINDOW)
    assert conn.request("GET", "/cached/page.txt").status == 404


def test_conditional_requests_range_and_head_from_the_cache(server, connect, root):
    conn = connect(server)
    first = conn.request("GET", "/cached/page.txt")
    second = conn.request("GET", "/cached/page.txt")  # from memory now
    uncached = conn.request("GET", "/uncached/page.txt")
    etag, modified = second.header("etag"), second.header("last-modified")
    assert etag == first.header("etag") == uncached.header("etag")
    assert modified == first.header("last-modified") == uncached.header("last-modified")
    assert second.header("accept-ranges") == "bytes"
    assert second.header("content-type") == "text/plain; charset=utf-8"
    assert conn.request("GET", "/cached/page.txt", [("If-None-Match", etag)]).status == 304
    assert conn.request("GET", "/cached/page.txt", [("If-Modified-Since", modified)]).status == 304
    part = conn.request("GET", "/cached/page.txt", [("Range", "bytes=8-")])
    assert (part.status, part.body, part.header("content-range")) == (206, b"one", "bytes 8-10/11")
    stale = conn.request("GET", "/cached/page.txt", [("Range", "bytes=8-"), ("If-Range", '"old"')])
    assert (stale.status, stale.body) == (200, b"version one")
    assert conn.request("GET", "/cached/page.txt", [("Range", "bytes=99-")]).status == 416
    head = conn.request("HEAD", "/cached/page.txt")
    assert (head.status, head.body, head.header("content-length")) == (200, b"", "11")
    # After a change (past the window), the old tag no longer matches.
    _write(root / "page.txt", b"version two", OLD + 10)
    time.sleep(PAST_WINDOW)
    changed = conn.request("GET", "/cached/page.txt", [("If-None-Match", etag)])
    assert (changed.status, changed.body) == (200, b"version two")
    assert changed.header("etag") != etag


def test_a_file_swapped_for_a_symlink_out_never_leads_out_of_the_cache(serve, tmp_path):
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    _write(root / "docs" / "page.txt", b"public")
    outside = tmp_path / "outside"
    outside.mkdir()
    _write(outside / "page.txt", b"secret")
    server = serve("apps.files_app:app", env={"STATIC_ROOT": str(root)})
    with httpx.Client(timeout=5.0) as client:
        assert client.get(f"{server.url}/cached/docs/page.txt").text == "public"
        (root / "docs" / "page.txt").unlink()
        (root / "docs" / "page.txt").symlink_to(outside / "page.txt")
        soon = client.get(f"{server.url}/cached/docs/page.txt")
        time.sleep(PAST_WINDOW)
        later = client.get(f"{server.url}/cached/docs/page.txt")
    assert "secret" not in soon.text  # inside the window: the bytes read before the swap, or 404
    assert soon.status_code in (200, 404)
    assert later.status_code == 404
    assert "secret" not in later.text


def test_the_cache_holds_no_descriptors(server, root):
    pid = server.pid
    with httpx.Client(timeout=5.0) as client:
        client.get(f"{server.url}/cached/page.txt")
        before = len(os.listdir(f"/proc/{pid}/fd"))
        for n in range(20):
            _write(root / f"f{n}.txt", b"x" * n)
            assert client.get(f"{server.url}/cached/f{n}.txt").content == b"x" * n
            assert client.get(f"{server.url}/cached/f{n}.txt").content == b"x" * n
        after = len(os.listdir(f"/proc/{pid}/fd"))
    assert after == before
