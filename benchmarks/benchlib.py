"""Shared pieces of the benchmark scripts in benchmarks/ (http.py, static.py, pg.py, json.py).

Stdlib only: the scripts run under the system python3 (json.py re-runs itself in
benchmarks/.venv-json). Each script moves benchmarks/ to the end of ``sys.path``
before its imports, so that the standard library's ``json`` and ``http`` win over
benchmarks/json.py and benchmarks/http.py, and ``import benchlib`` still resolves.

Also keeps benchmarks/RESULTS.md as one file with a section per benchmark script:
each script replaces only its own section, between ``<!-- section:NAME -->`` and
``<!-- /section:NAME -->``, so running one benchmark never drops another's table.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
# The Accept header TechEmpower's wrk runs send to JSON endpoints.
ACCEPT_JSON = "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7"

T = TypeVar("T")


# ---------------------------------------------------------------- environment


def log(message: str) -> None:
    """Print a progress line on stderr (stdout carries the results)."""
    print(message, file=sys.stderr, flush=True)


def check_tools(server_cpu: int, client_cpu: int) -> None:
    """Exit unless wrk and taskset are installed and both CPUs are ours to pin to."""
    for tool, package in (("wrk", "wrk"), ("taskset", "util-linux")):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: install it with `apt-get install {package}`")
    cpus = os.sched_getaffinity(0)
    for cpu in (server_cpu, client_cpu):
        if cpu not in cpus:
            sys.exit(f"CPU {cpu} is not available (have {sorted(cpus)})")
    if server_cpu == client_cpu:
        log("warning: server and wrk share one CPU; numbers will be meaningless")


def venv_can_import(
    python: Path,
    modules: str,
    *,
    isolated: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> bool:
    """Whether ``python -c "import <modules>"`` succeeds (``-P`` first when ``isolated``)."""
    argv = [str(python), *(["-P"] if isolated else []), "-c", f"import {modules}"]
    probe = subprocess.run(argv, capture_output=True, env=env, timeout=timeout, check=False)
    return probe.returncode == 0


def create_venv(venv: Path, shown: str, timeout: float | None = None) -> None:
    """Create the virtual environment ``venv`` with this interpreter, logging ``shown`` as its name."""
    log(f"creating {shown} ...")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=timeout)


def pip_install_command(python: Path) -> list[str]:
    """The start of a quiet ``pip install`` run by ``python``."""
    return [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]


def free_port(taken: set[int] | None = None) -> int:
    """A free TCP port on HOST, not one of ``taken`` (to which it is added)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if taken is None:
            return port
        if port not in taken:
            taken.add(port)
            return port


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, "unknown" when there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def load_average() -> float:
    """The 1-minute load average: the servers and wrk add about 2 while they run."""
    return os.getloadavg()[0]


LOAD_WARNING = "warning: 1-minute load average is {load:.2f}; other work will skew the numbers"


def pg_machine_line(server_version: str, host: str, port: int, load: tuple[float, float]) -> str:
    """The "- Machine:" line of a PostgreSQL benchmark report (CPU, kernel, server, load before/after)."""
    return (
        f"- Machine: {cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()}; "
        f"PostgreSQL {server_version} on {host}:{port} (the machine's server, same CPUs). "
        f"Load average (1 min) {load[0]:.2f} before the run, {load[1]:.2f} after: well above 0 means other "
        "work shared the CPUs and the numbers are noisy."
    )


def load_before_run(warning: str = LOAD_WARNING, threshold: float = 0.5) -> float:
    """The 1-minute load average, with ``warning`` (formatted with ``load``) logged above ``threshold``."""
    load = load_average()
    if load > threshold:
        log(warning.format(load=load))
    return load


# ---------------------------------------------------------------- HTTP probing


@dataclass
class Probe:
    """One HTTP response: status, headers (names lower-cased, in order) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (lower case)."""
        return [value for key, value in self.headers if key == name]


def http_get(port: int, path: str, timeout: float = 2.0, chunk_size: int = 65536) -> Probe:
    """One GET to HOST over a fresh connection, with a minimal response parser (Content-Length framed)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the headers ended")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = [
            (key.strip().lower(), value.strip()) for key, _, value in (line.partition(":") for line in lines[1:])
        ]
        length = int(dict(headers).get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(chunk_size)
            if not chunk:
                break
            body += chunk
    return Probe(status, headers, body)


def wait_ready(proc: subprocess.Popen[bytes], port: int, path: str) -> str:
    """Poll ``path`` until the server answers; return "" when it does, else the reason."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with code {proc.returncode} before answering"
        try:
            http_get(port, path, timeout=1.0)
            return ""
        except (OSError, ValueError, IndexError):
            time.sleep(0.1)
    return f"did not answer within {READY_TIMEOUT_S:.0f} s"


# ---------------------------------------------------------------- processes


def process_tree(root: int) -> list[int]:
    """root and all its descendants, from the ppid field of /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def peak_rss_kib(root: int) -> int | None:
    """Sum of VmHWM (peak resident set) over the server process and its children."""
    total, seen = 0, False
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if match := re.search(r"^VmHWM:\s+(\d+)\s+kB", status, re.MULTILINE):
            total += int(match.group(1))
            seen = True
    return total if seen else None


def stop_server(proc: subprocess.Popen[bytes], final_wait: float | None = None) -> None:
    """SIGTERM the server's process group, SIGKILL whatever is left after STOP_TIMEOUT_S.

    ``final_wait`` bounds the last wait for the killed process (None: no bound).
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log(f"  pid {proc.pid} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s, killing")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=final_wait)


@dataclass
class ServerRun(Generic[T]):
    """What ``run_server`` returns: the load function's result and how the server ended."""

    result: T
    returncode: int | None
    tail: list[str] = field(default_factory=list)  # the server's last output lines


def run_server(
    cmd: list[str],
    load: Callable[[subprocess.Popen[bytes]], T],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    tail_lines: int = 15,
    final_wait: float | None = None,
) -> ServerRun[T]:
    """Start ``cmd`` in its own process group (output to a temp file), call ``load``, stop it."""
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop_server reaches workers too
        )
        try:
            result = load(proc)
        finally:
            stop_server(proc, final_wait)
        output.seek(0)
        tail = output.read().decode(errors="replace").strip().splitlines()[-tail_lines:]
    return ServerRun(result, proc.returncode, tail)


def log_server_end(name: str, skipped: str, run: ServerRun[T]) -> None:
    """Show the server's last output if it was skipped or exited badly; log why it was skipped."""
    if run.tail and (skipped or run.returncode not in (0, -signal.SIGTERM)):
        log(f"[{name}] exit code {run.returncode}; server output, last lines:")
        for line in run.tail:
            log(f"    {line}")
    if skipped:
        log(f"[{name}] skipped: {skipped}")


# ---------------------------------------------------------------- wrk


# wrk --latency prints e.g. "     99%    4.21ms"
PERCENTILE_RE = re.compile(r"^\s*(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
UNIT_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
# wrk prints binary units: "Transfer/sec:    115.69MB" means 115.69 * 2**20 bytes.
TRANSFER_RE = re.compile(r"^Transfer/sec:\s+([\d.]+)([KMGT]?B)\s*$", re.MULTILINE)
UNIT_TO_MIB = {"B": 1 / 2**20, "KB": 1 / 2**10, "MB": 1.0, "GB": 2.0**10, "TB": 2.0**20}


@dataclass
class WrkResult:
    """What every benchmark reads from one wrk run; the scripts subclass it for more."""

    rps: float | None = None
    p99_ms: float | None = None
    errors: str = ""  # socket errors / non-2xx, empty when clean


def wrk_rps(output: str) -> float | None:
    """wrk's Requests/sec line."""
    if match := re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE):
        return float(match.group(1))
    return None


def wrk_percentiles(output: str, units: Mapping[str, float] = UNIT_TO_MS) -> dict[int, float]:
    """The --latency distribution, percentile -> milliseconds (lines in other units are left out)."""
    return {int(pct): float(value) * units[unit] for pct, value, unit in PERCENTILE_RE.findall(output) if unit in units}


def wrk_transfer_mib(output: str) -> float | None:
    """wrk's Transfer/sec line, in MiB/s."""
    if match := TRANSFER_RE.search(output):
        return float(match.group(1)) * UNIT_TO_MIB[match.group(2)]
    return None


def wrk_errors(output: str) -> str:
    """Socket errors and non-2xx/3xx responses, "; "-joined; "" when clean."""
    errors = []
    if match := re.search(r"Socket errors: (.+)$", output, re.MULTILINE):
        errors.append("socket errors: " + match.group(1).strip())
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors.append(f"{match.group(1)} non-2xx responses")
    return "; ".join(errors)


def wrk_command(
    port: int,
    path: str,
    *,
    duration: int,
    connections: int,
    cpu: int,
    headers: Iterable[str] = (),
    script: Path | None = None,
    script_args: Iterable[str] = (),
) -> list[str]:
    """One-thread wrk pinned to ``cpu`` against http://HOST:port/path, with --latency and an 8 s timeout."""
    cmd = [
        "taskset", "-c", str(cpu),
        "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "8s",
    ]  # fmt: skip
    for header in headers:
        cmd += ["-H", header]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(f"http://{HOST}:{port}{path}")
    if extra := list(script_args):
        cmd += ["--", *extra]
    return cmd


W = TypeVar("W", bound=WrkResult)


def run_wrk(cmd: list[str], duration: int, parse: Callable[[str], W]) -> tuple[W, str]:
    """Run wrk (bounded to ``duration`` + 60 s); its output parsed by ``parse``, and the raw output."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    except subprocess.TimeoutExpired:
        timed_out = parse("")
        timed_out.errors = "wrk timed out"
        return timed_out, ""
    result = parse(done.stdout)
    if done.returncode != 0 or result.rps is None:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        result.errors = "; ".join(filter(None, [result.errors, "wrk failed", *detail]))
    return result, done.stdout


# ---------------------------------------------------------------- tables


def fmt_num(value: float | None, digits: int = 0) -> str:
    """``value`` with thousands separators, "n/a" for None."""
    return "n/a" if value is None else f"{value:,.{digits}f}"


def fmt_ms(ms: float | None) -> str:
    """Milliseconds with two decimals, "n/a" for None."""
    return "n/a" if ms is None else f"{ms:.2f} ms"


def fmt_ratio(ours: float | None, theirs: float | None) -> str:
    """ours / theirs with two decimals, "n/a" when either is missing (or theirs is 0)."""
    return "n/a" if ours is None or not theirs else f"{ours / theirs:.2f}"


def markdown_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A Markdown table: the first ``left`` columns left-aligned, the others right-aligned."""
    aligns = ["---"] * left + ["---:"] * (len(header) - left)
    lines = [header, aligns, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


# ---------------------------------------------------------------- RESULTS.md

ORDER = ("http", "http2", "metrics", "gates", "json", "static", "static-profile", "pg", "db-latency", "orm", "fanout")
TITLE = "# Benchmark results\n\nEach section was written by the command it names, on this project's 2-core machine.\n"


def write_section(path: Path, name: str, text: str) -> None:
    """Put ``text`` as section ``name`` of ``path``, keeping the other sections."""
    sections: dict[str, str] = {}
    if path.exists():
        content = path.read_text()
        # Every section the file has, not only the known ones: a script's rewrite keeps the others'.
        for other in {*ORDER, name, *re.findall(r"<!-- section:([\w-]+) -->", content)}:
            start, end = f"<!-- section:{other} -->", f"<!-- /section:{other} -->"
            if start in content and end in content:
                sections[other] = content.split(start, 1)[1].split(end, 1)[0].strip("\n")
    sections[name] = text.strip("\n")
    names = [n for n in ORDER if n in sections] + sorted(n for n in sections if n not in ORDER)
    parts = [TITLE]
    for n in names:
        parts.append(f"<!-- section:{n} -->\n{sections[n]}\n<!-- /section:{n} -->\n")
    path.write_text("\n".join(parts))
