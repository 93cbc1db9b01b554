"""Helpers: run ``chopin`` as a real subprocess, make projects, and a scratch PostgreSQL database.

The database tests use the shared test server: ``$CHOPIN_TEST_DATABASE_URL`` when set
(password authentication included), else the machine's server at 127.0.0.1:5432 (trust
auth, user postgres); each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import chopin_pg
import pytest
from chopin_testkit import LocalPg

#: The shared test server (see the module docstring).
SERVER = LocalPg.from_env()
PG_HOST = SERVER.host
PG_PORT = SERVER.port
RUN_TIMEOUT = 300.0


@dataclass
class Run:
    """A finished ``chopin`` run."""

    code: int
    out: str
    err: str

    def __repr__(self) -> str:
        return f"<Run exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}>"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no PG* or DATABASE_URL leaking in, no colours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "CHOPIN_")) and k != "DATABASE_URL"}
    env.update(NO_COLOR="1", COLUMNS="200", TERM="dumb", PYTHONUNBUFFERED="1")
    env.pop("FORCE_COLOR", None)
    env.update(extra)
    return env


def run_chopin(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT) -> Run:
    """Run ``python -m chopin_cli ARGS`` in ``cwd`` and wait for it."""
    done = subprocess.run(
        [sys.executable, "-m", "chopin_cli", *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def run_chopin_on_a_terminal(
    *args: str, cwd: Path, env: dict[str, str], answers: list[tuple[str, str]], timeout: float = RUN_TIMEOUT
) -> tuple[int, str]:
    """Run ``python -m chopin_cli ARGS`` with a pseudo-terminal as stdin, stdout and stderr.

    ``answers`` are ``(prompt, reply)`` pairs, in order: each reply (and a newline) is typed
    once its prompt has appeared since the previous reply.  Returns the exit code and all
    the terminal showed (echoed replies included, ``\r\n`` line ends).
    """
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chopin_cli", *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    shown = b""
    since = 0  # where the next prompt is looked for
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: every descriptor of the terminal's other side is closed
                break
            if not data:
                break
            shown += data
            if pending and pending[0][0].encode() in shown[since:]:
                os.write(master, pending.pop(0)[1].encode() + b"\n")
                since = len(shown)
        else:
            raise AssertionError(f"chopin {' '.join(args)}: no exit within {timeout}s; the terminal showed {shown!r}")
        code = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert not pending, f"never prompted {pending}; the terminal showed {shown!r}"
    return code, shown.decode(errors="replace")


def assert_one_line_error(run: Run, *fragments: str) -> None:
    """Exit 2, one ``chopin: error:`` line on stderr holding every fragment, no traceback."""
    assert run.code == 2, run
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1, run
    assert lines[0].startswith("chopin: error: "), run
    assert "Traceback" not in run.err + run.out, run
    for fragment in fragments:
        assert fragment in lines[0], run


@pytest.fixture
def chopin() -> Callable[..., Run]:
    """``chopin(*args, cwd=..., env=...)``."""
    return run_chopin


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh ``chopin new shop`` project (path dependencies on this monorepo), its .env on the shared server."""
    run = run_chopin("new", "shop", "--database-url", SERVER.with_database("shop").dsn(), cwd=tmp_path)
    assert run.code == 0, run
    return tmp_path / "shop"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def scratch_db() -> Iterator[str]:
    """The URL of a new, empty database on the real server; dropped after the test."""
    name = f"chopin_cli_{uuid.uuid4().hex[:12]}"
    with chopin_pg.connect(SERVER.dsn()) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        # Without the query string: tests take the database name from the URL's end.
        yield SERVER.with_database(name).dsn().split("?", 1)[0]
    finally:
        with chopin_pg.connect(SERVER.dsn()) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    """Rows of ``sql`` on ``url`` (through chopin-pg, not through the CLI under test)."""
    with chopin_pg.connect(url) as conn:
        return [tuple(row) for row in conn.query(sql)]
