#!/usr/bin/env python3
"""HTTP benchmark runner: Chopin against its peers, TechEmpower style, one core each.

    python3 benchmarks/http.py [--duration 10] [--connections 256]
                               [--only chopin,uvicorn,...] [--markdown-out FILE]

Every server runs with one worker pinned to one CPU (taskset), wrk runs pinned to
another, and only 127.0.0.1 is ever loaded. The HTTP/2 rows (chopin-h2c, hypercorn-h2c,
chopin-h2-tls, hypercorn-h2-tls) are loaded with h2load instead: cleartext with prior
knowledge, and TLS with ALPN h2 (a throwaway certificate made with the openssl CLI). Stdlib only: this file runs under the
system python3 and drives the servers installed in benchmarks/.venv, which it
creates on first use.
"""

from __future__ import annotations

import os
import sys

# benchmarks/ holds http.py and json.py: move it to the end of sys.path so that
# `import json` and `import http` below find the standard library's, and
# `import benchlib` still finds benchmarks/benchlib.py.
if sys.path and sys.path[0] and os.path.samefile(sys.path[0], os.path.dirname(os.path.abspath(__file__))):
    sys.path.append(sys.path.pop(0))

import argparse
import datetime as dt
import json
import re
import shlex
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
from benchlib import (
    ACCEPT_JSON,
    HERE,
    HOST,
    REPO,
    check_tools,
    cpu_model,
    fmt_ms,
    fmt_num,
    fmt_ratio,
    free_port,
    http_get,
    log,
    markdown_table,
    peak_rss_kib,
    wait_ready,
    write_section,
)

VENV = HERE / ".venv"
VENV_BIN = VENV / "bin"
VENV_PY = VENV_BIN / "python"
PEERS = HERE / "peers"
CHOPIN_PKG = REPO / "packages" / "chopin-core"
KOWITO_PKG = REPO / "packages" / "kowito-json"  # chopin-core's JSON codec
PIPELINE_LUA = HERE / "pipeline.lua"

PLAINTEXT_BODY = b"Hello, World!"
JSON_BODY = {"message": "Hello, World!"}
# The Accept headers TechEmpower's wrk runs send.
ACCEPT_PLAINTEXT = "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7"
PEER_PACKAGES = ("uvicorn", "uvloop", "httptools", "granian", "socketify", "orjson", "gunicorn")
PEER_MODULES = PEER_PACKAGES  # each imports under its distribution's name
# The HTTP/2 rows' peer and the h2 library it uses (chopin-core[http2] brings hpack, which h2 needs too).
H2_REQUIREMENTS = ("hypercorn>=0.17,<1", "h2>=4.1,<5")


@dataclass(frozen=True)
class Test:
    """One row of the tables: an endpoint, optionally pipelined."""

    label: str
    endpoint: str  # "plaintext" or "json"
    depth: int  # requests per write; 1 means no pipelining

    @property
    def path(self) -> str:
        return "/" + self.endpoint

    @property
    def accept(self) -> str:
        return ACCEPT_PLAINTEXT if self.endpoint == "plaintext" else ACCEPT_JSON


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server; "{port}" in argv is replaced by its port."""

    name: str
    argv: tuple[str, ...]
    cwd: Path
    endpoints: frozenset[str] = frozenset({"plaintext", "json"})
    env: tuple[tuple[str, str], ...] = ()
    category: str = "http"  # "wsgi": WSGI servers, compared among themselves; "h2": HTTP/2 via h2load
    tls: bool = False  # h2 rows: TLS (ALPN h2) rather than cleartext prior knowledge

    @property
    def is_peer(self) -> bool:
        return self.category == "http" and not self.name.startswith("chopin") and self.name != "bare"

    @property
    def is_wsgi_peer(self) -> bool:
        return self.category == "wsgi" and not self.name.startswith("chopin")

    def command(self, port: int) -> list[str]:
        return [arg.replace("{port}", str(port)) for arg in self.argv]

    def display(self, port: int | str = "{port}") -> str:
        """The command as a shell line, env included, paths relative to the repository."""
        env = [f"{key}={value}" for key, value in self.env]
        if "{port}" not in self.argv:
            env.insert(0, f"PORT={port}")
        line = " ".join([*env, *self.command(0)]).replace(str(REPO) + "/", "")
        return line.replace("--port 0", f"--port {port}")


HYPERCORN = (
    str(VENV_BIN / "hypercorn"),
    "--bind",
    f"{HOST}:{{port}}",
    "--workers",
    "1",
    "--worker-class",
    "uvloop",
    "--log-level",
    "warning",
)

# Peers run from peers/, not from benchmarks/: uvicorn and granian put their working
# directory on sys.path, where this file would shadow the stdlib `http` package.
SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec(
        name="chopin",
        argv=(str(VENV_PY), str(HERE / "techempower" / "app.py")),
        cwd=HERE / "techempower",
        env=(("WORKERS", "1"),),
    ),
    ServerSpec(
        # The same app with with_metrics() on: the table shows what metrics cost.
        name="chopin+metrics",
        argv=(str(VENV_PY), str(HERE / "techempower" / "app.py")),
        cwd=HERE / "techempower",
        env=(("WORKERS", "1"), ("METRICS", "1")),
    ),
    ServerSpec(
        name="uvicorn",
        argv=(
            str(VENV_BIN / "uvicorn"),
            "uvicorn_app:app",
            "--host",
            HOST,
            "--port",
            "{port}",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ),
        cwd=PEERS,
    ),
    ServerSpec(
        name="granian",
        argv=(
            str(VENV_BIN / "granian"),
            "--interface",
            "rsgi",
            "--host",
            HOST,
            "--port",
            "{port}",
            "--workers",
            "1",
            "--runtime-mode",
            "st",
            "--runtime-threads",
            "1",
            "--blocking-threads",
            "1",
            "--http",
            "1",
            "--no-ws",
            "--loop",
            "uvloop",
            "--log-level",
            "warning",
            "granian_app:app",
        ),
        cwd=PEERS,
    ),
    ServerSpec(
        name="socketify",
        argv=(str(VENV_PY), str(PEERS / "socketify_app.py")),
        cwd=PEERS,
    ),
    ServerSpec(
        # WSGI: the same Flask-free plaintext app on chopin's wsgi.serve, gunicorn and granian.
        name="chopin-wsgi",
        argv=(str(VENV_PY), str(PEERS / "wsgi_app.py")),
        cwd=PEERS,
        endpoints=frozenset({"plaintext"}),
        env=(("WORKERS", "1"),),
        category="wsgi",
    ),
    ServerSpec(
        name="gunicorn",
        argv=(
            str(VENV_BIN / "gunicorn"),
            "--workers",
            "1",
            "--worker-class",
            "sync",
            "--bind",
            f"{HOST}:{{port}}",
            "--log-level",
            "warning",
            "wsgi_app:app",
        ),
        cwd=PEERS,
        endpoints=frozenset({"plaintext"}),
        category="wsgi",
    ),
    ServerSpec(
        name="granian-wsgi",
        argv=(
            str(VENV_BIN / "granian"),
            "--interface",
            "wsgi",
            "--host",
            HOST,
            "--port",
            "{port}",
            "--workers",
            "1",
            "--runtime-mode",
            "st",
            "--runtime-threads",
            "1",
            "--blocking-threads",
            "1",
            "--http",
            "1",
            "--no-ws",
            "--log-level",
            "warning",
            "wsgi_app:app",
        ),
        cwd=PEERS,
        endpoints=frozenset({"plaintext"}),
        category="wsgi",
    ),
    # HTTP/2 (h2load): the same plaintext app, h2c with prior knowledge and h2 over TLS.
    ServerSpec(
        name="chopin-h2c",
        argv=(str(VENV_PY), str(HERE / "techempower" / "app.py")),
        cwd=HERE / "techempower",
        endpoints=frozenset({"plaintext"}),
        env=(("WORKERS", "1"),),
        category="h2",
    ),
    ServerSpec(
        name="hypercorn-h2c",
        argv=(*HYPERCORN, "uvicorn_app:app"),
        cwd=PEERS,
        endpoints=frozenset({"plaintext"}),
        category="h2",
    ),
    ServerSpec(
        name="chopin-h2-tls",
        argv=(str(VENV_PY), str(PEERS / "chopin_tls_app.py")),
        cwd=PEERS,
        endpoints=frozenset({"plaintext"}),
        env=(("WORKERS", "1"),),
        category="h2",
        tls=True,
    ),
    ServerSpec(
        name="hypercorn-h2-tls",
        argv=(*HYPERCORN, "--certfile", "{cert}", "--keyfile", "{key}", "uvicorn_app:app"),
        cwd=PEERS,
        endpoints=frozenset({"plaintext"}),
        category="h2",
        tls=True,
    ),
    ServerSpec(
        name="bare",
        argv=(str(VENV_PY), str(PEERS / "bare_epoll.py")),
        cwd=PEERS,
        endpoints=frozenset({"plaintext"}),
    ),
)
SPEC = {spec.name: spec for spec in SERVERS}


def make_tests(depth: int) -> list[Test]:
    return [
        Test("plaintext", "plaintext", 1),
        Test("json", "json", 1),
        Test(f"plaintext pipelined {depth}", "plaintext", depth),
        Test(f"json pipelined {depth}", "json", depth),
    ]


@dataclass
class WrkResult(benchlib.WrkResult):
    p99_note: str = ""  # why p99 is missing although wrk ran


@dataclass
class ServerResult:
    name: str
    skipped: str = ""  # why the server did not run, empty when it did
    rows: dict[str, WrkResult] = field(default_factory=dict)
    rss_kib: int | None = None
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- environment


def venv_can_import(module: str) -> bool:
    return benchlib.venv_can_import(VENV_PY, module)


def ensure_venv(want_chopin: bool) -> None:
    """Create benchmarks/.venv, or complete it: the peers, and chopin-core editable."""
    has_chopin_pkg = (CHOPIN_PKG / "pyproject.toml").exists()
    pip = benchlib.pip_install_command(VENV_PY)
    if not VENV_PY.exists():
        benchlib.create_venv(VENV, str(VENV.relative_to(REPO)))
    install = []
    if not venv_can_import(", ".join(PEER_MODULES)):
        install += ["-r", str(HERE / "requirements.txt")]
    if not venv_can_import("hypercorn, h2"):
        install += list(H2_REQUIREMENTS)
    if want_chopin and has_chopin_pkg and not venv_can_import("chopin_core, h2"):
        install += ["-e", str(KOWITO_PKG), "-e", f"{CHOPIN_PKG}[http2]"]
    if install:
        log(f"installing into {VENV.relative_to(REPO)}: {shlex.join(install)} ...")
        subprocess.run([*pip, *install], check=True)


def venv_versions() -> tuple[str, dict[str, str]]:
    """The venv's Python version and the installed version of each server package."""
    names = ("chopin-core", *PEER_PACKAGES, "hypercorn", "h2")
    code = (
        "import importlib.metadata as m, json, platform\n"
        f"names = {names!r}\n"
        "versions = {}\n"
        "for name in names:\n"
        "    try:\n"
        "        versions[name] = m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps([platform.python_version(), versions]))\n"
    )
    out = subprocess.run([str(VENV_PY), "-c", code], capture_output=True, text=True, check=True).stdout
    python, versions = json.loads(out)
    return python, versions


# ---------------------------------------------------------------- HTTP probing


def check_responses(port: int, endpoints: frozenset[str]) -> list[str]:
    """TechEmpower's rules, loosely: right body and type, one Server, one Date."""
    problems: list[str] = []
    for endpoint in sorted(endpoints):
        try:
            probe = http_get(port, "/" + endpoint)
        except (OSError, ValueError, IndexError) as exc:
            problems.append(f"/{endpoint}: request failed: {exc}")
            continue
        content_type = ",".join(probe.header_values("content-type"))
        if probe.status != 200:
            problems.append(f"/{endpoint}: status {probe.status}")
        if endpoint == "plaintext":
            body_ok = probe.body == PLAINTEXT_BODY
            type_ok = content_type.startswith("text/plain")
        else:
            try:
                body_ok = json.loads(probe.body) == JSON_BODY
            except ValueError:
                body_ok = False
            type_ok = content_type.startswith("application/json")
        if not body_ok:
            problems.append(f"/{endpoint}: unexpected body {probe.body[:60]!r}")
        if not type_ok:
            problems.append(f"/{endpoint}: Content-Type {content_type!r}")
        for name in ("server", "date"):
            count = len(probe.header_values(name))
            if count != 1:
                problems.append(f"/{endpoint}: {count} {name.title()} headers")
    return problems


# ---------------------------------------------------------------- wrk


# pipeline.lua's done() prints e.g. "Batch latency: p50 812 p90 1400 p99 2300 ..."
BATCH_RE = re.compile(r"^Batch latency: p50 \d+ p90 \d+ p99 (\d+)", re.MULTILINE)


def parse_wrk(output: str) -> WrkResult:
    result = WrkResult(rps=benchlib.wrk_rps(output))
    if match := BATCH_RE.search(output):
        # Pipelined runs: pipeline.lua's per-batch percentiles, see there.
        result.p99_ms = int(match.group(1)) / 1000
    elif "Batch latency: skipped" in output:
        result.p99_note = "wrk's histogram too wide for pipeline.lua to read back"
    else:
        percentiles = benchlib.wrk_percentiles(output)
        p50, p99 = percentiles.get(50), percentiles.get(99)
        if p50 is not None and p99 is not None and p99 >= p50 > 0:
            result.p99_ms = p99
        elif p99 is not None:
            result.p99_note = f"wrk printed p99 {p99:g} ms below p50 {p50} ms"
    result.errors = benchlib.wrk_errors(output)
    return result


def wrk_command(port: int, test: Test, duration: int, connections: int, cpu: int) -> list[str]:
    pipelined = test.depth > 1
    return benchlib.wrk_command(
        port,
        test.path,
        duration=duration,
        connections=connections,
        cpu=cpu,
        headers=("Host: localhost", f"Accept: {test.accept}", "Connection: keep-alive"),
        script=PIPELINE_LUA if pipelined else None,
        script_args=(str(test.depth), str(connections)) if pipelined else (),
    )


def run_wrk(cmd: list[str], duration: int) -> tuple[WrkResult, str]:
    return benchlib.run_wrk(cmd, duration, parse_wrk)


# ---------------------------------------------------------------- one server


def bench_server(spec: ServerSpec, tests: list[Test], args: argparse.Namespace, port: int) -> ServerResult:
    """Start one server pinned to its CPU, load it row by row, stop it."""
    env = {**os.environ, "PORT": str(port), "HOST": HOST, **dict(spec.env)}
    env.pop("PYTHONPATH", None)
    cmd = ["taskset", "-c", str(args.server_cpu), *spec.command(port)]
    log(f"[{spec.name}] {spec.display(port)}  (cwd {spec.cwd.relative_to(REPO)}, CPU {args.server_cpu})")
    run = benchlib.run_server(cmd, lambda proc: load_server(spec, proc, tests, args, port), env=env, cwd=spec.cwd)
    benchlib.log_server_end(spec.name, run.result.skipped, run)
    return run.result


def load_server(
    spec: ServerSpec,
    proc: subprocess.Popen[bytes],
    tests: list[Test],
    args: argparse.Namespace,
    port: int,
) -> ServerResult:
    result = ServerResult(spec.name)
    first = "plaintext" if "plaintext" in spec.endpoints else "json"
    if reason := wait_ready(proc, port, "/" + first):
        result.skipped = reason
        return result
    result.warnings = check_responses(port, spec.endpoints)
    for warning in result.warnings:
        log(f"[{spec.name}] warning: {warning}")
    warmup = Test("warmup", first, 1)
    run_wrk(
        wrk_command(port, warmup, args.warmup, args.connections, args.client_cpu),
        args.warmup,
    )
    for test in tests:
        if test.endpoint not in spec.endpoints:
            continue
        cmd = wrk_command(port, test, args.duration, args.connections, args.client_cpu)
        row, raw = run_wrk(cmd, args.duration)
        result.rows[test.label] = row
        if args.verbose:
            log(raw)
        log(
            f"[{spec.name}] {test.label:<24} {fmt_rps(row.rps):>10} req/s"
            f"  p99 {fmt_ms(row.p99_ms):>9}  {row.errors} {row.p99_note}".rstrip()
        )
        if proc.poll() is not None:
            result.warnings.append(f"exited with code {proc.returncode} mid-run")
            break
    result.rss_kib = peak_rss_kib(proc.pid)
    return result


def median_run(runs: list[ServerResult]) -> ServerResult:
    """One server's runs as one result: per row, the run with the median req/s (its p99 with it)."""
    merged = ServerResult(runs[0].name)
    merged.skipped = next((r.skipped for r in runs if r.skipped), "")
    merged.warnings = list(dict.fromkeys(w for r in runs for w in r.warnings))
    rss = [r.rss_kib for r in runs if r.rss_kib is not None]
    merged.rss_kib = max(rss) if rss else None
    for label in dict.fromkeys(label for r in runs for label in r.rows):
        rows = sorted((r.rows[label] for r in runs if label in r.rows), key=lambda row: row.rps or 0.0)
        merged.rows[label] = rows[(len(rows) - 1) // 2]  # the lower median: an even count never averages
    return merged


# ---------------------------------------------------------------- metrics overhead


@dataclass
class OverheadRound:
    rps: float
    cpu_us: float  # server CPU (user + system) per request


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc (the server runs one worker, no fork)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overhead_round(name: str, args: argparse.Namespace, port: int) -> OverheadRound | None:
    """One server start, a warm-up, one plaintext wrk run: req/s and server CPU per request."""
    spec = SPEC[name]
    env = {**os.environ, "PORT": str(port), "HOST": HOST, **dict(spec.env)}
    env.pop("PYTHONPATH", None)
    cmd = ["taskset", "-c", str(args.server_cpu), *spec.command(port)]
    test = Test("plaintext", "plaintext", 1)

    def load(proc: subprocess.Popen[bytes]) -> OverheadRound | None:
        if wait_ready(proc, port, "/plaintext"):
            return None
        run_wrk(wrk_command(port, Test("warmup", "plaintext", 1), args.warmup, args.connections, args.client_cpu), 1)
        cpu_before = process_cpu_seconds(proc.pid)
        row, _ = run_wrk(wrk_command(port, test, args.duration, args.connections, args.client_cpu), args.duration)
        cpu = process_cpu_seconds(proc.pid) - cpu_before
        if not row.rps:
            return None
        return OverheadRound(row.rps, cpu / (row.rps * args.duration) * 1e6)

    run = benchlib.run_server(cmd, load, env=env, cwd=spec.cwd)
    return run.result


def metrics_overhead(args: argparse.Namespace, taken: set[int]) -> str:
    """``--metrics-rounds`` alternating runs of chopin and chopin+metrics on plaintext: the median overhead.

    One pair of runs moves by several percent with whatever else the machine does;
    alternating the two servers, and which of them goes first (rounds go AB, BA, AB,
    ...: a drift during a round favours neither), and taking medians cancels that.
    """
    pairs: list[tuple[OverheadRound, OverheadRound]] = []
    for n in range(args.metrics_rounds):
        if n % 2 == 0:
            plain = overhead_round("chopin", args, free_port(taken))
            metered = overhead_round("chopin+metrics", args, free_port(taken))
        else:
            metered = overhead_round("chopin+metrics", args, free_port(taken))
            plain = overhead_round("chopin", args, free_port(taken))
        if plain is None or metered is None:
            log(f"[metrics overhead] round {n + 1}: a server did not answer; skipped")
            continue
        pairs.append((plain, metered))
        log(
            f"[metrics overhead] round {n + 1}: {fmt_rps(plain.rps)} vs {fmt_rps(metered.rps)} req/s, "
            f"{plain.cpu_us:.2f} vs {metered.cpu_us:.2f} us CPU/request"
        )
    if not pairs:
        return ""
    rows = [
        [
            str(i + 1),
            fmt_rps(a.rps),
            fmt_rps(b.rps),
            f"{(1 - b.rps / a.rps) * 100:.1f} %",
            f"{a.cpu_us:.2f}",
            f"{b.cpu_us:.2f}",
            f"{(b.cpu_us / a.cpu_us - 1) * 100:.1f} %",
        ]
        for i, (a, b) in enumerate(pairs)
    ]
    by_rps = statistics.median(1 - b.rps / a.rps for a, b in pairs) * 100
    by_cpu = statistics.median(b.cpu_us / a.cpu_us - 1 for a, b in pairs) * 100
    rows.append(["median", "", "", f"{by_rps:.1f} %", "", "", f"{by_cpu:.1f} %"])
    total_a, total_b = sum(a.rps for a, _ in pairs), sum(b.rps for _, b in pairs)
    rows.append(["all rounds", fmt_rps(total_a / len(pairs)), fmt_rps(total_b / len(pairs)),
                 f"{(1 - total_b / total_a) * 100:.1f} %", "", "", ""])  # fmt: skip
    header = [
        "round",
        "chopin req/s",
        "chopin+metrics req/s",
        "throughput lost",
        "chopin CPU us/req",
        "+metrics CPU us/req",
        "CPU added",
    ]
    return "\n".join(
        [
            "",
            f"### Metrics overhead: plaintext, {len(pairs)} alternating rounds",
            "",
            markdown_table(header, rows),
            "",
            (
                f"Each round starts chopin and chopin with `with_metrics()` (METRICS=1), in turns (odd rounds "
                f"chopin first, even rounds chopin+metrics first), each for a {args.warmup} s warm-up and one "
                f"{args.duration} s wrk run (`-c{args.connections}`, plaintext, no pipelining); CPU is the server "
                'process\'s user + system time over the run divided by the requests served; "all rounds" '
                "compares the mean req/s. The target is an overhead under 5 %. On a shared machine one run moves "
                "by more than that either way, so the figure that decides is the instruction count in the "
                "metrics section (benchmarks/metrics_cost.py, callgrind)."
            ),
            "",
        ]
    )


# ---------------------------------------------------------------- HTTP/2 (h2load)

H2LOAD_RPS_RE = re.compile(r"finished in [\d.]+\w*, ([\d.]+) req/s")
H2LOAD_REQS_RE = re.compile(
    r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored"
)
H2LOAD_TIME_RE = re.compile(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)")
H2LOAD_PROTO_RE = re.compile(r"Application protocol: (\S+)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class H2Row:
    rps: float | None = None
    mean_ms: float | None = None
    max_ms: float | None = None
    protocol: str = ""
    errors: str = ""
    p99_note: str = ""  # notes() reads it; h2load prints no percentiles


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1/localhost (h2load does not verify it)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    names = "subjectAltName=DNS:localhost,IP:127.0.0.1"
    subject = ["-subj", "/CN=localhost", "-addext", names, "-days", "2", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", *subject],
        check=True,
        capture_output=True,
    )
    return cert, key


def h2load_command(port: int, tls: bool, duration: int, args: argparse.Namespace) -> list[str]:
    scheme = "https" if tls else "http"  # http:// is h2c with prior knowledge in h2load
    return [
        "taskset",
        "-c",
        str(args.client_cpu),
        "h2load",
        "-t1",
        f"-c{args.h2_connections}",
        f"-m{args.h2_streams}",
        f"-D{duration}",
        "-H",
        f"accept: {ACCEPT_PLAINTEXT}",
        f"{scheme}://{HOST}:{port}/plaintext",
    ]


def parse_h2load(output: str) -> H2Row:
    row = H2Row()
    if match := H2LOAD_RPS_RE.search(output):
        row.rps = float(match.group(1))
    if match := H2LOAD_TIME_RE.search(output):
        row.max_ms = float(match.group(3)) * _UNIT_MS[match.group(4)]
        row.mean_ms = float(match.group(5)) * _UNIT_MS[match.group(6)]
    if match := H2LOAD_PROTO_RE.search(output):
        row.protocol = match.group(1)
    if match := H2LOAD_REQS_RE.search(output):
        total, ok, failed, errored = (int(g) for g in match.groups())
        if failed or errored or ok < total:
            row.errors = f"{failed} failed, {errored} errored of {total}"
    return row


def run_h2load(port: int, tls: bool, duration: int, args: argparse.Namespace) -> tuple[H2Row, str]:
    cmd = h2load_command(port, tls, duration, args)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    except subprocess.TimeoutExpired:
        return H2Row(errors="h2load timed out"), ""
    row = parse_h2load(done.stdout)
    if row.rps is None:
        lines = (done.stderr or done.stdout).strip().splitlines()
        row.errors = lines[-1] if lines else "h2load printed nothing"
    return row, done.stdout


def wait_ready_h2(proc: subprocess.Popen[bytes], port: int, tls: bool, args: argparse.Namespace) -> str:
    """Poll with one short h2load run until the server answers over HTTP/2."""
    deadline = time.monotonic() + benchlib.READY_TIMEOUT_S
    scheme = "https" if tls else "http"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with code {proc.returncode} before answering"
        probe = subprocess.run(
            ["h2load", "-n1", "-c1", f"{scheme}://{HOST}:{port}/plaintext"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if "1 succeeded" in probe.stdout:
            return ""
        time.sleep(0.2)
    return f"did not answer HTTP/2 within {benchlib.READY_TIMEOUT_S:.0f} s"


def bench_h2_server(spec: ServerSpec, args: argparse.Namespace, port: int, cert: tuple[Path, Path]) -> ServerResult:
    """Start one server pinned to its CPU and load it with h2load."""
    env = {**os.environ, "PORT": str(port), "HOST": HOST, **dict(spec.env)}
    env.pop("PYTHONPATH", None)
    if spec.tls:
        env.update(TLS_CERT=str(cert[0]), TLS_KEY=str(cert[1]))
    argv = [a.replace("{cert}", str(cert[0])).replace("{key}", str(cert[1])) for a in spec.command(port)]
    cmd = ["taskset", "-c", str(args.server_cpu), *argv]
    log(f"[{spec.name}] {spec.display(port)}  (cwd {spec.cwd.relative_to(REPO)}, CPU {args.server_cpu})")

    def load(proc: subprocess.Popen[bytes]) -> ServerResult:
        result = ServerResult(spec.name)
        if reason := wait_ready_h2(proc, port, spec.tls, args):
            result.skipped = reason
            return result
        run_h2load(port, spec.tls, args.warmup, args)
        row, raw = run_h2load(port, spec.tls, args.duration, args)
        if args.verbose:
            log(raw)
        if row.protocol and row.protocol != "h2" and row.protocol != "h2c":
            result.warnings.append(f"h2load negotiated {row.protocol}, not h2")
        label = H2_LABEL_TLS if spec.tls else H2_LABEL_H2C
        result.rows[label] = row  # type: ignore[assignment]
        log(f"[{spec.name}] {label:<24} {fmt_rps(row.rps):>10} req/s  mean {fmt_ms(row.mean_ms):>9}  {row.errors}")
        result.rss_kib = peak_rss_kib(proc.pid)
        return result

    run = benchlib.run_server(cmd, load, env=env, cwd=spec.cwd)
    benchlib.log_server_end(spec.name, run.result.skipped, run)
    return run.result


H2_LABEL_H2C = "plaintext h2c"
H2_LABEL_TLS = "plaintext h2 (TLS)"


def h2_table(results: list[ServerResult]) -> str:
    """One row per transport: chopin against hypercorn, req/s and mean latency."""
    header = ["test (h2load)", "chopin req/s", "hypercorn req/s", "chopin / hypercorn", "chopin mean", "hypercorn mean"]
    rows = []
    for label, suffix in ((H2_LABEL_H2C, "h2c"), (H2_LABEL_TLS, "h2-tls")):
        ours = next((r.rows.get(label) for r in results if r.name == f"chopin-{suffix}"), None)
        theirs = next((r.rows.get(label) for r in results if r.name == f"hypercorn-{suffix}"), None)
        if ours is None and theirs is None:
            continue

        def rps(row: object) -> str:
            return "n/a" if row is None else fmt_rps(row.rps) + (" (err)" if row.errors else "")  # type: ignore[attr-defined]

        rows.append(
            [
                label,
                rps(ours),
                rps(theirs),
                fmt_ratio(ours.rps if ours else None, theirs.rps if theirs else None),
                fmt_ms(ours.mean_ms) if ours else "n/a",  # type: ignore[attr-defined]
                fmt_ms(theirs.mean_ms) if theirs else "n/a",  # type: ignore[attr-defined]
            ]
        )
    return markdown_table(header, rows)


# ---------------------------------------------------------------- tables


def fmt_rps(rps: float | None) -> str:
    return fmt_num(rps)


def column_name(result: ServerResult) -> str:
    return f"{result.name} (skipped)" if result.skipped else result.name


def rps_of(results: list[ServerResult], name: str, label: str) -> float | None:
    for result in results:
        if result.name == name and (row := result.rows.get(label)):
            return row.rps
    return None


def rps_table(results: list[ServerResult], tests: list[Test]) -> str:
    header = [
        "test",
        *(column_name(r) for r in results),
        "chopin / best peer",
        "chopin / bare",
        "metrics overhead",
        "chopin-wsgi / best WSGI peer",
    ]
    rows = []
    for test in tests:
        cells = [test.label]
        for result in results:
            row = result.rows.get(test.label)
            cell = fmt_rps(row.rps) if row else "n/a"
            cells.append(cell + (" (err)" if row and row.errors else ""))
        ours = rps_of(results, "chopin", test.label)
        peers = [(rps_of(results, r.name, test.label), r.name) for r in results if SPEC[r.name].is_peer]
        measured = [(value, name) for value, name in peers if value is not None]
        if measured:
            best, best_name = max(measured)
            cells.append(f"{fmt_ratio(ours, best)} (vs {best_name})")
        else:
            cells.append("n/a")
        cells.append(fmt_ratio(ours, rps_of(results, "bare", test.label)))
        with_metrics = rps_of(results, "chopin+metrics", test.label)
        cells.append(f"{(1 - with_metrics / ours) * 100:.1f} %" if ours and with_metrics else "n/a")
        ours_wsgi = rps_of(results, "chopin-wsgi", test.label)
        wsgi_peers = [
            (value, r.name)
            for r in results
            if SPEC[r.name].is_wsgi_peer and (value := rps_of(results, r.name, test.label)) is not None
        ]
        if ours_wsgi and wsgi_peers:
            best, best_name = max(wsgi_peers)
            cells.append(f"{fmt_ratio(ours_wsgi, best)} (vs {best_name})")
        else:
            cells.append("n/a")
        rows.append(cells)
    return markdown_table(header, rows)


def latency_table(results: list[ServerResult], tests: list[Test]) -> str:
    header = ["test (p99 latency)", *(column_name(r) for r in results)]
    rows = []
    for test in tests:
        cells = [test.label]
        for result in results:
            row = result.rows.get(test.label)
            if row and row.p99_note:
                cells.append("n/a (see notes)")
            else:
                cells.append(fmt_ms(row.p99_ms) if row else "n/a")
        rows.append(cells)
    rss = ["peak RSS (VmHWM, MiB)"]
    for result in results:
        rss.append("n/a" if result.rss_kib is None else f"{result.rss_kib / 1024:.1f}")
    rows.append(rss)
    return markdown_table(header, rows)


def notes(results: list[ServerResult]) -> list[str]:
    lines = []
    for result in results:
        if result.skipped:
            lines.append(f"- {result.name}: skipped, {result.skipped}")
        for warning in result.warnings:
            lines.append(f"- {result.name}: {warning}")
        for label, row in result.rows.items():
            if row.errors:
                lines.append(f"- {result.name} / {label}: {row.errors}")
            if row.p99_note:
                lines.append(f"- {result.name} / {label}: {row.p99_note}")
    return lines


def render(results: list[ServerResult], tests: list[Test], depth: int) -> str:
    parts = [
        "### Requests per second (higher is better)",
        "",
        rps_table(results, tests),
        "",
        "### p99 latency (lower is better) and peak memory",
        "",
        latency_table(results, tests),
        "",
        (
            f"Pipelined rows send {depth} requests per write: req/s counts every response, p99 is per batch "
            "(recomputed by pipeline.lua, as wrk's own coordinated-omission correction assumes one response "
            "per round trip and prints 0 for pipelined runs). The bare loop answers every request with one "
            "fixed plaintext response, so it has no json rows. Peak RSS sums VmHWM over the server process "
            "and its children."
        ),
    ]
    if extra := notes(results):
        parts += ["", "Notes:", "", *extra]
    return "\n".join(parts) + "\n"


def render_h2(results: list[ServerResult], args: argparse.Namespace) -> str:
    parts = [
        "",
        "### HTTP/2: requests per second and mean latency (h2load)",
        "",
        h2_table(results),
        "",
        (
            f"h2load `-t1 -c{args.h2_connections} -m{args.h2_streams} -D{args.duration}` on /plaintext after a "
            f"{args.warmup} s warm-up; h2c rows use prior knowledge, TLS rows ALPN h2 with a self-signed P-256 "
            "certificate. Both servers run one worker on one CPU; hypercorn serves HTTP/2 with the pure-Python h2 "
            "library, chopin with its own sans-IO connection core (HPACK decoding by hpack)."
        ),
    ]
    if extra := notes(results):
        parts += ["", "Notes:", "", *extra]
    return "\n".join(parts) + "\n"


def write_markdown(path: Path, body: str, args: argparse.Namespace, load_before: float) -> None:
    python, versions = venv_versions()
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False).stdout
    wrk_version = wrk.split("[")[0].strip() or "wrk"
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    where = "" if Path.cwd() == REPO else f" (run from {Path.cwd()})"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if all(SPEC[name].category == "h2" for name in args.only):
        # Only the HTTP/2 rows: a section of their own, so the HTTP/1.1 tables stay as they were.
        h2_header = [
            "## HTTP/2 engine: chopin-core against hypercorn (h2load)",
            "",
            f"- Command: `{command}`{where}",
            f"- Date: {now}",
            f"- Python: {python} (benchmarks/.venv, every server)",
            f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; "
            f"each server pinned to CPU {args.server_cpu}, h2load to CPU {args.client_cpu}",
            f"- Kernel: {os.uname().sysname} {os.uname().release}; 1-minute load average "
            f"{load_before:.2f} before the run (other work on the machine skews every number)",
            "- Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
            f"- Servers, each under `taskset -c {args.server_cpu}` in its own process group:",
            *(f"  - {s.name} (in {s.cwd.relative_to(REPO)}): `{s.display()}`" for s in SERVERS if s.name in args.only),
            "",
        ]
        write_section(path, "http2", "\n".join(h2_header) + "\n" + body)
        log(f"wrote {path}")
        return
    header = [
        "## HTTP engine: chopin-core against uvicorn, granian, socketify and a bare epoll loop",
        "",
        f"- Command: `{command}`{where}",
        f"- Date: {now}",
        f"- Python: {python} (benchmarks/.venv, every server)",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; "
        f"each server pinned to CPU {args.server_cpu}, wrk to CPU {args.client_cpu}",
        f"- Kernel: {os.uname().sysname} {os.uname().release}; 1-minute load average "
        f"{load_before:.2f} before the run (other work on the machine skews every number)",
        f"- Load: {wrk_version}, `-t1 -c{args.connections} -d{args.duration}s --latency --timeout 8s` "
        f"with TechEmpower's headers, after a {args.warmup} s warm-up per server start; each row is the "
        f"median of {args.repeats} runs, the servers taking turns (all servers once, then again)",
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
        f"- Servers, each under `taskset -c {args.server_cpu}` in its own process group:",
        *(f"  - {s.name} (in {s.cwd.relative_to(REPO)}): `{s.display()}`" for s in SERVERS if s.name in args.only),
        "",
    ]
    write_section(path, "http", "\n".join(header) + "\n" + body)
    log(f"wrote {path}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = [spec.name for spec in SERVERS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per row")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=2, help="seconds per server")
    parser.add_argument("--depth", type=int, default=16, help="pipelining depth")
    parser.add_argument("--only", default=",".join(names), help=f"comma list of {','.join(names)}")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--markdown-out", type=Path, help="also write results here")
    parser.add_argument("--h2-connections", type=int, default=32, help="h2load connections (HTTP/2 rows)")
    parser.add_argument("--h2-streams", type=int, default=16, help="h2load concurrent streams per connection")
    parser.add_argument(
        "--metrics-rounds",
        type=int,
        default=10,
        help="alternating chopin / chopin+metrics plaintext rounds for the overhead table (0: none)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per server (taking turns); rows show the median")
    parser.add_argument("-v", "--verbose", action="store_true", help="show wrk output")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := sorted(set(args.only) - set(names)):
        parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {names}")
    if min(args.duration, args.warmup, args.connections, args.depth, args.repeats) < 1:
        parser.error("--duration, --warmup, --connections, --depth and --repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_tools(args.server_cpu, args.client_cpu)
    load_before = benchlib.load_before_run()
    ensure_venv(want_chopin=any(name.startswith("chopin") for name in args.only))
    tests = make_tests(args.depth)
    taken: set[int] = set()
    h2_results = []
    with tempfile.TemporaryDirectory(prefix="chopin-bench-tls-") as tmp:
        cert = make_certificate(Path(tmp)) if any(SPEC[n].tls for n in args.only) else (Path(), Path())
        for spec in SERVERS:
            if spec.name in args.only and spec.category == "h2":
                h2_results.append(bench_h2_server(spec, args, free_port(taken), cert))
    runs: dict[str, list[ServerResult]] = {}
    for repeat in range(args.repeats):
        # The servers take turns, so a slow spell of the machine hits every server's runs alike.
        for spec in SERVERS:
            if spec.name not in args.only or spec.category == "h2":
                continue
            if spec.name == "chopin" and not venv_can_import("chopin_core"):
                if repeat == 0:
                    log("[chopin] skipped: chopin_core is not importable in benchmarks/.venv")
                runs.setdefault(spec.name, []).append(ServerResult("chopin", skipped="chopin_core not importable"))
                continue
            log(f"[{spec.name}] run {repeat + 1} of {args.repeats}")
            runs.setdefault(spec.name, []).append(bench_server(spec, tests, args, free_port(taken)))
    results = [median_run(server_runs) for server_runs in runs.values()]
    body = render(results, tests, args.depth) if results else ""
    if args.metrics_rounds > 0 and {"chopin", "chopin+metrics"} <= set(args.only):
        body += metrics_overhead(args, taken)
    if h2_results:
        body += render_h2(h2_results, args)
    print()
    print(body, end="")
    if args.markdown_out:
        write_markdown(args.markdown_out, body, args, load_before)
    return 0 if all(not r.skipped for r in results + h2_results) else 1


if __name__ == "__main__":
    sys.exit(main())
