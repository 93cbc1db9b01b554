"""Every Python block of chopin-core's README runs as written (chopin_testkit.readme).

Each block runs in a subprocess, in a scratch directory holding the files the samples
name (`public/`, `data/archive.tar.gz`, a certificate chain, `myproject.py` with a WSGI
app); the blocks that serve are started on a free port and sent `GET /`. The HTTP
client sample talks to a real upstream on 127.0.0.1 in place of its `127.0.0.1:9000`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from chopin_testkit.readme import Sample, json_block_problems, readme_samples
from chopin_testkit.samplerun import SampleEnv, run_sample

README = Path(__file__).resolve().parents[1] / "README.md"
SAMPLES = readme_samples(README)

MYPROJECT = """\
def flask_app(environ, start_response):  # a plain WSGI app standing in for Flask
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"from WSGI"]
"""


class _Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._answer(200, b"a,b\n1,2\n")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer(201, b"{}", location="/users/1")

    def _answer(self, status: int, body: bytes, location: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 for the client sample; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_readme_sample_runs_as_written(sample: Sample, tmp_path: Path, upstream: str, chain) -> None:
    if sample.skip_reason:
        pytest.skip(sample.skip_reason)
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "archive.tar.gz").write_bytes(b"\x1f\x8b" + bytes(100))
    (tmp_path / "fullchain.pem").write_bytes(chain.chain.read_bytes())
    (tmp_path / "privkey.pem").write_bytes(chain.key.read_bytes())
    (tmp_path / "myproject.py").write_text(MYPROJECT)
    served = run_sample(sample, SampleEnv(cwd=tmp_path, replace={"http://127.0.0.1:9000": upstream}))
    if sample.serves:
        assert served is not None
        if "wsgi.serve(" in sample.blocks[-1].code:
            assert (served.status, served.body) == (200, b"from WSGI")
        elif sample.tls:
            assert served.status == 404  # the sample's router has no route for /
        else:
            assert (served.status, served.body) == (200, b"Hello, World!")


def test_readme_json_blocks_parse() -> None:
    assert json_block_problems(README) == []
