"""``chopin generate scaffold Name field:type...``: a model, its migration, CRUD handlers and their tests.

The model and migration are ``chopin generate model``'s (:func:`~chopin_cli.modelgen.generate_model`);
this module adds ``src/<pkg>/<table>_routes.py`` (list, show, create, update, delete under
``/<table>``, found by ``mount_all_routes``), the shared ``src/<pkg>/database.py`` (one
pool per worker process, ``DATABASE_URL`` from the environment or the project's ``.env``)
and ``tests/test_<table>_routes.py`` (TestClient against the database ``DATABASE_URL`` names,
migrated by the test itself).  Only validated identifiers are substituted into the text.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from .errors import FieldSpecError, ProjectError
from .fields import FieldSpec, parse_fields, snake_case, table_name_for, validate_model_name, validate_table_name
from .modelgen import generate_model
from .project import Project

__all__ = ["DATABASE_MODULE", "SAMPLE_JSON", "generate_scaffold", "write_database_module"]

#: A JSON value each CLI field type accepts (the generated tests post it).
SAMPLE_JSON: dict[str, str] = {
    "str": '"example"',
    "text": '"example text"',
    "varchar": '"x"',
    "int": "7",
    "bigint": "9000000000",
    "float": "1.5",
    "bool": "True",
    "decimal": '"1"',
    "date": '"2026-01-02"',
    "datetime": '"2026-01-02T03:04:05+00:00"',
    "uuid": '"12345678-1234-5678-1234-567812345678"',
    "json": '{"key": [1, 2]}',
    "bytes": '"aGVsbG8="',
}

DATABASE_MODULE = Template('''\
"""The database of $package: one connection pool per worker process, opened on first use.

``DATABASE_URL`` comes from the environment, else from the project's ``.env``.
Written by ``chopin generate``; edit freely.
"""

from __future__ import annotations

import os
from pathlib import Path

from chopin_pg import PgConfig, PgPool

_ENV_FILE = Path(__file__).resolve().parents[2] / ".env"
_pools: dict[int, PgPool] = {}  # by process id: a forked worker never shares its parent's sockets


def setting(name: str) -> str | None:
    """``name`` from the environment, else from the project's ``.env`` (``NAME=value`` lines)."""
    value = os.environ.get(name)
    if value is not None or not _ENV_FILE.is_file():
        return value
    for line in _ENV_FILE.read_text(encoding="utf-8").splitlines():
        key, sep, raw = line.strip().partition("=")
        if sep and key.strip() == name:
            return raw.strip().strip("\\"'")
    return None


def pool() -> PgPool:
    """This process's pool on ``DATABASE_URL``."""
    found = _pools.get(os.getpid())
    if found is None:
        url = setting("DATABASE_URL")
        if not url:
            raise RuntimeError("DATABASE_URL is not set (in the environment or .env)")
        found = _pools[os.getpid()] = PgPool(PgConfig.from_url(url))
    return found
''')

ROUTES_MODULE = Template('''\
"""CRUD routes for $model (table ``$table``), written by ``chopin generate scaffold``.

``GET /$table`` (``?limit=&offset=``), ``GET /$table/:id``, ``POST /$table``,
``PUT /$table/:id``, ``DELETE /$table/:id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
$imports
from chopin_core import Context, Json, Query, Response, delete, get, post, put

from .database import pool
from .models.$module import $model


@dataclass
class ${model}Input:
    """What a client sends to create or replace a $model."""

$input_fields


@dataclass
class Page:
    """``?limit=&offset=`` of the list route."""

    limit: int = 50
    offset: int = 0


def _as_json(row: $model) -> dict[str, Any]:
    return {"id": row.id, $as_json}


def _id(ctx: Context) -> int | None:
    raw = ctx.param("id") or ""
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


@get("/$table")
def list_$table(ctx: Context) -> Response:
    """List $table, oldest first (``limit`` at most 500)."""
    page = ctx.extract(Query[Page])
    limit = min(max(page.limit, 0), 500)
    with pool().get() as conn:
        rows = $model.query().order_by($model.id).limit(limit).offset(max(page.offset, 0)).all(conn)
    return Response.json([_as_json(row) for row in rows])


@get("/$table/:id")
def show_$singular(ctx: Context) -> Response:
    """One $singular by id (404 if there is none)."""
    key = _id(ctx)
    with pool().get() as conn:
        row = $model.get_or_none(conn, key) if key is not None else None
    if row is None:
        return Response.json({"error": "not found"}, 404)
    return Response.json(_as_json(row))


@post("/$table")
def create_$singular(ctx: Context) -> Response:
    """Create a $singular from the JSON body (201 with the stored row)."""
    body = ctx.extract(Json[${model}Input])
    row = $model($from_body)
    with pool().get() as conn:
        row.insert(conn)
        row.refresh(conn)  # the stored values (numeric scale, defaults) rather than the sent ones
    return Response.json(_as_json(row), 201)


@put("/$table/:id")
def update_$singular(ctx: Context) -> Response:
    """Replace a $singular's fields with the JSON body (404 if there is none)."""
    body = ctx.extract(Json[${model}Input])
    key = _id(ctx)
    with pool().get() as conn:
        row = $model.get_or_none(conn, key) if key is not None else None
        if row is None:
            return Response.json({"error": "not found"}, 404)
$assign_from_body
        row.update(conn)
        row.refresh(conn)
    return Response.json(_as_json(row))


@delete("/$table/:id")
def delete_$singular(ctx: Context) -> Response:
    """Delete a $singular (204; 404 if there is none)."""
    key = _id(ctx)
    with pool().get() as conn:
        row = $model.get_or_none(conn, key) if key is not None else None
        if row is None:
            return Response.json({"error": "not found"}, 404)
        row.delete(conn)
    return Response.new(204)
''')

ROUTES_TEST = Template('''\
"""The $table routes against the database DATABASE_URL names (migrated here, emptied before each test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chopin_pg
import pytest
from chopin_core import TestClient
from chopin_orm import Migrator

from $package.app import create_app
from $package.database import setting

SAMPLE: dict[str, Any] = {$sample}


@pytest.fixture
def client() -> Iterator[TestClient]:
    url = setting("DATABASE_URL")
    assert url, "set DATABASE_URL (or .env) to a database these tests may empty"
    with chopin_pg.connect(url) as conn:
        Migrator(conn, Path(__file__).resolve().parents[1] / "migrations").up()
        conn.execute("TRUNCATE $table RESTART IDENTITY CASCADE")
    yield TestClient(create_app())


def test_create_then_show(client: TestClient) -> None:
    created = client.post("/$table", json=SAMPLE)
    assert created.status == 201, created.text
    row = created.json()
    assert isinstance(row["id"], int)
    shown = client.get(f"/$table/{row['id']}")
    assert shown.status == 200
    assert shown.json() == row


def test_list_pages(client: TestClient) -> None:
    assert client.post("/$table", json=SAMPLE).status == 201
    listed = client.get("/$table?limit=10")
    assert listed.status == 200
    assert len(listed.json()) == 1
    assert client.get("/$table?offset=1").json() == []


def test_update(client: TestClient) -> None:
    row = client.post("/$table", json=SAMPLE).json()
    updated = client.put(f"/$table/{row['id']}", json=SAMPLE)
    assert updated.status == 200, updated.text
    assert updated.json()["id"] == row["id"]
    assert client.put("/$table/999999", json=SAMPLE).status == 404


def test_delete(client: TestClient) -> None:
    row = client.post("/$table", json=SAMPLE).json()
    assert client.delete(f"/$table/{row['id']}").status == 204
    assert client.get(f"/$table/{row['id']}").status == 404
    assert client.delete(f"/$table/{row['id']}").status == 404


def test_bad_bodies_are_refused(client: TestClient) -> None:
    assert client.post("/$table", body=b"{not json").status == 400
    assert client.post("/$table", json={}).status == 422
    assert client.get("/$table/not-a-number").status == 404
''')


def write_database_module(project: Project) -> Path | None:
    """Write ``src/<pkg>/database.py`` unless it exists; returns the path when written."""
    path = project.package_dir / "database.py"
    if path.exists():
        return None
    path.write_text(DATABASE_MODULE.substitute(package=project.package), encoding="utf-8")
    return path


def _sample_key(f: FieldSpec) -> str:
    base = f.type_name.split("(")[0]
    return base if base in SAMPLE_JSON else "str"


def generate_scaffold(project: Project, name: str, specs: list[str], table: str | None = None) -> list[Path]:
    """Write the model, its migration, the CRUD routes, the database module and the tests.

    Returns:
        The files written, in order.

    Raises:
        FieldSpecError: a bad model name, table name or field spec.
        ProjectError: a file it would write exists (nothing is written then).
    """
    validate_model_name(name)
    fields = parse_fields(specs)
    if not fields:
        raise FieldSpecError("give at least one field (name:type)")
    table = validate_table_name(table or table_name_for(name))
    module = snake_case(name)
    routes = project.package_dir / f"{table}_routes.py"
    test = project.root / "tests" / f"test_{table}_routes.py"
    for path in (routes, test):
        if path.exists():
            raise ProjectError(f"{path} already exists")
    written = list(generate_model(project, name, specs, table))
    database = write_database_module(project)
    if database is not None:
        written.append(database)
    imports = sorted({line for f in fields for line in f.field_type.imports})
    ordered = [f for f in fields if not f.nullable] + [f for f in fields if f.nullable]
    input_fields = "\n".join(
        f"    {f.name}: {f.field_type.annotation}" + (" | None = None" if f.nullable else "") for f in ordered
    )
    routes.write_text(
        ROUTES_MODULE.substitute(
            model=name,
            table=table,
            singular=module,
            module=module,
            imports="".join(f"{line}\n" for line in imports),
            input_fields=input_fields,
            as_json=", ".join(f'"{f.name}": row.{f.name}' for f in fields),
            from_body=", ".join(f"{f.name}=body.{f.name}" for f in fields),
            assign_from_body="\n".join(f"        row.{f.name} = body.{f.name}" for f in fields),
        ),
        encoding="utf-8",
    )
    written.append(routes)
    test.parent.mkdir(exist_ok=True)
    sample = ", ".join(f'"{f.name}": {SAMPLE_JSON[_sample_key(f)]}' for f in fields)
    test.write_text(ROUTES_TEST.substitute(package=project.package, table=table, sample=sample), encoding="utf-8")
    written.append(test)
    return written
