#!/usr/bin/env python3
"""Database-latency benchmark (issue 17): PostgreSQL ~1 ms away, one worker per server on one core.

    python3 benchmarks/db_latency.py [--duration 10] [--db-rtt-ms 1.0] [--chopin-mode auto]
                                     [--only chopin,chopin-async,uvicorn+asyncpg,granian+asyncpg]
                                     [--markdown-out benchmarks/RESULTS.md]

The machine's PostgreSQL (127.0.0.1:5432, trust) is reached through delay_proxy.py, a
stdlib TCP proxy that delays each direction by half the round trip; the delay is
calibrated first so that ``SELECT 1`` through the proxy takes ``--db-rtt-ms`` longer
than directly, and both are printed. Every server gets the same proxy, one worker pinned
to ``--server-cpu`` and is loaded by wrk pinned to ``--client-cpu``:

- chopin: benchmarks/techempower/app.py, blocking handlers (CHOPIN_TE_MODE=blocking, a
  pool of one connection: a worker runs one handler at a time);
- chopin-async: the same app with CHOPIN_TE_MODE=async (async handlers on
  chopin_pg.AsyncPool, ``--chopin-pool`` connections), once chopin has them;
- uvicorn+asyncpg and granian+asyncpg: peers/asgi_db_latency_app.py (raw ASGI, uvloop,
  an asyncpg pool of ``--pool-size``).

Rows: TechEmpower's /db, /queries?queries=20, /fortunes and /updates?queries=20 (tables
world and fortune in the database ``--database``, created when missing), with req/s, p99
and the PostgreSQL connections the proxy saw; then /plaintext latency while
``--slow-connections`` requests wait on /slow, which calls slow_upstream.py (~200 ms):
a light probe (one request every 10 ms, one connection) measures /plaintext alone and
again under that load. Stdlib only; the servers run from benchmarks/.venv, which this
file completes with requirements-db-latency.txt and the chopin packages (editable).
"""

from __future__ import annotations

import os
import sys

# benchmarks/ holds http.py and json.py: move it to the end of sys.path so that the
# stdlib's `json` and `http` win, and `import benchlib` still finds benchmarks/benchlib.py.
if sys.path and sys.path[0] and os.path.samefile(sys.path[0], os.path.dirname(os.path.abspath(__file__))):
    sys.path.append(sys.path.pop(0))

import argparse
import datetime as dt
import json
import shlex
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
import delay_proxy
from benchlib import (
    ACCEPT_JSON,
    HERE,
    HOST,
    REPO,
    fmt_ms,
    fmt_num,
    fmt_ratio,
    free_port,
    log,
    markdown_table,
    peak_rss_kib,
    write_section,
)
from pg_simple import PgSimple, PgSimpleError, literal

VENV = HERE / ".venv"
VENV_BIN = VENV / "bin"
VENV_PY = VENV_BIN / "python"
PEERS = HERE / "peers"
TECHEMPOWER = HERE / "techempower"
REQUIREMENTS = HERE / "requirements-db-latency.txt"
PEER_MODULES = ("asyncpg", "uvicorn", "uvloop", "httptools", "granian", "orjson")
CHOPIN_PACKAGES = {  # import name -> package, in install order
    "kowito_json": REPO / "packages" / "kowito-json",
    "chopin_core": REPO / "packages" / "chopin-core",
    "chopin_pg": REPO / "packages" / "chopin-pg",
    "chopin_orm": REPO / "packages" / "chopin-orm",
}
SECTION = "db-latency"
WORLD_ROWS = 10_000
ROWS = ("/db", "/queries?queries=20", "/fortunes", "/updates?queries=20")
PROBE_INTERVAL_S = 0.01
PROBE_TIMEOUT_S = 10.0
PIP_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Server:
    """How to start one server; "{port}" in argv is replaced by its port."""

    name: str
    argv: tuple[str, ...]
    cwd: Path
    env: tuple[tuple[str, str], ...] = ()

    @property
    def is_chopin(self) -> bool:
        return self.name.startswith("chopin")

    def command(self, port: int) -> list[str]:
        return [arg.replace("{port}", str(port)) for arg in self.argv]

    def display(self) -> str:
        env = [f"{key}={value}" for key, value in self.env]
        return " ".join([*env, *self.argv]).replace(str(REPO) + "/", "")


def servers(args: argparse.Namespace) -> tuple[Server, ...]:
    te = (str(VENV_PY), str(TECHEMPOWER / "app.py"))
    return (
        Server("chopin", te, TECHEMPOWER, (("WORKERS", "1"), ("CHOPIN_TE_MODE", "blocking"))),
        Server(
            "chopin-async",
            te,
            TECHEMPOWER,
            (("WORKERS", "1"), ("CHOPIN_TE_MODE", "async"), ("POOL_SIZE", str(args.chopin_pool))),
        ),
        Server(
            "uvicorn+asyncpg",
            (str(VENV_BIN / "uvicorn"), "asgi_db_latency_app:app", "--host", HOST, "--port", "{port}",
             "--loop", "uvloop", "--http", "httptools", "--workers", "1", "--no-access-log", "--log-level", "warning"),
            PEERS,
            (("POOL_SIZE", str(args.pool_size)),),
        ),
        Server(
            "granian+asyncpg",
            (str(VENV_BIN / "granian"), "--interface", "asgi", "--host", HOST, "--port", "{port}", "--workers", "1",
             "--runtime-mode", "st", "--runtime-threads", "1", "--blocking-threads", "1", "--http", "1", "--no-ws",
             "--loop", "uvloop", "--log-level", "warning", "asgi_db_latency_app:app"),
            PEERS,
            (("POOL_SIZE", str(args.pool_size)),),
        ),
    )  # fmt: skip


@dataclass
class Row(benchlib.WrkResult):
    connections: int | None = None  # most PostgreSQL connections open at once during the row
    opened: int | None = None  # connections opened during the row
    proxy_cpu: float | None = None  # the proxy's CPU use during the row, share of one core
    db_rtt_ms: float | None = None  # median SELECT 1 through the proxy during the row (another connection)


@dataclass
class SlowResult:
    """/plaintext latency alone and while ``--slow-connections`` requests wait on /slow."""

    alone_p50: float | None = None
    alone_p99: float | None = None
    loaded_p50: float | None = None
    loaded_p99: float | None = None
    loaded_samples: int = 0
    probe_failures: int = 0
    slow: Row = field(default_factory=Row)  # wrk on /slow meanwhile


@dataclass
class Result:
    name: str
    skipped: str = ""
    rows: dict[str, Row] = field(default_factory=dict)
    slow: SlowResult | None = None
    rss_kib: int | None = None
    slow_note: str = ""


# ---------------------------------------------------------------- environment


def venv_can_import(modules: str) -> bool:
    return benchlib.venv_can_import(VENV_PY, modules, isolated=True, timeout=60)


def ensure_venv() -> None:
    """Create or complete benchmarks/.venv: the peers of requirements-db-latency.txt, the chopin packages."""
    pip = benchlib.pip_install_command(VENV_PY)
    if not VENV_PY.exists():
        benchlib.create_venv(VENV, str(VENV.relative_to(REPO)), timeout=120)
    install: list[str] = []
    if not venv_can_import(", ".join(PEER_MODULES)):
        install += ["-r", str(REQUIREMENTS)]
    for module, package in CHOPIN_PACKAGES.items():
        if (package / "pyproject.toml").exists() and not venv_can_import(module):
            install += ["-e", str(package)]
    if install:
        log(f"installing into {VENV.relative_to(REPO)}: {shlex.join(install)} ...".replace(str(REPO) + "/", ""))
        subprocess.run([*pip, *install], check=True, timeout=PIP_TIMEOUT_S)


def async_missing() -> str:
    """What the venv's chopin lacks for the async variant ("" when nothing; the app makes the same check)."""
    code = (
        "import chopin_core, chopin_pg\n"
        "missing = [n for n, ok in (('chopin_pg.AsyncPool', hasattr(chopin_pg, 'AsyncPool')),"
        " ('chopin_core.sleep', hasattr(chopin_core, 'sleep'))) if not ok]\n"
        "print(', '.join(missing))\n"
    )
    done = subprocess.run([str(VENV_PY), "-P", "-c", code], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        return "chopin_core / chopin_pg not importable"
    return done.stdout.strip()


def venv_versions() -> dict[str, str]:
    names = ("chopin-core", "chopin-pg", "asyncpg", "uvicorn", "uvloop", "httptools", "granian", "orjson")
    code = (
        "import importlib.metadata as m, json, platform\n"
        f"v = {{'python': platform.python_version()}}\n"
        f"for n in {names!r}:\n"
        "    try: v[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(v))\n"
    )
    out = subprocess.run([str(VENV_PY), "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    versions: dict[str, str] = json.loads(out)
    return versions


# ---------------------------------------------------------------- the database


def ensure_database(args: argparse.Namespace) -> str:
    """Create the database and TechEmpower's world and fortune tables when missing; the server version."""
    with PgSimple(HOST, args.pg_port, args.user, "postgres") as conn:
        version = conn.parameters.get("server_version", "?").split()[0]
        if conn.scalar(f"SELECT count(*) FROM pg_database WHERE datname = {literal(args.database)}") == "0":
            log(f"creating database {args.database}")
            conn.query(f'CREATE DATABASE "{args.database}"')
    sys.path.insert(0, str(TECHEMPOWER))
    try:
        from fortune_rows import FORTUNE_ROWS
    finally:
        sys.path.remove(str(TECHEMPOWER))
    with PgSimple(HOST, args.pg_port, args.user, args.database) as conn:
        conn.query(
            "CREATE TABLE IF NOT EXISTS world (id integer NOT NULL PRIMARY KEY, randomnumber integer NOT NULL DEFAULT 0);"
            "CREATE TABLE IF NOT EXISTS fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL)"
        )
        worlds = conn.query("SELECT count(*), max(id) FROM world WHERE randomnumber BETWEEN 1 AND 10000")[0]
        if worlds != [str(WORLD_ROWS), str(WORLD_ROWS)]:
            log(f"loading {WORLD_ROWS} world rows")
            conn.query(
                "TRUNCATE world; INSERT INTO world (id, randomnumber) "
                f"SELECT i, floor(random() * 10000 + 1)::int FROM generate_series(1, {WORLD_ROWS}) AS i; ANALYZE world"
            )
        if conn.scalar("SELECT count(*) FROM fortune") != str(len(FORTUNE_ROWS)):
            values = ", ".join(f"({i}, {literal(m)})" for i, m in FORTUNE_ROWS)
            conn.query(f"TRUNCATE fortune; INSERT INTO fortune (id, message) VALUES {values}")
    return version


def select1_times(port: int, args: argparse.Namespace, count: int) -> list[float]:
    """``count`` round trips of ``SELECT 1`` on one connection, in ms, sorted."""
    with PgSimple(HOST, port, args.user, args.database, "chopin-bench-rtt") as conn:
        conn.query("SELECT 1")
        times = []
        for _ in range(count):
            start = time.perf_counter()
            conn.query("SELECT 1")
            times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


def fmt_probe(ms: float | None) -> str:
    """A probe latency; a timed-out request shows as "> 10 s"."""
    if ms is not None and ms >= PROBE_TIMEOUT_S * 1000:
        return f"> {PROBE_TIMEOUT_S:g} s (timed out)"
    return fmt_ms(ms)


def percentile(sorted_ms: list[float], pct: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * pct / 100))]


@dataclass
class Rtt:
    direct_ms: float  # medians of 300
    proxied_ms: float
    proxied_p10_ms: float
    proxied_p99_ms: float
    delay_ms: float  # the proxy's one-way delay after calibration

    def line(self) -> str:
        return (
            f"`SELECT 1` round trip, median of 300: {self.direct_ms:.3f} ms direct, {self.proxied_ms:.3f} ms through "
            f"the proxy (p10 {self.proxied_p10_ms:.3f} ms, p99 {self.proxied_p99_ms:.3f} ms): the proxy adds "
            f"{self.proxied_ms - self.direct_ms:.3f} ms (one-way delay set to {self.delay_ms:.3f} ms)"
        )


# The proxy's own cost per round trip (two more loopback hops, its loop), which calibration takes off
# the delay, is ~0.2 ms on an idle machine; a busy one only adds noise, so it is never taken as more.
MAX_CORRECTION_MS = 0.3


def calibrate(args: argparse.Namespace, proxy_port: int, control_port: int) -> Rtt:
    """Set the proxy's delay so that SELECT 1 through it takes --db-rtt-ms more than directly.

    Compares the 10th percentiles (scheduling noise only ever adds), up to three adjustments, and takes
    at most MAX_CORRECTION_MS off the nominal delay.
    """
    nominal = delay = args.db_rtt_ms / 2
    for round_ in range(4):  # measure, adjust, measure again (the last measurement is of the delay kept)
        delay_proxy.control(control_port, f"delay {delay:.4f}")
        direct = select1_times(args.pg_port, args, 300)
        proxied = select1_times(proxy_port, args, 300)
        added = percentile(proxied, 10) - percentile(direct, 10)
        if round_ == 3 or abs(added - args.db_rtt_ms) < 0.02 or not args.calibrate:
            break
        delay = min(nominal, max(nominal - MAX_CORRECTION_MS / 2, delay - (added - args.db_rtt_ms) / 2))
    return Rtt(
        statistics.median(direct), statistics.median(proxied), percentile(proxied, 10), percentile(proxied, 99), delay
    )


# ---------------------------------------------------------------- helper processes


@contextmanager
def helper_process(argv: list[str], cpu: int) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """Start a helper that prints "ready <port> ..." pinned to ``cpu``; its ports; stop it at the end."""
    proc = subprocess.Popen(
        ["taskset", "-c", str(cpu), sys.executable, *argv],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise SystemExit(f"{Path(argv[0]).name} did not start: {line}")
        yield proc, [int(port) for port in line[1:]]
    finally:
        benchlib.stop_server(proc, final_wait=10)  # type: ignore[arg-type]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- load


P99_UNITS = {unit: benchlib.UNIT_TO_MS[unit] for unit in ("us", "ms", "s")}


def parse_wrk(output: str) -> Row:
    return Row(
        rps=benchlib.wrk_rps(output),
        p99_ms=benchlib.wrk_percentiles(output, P99_UNITS).get(99),
        errors=benchlib.wrk_errors(output),
    )


def wrk_command(args: argparse.Namespace, port: int, path: str, duration: int, connections: int) -> list[str]:
    return benchlib.wrk_command(
        port,
        path,
        duration=duration,
        connections=connections,
        cpu=args.client_cpu,
        headers=("Host: localhost", f"Accept: {ACCEPT_JSON}", "Connection: keep-alive"),
    )


class Probe:
    """One keep-alive connection sending GET /plaintext every PROBE_INTERVAL_S; latencies in ms."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.request = f"GET /plaintext HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()

    def _get(self) -> None:
        if self.sock is None:
            self.sock = socket.create_connection((HOST, self.port), timeout=PROBE_TIMEOUT_S)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(self.request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            body += chunk
        if not head.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))

    def run(self, seconds: float) -> tuple[list[float], int]:
        """Probe for ``seconds``: the sorted latencies (ms) and the number of failed requests.

        A request that times out counts as a latency of PROBE_TIMEOUT_S (a lower bound), not as a failure.
        """
        times: list[float] = []
        failures = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            try:
                self._get()
                times.append((time.perf_counter() - start) * 1000)
            except TimeoutError:
                times.append(PROBE_TIMEOUT_S * 1000)
                if self.sock is not None:
                    self.sock.close()
                    self.sock = None
            except (OSError, ValueError):
                failures += 1
                if self.sock is not None:
                    self.sock.close()
                    self.sock = None
            time.sleep(PROBE_INTERVAL_S)
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        return sorted(times), failures


class RttProbe(threading.Thread):
    """SELECT 1 through the proxy every 20 ms on its own connection while a row runs: the round trip under load."""

    def __init__(self, args: argparse.Namespace, proxy_port: int) -> None:
        super().__init__(daemon=True)
        self.conn: PgSimple | None = None
        try:
            self.conn = PgSimple(HOST, proxy_port, args.user, args.database, "chopin-bench-rtt")
        except (OSError, PgSimpleError) as exc:
            log(f"  no SELECT 1 probe for this row: {exc}")
        self.stop = threading.Event()
        self.times: list[float] = []

    def run(self) -> None:
        if self.conn is None:
            return
        try:
            while not self.stop.wait(0.02):
                start = time.perf_counter()
                self.conn.query("SELECT 1")
                self.times.append((time.perf_counter() - start) * 1000)
        except (OSError, PgSimpleError):
            pass
        finally:
            self.conn.close()

    def median(self) -> float | None:
        self.stop.set()
        self.join(timeout=15)
        return statistics.median(self.times) if self.times else None


def run_row(args: argparse.Namespace, port: int, path: str, proxy: tuple[int, int, int]) -> Row:
    proxy_port, control_port, proxy_pid = proxy
    # The previous row's probe connection closes through the proxy's delay: let it go before the reset,
    # or it counts in this row's peak.
    time.sleep(0.2)
    rtt = RttProbe(args, proxy_port)  # connected before the reset: its connection is open all along
    delay_proxy.control(control_port, "reset")
    cpu_before, start = cpu_seconds(proxy_pid), time.monotonic()
    rtt.start()
    row, raw = benchlib.run_wrk(
        wrk_command(args, port, path, args.duration, args.connections), args.duration, parse_wrk
    )
    if args.verbose:
        log(raw)
    row.proxy_cpu = (cpu_seconds(proxy_pid) - cpu_before) / (time.monotonic() - start)
    row.db_rtt_ms = rtt.median()
    stats = delay_proxy.control(control_port, "stats")
    probe_conns = 0 if rtt.conn is None else 1
    row.connections, row.opened = int(stats["peak"]) - probe_conns, int(stats["opened"])  # less the probe's
    return row


def run_slow(args: argparse.Namespace, port: int) -> SlowResult:
    """/plaintext probed alone, then while wrk keeps --slow-connections requests waiting on /slow."""
    result = SlowResult()
    alone, _ = Probe(port).run(min(5.0, args.duration))
    if alone:
        result.alone_p50, result.alone_p99 = statistics.median(alone), percentile(alone, 99)
    cmd = wrk_command(args, port, "/slow", args.duration, args.slow_connections)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk:
        time.sleep(1.0)  # let the waiting handlers pile up first
        loaded, result.probe_failures = Probe(port).run(max(1.0, args.duration - 2.0))
        try:
            out, err = wrk.communicate(timeout=args.duration + 60)
        except subprocess.TimeoutExpired:
            wrk.kill()
            out, err = wrk.communicate()
    if args.verbose:
        log(out)
    result.slow = parse_wrk(out)
    if result.slow.rps is None:
        result.slow.errors = "; ".join(filter(None, [result.slow.errors, "wrk failed", *err.strip().splitlines()[-1:]]))
    if loaded:
        result.loaded_p50, result.loaded_p99 = statistics.median(loaded), percentile(loaded, 99)
    result.loaded_samples = len(loaded)
    return result


EXTRA_FORTUNE_CELL = b"<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"


def check_rows(port: int) -> str:
    """What is wrong with the four database rows by TechEmpower's rules ("" when nothing)."""
    for path in ROWS:
        probe = benchlib.http_get(port, path, timeout=10.0)
        if probe.status != 200:
            return f"{path}: status {probe.status}"
        if path == "/fortunes":
            if EXTRA_FORTUNE_CELL not in probe.body or b"&lt;script&gt;" not in probe.body:
                return "/fortunes: rows or escaping missing"
            continue
        try:
            value = json.loads(probe.body)
        except ValueError:
            return f"{path}: not JSON: {probe.body[:60]!r}"
        worlds = [value] if path == "/db" else value
        want = 1 if path == "/db" else 20
        if not isinstance(worlds, list) or len(worlds) != want:
            return f"{path}: expected {want} worlds, got {probe.body[:60]!r}"
        if any(not isinstance(w, dict) or set(w) != {"id", "randomNumber"} for w in worlds):
            return f"{path}: unexpected keys in {probe.body[:60]!r}"
    return ""


def check_slow(port: int) -> str:
    """What is wrong with /slow ("" when it answers 200)."""
    try:
        probe = benchlib.http_get(port, "/slow", timeout=5.0)
    except (OSError, ValueError, IndexError) as exc:
        return f"/slow: {exc}"
    return "" if probe.status == 200 else f"/slow: status {probe.status}"


def bench_server(
    server: Server, args: argparse.Namespace, env: dict[str, str], proxy: tuple[int, int, int], slow_url: str
) -> Result:
    proxy_port = proxy[0]
    port = free_port()
    server_env = {**env, "PORT": str(port), "HOST": HOST, "PGHOST": HOST, "PGPORT": str(proxy_port),
                  "PGUSER": args.user, "PGDATABASE": args.database, "SLOW_URL": slow_url,
                  "SLOW_SECONDS": str(args.slow_ms / 1000), **dict(server.env)}  # fmt: skip
    cmd = ["taskset", "-c", str(args.server_cpu), *server.command(port)]
    log(f"[{server.name}] {server.display()}  (cwd {server.cwd.relative_to(REPO)}, CPU {args.server_cpu})")

    def load(proc: subprocess.Popen[bytes]) -> Result:
        result = Result(server.name)
        if reason := benchlib.wait_ready(proc, port, "/plaintext"):
            result.skipped = reason
            return result
        try:
            if reason := check_rows(port) or check_slow(port):
                result.skipped = f"wrong answer: {reason}"
                return result
        except (OSError, ValueError, IndexError) as exc:
            result.skipped = f"check failed: {exc}"
            return result
        benchlib.run_wrk(wrk_command(args, port, "/db", args.warmup, args.connections), args.warmup, parse_wrk)
        for path in ROWS:
            row = result.rows[path] = run_row(args, port, path, proxy)
            log(
                f"  {path:<22} {fmt_num(row.rps):>8} req/s  p99 {fmt_ms(row.p99_ms):>10}  "
                f"pg connections {row.connections} (opened {row.opened})  proxy CPU {row.proxy_cpu:.0%}  "
                f"SELECT 1 meanwhile {fmt_ms(row.db_rtt_ms)}  {row.errors}"
            )
        slow = result.slow = run_slow(args, port)
        log(
            f"  /plaintext p99 alone {fmt_probe(slow.alone_p99)}, with {args.slow_connections} waiting on /slow "
            f"{fmt_probe(slow.loaded_p99)} ({slow.loaded_samples} samples, {slow.probe_failures} failed); "
            f"/slow {fmt_num(slow.slow.rps)} req/s {slow.slow.errors}"
        )
        result.rss_kib = peak_rss_kib(proc.pid)
        return result

    run = benchlib.run_server(cmd, load, env=server_env, cwd=server.cwd, final_wait=10)
    benchlib.log_server_end(server.name, run.result.skipped, run)
    return run.result


# ---------------------------------------------------------------- report


def best_peer(results: list[Result], pick: str, lower_is_better: bool = False) -> tuple[float, str] | None:
    """The best peer's value of ``pick`` ("rps:<row>", "p99:<row>" or "slow") and its name."""
    values = []
    for result in results:
        if result.name.startswith("chopin") or result.skipped:
            continue
        if (value := metric(result, pick)) is not None:
            values.append((value, result.name))
    if not values:
        return None
    return min(values) if lower_is_better else max(values)


def metric(result: Result, pick: str) -> float | None:
    kind, _, path = pick.partition(":")
    if kind == "slow":
        return result.slow.loaded_p99 if result.slow else None
    row = result.rows.get(path)
    if row is None:
        return None
    return row.rps if kind == "rps" else row.p99_ms


def slow_ratio(slow: SlowResult | None) -> str:
    """Loaded over alone /plaintext p99; a lower bound ("> ...") when the loaded probe timed out."""
    if slow is None:
        return "n/a"
    ratio = fmt_ratio(slow.loaded_p99, slow.alone_p99)
    timed_out = slow.loaded_p99 is not None and slow.loaded_p99 >= PROBE_TIMEOUT_S * 1000
    return f"> {ratio}" if timed_out and ratio != "n/a" else ratio


def render(results: list[Result], args: argparse.Namespace, rtt: Rtt) -> str:
    names = [r.name + (" (skipped)" if r.skipped else "") for r in results]
    chopins = [r for r in results if r.name.startswith("chopin") and not r.skipped]
    notes: list[str] = []

    rps_rows = []
    for path in ROWS:
        cells = [f"`{path}`"]
        for result in results:
            row = result.rows.get(path)
            cells.append("n/a" if row is None else fmt_num(row.rps) + (" (err)" if row.errors else ""))
            if row is not None and row.errors:
                notes.append(f"{result.name} `{path}`: {row.errors}")
        best = best_peer(results, f"rps:{path}")
        for chopin in chopins:
            ours = metric(chopin, f"rps:{path}")
            cells.append(f"{fmt_ratio(ours, best[0])} (vs {best[1]})" if best else "n/a")
        rps_rows.append(cells)
    rps_header = ["row (req/s)", *names, *(f"{c.name} / best peer" for c in chopins)]

    p99_rows = []
    for path in ROWS:
        cells = [f"`{path}`"]
        for result in results:
            row = result.rows.get(path)
            cells.append(fmt_ms(row.p99_ms) if row else "n/a")
        p99_rows.append(cells)
    conn_cells = ["PostgreSQL connections (most open at once)"]
    for result in results:
        peaks = [row.connections for row in result.rows.values() if row.connections is not None]
        conn_cells.append(str(max(peaks)) if peaks else "n/a")
    rss_cells = ["peak RSS (VmHWM, MiB)"] + ["n/a" if r.rss_kib is None else f"{r.rss_kib / 1024:.1f}" for r in results]
    rtt_cells = ["`SELECT 1` through the proxy during the rows (worst row's median)"]
    for result in results:
        medians = [row.db_rtt_ms for row in result.rows.values() if row.db_rtt_ms is not None]
        rtt_cells.append(fmt_ms(max(medians)) if medians else "n/a")
    p99_rows += [conn_cells, rtt_cells, rss_cells]

    slow_rows = []
    for label, pick in (
        ("/plaintext p50 alone", lambda s: s.alone_p50),
        ("/plaintext p99 alone", lambda s: s.alone_p99),
        (f"/plaintext p50, {args.slow_connections} waiting on /slow", lambda s: s.loaded_p50),
        (f"/plaintext p99, {args.slow_connections} waiting on /slow", lambda s: s.loaded_p99),
    ):
        slow_rows.append([label, *(fmt_probe(pick(r.slow)) if r.slow else "n/a" for r in results)])
    slow_rows.append(["p99 waiting / p99 alone (target <= 2)"] + [slow_ratio(r.slow) for r in results])
    slow_rows.append(["/slow req/s meanwhile"] + [fmt_num(r.slow.slow.rps) if r.slow else "n/a" for r in results])
    for result in results:
        if result.slow and result.slow.slow.errors:
            notes.append(f"{result.name} `/slow`: {result.slow.slow.errors}")
        if result.slow and result.slow.probe_failures:
            notes.append(f"{result.name}: {result.slow.probe_failures} /plaintext probes failed while /slow waited")
        if result.skipped:
            notes.append(f"{result.name}: skipped, {result.skipped}")
    cpu = [row.proxy_cpu for r in results for row in r.rows.values() if row.proxy_cpu is not None]
    targets = target_lines(results)

    parts = [
        f"### TechEmpower rows with the database ~{args.db_rtt_ms:g} ms away "
        f"(wrk -t1 -c{args.connections} -d{args.duration}s)",
        "",
        markdown_table(rps_header, rps_rows),
        "",
        "### p99 latency, PostgreSQL connections and memory",
        "",
        markdown_table(["row (p99)", *names], p99_rows),
        "",
        f"### /plaintext while {args.slow_connections} requests wait on a {args.slow_ms:g} ms upstream",
        "",
        markdown_table(["", *names], slow_rows),
        "",
        f"- {rtt.line()}.",
        "- PostgreSQL connections: the most upstream connections the delay proxy had open at once during a row "
        "(the asyncpg pools open all of theirs at start-up). Blocking chopin sends the 20 reads of `/queries` "
        "and `/updates` as one pipeline (one round trip); the peers read them one by one, as asyncpg apps "
        "commonly do. `SELECT 1` during the rows: a second connection "
        "through the proxy, one query every 20 ms while wrk runs; above the idle round trip it shows queueing "
        "in the proxy or PostgreSQL, which every server meets alike.",
        f"- The delay proxy used at most {max(cpu):.0%} of a core during a row (pinned to CPU {args.client_cpu}, "
        "with wrk): near 100 % it would add latency of its own."
        if cpu
        else "- The delay proxy's CPU use was not measured.",
        "- /plaintext is probed by one connection, one request every 10 ms (stdlib, from the runner), "
        f"for {min(5, args.duration)} s alone and for {max(1, args.duration - 2)} s while wrk keeps "
        f"{args.slow_connections} connections on /slow, whose handler calls slow_upstream.py "
        "(chopin blocking: HttpClient; chopin-async: AsyncHttpClient; peers: asyncio streams). "
        "A probe that gets no answer within "
        f'{PROBE_TIMEOUT_S:g} s counts as {PROBE_TIMEOUT_S:g} s, shown as "> {PROBE_TIMEOUT_S:g} s".',
    ]
    if targets:
        parts += ["", "Issue 17's targets:", "", *targets]
    if notes:
        parts += ["", "Notes:", "", *(f"- {note}" for note in notes)]
    return "\n".join(parts) + "\n"


def target_lines(results: list[Result]) -> list[str]:
    """Issue 17's targets for each chopin variant that ran: /db >= 2x the best peer with <= 4 connections,
    /plaintext p99 with handlers waiting within 2x of alone."""
    lines = []
    best = best_peer(results, "rps:/db")
    for chopin in (r for r in results if r.name.startswith("chopin") and not r.skipped):
        db = chopin.rows.get("/db")
        conns = max((row.connections for row in chopin.rows.values() if row.connections is not None), default=None)
        ratio = db.rps / best[0] if db and db.rps and best else None
        slow = chopin.slow
        waiting = slow.loaded_p99 / slow.alone_p99 if slow and slow.loaded_p99 and slow.alone_p99 else None

        def verdict(ok: bool | None) -> str:
            return "n/a" if ok is None else ("met" if ok else "not met")

        lines.append(
            f"- {chopin.name}: `/db` {'n/a' if ratio is None else f'{ratio:.2f}x'} the best peer (target >= 2x: "
            f"{verdict(None if ratio is None else ratio >= 2)}) with {conns if conns is not None else 'n/a'} "
            f"PostgreSQL connections (target <= 4: {verdict(None if conns is None else conns <= 4)}); "
            f"/plaintext p99 with handlers waiting {slow_ratio(slow)}x alone "
            f"(target <= 2x: {verdict(None if waiting is None else waiting <= 2)})"
        )
    return lines


def header(args: argparse.Namespace, versions: dict[str, str], pg_version: str, load: tuple[float, float]) -> str:
    command = "python3 benchmarks/db_latency.py " + shlex.join(sys.argv[1:])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    chosen = [s for s in servers(args) if s.name in args.only]
    return "\n".join(
        [
            "## Database ~1 ms away: chopin against uvicorn + asyncpg and granian + asyncpg (issue 17)",
            "",
            f"- Command: `{command.strip()}` on {now}",
            benchlib.pg_machine_line(pg_version, HOST, args.pg_port, load).replace(
                "(the machine's server, same CPUs)",
                f"(the machine's server, same CPUs), reached through benchmarks/delay_proxy.py "
                f"(database {args.database})",
            ),
            "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
            f"- One worker per server under `taskset -c {args.server_cpu}`, wrk and the proxy on CPU "
            f"{args.client_cpu}, PostgreSQL unpinned; {args.warmup} s of /db before the rows. Other sessions "
            "ran tests on this 2-core machine during the run: the numbers are noisy, rerun before quoting.",
            "- Servers:",
            *(f"  - {s.name} (in {s.cwd.relative_to(REPO)}): `{s.display()}`" for s in chosen),
            "",
        ]
    )


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per row")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of /db per server before the rows")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections on the database rows")
    parser.add_argument("--db-rtt-ms", type=float, default=1.0, help="round trip the proxy adds to PostgreSQL")
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false", help="delay = rtt / 2, as is")
    parser.add_argument("--slow-connections", type=int, default=100, help="requests kept waiting on /slow")
    parser.add_argument("--slow-ms", type=float, default=200.0, help="the slow upstream's answer time")
    parser.add_argument("--pool-size", type=int, default=32, help="asyncpg pool of the peers")
    parser.add_argument("--chopin-pool", type=int, default=4, help="chopin_pg.AsyncPool size (chopin-async)")
    parser.add_argument(
        "--chopin-mode",
        choices=("auto", "blocking", "async", "both"),
        default="auto",
        help="which chopin variants run; auto: both when chopin has async handlers, else blocking",
    )
    parser.add_argument("--only", default="", help="comma list of servers (after --chopin-mode)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--database", default="chopin_latency")
    parser.add_argument("--markdown-out", type=Path, help="write the section to this file (benchmarks/RESULTS.md)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show wrk output")
    args = parser.parse_args(argv)
    if min(args.duration, args.warmup, args.connections, args.slow_connections) < 1:
        parser.error("--duration, --warmup, --connections and --slow-connections must be >= 1")
    if not args.database.replace("_", "").isalnum():
        parser.error("--database: letters, digits and _ only")
    return args


def choose_servers(args: argparse.Namespace) -> list[str]:
    names = [s.name for s in servers(args)]
    missing = async_missing() if args.chopin_mode != "blocking" else ""
    if args.chopin_mode == "async" and missing:
        sys.exit(f"--chopin-mode async: {missing} (chopin's async handlers have not landed in this checkout)")
    if args.chopin_mode == "auto":
        if missing:
            log(f"chopin-async skipped: {missing}; running the blocking chopin only")
        args.chopin_mode = "blocking" if missing else "both"
    keep = {"blocking": {"chopin"}, "async": {"chopin-async"}, "both": {"chopin", "chopin-async"}}[args.chopin_mode]
    chosen = [n for n in names if not n.startswith("chopin") or n in keep]
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        if unknown := sorted(set(wanted) - set(names)):
            sys.exit(f"unknown server(s) {', '.join(unknown)}; choose from {names}")
        chosen = [n for n in chosen if n in wanted]
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchlib.check_tools(args.server_cpu, args.client_cpu)
    load_before = benchlib.load_before_run()
    ensure_venv()
    args.only = choose_servers(args)
    try:
        pg_version = ensure_database(args)
    except (OSError, PgSimpleError) as exc:
        sys.exit(f"PostgreSQL on {HOST}:{args.pg_port}: {exc}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "CHOPIN_")) and k != "PYTHONPATH"}
    proxy_argv = [str(HERE / "delay_proxy.py"), "--upstream", f"{HOST}:{args.pg_port}", "--delay-ms",
                  str(args.db_rtt_ms / 2)]  # fmt: skip
    slow_argv = [str(HERE / "slow_upstream.py"), "--delay-ms", str(args.slow_ms)]
    results: list[Result] = []
    with (
        helper_process(proxy_argv, args.client_cpu) as (proxy, (proxy_port, control_port)),
        helper_process(slow_argv, args.client_cpu) as (_, (slow_port,)),
    ):
        rtt = calibrate(args, proxy_port, control_port)
        log(rtt.line())
        for server in servers(args):
            if server.name in args.only:
                results.append(
                    bench_server(
                        server, args, env, (proxy_port, control_port, proxy.pid), f"http://{HOST}:{slow_port}/"
                    )
                )
    body = render(results, args, rtt)
    print()
    print(body, end="")
    if args.markdown_out:
        load = (load_before, benchlib.load_average())
        write_section(args.markdown_out, SECTION, header(args, venv_versions(), pg_version, load) + "\n" + body)
        log(f"wrote {args.markdown_out}")
    return 0 if all(not r.skipped for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
