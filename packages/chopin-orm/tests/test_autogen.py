"""The migration generator: normal forms, DDL text, and diffs applied to the real PostgreSQL.

Every diff test starts from a live schema, diffs it with the models, applies the up SQL,
re-introspects and finds no difference, then applies the down SQL and finds the original
schema again (columns, keys, indexes and their names).  Each test has its own fresh schema.
"""

from __future__ import annotations

import enum
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from chopin_orm import column, get, insert, model
from chopin_orm.autogen import (
    LiveTable,
    create_table_sql,
    diff,
    drop_table_sql,
    introspect,
    introspect_enums,
    make_migration,
    normalize_default,
    normalize_type,
)
from chopin_orm.errors import MigrationError
from chopin_orm.migrations import Migrator, discover
from chopin_orm.schema import ColumnMeta, ForeignKey, TableMeta
from chopin_pg import Connection, connect

# The same server and override as conftest.py: 127.0.0.1:5432, database "test", trust auth.
DSN = (
    os.environ.get("CHOPIN_ORM_TEST_DSN")
    or os.environ.get("CHOPIN_TEST_DATABASE_URL")  # the shared test server (compose, CI, testkit fallback)
    or "postgres://root@127.0.0.1:5432/test"
)


@pytest.fixture
def conn() -> Iterator[Connection]:
    with connect(DSN) as c:
        yield c


@pytest.fixture
def schema(conn: Connection) -> Iterator[str]:
    name = f"gen_{uuid.uuid4().hex[:12]}"
    conn.execute(f"CREATE SCHEMA {name}; SET search_path TO {name}")
    yield name
    with connect(DSN) as other:
        other.execute(f"DROP SCHEMA {name} CASCADE")


def col(name: str, sql_type: str, nullable: bool = False, **kw: Any) -> ColumnMeta:
    return ColumnMeta(name=name, attr=name, sql_type=sql_type, nullable=nullable, **kw)


def table(name: str, *columns: ColumnMeta, **kw: Any) -> TableMeta:
    pk = tuple(c.name for c in columns if c.primary_key)
    return TableMeta(name=name, columns=columns, primary_key=kw.pop("primary_key", pk), **kw)


def shape(metas: dict[str, TableMeta]) -> dict[str, Any]:
    """What a schema holds, with column order ignored (a re-added column goes last)."""
    out: dict[str, Any] = {}
    for name, m in metas.items():
        assert isinstance(m, LiveTable)
        out[name] = (
            frozenset(m.columns),
            m.primary_key,
            frozenset(m.unique_together),
            frozenset(m.indexes),
            frozenset(m.object_names),
        )
    return out


def run(conn: Connection, statements: list[str]) -> None:
    with conn.transaction():
        conn.execute("\n".join(statements))


def roundtrip(conn: Connection, schema: str, models: list[TableMeta], setup: str = "") -> tuple[list[str], list[str]]:
    """Diff, apply up, expect no diff; apply down, expect the original schema."""
    if setup:
        conn.execute(setup)
    names = [m.name for m in models]
    original = introspect(conn, names, schema)
    up, down = diff(models, original)
    assert up and down
    assert all(s.endswith(";") for s in up + down)
    run(conn, up)
    after = introspect(conn, names, schema)
    assert diff(models, after) == ([], []), "\n".join(up)
    run(conn, down)
    assert shape(introspect(conn, names, schema)) == shape(original), "\n".join(down)
    return up, down


# -- pure functions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("int", "integer"),
        ("INT4", "integer"),
        ("int8", "bigint"),
        ("smallint", "smallint"),
        ("varchar(20)", "character varying(20)"),
        ("VARCHAR", "character varying"),
        ("character varying(20)", "character varying(20)"),
        ("char", "character(1)"),
        ("char(3)", "character(3)"),
        ("timestamptz", "timestamp with time zone"),
        ("timestamptz(3)", "timestamp(3) with time zone"),
        ("timestamp", "timestamp without time zone"),
        ("timestamp(6)", "timestamp(6) without time zone"),
        ("timestamp  with   time zone", "timestamp with time zone"),
        ("time", "time without time zone"),
        ("timetz", "time with time zone"),
        ("decimal(10, 2)", "numeric(10,2)"),
        ("numeric", "numeric"),
        ("float8", "double precision"),
        ("float4", "real"),
        ("bool", "boolean"),
        ("int[]", "integer[]"),
        ("text[][]", "text[][]"),
        ("jsonb", "jsonb"),
        ("uuid", "uuid"),
        ('"Mood"', '"Mood"'),
    ],
)
def test_normalize_type_spells_types_as_format_type_does(given: str, expected: str) -> None:
    assert normalize_type(given) == expected


@pytest.mark.parametrize(
    ("default", "sql_type", "expected"),
    [
        ("'x'::text", "text", "'x'"),
        ("'x'", "text", "'x'"),
        ("'y'::character varying", "character varying(10)", "'y'"),
        ("'-1'::integer", "integer", "-1"),
        ("-1", "integer", "-1"),
        ("'5'", "int", "5"),
        ("(0)", "integer", "0"),
        ("TRUE", "boolean", "true"),
        ("current_timestamp", "timestamptz", "CURRENT_TIMESTAMP"),
        ("now()", "timestamp with time zone", "now()"),
        ("'{}'::jsonb", "jsonb", "'{}'"),
        ("'it''s'::text", "text", "'it''s'"),
        ("'2020-01-01'::date", "text", "'2020-01-01'::date"),  # a cast to another type is meaningful
        ("('a'::text || 'b'::text)", "text", "'a'::text || 'b'::text"),
        ("NULL", "text", None),
        (None, "text", None),
    ],
)
def test_normalize_default_makes_equal_spellings_compare_equal(
    default: str | None, sql_type: str, expected: str | None
) -> None:
    assert normalize_default(default, sql_type) == expected


def items_model() -> list[TableMeta]:
    owners = table(
        "owners",
        col("id", "integer", primary_key=True, identity=True),
        col("email", "varchar(200)", unique=True),
        col("created", "timestamptz", default_sql="now()"),
    )
    items = table(
        "items",
        col("id", "bigint", primary_key=True, identity=True),
        col("owner_id", "integer", references=ForeignKey("owners", "id", "CASCADE")),
        col("name", "text"),
        col("quantity", "integer", default_sql="0", index=True),
        col("price", "numeric(10,2)", nullable=True),
        col("tags", "text[]", default_sql="'{}'"),
        col("data", "jsonb", nullable=True),
        unique_together=(("owner_id", "name"),),
        indexes=(("name", "quantity"),),
    )
    return [owners, items]


def test_create_table_sql_text() -> None:
    items = items_model()[1]
    assert create_table_sql(items) == (
        'CREATE TABLE "items" (\n'
        '    "id" bigint GENERATED ALWAYS AS IDENTITY,\n'
        '    "owner_id" integer NOT NULL,\n'
        '    "name" text NOT NULL,\n'
        '    "quantity" integer NOT NULL DEFAULT 0,\n'
        '    "price" numeric(10,2),\n'
        """    "tags" text[] NOT NULL DEFAULT '{}',\n"""
        '    "data" jsonb,\n'
        '    CONSTRAINT "items_pkey" PRIMARY KEY ("id"),\n'
        '    CONSTRAINT "items_owner_id_name_key" UNIQUE ("owner_id", "name"),\n'
        '    CONSTRAINT "items_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "owners" ("id") ON DELETE CASCADE\n'
        ");\n"
        'CREATE INDEX "items_name_quantity_idx" ON "items" ("name", "quantity");\n'
        'CREATE INDEX "items_quantity_idx" ON "items" ("quantity");'
    )
    assert drop_table_sql(items) == 'DROP TABLE "items";'
    elsewhere = table("t", col("id", "int", primary_key=True), schema="app")
    assert create_table_sql(elsewhere).startswith('CREATE TABLE "app"."t" (')
    assert drop_table_sql(elsewhere) == 'DROP TABLE "app"."t";'


def test_long_names_are_cut_with_a_hash_and_stay_distinct() -> None:
    a = table("t" * 40, col("c" * 30 + "1", "int", index=True), col("c" * 30 + "2", "int", index=True))
    statements = create_table_sql(a).splitlines()[-2:]
    names = [s.split('"')[1] for s in statements]
    assert all(len(n) == 63 for n in names) and names[0] != names[1]


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(MigrationError, match="does not look like an SQL type"):
        create_table_sql(table("t", col("a", "int; DROP TABLE x")))
    with pytest.raises(MigrationError, match="unknown column 'nope'"):
        create_table_sql(table("t", col("a", "int"), indexes=(("nope",),)))
    with pytest.raises(MigrationError, match="no columns"):
        create_table_sql(table("t"))
    with pytest.raises(MigrationError, match="two models declare table t"):
        diff([table("t", col("a", "int")), table("t", col("b", "int"))], {})
    with pytest.raises(MigrationError, match="unknown ON DELETE action"):
        create_table_sql(table("t", col("a", "int", references=ForeignKey("u", "id", "EXPLODE"))))


# -- against the server ---------------------------------------------------------------------


def test_new_tables_are_created_in_foreign_key_order(conn: Connection, schema: str) -> None:
    owners, items = items_model()
    up, down = roundtrip(conn, schema, [items, owners])  # the referencing model first on purpose
    assert up[0].startswith('CREATE TABLE "owners"') and up[1].startswith('CREATE TABLE "items"')
    assert down == ['DROP TABLE "items";', 'DROP TABLE "owners";']
    run(conn, up)
    live = introspect(conn, schema=schema)
    assert sorted(live) == ["items", "owners"]
    assert live["items"].column("owner_id").references == ForeignKey("owners", "id", "CASCADE")
    assert live["items"].column("quantity").index and live["owners"].column("email").unique
    assert live["items"].column("id").identity and live["items"].column("id").default_sql is None
    assert live["items"].unique_together == (("owner_id", "name"),) and live["items"].indexes == (("name", "quantity"),)
    conn.execute("INSERT INTO owners (email) VALUES ('a@example.com')")
    conn.execute("INSERT INTO items (owner_id, name) VALUES (1, 'x')")
    assert tuple(conn.query_one("SELECT quantity, tags FROM items")) == (0, [])


def test_a_foreign_key_cycle_between_new_tables(conn: Connection, schema: str) -> None:
    a = table(
        "a", col("id", "int", primary_key=True), col("b_id", "int", nullable=True, references=ForeignKey("b", "id"))
    )
    b = table(
        "b", col("id", "int", primary_key=True), col("a_id", "int", nullable=True, references=ForeignKey("a", "id"))
    )
    up, _ = roundtrip(conn, schema, [a, b])
    assert any('ADD CONSTRAINT "a_b_id_fkey"' in s for s in up)


def test_added_and_dropped_columns(conn: Connection, schema: str) -> None:
    model = table(
        "t",
        col("id", "integer", primary_key=True),
        col("keep", "integer", nullable=True),
        col("fresh", "text", default_sql="'x'"),
        col("seq", "bigint", identity=True),
    )
    setup = "CREATE TABLE t (id int PRIMARY KEY, old text NOT NULL DEFAULT 'o', keep int, gone int UNIQUE);"
    setup += "INSERT INTO t (id, keep) VALUES (1, 10), (2, 20);"
    up, down = roundtrip(conn, schema, [model], setup)
    assert 'ALTER TABLE "t" ADD COLUMN "fresh" text NOT NULL DEFAULT \'x\';' in up
    assert 'ALTER TABLE "t" DROP COLUMN "old";' in up
    assert 'ALTER TABLE "t" ADD COLUMN "old" text NOT NULL DEFAULT \'o\'::text;' in down
    assert up.index('ALTER TABLE "t" DROP CONSTRAINT "t_gone_key";') < up.index('ALTER TABLE "t" DROP COLUMN "gone";')
    assert [tuple(r) for r in conn.query("SELECT id, keep FROM t ORDER BY id")] == [(1, 10), (2, 20)]


def test_type_changes_keep_the_data(conn: Connection, schema: str) -> None:
    model = table(
        "t",
        col("id", "int", primary_key=True),
        col("n", "bigint"),
        col("s", "varchar(50)"),
        col("v", "text"),
        col("same", "int4"),  # an alias of the live type: no change
    )
    setup = "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL, s text NOT NULL, v varchar(10) NOT NULL,"
    setup += " same int NOT NULL); INSERT INTO t VALUES (1, 7, 'abc', 'vv', 0);"
    conn.execute(setup)
    original = introspect(conn, ["t"], schema)
    up, _ = diff([model], original)
    assert up == [
        'ALTER TABLE "t" ALTER COLUMN "n" TYPE bigint USING "n"::bigint;',
        'ALTER TABLE "t" ALTER COLUMN "s" TYPE character varying(50) USING "s"::character varying(50);',
        'ALTER TABLE "t" ALTER COLUMN "v" TYPE text USING "v"::text;',
    ]
    run(conn, up)
    assert tuple(conn.query_one("SELECT n, s, v FROM t")) == (7, "abc", "vv")
    conn.execute("DROP TABLE t")
    roundtrip(conn, schema, [model], setup)


def test_nullability_changes(conn: Connection, schema: str) -> None:
    model = table("t", col("a", "int", nullable=True), col("b", "int"))
    up, down = roundtrip(conn, schema, [model], "CREATE TABLE t (a int NOT NULL, b int); INSERT INTO t VALUES (1, 2);")
    assert up == ['ALTER TABLE "t" ALTER COLUMN "a" DROP NOT NULL;', 'ALTER TABLE "t" ALTER COLUMN "b" SET NOT NULL;']
    assert down == [
        'ALTER TABLE "t" ALTER COLUMN "b" DROP NOT NULL;',
        'UPDATE "t" SET "a" = 0 WHERE "a" IS NULL;',  # NULLs written since up would stop SET NOT NULL
        'ALTER TABLE "t" ALTER COLUMN "a" SET NOT NULL;',
    ]


def test_default_changes(conn: Connection, schema: str) -> None:
    model = table(
        "t",
        col("a", "int", default_sql="2"),
        col("b", "text", default_sql="'hello'"),
        col("c", "timestamptz"),
        col("d", "text", default_sql="'same'"),  # live: 'same'::text
        col("e", "int", default_sql="-1"),  # live: '-1'::integer
    )
    setup = (
        "CREATE TABLE t (a int NOT NULL DEFAULT 1, b text NOT NULL, c timestamptz NOT NULL DEFAULT now(),"
        " d text NOT NULL DEFAULT 'same', e int NOT NULL DEFAULT -1)"
    )
    up, _ = roundtrip(conn, schema, [model], setup)
    assert up == [
        'ALTER TABLE "t" ALTER COLUMN "a" DROP DEFAULT;',
        'ALTER TABLE "t" ALTER COLUMN "a" SET DEFAULT 2;',
        """ALTER TABLE "t" ALTER COLUMN "b" SET DEFAULT 'hello';""",
        'ALTER TABLE "t" ALTER COLUMN "c" DROP DEFAULT;',
    ]


def test_identity_added_and_dropped(conn: Connection, schema: str) -> None:
    model = table("t", col("id", "int", primary_key=True, identity=True), col("n", "int"))
    up, _ = roundtrip(conn, schema, [model], "CREATE TABLE t (id int PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY)")
    assert 'ALTER TABLE "t" ALTER COLUMN "id" ADD GENERATED ALWAYS AS IDENTITY;' in up
    assert 'ALTER TABLE "t" ALTER COLUMN "n" DROP IDENTITY;' in up


def test_indexes_added_and_dropped_by_their_live_names(conn: Connection, schema: str) -> None:
    model = table("t", col("a", "int"), col("b", "int", index=True), col("c", "int"), indexes=(("a", "c"),))
    setup = "CREATE TABLE t (a int NOT NULL, b int NOT NULL, c int NOT NULL);"
    setup += "CREATE INDEX ON t (a); CREATE INDEX my_bc ON t (b, c);"
    setup += "CREATE INDEX t_expr ON t ((a + b)); CREATE INDEX t_partial ON t (c) WHERE c > 0;"  # unmanaged
    up, down = roundtrip(conn, schema, [model], setup)
    assert sorted(up) == sorted(
        [
            'DROP INDEX "t_a_idx";',
            'DROP INDEX "my_bc";',
            'CREATE INDEX "t_a_c_idx" ON "t" ("a", "c");',
            'CREATE INDEX "t_b_idx" ON "t" ("b");',
        ]
    )
    assert 'CREATE INDEX "my_bc" ON "t" ("b", "c");' in down
    names = {r[0] for r in conn.query("SELECT indexname::text FROM pg_indexes WHERE schemaname = $1", (schema,))}
    assert {"t_expr", "t_partial", "my_bc", "t_a_idx"} <= names


def test_unique_constraints_and_unique_indexes(conn: Connection, schema: str) -> None:
    model = table("t", col("a", "int"), col("b", "int", unique=True), col("c", "int"), unique_together=(("a", "c"),))
    setup = "CREATE TABLE t (a int NOT NULL UNIQUE, b int NOT NULL, c int NOT NULL, CONSTRAINT bc_uniq UNIQUE (b, c));"
    setup += "CREATE UNIQUE INDEX ux_c ON t (c);"
    up, down = roundtrip(conn, schema, [model], setup)
    assert 'ALTER TABLE "t" DROP CONSTRAINT "bc_uniq";' in up and 'DROP INDEX "ux_c";' in up
    assert 'ALTER TABLE "t" ADD CONSTRAINT "t_a_c_key" UNIQUE ("a", "c");' in up
    assert 'CREATE UNIQUE INDEX "ux_c" ON "t" ("c");' in down


def test_foreign_keys_added_dropped_and_changed(conn: Connection, schema: str) -> None:
    parent = table("parent", col("id", "int", primary_key=True))
    other = table("other", col("id", "int", primary_key=True))
    child = table(
        "child",
        col("id", "int", primary_key=True),
        col("p", "int", nullable=True),
        col("q", "int", nullable=True, references=ForeignKey("parent", "id", "SET NULL")),
        col("r", "int", nullable=True, references=ForeignKey("other", "id")),
        col("s", "int", nullable=True, references=ForeignKey("parent", "id", "NO ACTION")),  # = live, unchanged
    )
    setup = (
        "CREATE TABLE parent (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY);"
        "CREATE TABLE child (id int PRIMARY KEY, p int REFERENCES parent, q int REFERENCES parent ON DELETE CASCADE,"
        " r int, s int CONSTRAINT s_to_parent REFERENCES parent (id))"
    )
    up, down = roundtrip(conn, schema, [parent, other, child], setup)
    assert 'ALTER TABLE "child" DROP CONSTRAINT "child_p_fkey";' in up
    q_fkey = 'ADD CONSTRAINT "child_q_fkey" FOREIGN KEY ("q") REFERENCES "parent" ("id") ON DELETE SET NULL;'
    assert f'ALTER TABLE "child" {q_fkey}' in up
    assert 'ALTER TABLE "child" ADD CONSTRAINT "child_r_fkey" FOREIGN KEY ("r") REFERENCES "other" ("id");' in up
    assert not any('"s"' in s for s in up)
    # The drops come before the adds, and down restores CASCADE.
    assert max(i for i, s in enumerate(up) if "DROP" in s) < min(i for i, s in enumerate(up) if "ADD" in s)
    assert any("ON DELETE CASCADE" in s for s in down)


def test_primary_key_changes(conn: Connection, schema: str) -> None:
    model = table("t", col("a", "int", primary_key=True), col("b", "int", primary_key=True))
    up, down = roundtrip(conn, schema, [model], "CREATE TABLE t (a int CONSTRAINT t_main PRIMARY KEY, b int NOT NULL)")
    assert up == [
        'ALTER TABLE "t" DROP CONSTRAINT "t_main";',
        'ALTER TABLE "t" ADD CONSTRAINT "t_pkey" PRIMARY KEY ("a", "b");',
    ]
    assert down[-1] == 'ALTER TABLE "t" ADD CONSTRAINT "t_main" PRIMARY KEY ("a");'


def test_a_table_created_from_its_model_has_no_diff_even_with_aliased_spellings(conn: Connection, schema: str) -> None:
    model = table(
        "t",
        col("id", "int", primary_key=True, identity=True),
        col("name", "varchar(20)", default_sql="'x'", unique=True),
        col("at", "timestamptz", default_sql="current_timestamp"),
        col("ok", "bool", default_sql="TRUE"),
        col("price", "decimal(10, 2)", default_sql="0"),
        col("n", "int", default_sql="-1"),
        col("ids", "int[]", nullable=True),
        col("doc", "jsonb", default_sql="'{}'::jsonb"),
        col("day", "date", default_sql="'2020-01-01'::date"),
    )
    conn.execute(create_table_sql(model))
    assert diff([model], introspect(conn, ["t"], schema)) == ([], [])


def test_introspect_reads_serial_and_ignores_what_it_does_not_manage(conn: Connection, schema: str) -> None:
    conn.execute(
        "CREATE TABLE p (a int, b int, PRIMARY KEY (a, b));"
        "CREATE TABLE c (id serial PRIMARY KEY, a int, b int, FOREIGN KEY (a, b) REFERENCES p,"
        " CHECK (a > 0), g int GENERATED ALWAYS AS (a * 2) STORED);"
        "CREATE INDEX c_include ON c (a) INCLUDE (b); CREATE INDEX c_desc ON c (b DESC);"
        "CREATE INDEX c_hash ON c USING hash (a);"
        "CREATE VIEW v AS SELECT 1 AS x;"
    )
    live = introspect(conn, schema=schema)
    assert sorted(live) == ["c", "p"]  # views are not tables
    c = live["c"]
    assert isinstance(c, LiveTable)
    assert c.column("id") == ColumnMeta("id", "id", "integer", False, primary_key=True, identity=True)
    assert c.column("a").references is None and c.indexes == () and not c.column("a").index
    assert c.column("g").default_sql is None
    assert introspect(conn, ["c", "missing"], schema).keys() == {"c"}
    assert introspect(conn, [], schema) == {}


def test_introspect_qualifies_foreign_keys_to_other_schemas(conn: Connection, schema: str) -> None:
    other = f"{schema}_x"
    conn.execute(f"CREATE SCHEMA {other}; CREATE TABLE {other}.target (id int PRIMARY KEY)")
    try:
        conn.execute(f"CREATE TABLE t (id int REFERENCES {other}.target)")
        assert introspect(conn, ["t"], schema)["t"].column("id").references == ForeignKey(f"{other}.target", "id")
        model = table("t", col("id", "int", nullable=True, references=ForeignKey(f"{other}.target", "id")))
        assert diff([model], introspect(conn, ["t"], schema)) == ([], [])
    finally:
        conn.execute(f"DROP SCHEMA {other} CASCADE")


def test_enum_types_the_models_need_are_created(conn: Connection, schema: str) -> None:
    mood = ColumnMeta("mood", "mood", "mood", False, enum_values=("sad", "ok"))
    model = table("t", col("id", "int", primary_key=True), mood)
    up, down = diff([model], {}, live_enums=introspect_enums(conn, schema))
    assert up[0] == "CREATE TYPE \"mood\" AS ENUM ('sad', 'ok');" and down[-1] == 'DROP TYPE "mood";'
    run(conn, up)
    assert introspect_enums(conn, schema) == {"mood": ("sad", "ok")}
    assert diff([model], introspect(conn, ["t"], schema), live_enums=introspect_enums(conn, schema)) == ([], [])
    run(conn, down)
    assert introspect_enums(conn, schema) == {}


def test_make_migration_writes_files_the_migrator_applies(conn: Connection, schema: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    owners, items = items_model()
    paths = make_migration([owners, items], conn, folder, "create_items")
    assert paths is not None
    up_path, down_path = paths
    assert up_path.name.endswith("_create_items.up.sql") and down_path.name.endswith("_create_items.down.sql")
    assert up_path.read_text().startswith("-- Generated by chopin_orm.autogen.make_migration")
    migrator = Migrator(conn, folder, lock_key=hash(schema) & 0x7FFF_FFFF_FFFF)
    assert [m.name for m in migrator.up()] == ["create_items"]
    assert make_migration([owners, items], conn, folder, "nothing") is None  # the schema matches
    assert len(discover(folder)) == 1
    # A change to a model makes a second migration.
    items2 = TableMeta(
        name="items",
        columns=(*items.columns, col("note", "text", nullable=True)),
        primary_key=items.primary_key,
        unique_together=items.unique_together,
        indexes=items.indexes,
    )
    second = make_migration([owners, items2], conn, folder, "add_note")
    assert second is not None and 'ADD COLUMN "note" text;' in second[0].read_text()
    assert [m.name for m in migrator.up()] == ["add_note"]
    assert make_migration([owners, items2], conn, folder, "nothing") is None
    assert [m.name for m in migrator.down(steps=2)] == ["add_note", "create_items"]
    assert introspect(conn, schema=schema).keys() == {"chopin_migrations"}


class Mood(enum.Enum):
    SAD = "sad"
    OK = "ok"


@model(table="owners")
@dataclass
class Owner:
    email: str = column(unique=True)
    id: int | None = column(primary_key=True, generated=True, default=None)


@model(table="items", unique_together=(("owner_id", "name"),))
@dataclass
class Item:
    name: str
    quantity: int = column(default=0, index=True)
    owner_id: int | None = column(references=Owner, on_delete="CASCADE", default=None)
    mood: Mood = Mood.OK
    created: datetime | None = column(server_default="now()", default=None)
    id: int | None = column(primary_key=True, generated=True, default=None)


def test_make_migration_from_model_classes(conn: Connection, schema: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    paths = make_migration([Item, Owner], conn, folder, "create_items")
    assert paths is not None
    up_sql = paths[0].read_text()
    assert up_sql.index('CREATE TYPE "mood"') < up_sql.index('CREATE TABLE "owners"') < up_sql.index('"items"')
    migrator = Migrator(conn, folder, lock_key=hash(schema) & 0x7FFF_FFFF_FFFF)
    migrator.up()
    assert make_migration([Item, Owner], conn, folder, "again") is None
    # The models work on the schema the migration made.
    owner = Owner(email="a@example.com")
    insert(owner, conn)
    item = Item(name="widget", owner_id=owner.id, mood=Mood.SAD)
    insert(item, conn)
    got = get(Item, conn, item.id)
    assert (got.name, got.quantity, got.mood, got.owner_id) == ("widget", 0, Mood.SAD, owner.id)
    assert got.created is not None
    migrator.down()
    assert introspect(conn, schema=schema).keys() == {"chopin_migrations"}
    assert introspect_enums(conn, schema) == {}


def test_make_migration_compares_defaults_as_the_server_spells_them(
    conn: Connection, schema: str, tmp_path: Path
) -> None:
    model = table(
        "t",
        col("id", "int", primary_key=True),
        col("label", "text", default_sql="'a' || 'b'"),
        col("due", "timestamptz", default_sql="now() + interval '1 day'"),
        col("ids", "int[]", default_sql="ARRAY[1,2]"),
        col("code", "character varying (8)", default_sql="lower('X')"),
    )
    conn.execute(create_table_sql(model))
    live = introspect(conn, ["t"], schema)
    assert diff([model], live)[0] != []  # text alone cannot tell these spellings apart...
    assert make_migration([model], conn, tmp_path, "nothing") is None  # ...the server can
    assert not conn.in_transaction and introspect(conn, schema=schema).keys() == {"t"}
    changed = TableMeta("t", (*model.columns[:4], col("code", "varchar(8)", default_sql="upper('x')")), ("id",))
    paths = make_migration([changed], conn, tmp_path, "upper_code")
    assert paths is not None
    assert 'ALTER TABLE "t" ALTER COLUMN "code" SET DEFAULT upper(\'x\'::text);' in paths[0].read_text()


def test_make_migration_inside_a_transaction_leaves_it_usable(conn: Connection, schema: str, tmp_path: Path) -> None:
    model = table("t", col("id", "int", primary_key=True), col("at", "timestamptz", default_sql="now()"))
    with conn.transaction():
        conn.execute("CREATE TABLE keep (x int)")
        assert make_migration([model], conn, tmp_path, "create_t") is not None
        conn.execute("INSERT INTO keep VALUES (1)")
    assert conn.query_scalar("SELECT count(*) FROM keep") == 1


def test_make_migration_for_models_in_a_named_schema(conn: Connection, schema: str, tmp_path: Path) -> None:
    other = f"{schema}_named"
    conn.execute(f"CREATE SCHEMA {other}")
    try:
        parent = table("parent", col("id", "int", primary_key=True))  # in the search_path's schema
        child = table(
            "child",
            col("id", "int", primary_key=True),
            col("parent_id", "int", references=ForeignKey(f"{schema}.parent", "id"), index=True),
            schema=other,
        )
        paths = make_migration([parent, child], conn, tmp_path, "two_schemas")
        assert paths is not None
        assert f'CREATE TABLE "{other}"."child"' in paths[0].read_text()
        Migrator(conn, tmp_path, lock_key=hash(other) & 0x7FFF_FFFF_FFFF).up()
        live = introspect(conn, ["child"], other)["child"]
        assert live.column("parent_id").references == ForeignKey(f"{schema}.parent", "id")
        assert live.column("parent_id").index
        assert make_migration([parent, child], conn, tmp_path, "nothing") is None
    finally:
        conn.execute(f"DROP SCHEMA {other} CASCADE")
