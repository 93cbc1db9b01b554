"""The ``python -m chopin_core.static`` command, run in a subprocess over real sockets.

Every server gets a free port on 127.0.0.1 and its own process group; teardown
sends SIGTERM, expects exit 0 within a bound, and kills the group if not.
Clients are httpx, curl and a raw socket (for paths httpx and curl normalise).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from chopin_core.connection import open_listener
from chopin_core.static import build_parser, main

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
BIG_SIZE = 2 * 1024 * 1024
INDEX_BODY = b"<!doctype html><title>home</title><p>home</p>\n"
CURL = shutil.which("curl")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class CliServer:
    """One running ``chopin_core.static`` process."""

    proc: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the server, wait (bounded) and return its exit code; kill the group if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)
            pytest.fail(f"server ignored signal {sig} for {STOP_TIMEOUT} s:\n{self.output()}")

    def kill_group(self) -> None:
        """Make sure nothing of the server's process group is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT)


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "chopin_core.static", *args]


@contextlib.contextmanager
def run_cli(tmp: Path, docroot: Path, *flags: str, workers: int = 1) -> Iterator[CliServer]:
    """Start the CLI on a free port, wait until it accepts, stop it with SIGTERM at the end."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    out_path, err_path = tmp / f"stdout-{port}.txt", tmp / f"stderr-{port}.txt"
    argv = cli_argv("-p", str(port), "-d", str(docroot), "-w", str(workers), "-b", HOST, *flags)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
    server = CliServer(proc, port, out_path, err_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode} before accepting:\n{server.output()}")
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not accept within {START_TIMEOUT} s:\n{server.output()}")
                time.sleep(0.05)
        yield server
        code = server.stop()
        assert code == 0, server.output()
    finally:
        server.kill_group()


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """Send one request with ``target`` exactly as given; return the status and the head."""
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.partition(b"\r\n\r\n")[0]
    return int(head.split()[1]), head


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert CURL is not None
    return subprocess.run([CURL, "-sS", "--max-time", "10", *args], capture_output=True, timeout=20, check=False)


needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """index.html, a 2 MiB file, a directory without an index, and things outside the root."""
    base = tmp_path_factory.mktemp("static")
    root = base / "www"
    root.mkdir()
    (root / "index.html").write_bytes(INDEX_BODY)
    (root / "home.htm").write_bytes(b"custom index\n")
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    (root / "notes.txt").write_bytes(b"plain notes\n")
    sub = root / "sub"
    sub.mkdir()
    (sub / "a.txt").write_bytes(b"alpha\n")
    (sub / "home.htm").write_bytes(b"sub custom index\n")
    (base / "secret.txt").write_bytes(b"do not serve\n")
    (root / "escape").symlink_to(base / "secret.txt")
    return root


@pytest.fixture(scope="module", params=[1, 2], ids=["w1", "w2"])
def server(
    request: pytest.FixtureRequest, docroot: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CliServer]:
    """The CLI with default flags (index.html, listings on), with one and with two workers."""
    with run_cli(tmp_path_factory.mktemp("logs"), docroot, workers=request.param) as srv:
        yield srv


@pytest.fixture
def client(server: CliServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=10.0) as c:
        yield c


# -- the command line ---------------------------------------------------------------


def test_help_exits_0() -> None:
    done = subprocess.run(cli_argv("--help"), capture_output=True, timeout=30, check=False)
    assert done.returncode == 0
    text = done.stdout.decode()
    for flag in ("-p PORT", "-d DIR", "-w WORKERS", "-i FILE", "--no-index", "--no-list", "-b HOST"):
        assert flag in text


def test_missing_dir_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    done = subprocess.run(cli_argv("-d", str(missing), "-p", "0"), capture_output=True, timeout=30, check=False)
    assert done.returncode == 2
    assert f"{str(missing)!r} does not exist" in done.stderr.decode()
    assert done.stdout == b""


def test_file_as_dir_exits_2(tmp_path: Path) -> None:
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    done = subprocess.run(cli_argv("-d", str(afile), "-p", "0"), capture_output=True, timeout=30, check=False)
    assert done.returncode == 2
    assert "is not a directory" in done.stderr.decode()


def test_bad_values_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv in (["-w", "0"], ["-p", "70000"], ["-i", "a/b"], ["-p", "x"]):
        with pytest.raises(SystemExit) as info:
            main([*argv, "-d", str(tmp_path)])
        assert info.value.code == 2, argv
    assert "expected" in capsys.readouterr().err


def test_parser_defaults() -> None:
    args = build_parser().parse_args([])
    assert (args.port, args.dir, args.workers, args.index, args.bind) == (8080, ".", None, "index.html", "0.0.0.0")
    assert not args.no_index
    assert not args.no_list


def test_cache_flags() -> None:
    args = build_parser().parse_args([])
    assert (args.cache_valid, args.no_cache) == (1.0, False)
    args = build_parser().parse_args(["--cache-valid", "0", "--no-cache"])
    assert (args.cache_valid, args.no_cache) == (0.0, True)


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_bad_cache_valid_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--cache-valid", value, "-d", str(tmp_path)])
    assert info.value.code == 2
    assert "--cache-valid: expected" in capsys.readouterr().err


def test_port_in_use_exits_1(docroot: Path) -> None:
    # A listener without SO_REUSEPORT keeps the engine's SO_REUSEPORT sockets off the port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        argv = cli_argv("-p", str(port), "-b", HOST, "-d", str(docroot), "-w", "1")
        done = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    assert done.returncode == 1
    assert f"cannot listen on {HOST}:{port}" in done.stderr.decode()


def test_port_of_another_server_exits_1(docroot: Path) -> None:
    # Issue 15 item 3: a listener with SO_REUSEPORT, as every chopin worker has, was shared.
    with open_listener(HOST, 0) as taken:
        port = taken.getsockname()[1]
        argv = cli_argv("-p", str(port), "-b", HOST, "-d", str(docroot), "-w", "1")
        done = subprocess.run(argv, capture_output=True, timeout=15, check=False)
    assert done.returncode == 1
    err = done.stderr.decode()
    assert f"cannot listen on {HOST}:{port}: another process is already listening there" in err
    assert "CHOPIN_REUSE_PORT_SHARED=1" in err


# -- serving ---------------------------------------------------------------------------


def test_prints_where_it_serves(server: CliServer, docroot: Path) -> None:
    line = server.stdout.read_text().splitlines()[0]
    assert line.startswith(f"serving {os.path.realpath(docroot)} on http://{HOST}:{server.port}/ (")


def test_root_serves_index(client: httpx.Client) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.content == INDEX_BODY
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert client.get("/index.html").content == INDEX_BODY


def test_head(client: httpx.Client) -> None:
    resp = client.head("/big.bin")
    assert resp.status_code == 200
    assert resp.headers["content-length"] == str(BIG_SIZE)
    assert resp.content == b""


def test_listing_by_default(client: httpx.Client) -> None:
    resp = client.get("/sub/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert '<a href="a.txt">a.txt</a>' in resp.text


def test_directory_without_slash_redirects(client: httpx.Client) -> None:
    resp = client.get("/sub")
    assert resp.status_code == 301
    assert resp.headers["location"] == "/sub/"


@pytest.mark.parametrize(
    ("target", "location"),
    [("//sub", "/sub/"), ("///sub", "/sub/"), ("//sub//", None), ("/sub//", None), ("//sub?x=1", "/sub/")],
)
def test_directory_redirect_stays_on_this_origin(server: CliServer, target: str, location: str | None) -> None:
    # "//sub/" in Location is protocol-relative: a browser would go to a host named "sub".
    status, head = raw_get(server.port, target)
    if location is None:
        assert status == 200, head
    else:
        assert status == 301, head
        assert f"\r\nLocation: {location}\r\n".encode() in head + b"\r\n", head


@pytest.mark.parametrize("target", ["/\\sub", "/\\\\sub", "//\\sub", "/%5Csub", "/%5C%5Csub", "/%2F%5Csub"])
def test_backslash_paths_get_no_redirect(server: CliServer, target: str) -> None:
    # Browsers read "/\\host" in Location as "//host".
    status, head = raw_get(server.port, target)
    assert status in (400, 404), head
    assert b"location:" not in head.lower()


def test_missing_file_404(client: httpx.Client) -> None:
    assert client.get("/nope.txt").status_code == 404


def test_big_file_bytes_httpx(client: httpx.Client, docroot: Path) -> None:
    resp = client.get("/big.bin")
    assert resp.status_code == 200
    assert resp.headers["content-length"] == str(BIG_SIZE)
    assert resp.content == (docroot / "big.bin").read_bytes()


@needs_curl
def test_big_file_bytes_curl(server: CliServer, docroot: Path, tmp_path: Path) -> None:
    out = tmp_path / "big.out"
    done = curl("-o", str(out), "-w", "%{http_code} %{size_download}", f"{server.base}/big.bin")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"200 {BIG_SIZE}".encode()
    assert out.read_bytes() == (docroot / "big.bin").read_bytes()


def test_range(client: httpx.Client, docroot: Path) -> None:
    data = (docroot / "big.bin").read_bytes()
    resp = client.get("/big.bin", headers={"Range": "bytes=1000-1999"})
    assert resp.status_code == 206
    assert resp.headers["content-range"] == f"bytes 1000-1999/{BIG_SIZE}"
    assert resp.content == data[1000:2000]
    tail = client.get("/big.bin", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206
    assert tail.content == data[-100:]
    assert client.get("/big.bin", headers={"Range": f"bytes={BIG_SIZE}-"}).status_code == 416


@needs_curl
def test_range_curl(server: CliServer, docroot: Path) -> None:
    data = (docroot / "big.bin").read_bytes()
    done = curl("-r", "1048576-1114111", f"{server.base}/big.bin")
    assert done.returncode == 0, done.stderr
    assert done.stdout == data[1048576:1114112]


def test_not_modified(client: httpx.Client) -> None:
    first = client.get("/notes.txt")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = client.get("/notes.txt", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert client.get("/notes.txt", headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get("/notes.txt", headers={"If-None-Match": '"other"'}).status_code == 200


@needs_curl
def test_not_modified_curl(server: CliServer) -> None:
    head = curl("-I", f"{server.base}/notes.txt").stdout.decode()
    etag = next(line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith("etag:"))
    done = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", f"If-None-Match: {etag}", f"{server.base}/notes.txt")
    assert done.stdout == b"304"


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/../../secret.txt",
        "/sub/%2E%2E/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/escape",
        "/./index.html",
        "/%00index.html",
        "/..\\secret.txt",
    ],
)
def test_traversal_refused(server: CliServer, target: str) -> None:
    status, head = raw_get(server.port, target)
    assert status in (400, 404), head


@needs_curl
def test_traversal_refused_curl(server: CliServer) -> None:
    done = curl("--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", f"{server.base}/../secret.txt")
    assert done.stdout in (b"400", b"404")


def test_an_out_of_range_if_modified_since_is_ignored(docroot: Path, tmp_path: Path) -> None:
    """Issue 15 item 1: the year 99999999999999999999 raised OverflowError and the one worker exited."""
    dates = (
        "Sun, 06 Nov 99999999999999999999 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 +99999999999999",
        "Sun, 31 Feb 2000 08:49:37 GMT",
    )
    with run_cli(tmp_path, docroot, workers=1) as srv:
        for header in ("If-Modified-Since", "If-Unmodified-Since", "If-Range"):
            for date in dates:
                with socket.create_connection((HOST, srv.port), timeout=5.0) as sock:
                    ranged = "Range: bytes=0-4\r\n" if header == "If-Range" else ""
                    sock.sendall(
                        f"GET /notes.txt HTTP/1.1\r\nHost: x\r\n{ranged}{header}: {date}\r\n"
                        "Connection: close\r\n\r\n".encode()
                    )
                    data = b""
                    while chunk := sock.recv(65536):
                        data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                # The date is ignored (RFC 9110 13.1.3); an If-Range that fails sends the whole file.
                assert (int(head.split()[1]), body) == (200, b"plain notes\n"), (header, date, head)
        assert raw_get(srv.port, "/notes.txt")[0] == 200
    assert "Traceback" not in srv.output()


# -- flags -------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_no_index_no_list(docroot: Path, tmp_path: Path, workers: int) -> None:
    with run_cli(tmp_path, docroot, "--no-index", "--no-list", workers=workers) as srv:
        with httpx.Client(base_url=srv.base, timeout=10.0) as c:
            assert c.get("/").status_code == 404
            assert c.get("/sub/").status_code == 404
            assert c.get("/notes.txt").content == b"plain notes\n"
            assert c.get("/index.html").content == INDEX_BODY


def test_no_index_lists(docroot: Path, tmp_path: Path) -> None:
    with run_cli(tmp_path, docroot, "--no-index") as srv, httpx.Client(base_url=srv.base, timeout=10.0) as c:
        resp = c.get("/")
        assert resp.status_code == 200
        assert '<a href="index.html">index.html</a>' in resp.text
        assert '<a href="sub/">sub/</a>' in resp.text


def test_no_list_keeps_index(docroot: Path, tmp_path: Path) -> None:
    with run_cli(tmp_path, docroot, "--no-list") as srv, httpx.Client(base_url=srv.base, timeout=10.0) as c:
        assert c.get("/").content == INDEX_BODY
        assert c.get("/sub/").status_code == 404


def test_custom_index(docroot: Path, tmp_path: Path) -> None:
    with run_cli(tmp_path, docroot, "-i", "home.htm", "--no-list") as srv:
        with httpx.Client(base_url=srv.base, timeout=10.0) as c:
            assert c.get("/").content == b"custom index\n"
            assert c.get("/sub/").content == b"sub custom index\n"


@pytest.mark.parametrize("flags", [("--cache-valid", "0"), ("--no-cache",), ()], ids=["valid-0", "no-cache", "default"])
def test_a_changed_file_is_served(tmp_path: Path, flags: tuple[str, ...]) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "page.txt").write_bytes(b"one")
    with run_cli(tmp_path, www, *flags) as srv, httpx.Client(base_url=srv.base, timeout=10.0) as c:
        assert c.get("/page.txt").content == b"one"
        assert c.get("/page.txt").content == b"one"  # kept in memory now (unless --no-cache)
        (www / "page.txt").write_bytes(b"two, longer")
        if not flags:
            time.sleep(1.3)  # the default: looked at on disk at most once a second
        response = c.get("/page.txt")
        assert response.content == b"two, longer"
        assert response.headers["content-length"] == "11"


# -- stopping ----------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_0_quickly(docroot: Path, tmp_path: Path, workers: int, sig: int) -> None:
    with run_cli(tmp_path, docroot, workers=workers) as srv:
        # An idle keep-alive connection must not hold the shutdown up.
        with httpx.Client(base_url=srv.base, timeout=10.0) as c:
            assert c.get("/notes.txt").status_code == 200
            started = time.monotonic()
            code = srv.stop(sig)
            elapsed = time.monotonic() - started
        assert code == 0, srv.output()
        assert elapsed < 3.0
        assert "Traceback" not in srv.output()
