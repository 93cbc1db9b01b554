"""A scaffolded app with generated auth passes its own generated tests, and serves for real.

Every step is a subprocess: ``chopin new``, ``chopin generate scaffold``, ``chopin generate
auth``, ``chopin migrate up``, ``chopin check``, then ``pytest`` inside the new project
(its generated tests use ``TestClient`` on a test database of their own, made by the project's
``tests/conftest.py``, and leave the scratch database alone), then the app itself
(``python -m shop``, two workers) answering sign-up/sign-in/me/sign-out over a real socket.
The database is a scratch one on the shared test server (chopin-testkit's ``local_pg``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import chopin_pg
import httpx
import pytest
from chopin_testkit import LocalPg

TIMEOUT = 300.0


@pytest.fixture
def scratch_db(local_pg: LocalPg) -> Iterator[str]:
    name = f"chopin_gen_{uuid.uuid4().hex[:12]}"
    with chopin_pg.connect(local_pg.dsn()) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield local_pg.with_database(name).dsn()
    finally:
        with chopin_pg.connect(local_pg.dsn()) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "CHOPIN_")) and k != "DATABASE_URL"}
    env.update(NO_COLOR="1", COLUMNS="200", PYTHONUNBUFFERED="1", **extra)
    env.pop("FORCE_COLOR", None)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _chopin(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = _run(["-m", "chopin_cli", *args], cwd, env)
    assert done.returncode == 0, f"chopin {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_scaffolded_app_with_generated_auth_passes_its_generated_tests_and_serves(
    tmp_path: Path, scratch_db: str
) -> None:
    env = _env(DATABASE_URL=scratch_db)
    _chopin("new", "shop", cwd=tmp_path, env=env)
    root = tmp_path / "shop"
    _chopin(
        "generate", "scaffold", "Product", "name:str:unique", "price:decimal(10,2)", "note:text?", cwd=root, env=env
    )
    written = _chopin("generate", "auth", cwd=root, env=env)
    for path in ("src/shop/auth.py", "src/shop/models/user.py", "tests/test_auth.py"):
        assert f"create {path}" in written
    assert "JWT_SECRET=" in (root / ".env").read_text()
    _chopin("migrate", "up", cwd=root, env=env)
    _chopin("check", cwd=root, env=env)

    tests = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"], root, env)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed is not None and int(passed.group(1)) >= 10, tests.stdout  # 5 CRUD + 5 auth, and `chopin new`'s
    assert "test_auth.py" in _run(["-m", "pytest", "--collect-only", "-q"], root, env).stdout

    with chopin_pg.connect(scratch_db) as conn:  # the tests ran on a database of their own
        assert conn.query_scalar("SELECT count(*) FROM users") == 0
        assert conn.query_scalar("SELECT count(*) FROM products") == 0

    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "shop"],
            cwd=root,
            env={**env, "PORT": str(port), "WORKERS": "2", "PYTHONPATH": f"{root / 'src'}:{env.get('PYTHONPATH', '')}"},
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(base + "/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        creds = {"email": "ada@example.com", "password": "correct horse battery"}
        assert httpx.post(base + "/auth/sign-up", json=creds, timeout=30).status_code == 201
        with chopin_pg.connect(scratch_db) as conn:
            assert str(conn.query_scalar("SELECT password_hash FROM users")).startswith("$argon2id$")
        token = httpx.post(base + "/auth/sign-in", json=creds, timeout=30).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(base + "/auth/me", headers=bearer, timeout=10).json()["email"] == creds["email"]
        assert httpx.post(base + "/auth/sign-out", headers=bearer, timeout=10).status_code == 204
        for _ in range(6):  # fresh connections: both workers refuse the revoked token
            with httpx.Client() as client:
                assert client.get(base + "/auth/me", headers=bearer, timeout=10).status_code == 401
        product = {"name": "pen", "price": "1.50", "note": None}
        created = httpx.post(base + "/products", json=product, timeout=10)
        assert created.status_code == 201 and created.json()["price"] == "1.50"
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0, log.read_text()
