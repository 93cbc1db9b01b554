"""Run README samples (`chopin_testkit.readme`) as written, in subprocesses.

`run_sample(sample, SampleEnv(...))` executes one sample in a fresh Python subprocess
(its own working directory, environment and time bound) and raises `SampleFailed` with
the README line and the subprocess's traceback when it does not run as written.

How a sample meets the outside world:

- A string literal holding a `postgres://` URL is replaced by the DSN of the database
  the test gives (a scratch database: `scratch_database()`), and `PG*` variables point
  there too, so `connect()` without arguments reaches it.
- A sample that calls `.serve(...)`, `.serve_tls(...)` or `wsgi.serve(...)` is started
  with `"0.0.0.0:<port>"` replaced by `"127.0.0.1:<free port>"`, `PORT` set to that port,
  `WORKERS=1` and `CHOPIN_SHUTDOWN_GRACE=5` (unless given); once the port accepts a
  connection it is sent `GET /` (over TLS for `serve_tls`), then SIGTERM, and it must
  exit 0 within `SERVE_STOP_TIMEOUT`. `run_sample` returns that answer.
- A `pytest` sample is written to a file and run by pytest (with the plugins installed).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import _pgbin
from .errors import TestkitError
from .localpg import LocalPg
from .readme import Piece, Sample

#: Seconds one sample may run (generous: the test machine may be loaded).
SAMPLE_TIMEOUT = 120.0
#: Seconds a serving sample has to accept its first connection.
SERVE_READY_TIMEOUT = 60.0
#: Seconds a serving sample has to exit after SIGTERM.
SERVE_STOP_TIMEOUT = 30.0
#: Bytes of a served answer read by the probe.
PROBE_MAX_BYTES = 1 << 20

_PG_URL = re.compile(r"""(["'])postgres(?:ql)?://[^"']*\1""")
_ANY_ADDRESS = re.compile(r"""(["'])0\.0\.0\.0:\d+\1""")

_DRIVER = """\
import json, sys, traceback
spec = json.loads(sys.argv[1])
namespace = {"__name__": "__main__"}
result = {"ok": True}
try:
    for piece in spec["pieces"]:
        source = "\\n" * (piece["line"] - 1) + piece["code"]
        exec(compile(source, piece["file"], "exec"), namespace)
except SystemExit as exc:
    if exc.code not in (0, None):
        result = {"ok": False, "type": "builtins.SystemExit", "message": str(exc.code),
                  "traceback": traceback.format_exc()}
except BaseException as exc:
    kind = type(exc)
    result = {
        "ok": False,
        "type": kind.__module__ + "." + kind.__qualname__,
        "message": str(exc),
        "traceback": traceback.format_exc(),
    }
with open(spec["result"], "w") as out:
    json.dump(result, out)
sys.exit(0 if result["ok"] else 1)
"""


class SampleFailed(TestkitError):
    """A README sample did not run as written (the message holds the README line and the traceback)."""


@dataclass(frozen=True)
class Served:
    """What a serving sample answered to `GET /`."""

    status: int
    head: str
    body: bytes


@dataclass
class SampleEnv:
    """Where and with what a sample runs.

    Attributes:
        cwd: its working directory (a scratch directory: samples write files).
        database: the database `postgres://` literals and `PG*` variables point at.
        env: extra environment variables.
        replace: exact text replacements applied to every piece (`"http://127.0.0.1:9000"`
            to a test server's URL).
    """

    cwd: Path
    database: LocalPg | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    replace: Mapping[str, str] = field(default_factory=dict)


def run_sample(sample: Sample, where: SampleEnv) -> Served | None:
    """Run one sample as written; return the server's answer to `GET /` for a serving one.

    Raises:
        SampleFailed: it raised (or did not raise what its `raises` marker names), timed
            out, or, serving, did not listen, did not answer, or did not stop cleanly.
    """
    where.cwd.mkdir(parents=True, exist_ok=True)
    env = _environment(where)
    pieces = [_rewrite(p, where) for p in sample.pieces()]
    if sample.blocks[-1].marker("pytest"):
        _run_pytest(sample, pieces, where.cwd, env)
        return None
    if sample.serves:
        port = _free_port()
        env["PORT"] = str(port)
        env["WORKERS"] = "1"
        env.setdefault("CHOPIN_SHUTDOWN_GRACE", "5")  # nothing is in flight after the probe: stop promptly
        pieces = [Piece(_ANY_ADDRESS.sub(f'"127.0.0.1:{port}"', p.code), p.file, p.line) for p in pieces]
        return _run_server(sample, pieces, where.cwd, env, port)
    _run_to_end(sample, pieces, where.cwd, env)
    return None


def _environment(where: SampleEnv) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)
    env.pop("PYTEST_ADDOPTS", None)
    if where.database is not None:
        db = where.database
        env.pop("PGPASSWORD", None)
        env.update(db.libpq_env())
    env.update(where.env)
    return env


def _rewrite(piece: Piece, where: SampleEnv) -> Piece:
    code = piece.code
    for old, new in where.replace.items():
        code = code.replace(old, new)
    if where.database is not None:
        code = _PG_URL.sub(repr(where.database.dsn()), code)
    return Piece(code, piece.file, piece.line)


def _spec(pieces: list[Piece], result: Path) -> str:
    return json.dumps({"pieces": [vars(p) for p in pieces], "result": str(result)})


def _result_file(cwd: Path) -> Path:
    return cwd / f".sample-result-{secrets.token_hex(4)}.json"


def _run_to_end(sample: Sample, pieces: list[Piece], cwd: Path, env: dict[str, str]) -> None:
    result_path = _result_file(cwd)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _DRIVER, _spec(pieces, result_path)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=SAMPLE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SampleFailed(f"{sample.where}: still running after {SAMPLE_TIMEOUT:.0f} s") from exc
    output = f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}"
    if not result_path.exists():
        raise SampleFailed(f"{sample.where}: the interpreter exited {proc.returncode} without a result\n{output}")
    result = json.loads(result_path.read_text())
    _check_result(sample, result, output)


def _check_result(sample: Sample, result: dict[str, str], output: str) -> None:
    expected = sample.expected_error
    if expected is None:
        if not result["ok"]:
            raise SampleFailed(f"{sample.where}: does not run as written\n{result['traceback']}{output}")
        return
    if result["ok"]:
        raise SampleFailed(f"{sample.where}: should raise {expected}, but ran to the end\n{output}")
    if not _same_exception(result["type"], expected):
        raise SampleFailed(
            f"{sample.where}: should raise {expected}, raised {result['type']}\n{result['traceback']}{output}"
        )


def _same_exception(got: str, expected: str) -> bool:
    """`kowito_json.errors.ValidationError` is `ValidationError` and `kowito_json.ValidationError` (re-exported)."""
    if got == expected:
        return True
    got_package, got_name = got.split(".", 1)[0], got.rsplit(".", 1)[-1]
    if "." not in expected:
        return got_name == expected
    return got_name == expected.rsplit(".", 1)[-1] and got_package == expected.split(".", 1)[0]


def _run_pytest(sample: Sample, pieces: list[Piece], cwd: Path, env: dict[str, str]) -> None:
    test_file = cwd / f"test_readme_sample_{sample.blocks[0].line}.py"
    test_file.write_text("\n".join(p.code for p in pieces))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(cwd), test_file.name],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=SAMPLE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SampleFailed(f"{sample.where}: pytest still running after {SAMPLE_TIMEOUT:.0f} s") from exc
    if proc.returncode != 0 or " passed" not in proc.stdout or " skipped" in proc.stdout:
        raise SampleFailed(f"{sample.where}: its tests do not all pass under pytest\n{proc.stdout}{proc.stderr}")


def _run_server(sample: Sample, pieces: list[Piece], cwd: Path, env: dict[str, str], port: int) -> Served:
    result_path = _result_file(cwd)
    log_path = cwd / f".sample-server-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, _spec(pieces, result_path)],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers form one group, stopped together if need be
        )
    try:
        _wait_listening(sample, proc, port, log_path)
        served = _probe(sample, port, log_path)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=SERVE_STOP_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise SampleFailed(f"{sample.where}: still running {SERVE_STOP_TIMEOUT:.0f} s after SIGTERM") from exc
        if code != 0:
            raise SampleFailed(
                f"{sample.where}: exited {code} after SIGTERM\n{_tail(log_path)}{_traceback(result_path)}"
            )
        return served
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_listening(sample: Sample, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + SERVE_READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SampleFailed(f"{sample.where}: exited {proc.returncode} before serving\n{_tail(log_path)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SampleFailed(f"{sample.where}: nothing listening on port {port} after {SERVE_READY_TIMEOUT:.0f} s")


def _probe(sample: Sample, port: int, log_path: Path) -> Served:
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    data = bytearray()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=SERVE_READY_TIMEOUT) as raw:
            if sample.tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # the sample's own certificate: only the answer matters
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    _exchange(tls, request, data)
            else:
                _exchange(raw, request, data)
    except OSError as exc:
        raise SampleFailed(f"{sample.where}: GET / failed: {exc!r}\n{_tail(log_path)}") from exc
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise SampleFailed(f"{sample.where}: GET / got no HTTP answer: {bytes(data[:200])!r}\n{_tail(log_path)}")
    return Served(int(parts[1]), head.decode("latin-1"), body)


def _exchange(sock: socket.socket, request: bytes, into: bytearray) -> None:
    sock.sendall(request)
    while len(into) < PROBE_MAX_BYTES and (chunk := sock.recv(65536)):
        into += chunk


def _tail(path: Path, limit: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return f"--- output ---\n{text[-limit:]}"


def _traceback(result_path: Path) -> str:
    if not result_path.exists():
        return ""
    result = json.loads(result_path.read_text())
    return "" if result["ok"] else str(result["traceback"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def scratch_database(local: LocalPg, prefix: str) -> Iterator[LocalPg]:
    """A new, empty database on `local`'s server for the block's duration, dropped after.

    Args:
        local: the server (and the role, which must be allowed to create databases).
        prefix: the start of the database's name (`readme_pg` gives `readme_pg_1a2b3c4d`).

    Yields:
        `local` pointed at the new database.

    Raises:
        TestkitError: psql could not create it (the message holds psql's error).
    """
    name = f"{re.sub(r'[^a-z0-9_]', '_', prefix.lower())}_{secrets.token_hex(4)}"
    _psql(local, f'CREATE DATABASE "{name}"')
    try:
        yield local.with_database(name)
    finally:
        _psql(local, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _psql(local: LocalPg, sql: str) -> None:
    psql = _pgbin.find_bin_dir() / "psql"
    login = ["-U", local.user, "-d", "postgres"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update(PGSSLMODE=local.sslmode)
    if local.password is not None:
        env["PGPASSWORD"] = local.password  # not on the command line
    proc = subprocess.run(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", local.host, "-p", str(local.port), *login, "-c", sql],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise TestkitError(f"psql {sql!r} failed: {proc.stderr.strip()}")
