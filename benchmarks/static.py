#!/usr/bin/env python3
"""Static file benchmark: ``python -m chopin_core.static`` against nginx, one core each.

    python3 benchmarks/static.py [--duration 10] [--markdown-out FILE]

Three servers serve the same temporary docroot (a 1 KiB index.html and a 10 MiB
file) from one worker pinned to one CPU (taskset): nginx as configured by default
(no open_file_cache), nginx with open_file_cache kept valid for 1 s (like chopin's
file cache, the like-for-like row) and chopin; wrk runs pinned to another CPU
and loads the small file with many connections, then the big file with a few.
Only 127.0.0.1 is used. nginx is installed with apt-get when missing (nginx-light
if the archive has it) and runs from a config generated in the temp dir.
Stdlib only: this file runs under the system python3 and drives chopin from
benchmarks/.venv, which it creates (chopin-core installed editable) when missing.
The pieces it shares with benchmarks/http.py live in benchmarks/benchlib.py.
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
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
from benchlib import (
    HERE,
    HOST,
    REPO,
    STOP_TIMEOUT_S,
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
VENV_PY = VENV / "bin" / "python"
CHOPIN_PKG = REPO / "packages" / "chopin-core"
APT_TIMEOUT_S = 600.0
SMALL_SIZE = 1024
BIG_SIZE = 10 * 1024 * 1024


@dataclass(frozen=True)
class Test:
    """One row group of the table: a file and how many connections load it."""

    label: str
    path: str
    size: int
    connections: int


@dataclass
class WrkResult(benchlib.WrkResult):
    mib_s: float | None = None


@dataclass
class ServerResult:
    name: str
    version: str = ""
    command: str = ""
    skipped: str = ""
    rows: dict[str, WrkResult] = field(default_factory=dict)
    rss_kib: int | None = None
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- environment


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def apt_candidate(package: str) -> bool:
    """Whether apt knows an installable version of ``package``."""
    out = subprocess.run(
        ["apt-cache", "policy", package], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    match = re.search(r"^\s*Candidate:\s*(\S+)", out, re.MULTILINE)
    return match is not None and match.group(1) != "(none)"


def ensure_nginx() -> str:
    """The nginx binary, installed with apt-get (nginx-light, else nginx) when missing."""
    if found := find_nginx():
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        sys.exit("nginx not found; install it (apt-get install nginx-light) and run again")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not (apt_candidate("nginx-light") or apt_candidate("nginx")):
        log("apt-get update ...")
        subprocess.run(["apt-get", "update"], env=env, timeout=APT_TIMEOUT_S, check=True)
    package = "nginx-light" if apt_candidate("nginx-light") else "nginx"
    log(f"installing {package} with apt-get ...")
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", package], env=env, timeout=APT_TIMEOUT_S, check=True
    )
    if found := find_nginx():
        return found
    sys.exit(f"apt-get installed {package} but no nginx binary is on PATH or in /usr/sbin")


def venv_can_import(module: str) -> bool:
    return benchlib.venv_can_import(VENV_PY, module, timeout=60)


def ensure_venv() -> None:
    """Create benchmarks/.venv if needed and install chopin-core into it (editable)."""
    if not VENV_PY.exists():
        benchlib.create_venv(VENV, str(VENV.relative_to(REPO)), timeout=300)
    if not venv_can_import("chopin_core.static"):
        log(f"installing chopin-core (editable) into {VENV.relative_to(REPO)} ...")
        pip = benchlib.pip_install_command(VENV_PY)
        kowito = REPO / "packages" / "kowito-json"  # chopin-core's JSON codec
        subprocess.run([*pip, "-e", str(kowito), "-e", str(CHOPIN_PKG)], check=True, timeout=APT_TIMEOUT_S)


def nginx_version(nginx: str) -> str:
    out = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10, check=False)
    text = (out.stderr or out.stdout).strip()
    return text.split("/", 1)[1] if "/" in text else text or "unknown"


def chopin_versions() -> tuple[str, str]:
    code = "import platform, importlib.metadata as m; print(platform.python_version(), m.version('chopin-core'))"
    out = subprocess.run([str(VENV_PY), "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    python, chopin = out.split()
    return python, chopin


def wrk_version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10, check=False)
    return (out.stdout or out.stderr).split("[")[0].strip() or "wrk"


# ---------------------------------------------------------------- docroot and configs


def make_docroot(root: Path) -> None:
    root.mkdir()
    head = b"<!doctype html><title>chopin static benchmark</title>\n<p>"
    tail = b"</p>\n"
    filler = b"x" * (SMALL_SIZE - len(head) - len(tail))
    (root / "index.html").write_bytes(head + filler + tail)
    with (root / "big.bin").open("wb") as out:
        for _ in range(BIG_SIZE // (1024 * 1024)):
            out.write(os.urandom(1024 * 1024))


NGINX_CONF = """\
# Generated by benchmarks/static.py; lives only in its temp dir.
worker_processes 1;
daemon off;
master_process on;
user root;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log warn;
worker_rlimit_nofile 65536;

events {{
    worker_connections 16384;
    use epoll;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 10000000;  # chopin never closes a busy keep-alive connection
{cache}    types {{
        text/html html;
        application/octet-stream bin;
    }}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    server {{
        listen {host}:{port};
        root {docroot};
        index index.html;
    }}
}}
"""


@dataclass(frozen=True)
class ServerSpec:
    name: str
    argv: list[str]
    display: str
    port: int


# The like-for-like row: nginx keeping open descriptors and their stat() for as long as
# chopin's file cache trusts what it read (FileCacheLimits.valid, 1 s by default).
NGINX_FILE_CACHE = "    open_file_cache max=1000 inactive=20s;\n    open_file_cache_valid 1s;\n"


def nginx_spec(nginx: str, tmp: Path, docroot: Path, port: int, name: str = "nginx", cache: str = "") -> ServerSpec:
    conf = tmp / f"{name}.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, name=name, host=HOST, port=port, docroot=docroot, cache=cache))
    # -e: the error log before the config is read; -p: the prefix for relative paths.
    argv = [nginx, "-p", str(tmp), "-e", str(tmp / f"{name}-error.log"), "-c", str(conf)]
    return ServerSpec(name, argv, f"{nginx} -p $TMP -e $TMP/{name}-error.log -c $TMP/{name}.conf", port)


def chopin_spec(docroot: Path, port: int) -> ServerSpec:
    argv = [str(VENV_PY), "-m", "chopin_core.static", "-p", str(port), "-d", str(docroot), "-w", "1", "-b", HOST]
    shown = f"{VENV_PY.relative_to(REPO)} -m chopin_core.static -p $PORT -d $TMP/www -w 1 -b {HOST}"
    return ServerSpec("chopin", argv, shown, port)


# ---------------------------------------------------------------- HTTP probing


def check_files(port: int, docroot: Path, tests: list[Test]) -> list[str]:
    problems = []
    for test in tests:
        try:
            probe = http_get(port, test.path, timeout=10.0, chunk_size=1024 * 1024)
            status, body = probe.status, probe.body
        except (OSError, ValueError, IndexError) as exc:
            problems.append(f"{test.path}: request failed: {exc}")
            continue
        if status != 200 or body != (docroot / test.path.lstrip("/")).read_bytes():
            problems.append(f"{test.path}: status {status}, {len(body)} bytes, not the file's bytes")
    return problems


# ---------------------------------------------------------------- wrk


def parse_wrk(output: str) -> WrkResult:
    return WrkResult(
        rps=benchlib.wrk_rps(output),
        p99_ms=benchlib.wrk_percentiles(output).get(99),
        errors=benchlib.wrk_errors(output),
        mib_s=benchlib.wrk_transfer_mib(output),
    )


def wrk_command(port: int, test: Test, duration: int, cpu: int) -> list[str]:
    return benchlib.wrk_command(
        port, test.path, duration=duration, connections=test.connections, cpu=cpu, headers=("Connection: keep-alive",)
    )


def run_wrk(cmd: list[str], duration: int) -> tuple[WrkResult, str]:
    return benchlib.run_wrk(cmd, duration, parse_wrk)


# ---------------------------------------------------------------- one server


def bench_server(spec: ServerSpec, docroot: Path, tests: list[Test], args: argparse.Namespace) -> ServerResult:
    """Start one server pinned to its CPU, warm it up, load it test by test, stop it."""
    port = spec.port
    result = ServerResult(spec.name, command=spec.display)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CHOPIN_", "PYTHON")) and k not in ("PORT", "WORKERS")
    }
    cmd = ["taskset", "-c", str(args.server_cpu), *spec.argv]
    log(f"[{spec.name}] {spec.display}  (CPU {args.server_cpu}, port {port})")

    def load(proc: subprocess.Popen[bytes]) -> None:
        if reason := wait_ready(proc, port, "/index.html"):
            result.skipped = reason
        else:
            load_server(result, proc, docroot, tests, args, port)

    # Its own process group: stop_server reaches nginx's worker too.
    run = benchlib.run_server(cmd, load, env=env, final_wait=STOP_TIMEOUT_S)
    benchlib.log_server_end(spec.name, result.skipped, run)
    return result


def load_server(
    result: ServerResult,
    proc: subprocess.Popen[bytes],
    docroot: Path,
    tests: list[Test],
    args: argparse.Namespace,
    port: int,
) -> None:
    result.warnings = check_files(port, docroot, tests)
    for warning in result.warnings:
        log(f"[{result.name}] warning: {warning}")
    for test in tests:
        run_wrk(wrk_command(port, test, args.warmup, args.client_cpu), args.warmup)
        row, raw = run_wrk(wrk_command(port, test, args.duration, args.client_cpu), args.duration)
        result.rows[test.label] = row
        if args.verbose:
            log(raw)
        log(
            f"[{result.name}] {test.label:<28} {fmt_num(row.rps):>9} req/s  {fmt_num(row.mib_s, 1):>8} MiB/s"
            f"  p99 {fmt_ms(row.p99_ms):>9}  {row.errors}".rstrip()
        )
        if proc.poll() is not None:
            result.warnings.append(f"exited with code {proc.returncode} mid-run")
            break
    result.rss_kib = peak_rss_kib(proc.pid)


# ---------------------------------------------------------------- tables


def fmt_mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def render(results: dict[str, ServerResult], tests: list[Test]) -> str:
    nginx, cached, chopin = results["nginx"], results["nginx-cached"], results["chopin"]
    rows = []
    for test in tests:
        n = nginx.rows.get(test.label, WrkResult())
        nc = cached.rows.get(test.label, WrkResult())
        c = chopin.rows.get(test.label, WrkResult())
        named = (
            (f"nginx {nginx.version}", n),
            (f"nginx {cached.version}, open_file_cache", nc),
            (f"chopin {chopin.version}", c),
        )
        for name, row in named:
            rows.append([test.label, name, fmt_num(row.rps), fmt_num(row.mib_s, 1), fmt_ms(row.p99_ms)])
        for label, peer in (("**chopin / nginx**", n), ("**chopin / nginx with open_file_cache**", nc)):
            rows.append(
                [
                    test.label,
                    label,
                    fmt_ratio(c.rps, peer.rps),
                    fmt_ratio(c.mib_s, peer.mib_s),
                    fmt_ratio(c.p99_ms, peer.p99_ms),
                ]
            )
    table = markdown_table(["test", "server", "requests/s", "MiB/s", "p99 latency"], rows, left=2)
    rss = markdown_table(
        ["server", "processes", "peak RSS"],
        [
            [f"nginx {nginx.version}", "master + 1 worker", fmt_mib(nginx.rss_kib)],
            [f"nginx {cached.version}, open_file_cache", "master + 1 worker", fmt_mib(cached.rss_kib)],
            [f"chopin {chopin.version}", "1 process (-w 1 does not fork)", fmt_mib(chopin.rss_kib)],
            ["**chopin / nginx**", "", fmt_ratio(chopin.rss_kib, nginx.rss_kib)],
        ],
        left=2,
    )
    parts = [
        "### Throughput and latency (requests/s, MiB/s: higher is better; p99: lower is better)",
        "",
        table,
        "",
        "### Peak memory (VmHWM summed over the server's process tree, over both tests)",
        "",
        rss,
    ]
    notes = []
    for result in (nginx, cached, chopin):
        if result.skipped:
            notes.append(f"- {result.name} did not run: {result.skipped}")
        notes += [f"- {result.name}: {w}" for w in result.warnings]
        notes += [f"- {result.name}, {label}: {row.errors}" for label, row in result.rows.items() if row.errors]
    if notes:
        parts += ["", "Notes:", "", *notes]
    return "\n".join(parts) + "\n"


def write_markdown(
    path: Path, body: str, args: argparse.Namespace, results: dict[str, ServerResult], loads: tuple[float, float]
) -> None:
    python, _chopin = chopin_versions()
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    small, big = make_tests(args)
    header = [
        "## Static files: chopin-core against nginx",
        "",
        f"- Command: `{command}`",
        f"- Date: {now}",
        f"- Versions: nginx {results['nginx'].version}, chopin-core {results['chopin'].version} "
        f"on Python {python} (benchmarks/.venv), {wrk_version()}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; each server pinned to CPU {args.server_cpu}, "
        f"wrk to CPU {args.client_cpu}; 127.0.0.1 only",
        f"- Kernel: {os.uname().sysname} {os.uname().release}; 1-minute load average {loads[0]:.2f} before "
        f"the run, {loads[1]:.2f} after (the servers and wrk add about 2; more means other work skewed the numbers)",
        f"- Load: `wrk -t1 -c<N> -d{args.duration}s --latency --timeout 8s`, after a {args.warmup} s warm-up "
        f"per test; {small.label} = `{small.path}`, {big.label} = `{big.path}` (random bytes)",
        "- Servers, one worker each, under `taskset`, in their own process group, the same temp docroot:",
        f"  - nginx: `{results['nginx'].command}`; generated config: `worker_processes 1`, `sendfile on`, "
        "`tcp_nopush on`, `access_log off`, `keepalive_requests 10000000`, no `open_file_cache`",
        f"  - nginx-cached: `{results['nginx-cached'].command}`; the same config plus "
        "`open_file_cache max=1000 inactive=20s`, `open_file_cache_valid 1s` (descriptors and their stat kept for "
        "as long as chopin's file cache trusts what it read: the like-for-like row)",
        f"  - chopin: `{results['chopin'].command}`",
        "- MiB/s is wrk's Transfer/sec (headers included; wrk's MB is 2^20 bytes).",
        "",
    ]
    write_section(path, "static", "\n".join(header) + "\n" + body)
    log(f"wrote {path}")


# ---------------------------------------------------------------- main


def make_tests(args: argparse.Namespace) -> tuple[Test, Test]:
    return (
        Test(f"1 KiB file, {args.small_connections} conns", "/index.html", SMALL_SIZE, args.small_connections),
        Test(f"10 MiB file, {args.big_connections} conns", "/big.bin", BIG_SIZE, args.big_connections),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per test (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per test (default 2)")
    parser.add_argument("--small-connections", type=int, default=256, help="connections for the 1 KiB file")
    parser.add_argument("--big-connections", type=int, default=16, help="connections for the 10 MiB file")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--markdown-out", type=Path, help="also write a results section here")
    parser.add_argument("-v", "--verbose", action="store_true", help="show wrk output")
    args = parser.parse_args(argv)
    if min(args.duration, args.warmup, args.small_connections, args.big_connections) < 1:
        parser.error("--duration, --warmup and the connection counts must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_tools(args.server_cpu, args.client_cpu)
    nginx = ensure_nginx()
    ensure_venv()
    load_before = benchlib.load_before_run()
    tests = list(make_tests(args))
    taken: set[int] = set()
    results: dict[str, ServerResult] = {}
    with tempfile.TemporaryDirectory(prefix="chopin-static-bench-") as tmp_name:
        tmp = Path(tmp_name)
        docroot = tmp / "www"
        make_docroot(docroot)
        specs = [
            nginx_spec(nginx, tmp, docroot, free_port(taken)),
            nginx_spec(nginx, tmp, docroot, free_port(taken), "nginx-cached", NGINX_FILE_CACHE),
            chopin_spec(docroot, free_port(taken)),
        ]
        version = nginx_version(nginx)
        versions = {"nginx": version, "nginx-cached": version, "chopin": chopin_versions()[1]}
        for spec in specs:
            result = bench_server(spec, docroot, tests, args)
            result.version = versions[spec.name]
            results[spec.name] = result
    load_after = benchlib.load_average()
    body = render(results, tests)
    print(body)
    if args.markdown_out:
        write_markdown(args.markdown_out, body, args, results, (load_before, load_after))
    return 0 if all(not r.skipped for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
