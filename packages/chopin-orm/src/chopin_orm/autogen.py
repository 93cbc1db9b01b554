"""The migration generator: compare models with the live schema and write the SQL for the difference.

``introspect`` reads tables from ``pg_catalog`` into the same ``TableMeta`` shape models
declare (a ``LiveTable``, which also remembers the names of the live constraints and
indexes so they can be dropped); ``diff`` compares the two and returns the up statements
and the down statements that undo them; ``make_migration`` does both and writes the files.

What ``diff`` sees: new tables (in foreign-key order), added and dropped columns, type,
nullability, default and identity changes, primary keys, UNIQUE constraints (single- and
multi-column), plain btree indexes, single-column foreign keys (target and ``ON DELETE``),
and enum types the models need that do not exist yet.  What it leaves alone: tables no
model names (removing a model does not drop its table), expression, partial and non-btree
indexes, composite foreign keys, CHECK constraints, renames (a renamed column is a drop
and an add: edit the file into a ``RENAME`` when data must be kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chopin_pg import Connection

from ._migration_probe import canonical_tables
from ._migration_sql import (
    alter,
    check_type,
    column_definition,
    create_index,
    create_table_statements,
    drop_index,
    effective_nullable,
    foreign_key_clause,
    index_sets,
    normal_on_delete,
    normalize_default,
    normalize_type,
    object_name,
    primary_key_clause,
    quote,
    table_ref,
    unique_clause,
    unique_sets,
)
from .errors import MigrationError
from .migrations import write_migration
from .schema import ColumnMeta, ForeignKey, TableMeta, table_meta

__all__ = [
    "LiveTable",
    "create_table_sql",
    "diff",
    "drop_table_sql",
    "introspect",
    "introspect_enums",
    "make_migration",
    "normalize_default",
    "normalize_type",
]

_ON_DELETE_CODES = {"a": None, "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

# One (up, down) pair per change; either side may be None (nothing to run).
_Op = tuple[str | None, str | None]


@dataclass(frozen=True, slots=True)
class LiveTable(TableMeta):
    """A ``TableMeta`` read from the server, with the names of its keys and indexes.

    ``object_names`` holds ``(role, columns, kind, name)``: role is "pkey", "unique",
    "index" or "fkey"; kind is "constraint" or "index" (a UNIQUE made by
    ``CREATE UNIQUE INDEX`` is an index).
    """

    object_names: tuple[tuple[str, tuple[str, ...], str, str], ...] = ()

    def name_of(self, role: str, columns: tuple[str, ...]) -> tuple[str, str] | None:
        """``(kind, name)`` of the live object with this role on these columns, if any."""
        for r, cols, kind, name in self.object_names:
            if r == role and cols == columns:
                return kind, name
        return None


# -- DDL for one table ------------------------------------------------------------------------


def create_table_sql(meta: TableMeta) -> str:
    """``CREATE TABLE`` for a model (columns, primary key, UNIQUEs, foreign keys), then its indexes.

    Constraint and index names follow PostgreSQL's defaults (``items_pkey``,
    ``items_name_key``, ``items_owner_id_fkey``, ``items_quantity_idx``).

    Raises:
        MigrationError: A type is not a type name, or a key names an unknown column.
    """
    return "\n".join(create_table_statements(meta))


def drop_table_sql(meta: TableMeta) -> str:
    """``DROP TABLE`` for a model (no CASCADE: the server refuses if something still depends on it)."""
    return f"DROP TABLE {table_ref(meta)};"


# -- introspection ----------------------------------------------------------------------------

_TABLE_FILTER = "n.nspname = $1 AND c.relkind IN ('r', 'p') AND ($2::text[] IS NULL OR c.relname = ANY($2::text[]))"

_COLUMNS_SQL = f"""
SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.attidentity::text, pg_get_expr(d.adbin, d.adrelid), a.attgenerated::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE {_TABLE_FILTER}
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS_SQL = f"""
SELECT c.relname::text, con.conname::text, con.contype::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord),
       fn.nspname::text, fc.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord),
       con.confdeltype::text
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE {_TABLE_FILTER} AND con.contype IN ('p', 'u', 'f')
ORDER BY c.relname, con.conname
"""

# Plain indexes only: btree on bare columns, no predicate, no INCLUDE, default ordering;
# indexes that back a PRIMARY KEY / UNIQUE / EXCLUDE constraint come with the constraint.
_INDEXES_SQL = f"""
SELECT c.relname::text, ic.relname::text, i.indisunique,
       ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.ord)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = ic.relam
WHERE {_TABLE_FILTER}
  AND am.amname = 'btree' AND i.indexprs IS NULL AND i.indpred IS NULL
  AND i.indnatts = i.indnkeyatts AND 0 <> ALL (i.indkey::int2[]) AND 0 = ALL (i.indoption::int2[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con
                  WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY c.relname, ic.relname
"""

_ENUMS_SQL = """
SELECT t.typname::text, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname = $1
GROUP BY t.typname
"""


@dataclass
class _TableParts:
    columns: list[dict[str, Any]] = field(default_factory=list)
    primary_key: tuple[str, ...] = ()
    unique_together: list[tuple[str, ...]] = field(default_factory=list)
    indexes: list[tuple[str, ...]] = field(default_factory=list)
    names: list[tuple[str, tuple[str, ...], str, str]] = field(default_factory=list)


def introspect(conn: Connection, tables: Iterable[str] | None = None, schema: str = "public") -> dict[str, TableMeta]:
    """Read tables of ``schema`` from ``pg_catalog`` into ``TableMeta`` values.

    Single-column UNIQUEs and indexes become ``ColumnMeta.unique``/``index``, multi-column
    ones ``unique_together``/``indexes``; identity and ``serial`` columns have
    ``identity=True`` and no default; a foreign key's table is bare when it lives in
    ``schema``, ``other.table`` otherwise.

    Args:
        conn: A connection.
        tables: Table names to read (default: every table of the schema); absent ones are left out.
        schema: The schema.

    Returns:
        ``LiveTable`` values by table name, with ``schema`` set.
    """
    names = None if tables is None else sorted(set(tables))
    if names == []:
        return {}
    params = (schema, names)
    parts: dict[str, _TableParts] = {}
    for r in conn.query(_COLUMNS_SQL, params):
        table, name, sql_type, not_null, identity, default, generated = tuple(r)
        serial = default is not None and default.startswith("nextval(")
        parts.setdefault(table, _TableParts()).columns.append(
            {
                "name": name,
                "attr": name,
                "sql_type": sql_type,
                "nullable": not not_null,
                "identity": identity in ("a", "d") or serial,
                "default_sql": None if (serial or generated) else default,
            }
        )
    for r in conn.query(_CONSTRAINTS_SQL, params):
        table, conname, contype, columns, ref_schema, ref_table, ref_columns, on_delete = tuple(r)
        part = parts[table]
        cols = tuple(columns)
        by_name = {c["name"]: c for c in part.columns}
        if contype == "p":
            part.primary_key = cols
            part.names.append(("pkey", cols, "constraint", conname))
        elif contype == "u":
            _add_unique(part, by_name, cols, "constraint", conname)
        elif len(cols) == 1 and by_name[cols[0]].get("references") is None:  # composite FKs: not managed
            target = ref_table if ref_schema == schema else f"{ref_schema}.{ref_table}"
            by_name[cols[0]]["references"] = ForeignKey(target, ref_columns[0], _ON_DELETE_CODES.get(on_delete))
            part.names.append(("fkey", cols, "constraint", conname))
    for r in conn.query(_INDEXES_SQL, params):
        table, index_name, is_unique, columns = tuple(r)
        part = parts[table]
        cols = tuple(columns)
        by_name = {c["name"]: c for c in part.columns}
        if is_unique:
            _add_unique(part, by_name, cols, "index", index_name)
        elif not any(role == "index" and c == cols for role, c, _, _ in part.names):
            if len(cols) == 1:
                by_name[cols[0]]["index"] = True
            else:
                part.indexes.append(cols)
            part.names.append(("index", cols, "index", index_name))
    out: dict[str, TableMeta] = {}
    for table, part in sorted(parts.items()):
        pk = set(part.primary_key)
        out[table] = LiveTable(
            name=table,
            columns=tuple(ColumnMeta(primary_key=c["name"] in pk, **c) for c in part.columns),
            primary_key=part.primary_key,
            schema=schema,
            unique_together=tuple(part.unique_together),
            indexes=tuple(part.indexes),
            object_names=tuple(part.names),
        )
    return out


def _add_unique(
    part: _TableParts, by_name: dict[str, dict[str, Any]], cols: tuple[str, ...], kind: str, name: str
) -> None:
    if any(role == "unique" and c == cols for role, c, _, _ in part.names):
        return  # a duplicate UNIQUE on the same columns: the first one is managed, the rest left alone
    if len(cols) == 1:
        by_name[cols[0]]["unique"] = True
    else:
        part.unique_together.append(cols)
    part.names.append(("unique", cols, kind, name))


def introspect_enums(conn: Connection, schema: str = "public") -> dict[str, tuple[str, ...]]:
    """The enum types of ``schema`` and their labels in order."""
    return {r[0]: tuple(r[1]) for r in conn.query(_ENUMS_SQL, (schema,))}


# -- diff -------------------------------------------------------------------------------------


def _key(meta: TableMeta) -> str:
    return f"{meta.schema}.{meta.name}" if meta.schema else meta.name


def _fk_shape(fk: ForeignKey | None, own_schema: str | None) -> tuple[str, str, str | None] | None:
    if fk is None:
        return None
    table = fk.table
    if own_schema and table.startswith(own_schema + "."):
        table = table[len(own_schema) + 1 :]
    return (table, fk.column, normal_on_delete(fk))


def _type_ref(type_name: str) -> str:
    schema, dot, name = type_name.rpartition(".")
    return f"{quote(schema)}.{quote(name)}" if dot else quote(name)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class _Plan:
    """Changes by phase; up runs the phases in this order, down runs the inverses backwards."""

    drop_fks: list[_Op]
    drop_keys: list[_Op]
    drop_pks: list[_Op]
    create_types: list[_Op]
    create_tables: list[_Op]
    add_columns: list[_Op]
    alter_columns: list[_Op]
    drop_columns: list[_Op]
    add_pks: list[_Op]
    add_keys: list[_Op]
    add_fks: list[_Op]

    def ops(self) -> list[_Op]:
        return [op for phase in vars(self).values() for op in phase]


def diff(
    models_meta: Iterable[TableMeta],
    live: Mapping[str, TableMeta],
    *,
    live_enums: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[list[str], list[str]]:
    """The statements that bring ``live`` to what the models declare, and the ones that undo them.

    Args:
        models_meta: What the models declare.
        live: The live tables (``introspect``), keyed by table name (``schema.name`` for models
            that name a schema).  Live tables no model names are ignored.
        live_enums: Existing enum types and labels; when given, enum types the models use
            that are missing are created (and labels appended with ``ADD VALUE``).

    Returns:
        ``(up, down)``: lists of statements, each ending in ``;``. Both are empty when the
        schema already matches.

    Raises:
        MigrationError: Two models declare the same table, or a model declaration is unusable.
    """
    metas = list(models_meta)
    seen: set[str] = set()
    for m in metas:
        if _key(m) in seen:
            raise MigrationError(f"two models declare table {_key(m)}")
        seen.add(_key(m))
    plan = _Plan([], [], [], [], [], [], [], [], [], [], [])
    if live_enums is not None:
        _plan_enums(plan, metas, live_enums)
    _plan_new_tables(plan, [m for m in metas if _key(m) not in live])
    for m in metas:
        old = live.get(_key(m))
        if old is not None:
            _plan_table(plan, m, old)
    ops = plan.ops()
    up = [u for u, _ in ops if u is not None]
    down = [d for _, d in reversed(ops) if d is not None]
    return up, down


def _plan_enums(plan: _Plan, metas: list[TableMeta], live_enums: Mapping[str, tuple[str, ...]]) -> None:
    planned: set[str] = set()
    for m in metas:
        for col in m.columns:
            labels = col.enum_values
            type_name = col.sql_type.removesuffix("[]")
            if not labels or type_name in planned:
                continue
            planned.add(type_name)
            existing = live_enums.get(type_name)
            if existing is None:
                values = ", ".join(_literal(v) for v in labels)
                quoted = _type_ref(type_name)
                plan.create_types.append((f"CREATE TYPE {quoted} AS ENUM ({values});", f"DROP TYPE {quoted};"))
                continue
            for label in labels:
                if label not in existing:  # labels cannot be removed again: no down
                    plan.create_types.append((f"ALTER TYPE {_type_ref(type_name)} ADD VALUE {_literal(label)};", None))


def _plan_new_tables(plan: _Plan, new: list[TableMeta]) -> None:
    # Foreign-key order: a table comes after the new tables it references; references that
    # cannot be ordered (cycles) are added with ALTER TABLE once every table exists.
    pending = {_key(m): m for m in new}

    def waits_for_another(m: TableMeta) -> bool:
        key = _key(m)
        return any(c.references is not None and c.references.table in pending.keys() - {key} for c in m.columns)

    while pending:
        batch = [m for m in pending.values() if not waits_for_another(m)] or [next(iter(pending.values()))]
        for m in batch:
            deferred = waits_for_another(m)  # only in a cycle: its foreign keys are added afterwards
            statements = create_table_statements(m, foreign_keys=not deferred)
            plan.create_tables.append((statements[0], drop_table_sql(m)))
            plan.create_tables.extend((s, None) for s in statements[1:])  # indexes go with the table
            for c in m.columns if deferred else ():
                if c.references is not None:
                    name = object_name(m.name, (c.name,), "fkey")
                    plan.add_fks.append(
                        (
                            alter(m, f"ADD {foreign_key_clause(m, c.name, c.references)}"),
                            alter(m, f"DROP CONSTRAINT {quote(name)}"),
                        )
                    )
            del pending[_key(m)]


def _live_name(old: TableMeta, role: str, cols: tuple[str, ...], default_suffix: str) -> tuple[str, str]:
    found = old.name_of(role, cols) if isinstance(old, LiveTable) else None
    if found is not None:
        return found
    return ("index" if role == "index" else "constraint"), object_name(old.name, cols, default_suffix)


def _plan_table(plan: _Plan, m: TableMeta, old: TableMeta) -> None:
    new_cols = {c.name: c for c in m.columns}
    old_cols = {c.name: c for c in old.columns}
    where = m.name
    for c in m.columns:
        if c.name not in old_cols:
            plan.add_columns.append(
                (
                    alter(m, f"ADD COLUMN {column_definition(c, where)}"),
                    alter(m, f"DROP COLUMN {quote(c.name)}"),
                )
            )
        else:
            _plan_column(plan, m, c, old_cols[c.name])
    for c in old.columns:
        if c.name not in new_cols:
            definition = column_definition(c, where)
            plan.drop_columns.append((alter(m, f"DROP COLUMN {quote(c.name)}"), alter(m, f"ADD COLUMN {definition}")))
    # Primary key.
    if tuple(m.primary_key) != tuple(old.primary_key):
        if old.primary_key:
            found = old.name_of("pkey", old.primary_key) if isinstance(old, LiveTable) else None
            name = found[1] if found else object_name(old.name, (), "pkey")
            pk_cols = ", ".join(quote(x) for x in old.primary_key)
            plan.drop_pks.append(
                (
                    alter(m, f"DROP CONSTRAINT {quote(name)}"),
                    alter(m, f"ADD CONSTRAINT {quote(name)} PRIMARY KEY ({pk_cols})"),
                )
            )
        if m.primary_key:
            name = object_name(m.name, (), "pkey")
            plan.add_pks.append((alter(m, f"ADD {primary_key_clause(m)}"), alter(m, f"DROP CONSTRAINT {quote(name)}")))
    # UNIQUE constraints.
    new_unique, old_unique = unique_sets(m), unique_sets(old)
    for cols in sorted(old_unique - new_unique):
        kind, name = _live_name(old, "unique", cols, "key")
        if kind == "index":
            listed = ", ".join(quote(x) for x in cols)
            recreate = f"CREATE UNIQUE INDEX {quote(name)} ON {table_ref(m)} ({listed});"
            plan.drop_keys.append((drop_index(m, name), recreate))
        else:
            plan.drop_keys.append(
                (alter(m, f"DROP CONSTRAINT {quote(name)}"), alter(m, f"ADD {unique_clause(m, cols, name)}"))
            )
    for cols in sorted(new_unique - old_unique):
        name = object_name(m.name, cols, "key")
        plan.add_keys.append((alter(m, f"ADD {unique_clause(m, cols)}"), alter(m, f"DROP CONSTRAINT {quote(name)}")))
    # Plain indexes.
    new_index, old_index = index_sets(m), index_sets(old)
    for cols in sorted(old_index - new_index):
        _, name = _live_name(old, "index", cols, "idx")
        plan.drop_keys.append((drop_index(m, name), create_index(m, cols, name)))
    for cols in sorted(new_index - old_index):
        name = object_name(m.name, cols, "idx")
        plan.add_keys.append((create_index(m, cols), drop_index(m, name)))
    # Foreign keys (single-column).
    for name_ in sorted(new_cols.keys() | old_cols.keys()):
        new_c, old_c = new_cols.get(name_), old_cols.get(name_)
        new_fk = new_c.references if new_c is not None else None
        old_fk = old_c.references if old_c is not None else None
        if _fk_shape(new_fk, m.schema) == _fk_shape(old_fk, old.schema):
            continue
        if old_fk is not None:
            _, fk_name = _live_name(old, "fkey", (name_,), "fkey")
            plan.drop_fks.append(
                (
                    alter(m, f"DROP CONSTRAINT {quote(fk_name)}"),
                    alter(m, f"ADD {foreign_key_clause(m, name_, old_fk, fk_name)}"),
                )
            )
        if new_fk is not None:
            fk_name = object_name(m.name, (name_,), "fkey")
            plan.add_fks.append(
                (
                    alter(m, f"ADD {foreign_key_clause(m, name_, new_fk)}"),
                    alter(m, f"DROP CONSTRAINT {quote(fk_name)}"),
                )
            )


def _plan_column(plan: _Plan, m: TableMeta, new: ColumnMeta, old: ColumnMeta) -> None:
    col = f"ALTER COLUMN {quote(new.name)}"
    ops = plan.alter_columns
    new_type = check_type(new.sql_type, f"{m.name}.{new.name}")
    old_type = normalize_type(old.sql_type)
    new_default = None if new.identity else normalize_default(new.default_sql, new_type)
    old_default = None if old.identity else normalize_default(old.default_sql, old_type)
    # Order matters: an identity or a default may not fit the new type, and ADD IDENTITY needs NOT NULL.
    if old.identity and not new.identity:
        ops.append((alter(m, f"{col} DROP IDENTITY"), alter(m, f"{col} ADD GENERATED ALWAYS AS IDENTITY")))
    if old_default is not None and new_default != old_default:
        ops.append((alter(m, f"{col} DROP DEFAULT"), alter(m, f"{col} SET DEFAULT {old.default_sql}")))
    if new_type != old_type:
        ops.append(
            (
                alter(m, f"{col} TYPE {new_type} USING {quote(new.name)}::{new_type}"),
                alter(m, f"{col} TYPE {old_type} USING {quote(new.name)}::{old_type}"),
            )
        )
    new_null, old_null = effective_nullable(new), effective_nullable(old)
    if new_null and not old_null:
        ops.append((alter(m, f"{col} DROP NOT NULL"), alter(m, f"{col} SET NOT NULL")))
    elif old_null and not new_null:
        ops.append((alter(m, f"{col} SET NOT NULL"), alter(m, f"{col} DROP NOT NULL")))
    if new_default is not None and new_default != old_default:
        ops.append((alter(m, f"{col} SET DEFAULT {new.default_sql}"), alter(m, f"{col} DROP DEFAULT")))
    if new.identity and not old.identity:
        ops.append((alter(m, f"{col} ADD GENERATED ALWAYS AS IDENTITY"), alter(m, f"{col} DROP IDENTITY")))


# -- the generator ----------------------------------------------------------------------------


def make_migration(
    models: Iterable[type | TableMeta],
    conn: Connection,
    directory: str | Path,
    name: str,
    *,
    now: datetime | None = None,
) -> tuple[Path, Path] | None:
    """Compare the models with the live schema and write a migration for the difference.

    Models without a schema are compared with the connection's ``current_schema()``.  Column
    types and defaults are first spelled the way the server prints them (a temporary table
    in a rolled-back transaction), so any expression the server accepts compares reliably.

    Args:
        models: ``@model`` classes (or their ``TableMeta``).
        conn: A connection to the database the migration is for.
        directory: The migrations folder.
        name: The migration's name (letters, digits, underscores).
        now: The timestamp to name the files by (default: the current UTC time).

    Returns:
        The up and down file paths, or None when the schema already matches the models.

    Raises:
        MigrationError: No schema is on the search path, a model declaration is unusable,
            or the files cannot be written.
        ModelError: Something in ``models`` is not a model.
    """
    metas = [m if isinstance(m, TableMeta) else table_meta(m) for m in models]
    default_schema = conn.query_scalar("SELECT current_schema()::text", ())
    if default_schema is None:
        raise MigrationError("no schema on the connection's search_path: cannot compare models with it")
    live: dict[str, TableMeta] = {}
    enums: dict[str, tuple[str, ...]] = {}
    for schema in sorted({m.schema or default_schema for m in metas}):
        group = [m for m in metas if (m.schema or default_schema) == schema]
        found = introspect(conn, [m.name for m in group], schema=schema)
        for m in group:
            if m.name in found:
                live[_key(m)] = found[m.name]
        labels = introspect_enums(conn, schema)
        enums.update(labels if schema == default_schema else {f"{schema}.{k}": v for k, v in labels.items()})
    up, down = diff(canonical_tables(conn, metas), live, live_enums=enums)
    if not up:
        return None
    header = f"-- Generated by chopin_orm.autogen.make_migration from {len(metas)} model(s); review it.\n"
    return write_migration(directory, name, header + "\n".join(up), header + "\n".join(down), now=now)
