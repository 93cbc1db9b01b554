"""The migration generator: compare models with the live schema and write the SQL for the difference.

``introspect`` reads tables from ``pg_catalog`` into the same ``TableMeta`` shape models
declare (a ``LiveTable``, which also remembers the names of the live constraints and
indexes so they can be dropped); ``diff`` compares the two and returns the up statements
and the down statements that undo them; ``make_migration`` does both and writes the files.

What ``diff`` sees: new tables (in foreign-key order, self-references and cycles included),
added and dropped columns, type, nullability, default and identity changes, primary keys,
UNIQUE constraints (single- and multi-column), plain btree indexes, foreign keys (single-
and multi-column: target and ``ON DELETE``), named CHECK constraints (compared by name and
by expression as the server prints it), and the enum types the models need (created,
renamed from the type the column has now, extended with ``ADD VALUE``).

Safe on tables with rows: a NOT NULL column added without a server default is filled from
the Python default (``ADD COLUMN ... DEFAULT 0`` then ``DROP DEFAULT``) or, when a backfill
hint gives an expression, added nullable, updated and then made NOT NULL; a down migration
that re-adds a dropped NOT NULL column fills it with some valid value of its type; a column
that becomes an identity gets a sequence starting past its largest value.

What it needs told (``MigrationHints``): renamed tables, columns and enum labels (else a
rename is a drop and an add; ``suggest_renames`` lists the likely ones), backfill
expressions, and whether tables no model names are dropped.  What it leaves alone:
expression, partial and non-btree indexes; removing enum labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from chopin_pg import Connection

from ._migration_diff import diff
from ._migration_plan import LiveTable, MigrationHints, table_key
from ._migration_probe import canonical_tables
from ._migration_renames import suggest_renames
from ._migration_sql import (
    check_expression,
    create_table_statements,
    drop_table_statement,
    normalize_default,
    normalize_type,
)
from .errors import MigrationError
from .migrations import DEFAULT_TABLE, write_migration
from .schema import Check, ColumnMeta, CompositeForeignKey, ForeignKey, TableMeta, table_meta

__all__ = [
    "LiveTable",
    "MigrationHints",
    "create_table_sql",
    "diff",
    "drop_table_sql",
    "introspect",
    "introspect_enums",
    "make_migration",
    "normalize_default",
    "normalize_type",
    "suggest_renames",
]

_ON_DELETE_CODES = {"a": None, "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

# One (up, down) pair per change; either side may be None (nothing to run).
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
    return drop_table_statement(meta)


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

_CHECKS_SQL = f"""
SELECT c.relname::text, con.conname::text, pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_TABLE_FILTER} AND con.contype = 'c'
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
    checks: list[Check] = field(default_factory=list)
    foreign_keys: list[CompositeForeignKey] = field(default_factory=list)
    names: list[tuple[str, tuple[str, ...], str, str]] = field(default_factory=list)


def introspect(conn: Connection, tables: Iterable[str] | None = None, schema: str = "public") -> dict[str, TableMeta]:
    """Read tables of ``schema`` from ``pg_catalog`` into ``TableMeta`` values.

    Single-column UNIQUEs and indexes become ``ColumnMeta.unique``/``index``, multi-column
    ones ``unique_together``/``indexes``; single-column foreign keys ``ColumnMeta.references``,
    multi-column ones ``foreign_keys``; CHECK constraints ``checks`` (as ``pg_get_constraintdef()``
    prints the expression); identity and ``serial`` columns have
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
        elif any(role == "fkey" and c == cols for role, c, _, _ in part.names):
            continue  # a second foreign key on the same columns: left alone
        elif len(cols) == 1:
            target = ref_table if ref_schema == schema else f"{ref_schema}.{ref_table}"
            by_name[cols[0]]["references"] = ForeignKey(target, ref_columns[0], _ON_DELETE_CODES.get(on_delete))
            part.names.append(("fkey", cols, "constraint", conname))
        else:
            target = ref_table if ref_schema == schema else f"{ref_schema}.{ref_table}"
            action = _ON_DELETE_CODES.get(on_delete)
            part.foreign_keys.append(CompositeForeignKey(cols, target, tuple(ref_columns), action))
            part.names.append(("fkey", cols, "constraint", conname))
    for r in conn.query(_CHECKS_SQL, params):
        table, conname, definition = tuple(r)
        parts[table].checks.append(Check(conname, check_expression(definition)))
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
            checks=tuple(part.checks),
            foreign_keys=tuple(part.foreign_keys),
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


# -- the generator ----------------------------------------------------------------------------


def make_migration(
    models: Iterable[type | TableMeta],
    conn: Connection,
    directory: str | Path,
    name: str,
    *,
    now: datetime | None = None,
    hints: MigrationHints | None = None,
    migrations_table: str = DEFAULT_TABLE,
    confirm_renames: Callable[[MigrationHints], MigrationHints] | None = None,
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
        hints: Renames, backfills, and whether to drop tables no model names (``MigrationHints``).
            Likely renames not hinted (``suggest_renames``) are named in comments atop the up file.
        migrations_table: The migrator's bookkeeping table, never dropped as a missing model.
        confirm_renames: Called with the likely renames ``hints`` does not name yet (only when
            there are some); returns those to apply (``RENAME`` instead of drop + add), e.g.
            after asking the user (``chopin migrate make`` does).  The others stay comments.

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
    hints = hints or MigrationHints()
    orphans: dict[str, TableMeta] = {}  # live tables no model names: dropped when asked, else rename candidates
    for schema in sorted({m.schema or default_schema for m in metas}):
        group = [m for m in metas if (m.schema or default_schema) == schema]
        found = introspect(conn, schema=schema)
        for m in group:
            if m.name in found:
                live[table_key(m)] = found[m.name]
        prefix = "" if schema == default_schema else f"{schema}."
        for table_name, t in found.items():
            if table_name != migrations_table and t.name not in {m.name for m in group}:
                key = f"{prefix}{table_name}"
                orphans[key] = t
                if key in hints.renamed_tables or hints.drop_missing_tables:
                    live[key] = t
        labels = introspect_enums(conn, schema)
        enums.update(labels if schema == default_schema else {f"{schema}.{k}": v for k, v in labels.items()})
    canonical = canonical_tables(conn, metas)
    if confirm_renames is not None:
        suggested = _unhinted(suggest_renames(canonical, {**orphans, **live}), hints)
        if suggested.renamed_tables or suggested.renamed_columns:
            hints = _with_renames(hints, confirm_renames(suggested))
            for old in hints.renamed_tables:
                if old in orphans:
                    live[old] = orphans[old]
    up, down = diff(canonical, live, live_enums=enums, hints=hints)
    if not up:
        return None
    header = f"-- Generated by chopin_orm.autogen.make_migration from {len(metas)} model(s); review it.\n"
    notes = _rename_notes(canonical, {**orphans, **live}, hints)
    return write_migration(directory, name, header + notes + "\n".join(up), header + "\n".join(down), now=now)


def _unhinted(suggested: MigrationHints, hints: MigrationHints) -> MigrationHints:
    """The suggested renames ``hints`` does not already name."""
    tables = {old: new for old, new in suggested.renamed_tables.items() if old not in hints.renamed_tables}
    columns = {}
    for table, renamed in suggested.renamed_columns.items():
        given = hints.renamed_columns.get(table, {})
        left = {old: new for old, new in renamed.items() if old not in given}
        if left:
            columns[table] = left
    return MigrationHints(renamed_tables=tables, renamed_columns=columns)


def _with_renames(hints: MigrationHints, accepted: MigrationHints) -> MigrationHints:
    """``hints`` plus the renames of ``accepted`` (its other fields are ignored)."""
    columns = {table: dict(renamed) for table, renamed in hints.renamed_columns.items()}
    for table, renamed in accepted.renamed_columns.items():
        columns.setdefault(table, {}).update(renamed)
    return replace(
        hints,
        renamed_tables={**hints.renamed_tables, **accepted.renamed_tables},
        renamed_columns=columns,
    )


def _rename_notes(metas: list[TableMeta], live: dict[str, TableMeta], hints: MigrationHints) -> str:
    """Comment lines naming the likely renames this migration turns into a drop and an add."""
    suggested = suggest_renames(metas, live)
    lines = []
    for old, new in sorted(suggested.renamed_tables.items()):
        if old not in hints.renamed_tables:
            hint = f"MigrationHints(renamed_tables={{{old!r}: {new!r}}})"
            lines.append(f"-- possible rename, table {old} -> {new} (this creates {new} empty): {hint}")
    for table, columns in sorted(suggested.renamed_columns.items()):
        for old, new in sorted(columns.items()):
            if old not in hints.renamed_columns.get(table, {}):
                hint = f"MigrationHints(renamed_columns={{{table!r}: {{{old!r}: {new!r}}}}})"
                lines.append(f"-- possible rename, column {table}.{old} -> {new} (drop + add loses its data): {hint}")
    return "".join(line + "\n" for line in lines)
