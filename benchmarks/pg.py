#!/usr/bin/env python3
"""PostgreSQL benchmark runner: chopin_pg against psycopg 3, asyncpg and pg8000, plus TechEmpower /db, /queries, /fortunes and /updates.

    python3 benchmarks/pg.py [--only psycopg,asyncpg,pg8000,chopin] [--scenarios ...] [--layers roundtrip,fetch,...]
                             [--placements same,cross] [--bulk-placement cross] [--rounds 3]
                             [--repeat 5] [--scale 0.1] [--duration 10] [--markdown-out benchmarks/results-pg.md]

Talks to the machine's PostgreSQL on 127.0.0.1:5432 (database test, user postgres,
trust). Stdlib only: this file runs under the system python3; each (driver, scenario)
runs in its own subprocess of benchmarks/.venv-pg's python (pg_worker.py), which this
file creates on first use, and reports its timings as JSON. A chopin row that fails
(chopin_pg missing, or a feature not there yet) prints n/a instead of stopping the run.

The layers table (--layers) shows what the DB-API layer costs: chopin_pg's native API,
chopin_pg.dbapi, SQLAlchemy Core over postgresql+chopin and over postgresql+psycopg, the
same scenarios, interleaved.

Placement: each worker pins itself and its connection's backend (pg_worker.py
--placement). A per-query scenario (one round trip per query) runs once with both on
one CPU and once across the two CPUs (--placements), as two rows: on a 2-CPU machine a
round trip costs about three times as much across CPUs, for every driver alike, and
left to the scheduler each fresh process falls on either side, so that a ratio swings
2x between runs. Its workers also take turns (--rounds fresh workers per driver, best
of rounds x --repeat runs), so that every driver meets the same background load. The
throughput scenarios run with --bulk-placement, one worker per driver as before.
"""

from __future__ import annotations

import os
import sys

# benchmarks/ holds http.py and json.py: move it to the end of sys.path so that
# `import json` below finds the standard library's, and `import benchlib` still
# finds benchmarks/benchlib.py.
if sys.path and sys.path[0] and os.path.samefile(sys.path[0], os.path.dirname(os.path.abspath(__file__))):
    sys.path.append(sys.path.pop(0))

import argparse
import datetime as dt
import json
import re
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib
from benchlib import (
    ACCEPT_JSON,
    HERE,
    HOST,
    READY_TIMEOUT_S,
    REPO,
    free_port,
    log,
    markdown_table,
    write_section,
)

VENV = HERE / ".venv-pg"
VENV_BIN = VENV / "bin"
VENV_PY = VENV_BIN / "python"
WORKER = HERE / "pg_worker.py"
PEERS = HERE / "peers"
TECHEMPOWER = HERE / "techempower"
CHOPIN_PACKAGES = {
    "chopin_pg": REPO / "packages" / "chopin-pg",
    "kowito_json": REPO / "packages" / "kowito-json",  # before chopin-core, which needs it
    "chopin_core": REPO / "packages" / "chopin-core",
    "chopin_orm": REPO / "packages" / "chopin-orm",  # /fortunes and /updates
}
PEER_MODULES = ("psycopg", "asyncpg", "pg8000", "uvicorn", "uvloop", "httptools", "orjson", "sqlalchemy")

WORKER_TIMEOUT_S = 600.0
SETUP_TIMEOUT_S = 180.0
PIP_TIMEOUT_S = 900.0

DRIVERS = ("psycopg", "asyncpg", "pg8000", "chopin")
PEER_DRIVERS = ("psycopg", "asyncpg", "pg8000")
DRIVER_LABELS = {
    "psycopg": "psycopg 3",
    "asyncpg": "asyncpg",
    "pg8000": "pg8000",
    "chopin": "chopin_pg",
    "chopin_dbapi": "chopin_pg.dbapi",
    "chopin_sa": "SQLAlchemy + chopin",
    "psycopg_sa": "SQLAlchemy + psycopg",
}
# The layers table: (column, over) pairs give its ratios.
LAYER_DRIVERS = ("chopin", "chopin_dbapi", "chopin_sa", "psycopg_sa")
LAYER_RATIOS = (("chopin_dbapi", "chopin"), ("chopin_sa", "psycopg_sa"))
LAYER_SCENARIOS = ("roundtrip", "fetch", "insert_serial", "insert_pipelined")


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    unit: str  # per second, in the throughput column
    per_query: bool = False  # one round trip per operation: timed in each of --placements


SCENARIOS = (
    Scenario("roundtrip", "10 000 x `SELECT $1::int`", "queries", per_query=True),
    Scenario("fetch", "fetch 100 000 mixed rows", "rows"),
    Scenario("copy_in", "COPY IN 1 000 000 rows", "rows"),
    Scenario("insert_serial", "1 000 INSERTs, one by one", "rows", per_query=True),
    Scenario("insert_pipelined", "1 000 INSERTs, pipelined", "rows"),
)
SCENARIO = {s.name: s for s in SCENARIOS}
# pg_worker.py --placement: where the worker and its backend run (none: where the scheduler puts them).
PLACEMENTS = ("same", "cross", "none")
PLACEMENT_LABELS = {"same": "same CPU", "cross": "across CPUs", "none": "unpinned"}
# Why --bulk-placement defaults to cross (2026-12-06, load 1.0-1.3, two runs each): fetch's ratios moved 1-9 %
# between runs pinned across CPUs against 11-24 % unpinned; pinned on one CPU the runs are tight but the client
# and the server then take turns, which hides the overlap a throughput scenario has (COPY: asyncpg 383 ms on one
# CPU, 257-283 ms across). COPY and the 4 ms pipelined INSERTs stay noisy in every placement.
BULK_WHY = (
    "the client and the server overlap as with a database on another core, and fetch's ratios moved 1-9 % between "
    "runs so placed against 11-24 % unpinned (COPY and the pipelined INSERTs stay noisier in every placement)."
)


@dataclass(frozen=True)
class Row:
    """One row of a table: a scenario timed with the worker and its backend in one placement."""

    scenario: Scenario
    placement: str

    @property
    def label(self) -> str:
        if self.scenario.per_query:
            return f"{self.scenario.label}, {PLACEMENT_LABELS[self.placement]}"
        return self.scenario.label


def table_rows(scenarios: list[str], placements: list[str], bulk_placement: str) -> list[Row]:
    """Each per-query scenario once per placement (in that order), each other scenario once."""
    rows: list[Row] = []
    for name in scenarios:
        scenario = SCENARIO[name]
        rows += [Row(scenario, p) for p in (placements if scenario.per_query else [bulk_placement])]
    return rows


WEB_PATHS = (
    ("/db", "/db"),
    ("/queries?queries=20", "/queries?queries=20"),
    ("/fortunes", "/fortunes"),
    ("/updates?queries=20", "/updates?queries=20"),
)
EXTRA_FORTUNE_CELL = b"<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"


@dataclass
class Measurement:
    ops: int = 0
    times: list[float] = field(default_factory=list)
    na: str = ""  # why there is no number, empty when there is one
    unpinned: str = ""  # the placement asked for failed: why (the run went on unpinned)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def rate(self) -> float:
        return self.ops / self.best


@dataclass
class WebResult(benchlib.WrkResult):
    na: str = ""


# ---------------------------------------------------------------- environment


def venv_can_import(modules: str, env: dict[str, str] | None = None) -> bool:
    return benchlib.venv_can_import(VENV_PY, modules, isolated=True, env=env, timeout=60)


def ensure_venv() -> dict[str, str]:
    """Create or complete benchmarks/.venv-pg; return the environment the workers run in.

    A chopin package that pip cannot install yet (a half-written pyproject) is put on
    PYTHONPATH from its src/ instead, so that the run goes on.
    """
    pip = benchlib.pip_install_command(VENV_PY)
    if not VENV_PY.exists():
        benchlib.create_venv(VENV, str(VENV.relative_to(REPO)), timeout=120)
    if not venv_can_import(", ".join(PEER_MODULES)):
        log(f"installing {HERE.name}/requirements-pg.txt into {VENV.relative_to(REPO)} ...")
        subprocess.run([*pip, "-r", str(HERE / "requirements-pg.txt")], check=True, timeout=PIP_TIMEOUT_S)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG") and key != "PYTHONPATH"}
    fallback = []
    for module, package in CHOPIN_PACKAGES.items():
        if not (package / "pyproject.toml").exists() or venv_can_import(module):
            continue
        log(f"installing {package.relative_to(REPO)} (editable) into {VENV.relative_to(REPO)} ...")
        done = subprocess.run(
            [*pip, "-e", str(package)], capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            log(f"  pip failed ({last}); using {package.relative_to(REPO)}/src on PYTHONPATH")
            fallback.append(str(package / "src"))
    if fallback:
        env["PYTHONPATH"] = os.pathsep.join(fallback)
    return env


def wait_for_server(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def ensure_postgres(host: str, port: int) -> None:
    """Bounded wait for the local server; try pg_ctlcluster once; exit with the reason otherwise."""
    if wait_for_server(host, port, 5.0):
        return
    conf = Path("/etc/postgresql")
    if conf.is_dir() and shutil.which("pg_ctlcluster"):
        for version in sorted(p.name for p in conf.iterdir()):
            log(f"PostgreSQL not answering on {host}:{port}; pg_ctlcluster {version} main start ...")
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], timeout=60, check=False
            )
        if wait_for_server(host, port, 15.0):
            return
    sys.exit(f"PostgreSQL does not accept connections on {host}:{port}")


def worker(
    args: argparse.Namespace, env: dict[str, str], *extra: str, timeout: float = WORKER_TIMEOUT_S
) -> dict[str, Any]:
    """Run pg_worker.py once in the venv and return its JSON answer (or {"error": ...})."""
    argv = [str(VENV_PY), "-P", str(WORKER), "--host", args.host, "--port", str(args.port), "--user", args.user,
            "--database", args.database, *extra]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {timeout:.0f} s"}
    try:
        answer: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"worker exit code {done.returncode}: {tail}"}
    return answer


# ---------------------------------------------------------------- drivers


def bench_drivers(
    args: argparse.Namespace, env: dict[str, str], drivers: list[str], rows: list[Row]
) -> dict[Row, dict[str, Measurement]]:
    """Time every row for every driver.

    A per-query row runs in --rounds rounds of one fresh worker per driver, each timing
    --repeat runs, the drivers' order rotated each round: the drivers then meet the same
    background load (this machine is shared), which a per-query row feels the most, and
    the best of rounds x repeat runs counts. A throughput row runs one worker per driver,
    best of --repeat.
    """
    results: dict[Row, dict[str, Measurement]] = {}
    for row in rows:
        name = row.scenario.name
        rounds = args.rounds if row.scenario.per_query else 1
        found = {driver: Measurement() for driver in drivers}
        for turn in range(rounds):
            for driver in drivers[turn % len(drivers) :] + drivers[: turn % len(drivers)]:
                m = found[driver]
                if m.na:
                    continue
                answer = worker(
                    args, env, "--driver", driver, "--scenario", name, "--repeat", str(args.repeat),
                    "--scale", str(args.scale), "--placement", row.placement,
                    "--client-cpu", str(args.client_cpu), "--server-cpu", str(args.server_cpu),
                )  # fmt: skip
                if "times" in answer:
                    m.ops = int(answer["ops"])
                    m.times += [float(t) for t in answer["times"]]
                    placement = answer.get("placement", {})
                    m.unpinned = m.unpinned or str(placement.get("error", ""))
                    if placement.get("backend_exited") is False:
                        log(f"  warning: backend {placement['backend_pid']} still runs after close (affinity restored)")
                    continue
                m.na = str(answer.get("unsupported") or answer.get("error"))
                if driver == "chopin" and "error" in answer:
                    m.na = f"chopin_pg not importable/feature missing: {m.na}"
                if args.verbose and "traceback" in answer:
                    log(str(answer["traceback"]))
        for driver, m in found.items():
            if m.na:
                log(f"  {name:<17} {driver:<12} n/a: {m.na}")
                continue
            where = f"{row.placement}: {m.unpinned}" if m.unpinned else row.placement
            runs = " ".join(f"{t * 1000:.1f}" for t in m.times)
            log(f"  {name:<17} {driver:<12} best {m.best * 1000:9.1f} ms  {m.rate:12,.0f} {row.scenario.unit}/s"
                f"  ({where}; runs {runs} ms)")  # fmt: skip
        results[row] = found
    return results


# ---------------------------------------------------------------- web (TechEmpower /db, /queries)


@dataclass(frozen=True)
class WebServer:
    name: str
    argv: tuple[str, ...]
    cwd: Path

    def command(self, port: int) -> list[str]:
        return [a.replace("{port}", str(port)) for a in self.argv]


WEB_SERVERS = (
    WebServer(
        "uvicorn+asyncpg",
        (str(VENV_BIN / "uvicorn"), "uvicorn_asyncpg_app:app", "--host", HOST, "--port", "{port}",
         "--loop", "uvloop", "--http", "httptools", "--workers", "1", "--no-access-log", "--log-level", "warning"),
        PEERS,
    ),
    WebServer("chopin", (str(VENV_PY), str(TECHEMPOWER / "app.py")), TECHEMPOWER),
)  # fmt: skip


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET over a fresh connection; status and body (Content-Length framed)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return status, body[: int(match.group(1))] if match else body


def check_web(port: int) -> str:
    """TechEmpower's shape of /db and /queries?queries=20; "" when right, else what is wrong."""
    status, body = http_get(port, "/db")
    if status == 404:
        return "no /db route yet (404)"
    try:
        world = json.loads(body)
        assert status == 200, f"/db: status {status}"
        assert set(world) == {"id", "randomNumber"}, f"/db: keys {sorted(world)}"
        assert 1 <= world["id"] <= 10000, f"/db: id {world['id']}"
        status, body = http_get(port, "/queries?queries=20")
        assert status == 200, f"/queries: status {status}"
        worlds = json.loads(body)
        assert isinstance(worlds, list) and len(worlds) == 20, "/queries?queries=20: not a list of 20"
        status, body = http_get(port, "/fortunes")
        assert status == 200, f"/fortunes: status {status}"
        assert EXTRA_FORTUNE_CELL in body and b"&lt;script&gt;" in body, "/fortunes: rows or escaping missing"
        status, body = http_get(port, "/updates?queries=20")
        assert status == 200, f"/updates: status {status}"
        worlds = json.loads(body)
        assert isinstance(worlds, list) and len(worlds) == 20, "/updates?queries=20: not a list of 20"
    except (AssertionError, ValueError, TypeError, KeyError) as exc:
        return f"wrong answer: {exc or body[:80]!r}"
    return ""


# p99 in us, ms or s only (wrk's --timeout 8s keeps latencies below a minute).
P99_UNITS = {unit: benchlib.UNIT_TO_MS[unit] for unit in ("us", "ms", "s")}


def parse_wrk(output: str) -> WebResult:
    return WebResult(
        rps=benchlib.wrk_rps(output),
        p99_ms=benchlib.wrk_percentiles(output, P99_UNITS).get(99),
        errors=benchlib.wrk_errors(output),
    )


def run_wrk(args: argparse.Namespace, port: int, path: str, duration: int) -> WebResult:
    cmd = benchlib.wrk_command(
        port,
        path,
        duration=duration,
        connections=args.connections,
        cpu=args.client_cpu,
        headers=("Host: localhost", f"Accept: {ACCEPT_JSON}", "Connection: keep-alive"),
    )
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    except subprocess.TimeoutExpired:
        return WebResult(na="wrk timed out")
    if args.verbose:
        log(done.stdout)
    result = parse_wrk(done.stdout)
    if result.rps is None:
        result.na = "wrk failed: " + (done.stderr or done.stdout).strip()[-200:]
    return result


def bench_web_server(args: argparse.Namespace, env: dict[str, str], server: WebServer) -> dict[str, WebResult]:
    port = free_port()
    server_env = {**env, "PORT": str(port), "HOST": HOST, "WORKERS": "1", "POOL_SIZE": str(args.pool_size),
                  "PGHOST": args.host, "PGPORT": str(args.port), "PGUSER": args.user, "PGDATABASE": args.database}  # fmt: skip
    cmd = ["taskset", "-c", str(args.server_cpu), *server.command(port)]
    log(f"[{server.name}] {shlex.join(cmd).replace(str(REPO) + '/', '')}  (cwd {server.cwd.relative_to(REPO)})")
    results: dict[str, WebResult] = {}

    def load(proc: subprocess.Popen[bytes]) -> str:
        """Wait for the server and check its answers, then load it; "" when it ran, else why not."""
        reason = ""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                reason = f"server exited with code {proc.returncode} before answering"
                break
            try:
                reason = check_web(port)
                break
            except (OSError, ValueError, IndexError):
                if time.monotonic() > deadline:
                    reason = f"server did not answer within {READY_TIMEOUT_S:.0f} s"
                    break
                time.sleep(0.1)
        if not reason:
            run_wrk(args, port, "/db", args.warmup)
            for label, path in WEB_PATHS:
                results[label] = run_wrk(args, port, path, args.duration)
                r = results[label]
                log(f"  {label:<20} {r.na or f'{r.rps:10,.0f} req/s  p99 {r.p99_ms} ms {r.errors}'}")
        return reason

    run = benchlib.run_server(cmd, load, env=server_env, cwd=server.cwd, tail_lines=8)
    reason, tail = run.result, run.tail
    if reason:
        if server.name == "chopin":
            reason = f"chopin web endpoints not available: {reason}"
        log(f"  n/a: {reason}")
        for line in tail:
            log(f"    {line}")
        results = {label: WebResult(na=reason) for label, _ in WEB_PATHS}
    return results


# ---------------------------------------------------------------- report


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ")


def fmt_time(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def cell(row: Row, driver: str, m: Measurement, notes: list[str]) -> str:
    """A table cell: best time and throughput, or n/a; why (n/a, or not pinned) goes to the notes."""
    if m.na:
        notes.append(f"{row.label}, {DRIVER_LABELS[driver]}: {m.na}")
        return "n/a"
    if m.unpinned:
        notes.append(f"{row.label}, {DRIVER_LABELS[driver]}: {m.unpinned}, ran where the scheduler put it")
    return f"{fmt_time(m.best)} ({fmt_rate(m.rate)} {row.scenario.unit}/s)" + (" (unpinned)" if m.unpinned else "")


def driver_table(results: dict[Row, dict[str, Measurement]], drivers: list[str]) -> tuple[list[str], list[str]]:
    """The drivers table (best time and throughput per cell, ratios chopin/peer) and its notes."""
    peers = [d for d in drivers if d != "chopin"]
    header = ["scenario", *(DRIVER_LABELS[d] for d in drivers)]
    if "chopin" in drivers:
        header += [f"chopin / {DRIVER_LABELS[p]}" for p in peers]
    rows: list[list[str]] = []
    notes: list[str] = []
    for row, by_driver in results.items():
        cells = [row.label, *(cell(row, driver, by_driver[driver], notes) for driver in drivers)]
        if "chopin" in drivers:
            chopin = by_driver["chopin"]
            for peer in peers:
                other = by_driver[peer]
                ok = not chopin.na and not other.na
                cells.append(f"{chopin.rate / other.rate:.2f}x" if ok else "n/a")
        rows.append(cells)
    return markdown_table(header, rows).split("\n"), notes


def layers_table(results: dict[Row, dict[str, Measurement]]) -> tuple[list[str], list[str]]:
    """The layers table: native, DB-API and SQLAlchemy throughput, and what each layer costs (ratios)."""
    header = [
        "scenario",
        *(DRIVER_LABELS[d] for d in LAYER_DRIVERS),
        *(f"{DRIVER_LABELS[a]} / {DRIVER_LABELS[b]}" for a, b in LAYER_RATIOS),
    ]
    rows: list[list[str]] = []
    notes: list[str] = []
    for row, by_driver in results.items():
        cells = [row.label, *(cell(row, driver, by_driver[driver], notes) for driver in LAYER_DRIVERS)]
        for a, b in LAYER_RATIOS:
            ok = not by_driver[a].na and not by_driver[b].na
            cells.append(f"{by_driver[a].rate / by_driver[b].rate:.2f}x" if ok else "n/a")
        rows.append(cells)
    return markdown_table(header, rows).split("\n"), notes


def web_table(web: dict[str, dict[str, WebResult]]) -> tuple[list[str], list[str]]:
    servers = list(web)
    header = ["endpoint", *(f"{s} req/s" for s in servers), *(f"{s} p99" for s in servers)]
    if "chopin" in servers and "uvicorn+asyncpg" in servers:
        header.append("chopin / uvicorn+asyncpg")
    table: list[list[str]] = []
    notes: list[str] = []
    for label, _ in WEB_PATHS:
        rows = {s: web[s][label] for s in servers}
        cells = [f"`{label}`"]
        for s in servers:
            r = rows[s]
            cells.append("n/a" if r.na else fmt_rate(r.rps or 0))
            if r.na:
                notes.append(f"`{label}`, {s}: {r.na}")
            elif r.errors:
                notes.append(f"`{label}`, {s}: {r.errors}")
        for s in servers:
            r = rows[s]
            cells.append("n/a" if r.na or r.p99_ms is None else f"{r.p99_ms:.1f} ms")
        if len(header) > 1 + 2 * len(servers):
            c, u = rows["chopin"], rows["uvicorn+asyncpg"]
            cells.append(f"{(c.rps or 0) / u.rps:.2f}x" if not c.na and not u.na and u.rps else "n/a")
        table.append(cells)
    return markdown_table(header, table).split("\n"), sorted(set(notes), key=notes.index)


def markdown(
    args: argparse.Namespace,
    versions: dict[str, Any],
    server_version: str,
    drivers: list[str],
    results: dict[Row, dict[str, Measurement]],
    web: dict[str, dict[str, WebResult]],
    load: tuple[float, float],
    layers: dict[Row, dict[str, Measurement]] | None = None,
) -> str:
    command = "python3 benchmarks/pg.py " + shlex.join(sys.argv[1:])
    out = [
        "## PostgreSQL drivers",
        "",
        f"`{command.strip()}` on {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        benchlib.pg_machine_line(server_version, args.host, args.port, load),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "at") + ".",
        f"- Drivers: best of {args.repeat} runs after an untimed warm-up, one connection, no TLS, "
        f"each (driver, scenario) in a fresh process (a per-query row: best of {args.rounds} such processes per "
        "driver, the drivers taking turns); tables UNLOGGED for COPY and INSERT. "
        "Ratios are chopin_pg's throughput over the peer's (above 1: chopin_pg faster).",
        "- chopin_pg's calls (benchmarks/pg_chopin.py): `query` for fetch, `copy_records` (binary COPY, as "
        "asyncpg's `copy_records_to_table`) for COPY IN, `executemany` (one write, one Sync) for the pipelined "
        "INSERTs, `execute` per row for the serial ones.",
        placement_line(args),
    ]
    if args.scale != 1:
        out.append(f"- **Scaled run**: every count multiplied by {args.scale}; the labels show full-size counts.")
    out += ["", "### Drivers", ""]
    lines, notes = driver_table(results, drivers)
    out += lines
    if layers:
        out += [
            "",
            "### The DB-API layer: chopin_pg native, chopin_pg.dbapi, SQLAlchemy Core over chopin and over psycopg",
            "",
            "Ratios below 1 are what the layer costs: chopin_pg.dbapi against the native API, and "
            "SQLAlchemy on postgresql+chopin against SQLAlchemy on postgresql+psycopg.",
            "",
        ]
        layer_lines, layer_notes = layers_table(layers)
        out += layer_lines
        notes += layer_notes
    if web:
        out += [
            "",
            f"### TechEmpower `/db`, `/queries`, `/fortunes` and `/updates` (wrk -t1 -c{args.connections} -d{args.duration}s pinned to "
            f"CPU {args.client_cpu}, server one worker pinned to CPU {args.server_cpu}, pool of {args.pool_size})",
            "",
        ]
        web_lines, web_notes = web_table(web)
        out += web_lines
        notes += web_notes
    if notes:
        out += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(out) + "\n"


def placement_line(args: argparse.Namespace) -> str:
    """The "- Placement:" bullet: where workers and backends ran, and why per-query rows come in pairs."""
    cpus = {"same": f"both on CPU {args.client_cpu}", "cross": f"the worker on CPU {args.client_cpu}, its backend on "
            f"CPU {args.server_cpu}", "none": "where the scheduler put them"}  # fmt: skip
    shown = ", ".join(
        f"{PLACEMENT_LABELS[p]}: {cpus[p]}" for p in dict.fromkeys([*args.placements, args.bulk_placement])
    )
    return (
        "- Placement: each worker pins itself and its connection's backend (`sched_setaffinity` on "
        f"`pg_backend_pid()`); {shown}. The per-query rows (one round trip per query) come once per placement: "
        "on a 2-CPU VM a bare round trip takes about 20 us on one CPU and 57 us across (waking the other CPU), for "
        "every driver alike, and unpinned each fresh process lands on either side, which swung their ratios 2x "
        "between runs. On one CPU a row measures what client and server spend per query; across CPUs the wake-ups "
        "add a common latency that pulls ratios towards 1 and varies with the host, so those rows are the noisier. "
        f"The throughput rows (fetch, COPY, pipelined) run {PLACEMENT_LABELS[args.bulk_placement]}: {BULK_WHY}"
    )


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DRIVERS), help="drivers: " + ",".join(DRIVERS))
    parser.add_argument("--scenarios", default=",".join([*SCENARIO, "web"]), help="plus 'web' for /db, /queries")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per driver and scenario (best is kept)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="per-query scenarios: fresh workers per driver, taking turns"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count (0.1 for a quick look)")
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds per endpoint")
    parser.add_argument("--warmup", type=int, default=2, help="wrk warm-up seconds per server")
    parser.add_argument("--connections", type=int, default=256, help="wrk connections")
    parser.add_argument("--pool-size", type=int, default=32, help="database connections of each web server")
    parser.add_argument("--server-cpu", type=int, default=0, help="the web server's CPU; backends' across CPUs")
    parser.add_argument("--client-cpu", type=int, default=1, help="wrk's CPU; the workers' (and backends' on one CPU)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--database", default="test")
    parser.add_argument(
        "--layers",
        default=",".join(LAYER_SCENARIOS),
        help="scenarios of the DB-API/SQLAlchemy layers table ('' to skip it)",
    )
    parser.add_argument(
        "--placements",
        default="same,cross",
        help="per-query scenarios: one row per placement (same: worker and backend on --client-cpu; cross: "
        "worker on --client-cpu, backend on --server-cpu; none: unpinned)",
    )
    parser.add_argument(
        "--bulk-placement", default="cross", choices=PLACEMENTS, help="placement of the throughput scenarios"
    )
    parser.add_argument("--markdown-out", type=Path, help="write the report section to this file")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if args.host != HOST:
        sys.exit(f"only {HOST} is ever loaded")
    drivers = [d for d in args.only.split(",") if d]
    scenarios = [s for s in args.scenarios.split(",") if s]
    layer_scenarios = [s for s in args.layers.split(",") if s]
    args.placements = [p for p in args.placements.split(",") if p]
    unknown = [d for d in drivers if d not in DRIVERS] + [s for s in scenarios if s not in SCENARIO and s != "web"]
    unknown += [s for s in layer_scenarios if s not in SCENARIO]
    unknown += [p for p in args.placements if p not in PLACEMENTS] + ([] if args.placements else ["no placement"])
    if unknown:
        sys.exit(f"unknown driver, scenario or placement: {', '.join(unknown)}")

    env = ensure_venv()
    load_before = benchlib.load_before_run(
        "warning: load average {load:.2f} before the run: other work shares the CPUs, numbers will be noisy"
    )
    ensure_postgres(args.host, args.port)
    versions = worker(args, env, "--versions", timeout=60)
    setup = worker(args, env, "--setup", timeout=SETUP_TIMEOUT_S)
    if "error" in setup:
        sys.exit(f"setting up the tables failed: {setup['error']}")
    server_version = str(setup["server"])
    log(f"PostgreSQL {server_version}; tables ready in {float(setup['seconds']):.1f} s")

    driver_rows = table_rows([s for s in scenarios if s != "web"], args.placements, args.bulk_placement)
    results = bench_drivers(args, env, drivers, driver_rows)
    layer_rows = table_rows(layer_scenarios, args.placements, args.bulk_placement)
    layers = bench_drivers(args, env, list(LAYER_DRIVERS), layer_rows) if layer_rows else {}
    web: dict[str, dict[str, WebResult]] = {}
    if "web" in scenarios:
        if shutil.which("wrk") is None or shutil.which("taskset") is None:
            log("wrk or taskset missing: skipping /db and /queries (apt-get install wrk util-linux)")
        else:
            for server in WEB_SERVERS:
                web[server.name] = bench_web_server(args, env, server)

    load = (load_before, benchlib.load_average())
    report = markdown(args, versions, server_version, drivers, results, web, load, layers)
    print(report)
    if args.markdown_out:
        write_section(args.markdown_out, "pg", report)
        log(f"wrote {args.markdown_out}")


if __name__ == "__main__":
    main()
