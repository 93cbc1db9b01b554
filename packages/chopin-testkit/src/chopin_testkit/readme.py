"""Run a README's code blocks as tests, so a sample can never rot.

`readme_samples(path)` reads a Markdown file and returns its ```` ```python ```` blocks as
`Sample`s; `run_sample(sample, ...)` executes one in a fresh Python subprocess (its own
working directory, environment and time bound) and raises `SampleFailed` with the
README line and the subprocess's traceback when it does not run as written.

What the README may say about a block, in an HTML comment just before it (invisible
when rendered, visible in the source):

- `<!-- sample: continues -->`: the block runs after the previous sample, in the same
  namespace (one subprocess for the whole chain).
- `<!-- sample: setup` + Python lines + `-->`: code run just before the block, for names
  a fragment takes as given (`router`, `secret`).
- `<!-- sample: raises kowito_json.ValidationError -->`: the block must end by raising
  that exception (its name, with or without the module).
- `<!-- sample: pytest -->`: the block is a test file; it is run by pytest.
- `<!-- sample: skip <reason> -->`: not run; the reason is required.
- `<!-- sample: prelude` + Python lines + `-->` (anywhere): run before every sample of
  the README.

How a sample meets the outside world:

- A string literal holding a `postgres://` URL is replaced by the DSN of the database
  the test gives (a scratch database: `scratch_database()`), and `PG*` variables point
  there too, so `connect()` without arguments reaches it.
- A sample that calls `.serve(...)`, `.serve_tls(...)` or `wsgi.serve(...)` is started
  with `"0.0.0.0:<port>"` replaced by `"127.0.0.1:<free port>"` and `WORKERS=1`; once the
  port accepts a connection it is sent `GET /` (over TLS for `serve_tls`), then SIGTERM,
  and it must exit 0 within the grace period. `run_sample` returns that answer.

Other code blocks are not run: ```` ```json ```` blocks must parse
(`json_block_problems`), and a `./dev test -e ENV -- -k EXPR` command anywhere in the
text must select at least one test of that environment (`dev_test_selection_problems`).
"""

from __future__ import annotations

import ast
import configparser
import json
import os
import re
import secrets
import shlex
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

#: Seconds one sample may run (generous: the test machine may be loaded).
SAMPLE_TIMEOUT = 120.0
#: Seconds a serving sample has to accept its first connection.
SERVE_READY_TIMEOUT = 60.0
#: Seconds a serving sample has to exit after SIGTERM.
SERVE_STOP_TIMEOUT = 30.0
#: Bytes of a served answer read by the probe.
PROBE_MAX_BYTES = 1 << 20

MARKER_KINDS = frozenset({"continues", "setup", "raises", "pytest", "skip", "prelude"})

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER_START = re.compile(r"^<!--\s*sample:\s*(\w[\w-]*)(.*)$")
_HEADING = re.compile(r"^#{1,6}\s+(.*\S)\s*$")
_PG_URL = re.compile(r"""(["'])postgres(?:ql)?://[^"']*\1""")
_SERVE_CALL = re.compile(r"\.serve(_tls)?\(")
_ANY_ADDRESS = re.compile(r"""(["'])0\.0\.0\.0:\d+\1""")
_DEV_TEST = re.compile(r"\./dev test\s+-e\s+(\S+)\s+--\s+([^`\n]*)")

_DRIVER = """\
import json, sys, traceback
spec = json.loads(sys.argv[1])
namespace = {"__name__": "__main__"}
result = {"ok": True}
try:
    for piece in spec["pieces"]:
        source = "\\n" * (piece["line"] - 1) + piece["code"]
        exec(compile(source, piece["file"], "exec"), namespace)
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


class ReadmeError(TestkitError):
    """A README's sample markers are malformed (unknown kind, a skip without a reason, a dangling marker)."""


@dataclass(frozen=True)
class Marker:
    """One `<!-- sample: kind rest -->` comment.

    Attributes:
        kind: one of `MARKER_KINDS`.
        text: what follows the kind (a reason, an exception name, or Python lines).
        line: the comment's first line in the README (1-based).
    """

    kind: str
    text: str
    line: int


@dataclass(frozen=True)
class Block:
    """A fenced code block.

    Attributes:
        lang: the fence's info string (`python`, `sh`, `json`, or empty).
        code: the block's text, ending with a newline.
        line: the line of the block's first code line (1-based).
        heading: the nearest heading above it.
        markers: the sample markers written just before it.
    """

    lang: str
    code: str
    line: int
    heading: str
    markers: tuple[Marker, ...] = ()

    def marker(self, kind: str) -> Marker | None:
        """The block's marker of that kind, if any."""
        return next((m for m in self.markers if m.kind == kind), None)


@dataclass(frozen=True)
class Piece:
    """Source run by a sample, with where it comes from (for tracebacks)."""

    code: str
    file: str
    line: int


@dataclass(frozen=True)
class Sample:
    """A Python block and the blocks that continue it, run in one namespace.

    Attributes:
        readme: the README's path.
        blocks: the first block, then each `continues` block.
        prelude: the README's prelude pieces, run first.
    """

    readme: Path
    blocks: tuple[Block, ...]
    prelude: tuple[Piece, ...] = ()

    @property
    def id(self) -> str:
        """`README.md:12-quick-start`: where the sample starts, for test ids."""
        first = self.blocks[0]
        slug = re.sub(r"[^a-z0-9]+", "-", first.heading.lower()).strip("-") or "top"
        return f"{self.readme.name}:{first.line}-{slug}"

    @property
    def skip_reason(self) -> str | None:
        """Why the sample is not run, from its `skip` marker."""
        marker = self.blocks[0].marker("skip")
        return marker.text if marker else None

    @property
    def serves(self) -> bool:
        """Whether the sample starts a server (its last block calls `serve`/`serve_tls`)."""
        return bool(_SERVE_CALL.search(self.blocks[-1].code))

    @property
    def tls(self) -> bool:
        """Whether the server it starts speaks TLS."""
        return "serve_tls(" in self.blocks[-1].code

    @property
    def expected_error(self) -> str | None:
        """The exception the sample must end with, from a `raises` marker."""
        marker = self.blocks[-1].marker("raises")
        return marker.text if marker else None

    def pieces(self) -> list[Piece]:
        """Prelude, then each block's setup and code, in order."""
        out = list(self.prelude)
        for block in self.blocks:
            setup = block.marker("setup")
            if setup is not None:
                out.append(Piece(setup.text, str(self.readme), setup.line + 1))
            out.append(Piece(block.code, str(self.readme), block.line))
        return out


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


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with its heading and markers.

    Raises:
        ReadmeError: a marker of an unknown kind, a `skip` without a reason, or a
            marker that no block follows.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: list[Marker] = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := _MARKER_START.match(line):
            marker, i = _read_marker(path, lines, i, m)
            pending.append(marker)
            continue
        if m := _FENCE.match(line):
            start = i + 1
            end = start
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            code = "".join(text + "\n" for text in lines[start:end])
            blocks.append(Block(m.group(1), code, start + 1, heading, tuple(pending)))
            pending = []
            i = end + 1
            continue
        if line.strip():
            if pending:
                raise ReadmeError(f"{path}:{pending[0].line}: sample marker not followed by a code block")
            if m := _HEADING.match(line):
                heading = m.group(1)
        i += 1
    if pending:
        raise ReadmeError(f"{path}:{pending[0].line}: sample marker not followed by a code block")
    return blocks


def _read_marker(path: Path, lines: list[str], i: int, m: re.Match[str]) -> tuple[Marker, int]:
    kind, rest = m.group(1), m.group(2)
    first = i
    body = [rest]
    while "-->" not in body[-1]:
        i += 1
        if i >= len(lines):
            raise ReadmeError(f"{path}:{first + 1}: sample marker never closed (-->)")
        body.append(lines[i])
    body[-1] = body[-1][: body[-1].index("-->")]
    if kind not in MARKER_KINDS:
        raise ReadmeError(f"{path}:{first + 1}: unknown sample marker {kind!r} (known: {sorted(MARKER_KINDS)})")
    if kind in {"setup", "prelude"}:
        text = "".join(f"{text}\n" for text in body[1:])  # the Python lines under the kind
    else:
        text = " ".join(part.strip() for part in body).strip()
    if kind in {"skip", "raises"} and not text:
        raise ReadmeError(f"{path}:{first + 1}: '{kind}' needs {'a reason' if kind == 'skip' else 'an exception'}")
    return Marker(kind, text, first + 1), i + 1


def readme_samples(path: Path) -> list[Sample]:
    """The README's Python samples: each block with the blocks that continue it.

    A `prelude` marker is not a block's marker: it applies to every sample.

    Raises:
        ReadmeError: malformed markers, or a `continues` block with nothing before it.
    """
    path = Path(path)
    blocks = parse_blocks(path)
    prelude: list[Piece] = []
    samples: list[list[Block]] = []
    for block in blocks:
        for marker in block.markers:
            if marker.kind == "prelude":
                prelude.append(Piece(marker.text, str(path), marker.line + 1))
        if block.lang != "python":
            continue
        if block.marker("continues"):
            if not samples:
                raise ReadmeError(f"{path}:{block.line}: 'continues' but no Python block comes before it")
            samples[-1].append(block)
        else:
            samples.append([block])
    return [Sample(path, tuple(chain), tuple(prelude)) for chain in samples]


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
        env.update(PGHOST=db.host, PGPORT=str(db.port), PGUSER=db.user, PGDATABASE=db.database, PGSSLMODE="disable")
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
        raise SampleFailed(f"{sample.id}: still running after {SAMPLE_TIMEOUT:.0f} s") from exc
    output = f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}"
    if not result_path.exists():
        raise SampleFailed(f"{sample.id}: the interpreter exited {proc.returncode} without a result\n{output}")
    result = json.loads(result_path.read_text())
    _check_result(sample, result, output)


def _check_result(sample: Sample, result: dict[str, str], output: str) -> None:
    expected = sample.expected_error
    if expected is None:
        if not result["ok"]:
            raise SampleFailed(f"{sample.id}: does not run as written\n{result['traceback']}{output}")
        return
    if result["ok"]:
        raise SampleFailed(f"{sample.id}: should raise {expected}, but ran to the end\n{output}")
    if not _same_exception(result["type"], expected):
        raise SampleFailed(
            f"{sample.id}: should raise {expected}, raised {result['type']}\n{result['traceback']}{output}"
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
        raise SampleFailed(f"{sample.id}: pytest still running after {SAMPLE_TIMEOUT:.0f} s") from exc
    if proc.returncode != 0:
        raise SampleFailed(f"{sample.id}: its tests fail under pytest\n{proc.stdout}{proc.stderr}")


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
            raise SampleFailed(f"{sample.id}: still running {SERVE_STOP_TIMEOUT:.0f} s after SIGTERM") from exc
        if code != 0:
            raise SampleFailed(f"{sample.id}: exited {code} after SIGTERM\n{_tail(log_path)}{_traceback(result_path)}")
        return served
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_listening(sample: Sample, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + SERVE_READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SampleFailed(f"{sample.id}: exited {proc.returncode} before serving\n{_tail(log_path)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SampleFailed(f"{sample.id}: nothing listening on port {port} after {SERVE_READY_TIMEOUT:.0f} s")


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
        raise SampleFailed(f"{sample.id}: GET / failed: {exc!r}\n{_tail(log_path)}") from exc
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise SampleFailed(f"{sample.id}: GET / got no HTTP answer: {bytes(data[:200])!r}\n{_tail(log_path)}")
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
        yield LocalPg(host=local.host, port=local.port, user=local.user, database=name)
    finally:
        _psql(local, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _psql(local: LocalPg, sql: str) -> None:
    psql = _pgbin.find_bin_dir() / "psql"
    login = ["-U", local.user, "-d", "postgres"]
    proc = subprocess.run(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", local.host, "-p", str(local.port), *login, "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise TestkitError(f"psql {sql!r} failed: {proc.stderr.strip()}")


def json_block_problems(path: Path) -> list[str]:
    """`README.md:12: ...` for each ```` ```json ```` block that does not parse (one document, or one per line)."""
    problems = []
    for block in parse_blocks(Path(path)):
        if block.lang != "json":
            continue
        try:
            json.loads(block.code)
        except ValueError:
            for offset, line in enumerate(block.code.splitlines()):
                try:
                    json.loads(line)
                except ValueError as exc:
                    problems.append(f"{Path(path).name}:{block.line + offset}: {exc}")
    return problems


def dev_test_selection_problems(path: Path, root: Path) -> list[str]:
    """Each `./dev test -e ENV -- ... -k EXPR` in the text whose EXPR selects no test of ENV.

    The tests of an environment are those under the directory its tox `commands` give to
    pytest; a test's names are its file's, its class's and its function's, matched as
    pytest's `-k` does (case-insensitive substrings, `and`, `or`, `not`, parentheses).
    """
    text = Path(path).read_text(encoding="utf-8")
    problems = []
    for m in _DEV_TEST.finditer(text):
        env_name, args = m.group(1), shlex.split(m.group(2))
        expr = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "-k"), None)
        if expr is None:
            continue
        where = f"{Path(path).name}:{text.count(chr(10), 0, m.start()) + 1}"
        test_dir = _tox_test_dir(root, env_name)
        if test_dir is None:
            problems.append(f"{where}: no tox environment {env_name!r} running pytest")
            continue
        names = list(_test_names(test_dir))
        if not any(_k_matches(expr, n) for n in names):
            problems.append(f"{where}: -k {expr!r} selects none of the {len(names)} tests of {env_name}")
    return problems


def _tox_test_dir(root: Path, env_name: str) -> Path | None:
    config = configparser.ConfigParser(interpolation=None)
    config.read(root / "tox.ini")
    section = f"testenv:{env_name}"
    if not config.has_section(section):
        return None
    for command in config.get(section, "commands", fallback="").splitlines():
        words = command.split()
        if words[:1] == ["pytest"] and len(words) > 1:
            return root / words[1]
    return None


def _test_names(test_dir: Path) -> Iterator[tuple[str, ...]]:
    for path in sorted(test_dir.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                yield (path.name, node.name)
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                        yield (path.name, node.name, item.name)


def _k_matches(expr: str, names: tuple[str, ...]) -> bool:
    tokens: list[str] = re.findall(r"\(|\)|[^\s()]+", expr)
    lowered = [n.lower() for n in names]
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def parse_or() -> bool:
        value = parse_and()
        while peek() == "or":
            take()
            value = parse_and() or value
        return value

    def parse_and() -> bool:
        value = parse_not()
        while peek() == "and":
            take()
            value = parse_not() and value
        return value

    def parse_not() -> bool:
        if peek() == "not":
            take()
            return not parse_not()
        if peek() == "(":
            take()
            value = parse_or()
            if take() != ")":
                raise ValueError(f"-k {expr!r}: unbalanced parentheses")
            return value
        word = take().lower()
        return any(word in n for n in lowered)

    return parse_or()
