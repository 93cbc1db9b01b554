"""The issue's whole path in one run: new -> dev (answers, reloads) -> generate model -> migrate up/down
-> check flags a planted time.sleep -> db dump/restore round-trips a table.  Every step is a subprocess."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import chopin_pg
import httpx
from conftest import clean_env, free_port, query, run_chopin

DEADLINE = 60.0


def _wait_body(url: str, expected: str, dev: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        assert dev.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=5.0).text == expected:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered {expected!r}:\n{log.read_text()}")


def test_new_to_production(tmp_path: Path, scratch_db: str) -> None:
    env = clean_env(DATABASE_URL=scratch_db)
    assert run_chopin("new", "flow_app", cwd=tmp_path, env=env).code == 0
    root = tmp_path / "flow_app"

    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as sink:
        dev = subprocess.Popen(
            [sys.executable, "-m", "chopin_cli", "dev", "--port", str(port)],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    try:
        url = f"http://127.0.0.1:{port}/hello/you"
        _wait_body(url, '{"message":"Hello, you!"}', dev, log)
        handlers = root / "src/flow_app/handlers.py"
        handlers.write_text(handlers.read_text().replace('f"Hello, {', 'f"Bonjour, {'))
        _wait_body(url, '{"message":"Bonjour, you!"}', dev, log)
    finally:
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(30) == 0

    run = run_chopin("generate", "model", "Note", "title:str", "body:text?", cwd=root, env=env)
    assert run.code == 0, run
    assert run_chopin("migrate", "up", cwd=root, env=env).code == 0
    assert query(scratch_db, "SELECT count(*) FROM pg_tables WHERE tablename = 'notes'") == [(1,)]
    assert run_chopin("migrate", "down", cwd=root, env=env).code == 0
    assert query(scratch_db, "SELECT count(*) FROM pg_tables WHERE tablename = 'notes'") == [(0,)]

    planted = handlers.read_text().replace('"""Greet the visitor."""\n', '"""Greet."""\n    time.sleep(1)\n')
    handlers.write_text("import time\n" + planted)
    run = run_chopin("check", cwd=root, env=env)
    assert run.code == 1 and "CHK001 blocking call time.sleep()" in run.out, run

    assert run_chopin("migrate", "up", cwd=root, env=env).code == 0
    with chopin_pg.connect(scratch_db) as conn:
        conn.executemany("INSERT INTO notes (title, body) VALUES ($1, $2)", [(f"t{i}", None) for i in range(50)])
    before = query(scratch_db, "SELECT id, title, body FROM notes ORDER BY id")
    assert run_chopin("db", "dump", "--file", "backup.sql", cwd=root, env=env).code == 0
    with chopin_pg.connect(scratch_db) as conn:
        conn.execute("DROP TABLE notes; DROP TABLE chopin_migrations")
    run = run_chopin("db", "restore", "--file", "backup.sql", cwd=root, env=env)
    assert run.code == 0, run
    assert query(scratch_db, "SELECT id, title, body FROM notes ORDER BY id") == before
    status = run_chopin("migrate", "status", cwd=root, env=env)
    assert "applied" in status.out  # the migration records came back with the dump
