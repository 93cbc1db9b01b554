"""``chopin generate scaffold Name field:type...``: a model, its migration, CRUD handlers and their tests.

The model and migration are ``chopin generate model``'s (:func:`~chopin_cli.modelgen.generate_model`);
this module adds ``src/<pkg>/<table>_routes.py`` (list, show, create, update, delete under
``/<table>``, found by ``mount_all_routes``) on the project's ``src/<pkg>/db.py`` pool
(``db.pool()``), and ``tests/test_<table>_routes.py`` (the ``client`` and ``database_url``
fixtures of ``tests/conftest.py``: the test run's own database; the table emptied before
each test).  A project without ``db.py`` or ``conftest.py`` (made before ``chopin new``
wrote them) gets compatible ones.  Only validated identifiers are substituted into the text.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from .errors import FieldSpecError, ProjectError
from .fields import FieldSpec, parse_fields, snake_case, table_name_for, validate_model_name, validate_table_name
from .modelgen import generate_model
from .project import Project
from .templates import CONFTEST

__all__ = ["DB_MODULE", "SAMPLE_JSON", "check_db_wiring", "generate_scaffold", "write_db_wiring"]

#: The fixtures of ``tests/conftest.py`` the generated tests use.
_FIXTURES = ("database_url", "client")

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

DB_MODULE = Template('''\
"""The database of $package: one connection pool per worker process.

Written by ``chopin generate`` for a project that had no ``db.py`` (``chopin new`` writes
one).  ``open_pool`` may be registered with ``app.on_worker_start``; without it ``pool()``
opens this process's pool on first use.  The database is found as every Chopin tool finds
it: ``DATABASE_URL``, then the libpq variables.  Edit freely.
"""

from __future__ import annotations

import os

from chopin_pg import PgPool, PgPoolConfig

#: Each process's pool, by process id: a forked worker never uses its parent's sockets.
POOLS: dict[int, PgPool] = {}
#: Connections per worker (a worker runs one handler at a time).
POOL_SIZE = 4
#: Seconds a request waits for a free connection before it fails.
CHECKOUT_TIMEOUT = 2.0


def open_pool(worker_index: int = 0) -> None:
    """Give this process its pool (``app.on_worker_start(db.open_pool)``; tests call it too)."""
    POOLS[os.getpid()] = PgPool(None, PgPoolConfig().max_size(POOL_SIZE).checkout_timeout(CHECKOUT_TIMEOUT))


def pool() -> PgPool:
    """This process's pool: ``with pool().get() as conn: ...`` (opened on first use)."""
    if os.getpid() not in POOLS:
        open_pool()
    return POOLS[os.getpid()]
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

from $package import db

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
    with db.pool().get() as conn:
        rows = $model.query().order_by($model.id).limit(limit).offset(max(page.offset, 0)).all(conn)
    return Response.json([_as_json(row) for row in rows])


@get("/$table/:id")
def show_$singular(ctx: Context) -> Response:
    """One $singular by id (404 if there is none)."""
    key = _id(ctx)
    with db.pool().get() as conn:
        row = $model.get_or_none(conn, key) if key is not None else None
    if row is None:
        return Response.json({"error": "not found"}, 404)
    return Response.json(_as_json(row))


@post("/$table")
def create_$singular(ctx: Context) -> Response:
    """Create a $singular from the JSON body (201 with the stored row)."""
    body = ctx.extract(Json[${model}Input])
    row = $model($from_body)
    with db.pool().get() as conn:
        row.insert(conn)
        row.refresh(conn)  # the stored values (numeric scale, defaults) rather than the sent ones
    return Response.json(_as_json(row), 201)


@put("/$table/:id")
def update_$singular(ctx: Context) -> Response:
    """Replace a $singular's fields with the JSON body (404 if there is none)."""
    body = ctx.extract(Json[${model}Input])
    key = _id(ctx)
    with db.pool().get() as conn:
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
    with db.pool().get() as conn:
        row = $model.get_or_none(conn, key) if key is not None else None
        if row is None:
            return Response.json({"error": "not found"}, 404)
        row.delete(conn)
    return Response.new(204)
''')

ROUTES_TEST = Template('''\
"""The $table routes on the test run's own database (``tests/conftest.py``), emptied before each test."""

from __future__ import annotations

from typing import Any

import chopin_pg
import pytest
from chopin_core import TestClient

SAMPLE: dict[str, Any] = {$sample}


@pytest.fixture(autouse=True)
def empty_table(database_url: str) -> None:
    """Each test starts from an empty ``$table`` (ids from 1 again)."""
    with chopin_pg.connect(database_url) as conn:
        conn.execute("TRUNCATE $table RESTART IDENTITY CASCADE")


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


def check_db_wiring(project: Project) -> None:
    """Refuse a project whose ``tests/conftest.py`` lacks the fixtures generated tests use.

    Raises:
        ProjectError: ``tests/conftest.py`` exists without ``database_url`` or ``client``.
    """
    conftest = project.root / "tests" / "conftest.py"
    if not conftest.is_file():
        return
    text = conftest.read_text(encoding="utf-8")
    missing = [name for name in _FIXTURES if not re.search(rf"^def {name}\(", text, re.MULTILINE)]
    if missing:
        raise ProjectError(
            f"{conftest} has no {' or '.join(missing)} fixture, which the generated tests use "
            "(see the conftest.py `chopin new` writes)"
        )


def write_db_wiring(project: Project) -> list[Path]:
    """Write ``src/<pkg>/db.py`` and ``tests/conftest.py`` where the project lacks them; returns those written.

    Projects made by ``chopin new`` have both: the generated code then uses them as they are.
    """
    written = []
    db = project.package_dir / "db.py"
    if not db.exists():
        db.write_text(DB_MODULE.substitute(package=project.package), encoding="utf-8")
        written.append(db)
    conftest = project.root / "tests" / "conftest.py"
    if not conftest.exists():
        conftest.parent.mkdir(exist_ok=True)
        conftest.write_text(CONFTEST.substitute(package=project.package), encoding="utf-8")
        written.append(conftest)
    return written


def _sample_key(f: FieldSpec) -> str:
    base = f.type_name.split("(")[0]
    return base if base in SAMPLE_JSON else "str"


def generate_scaffold(project: Project, name: str, specs: list[str], table: str | None = None) -> list[Path]:
    """Write the model, its migration, the CRUD routes and their tests (and ``db.py``/``conftest.py`` if missing).

    Returns:
        The files written, in order.

    Raises:
        FieldSpecError: a bad model name, table name or field spec.
        ProjectError: a file it would write exists, or ``tests/conftest.py`` lacks the
            fixtures the tests use (nothing is written then).
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
    check_db_wiring(project)
    written = list(generate_model(project, name, specs, table))
    written += write_db_wiring(project)
    imports = sorted({line for f in fields for line in f.field_type.imports})
    ordered = [f for f in fields if not f.nullable] + [f for f in fields if f.nullable]
    input_fields = "\n".join(
        f"    {f.name}: {f.field_type.annotation}" + (" | None = None" if f.nullable else "") for f in ordered
    )
    routes.write_text(
        ROUTES_MODULE.substitute(
            model=name,
            package=project.package,
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
    test.write_text(ROUTES_TEST.substitute(table=table, sample=sample), encoding="utf-8")
    written.append(test)
    return written
