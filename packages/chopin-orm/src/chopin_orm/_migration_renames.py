"""Renames in a migration: the hinted ones applied to the live tables before the diff, and
the likely ones suggested (one vanished column or table matching one new one)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from ._migration_plan import LiveTable, MigrationHints, Plan, fk_shape, table_key
from ._migration_sql import (
    alter,
    effective_nullable,
    normalize_type,
    quote,
    table_ref,
)
from .errors import MigrationError
from .schema import ColumnMeta, TableMeta


def _rename_refs(
    meta: TableMeta, table_map: Mapping[str, str], column_map: Mapping[str, Mapping[str, str]]
) -> TableMeta:
    """``meta`` with its foreign keys pointing at the renamed tables and columns."""

    def target(table: str, columns: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        table = table_map.get(table, table)
        renamed = column_map.get(table, {})
        return table, tuple(renamed.get(c, c) for c in columns)

    columns = []
    for c in meta.columns:
        if c.references is not None:
            t, (cn,) = target(c.references.table, (c.references.column,))
            c = dataclasses.replace(c, references=dataclasses.replace(c.references, table=t, column=cn))
        columns.append(c)
    fks = []
    for fk in meta.foreign_keys:
        t, cols = target(fk.table, fk.ref_columns)
        fks.append(dataclasses.replace(fk, table=t, ref_columns=cols))
    return dataclasses.replace(meta, columns=tuple(columns), foreign_keys=tuple(fks))


def _rename_columns(meta: TableMeta, renamed: Mapping[str, str]) -> TableMeta:
    def names(cols: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(renamed.get(c, c) for c in cols)

    columns = tuple(
        dataclasses.replace(c, name=renamed[c.name], attr=renamed[c.name]) if c.name in renamed else c
        for c in meta.columns
    )
    out = dataclasses.replace(
        meta,
        columns=columns,
        primary_key=names(meta.primary_key),
        unique_together=tuple(names(g) for g in meta.unique_together),
        indexes=tuple(names(g) for g in meta.indexes),
        foreign_keys=tuple(dataclasses.replace(fk, columns=names(fk.columns)) for fk in meta.foreign_keys),
    )
    if isinstance(out, LiveTable):
        out = dataclasses.replace(out, object_names=tuple((r, names(c), k, n) for r, c, k, n in out.object_names))
    return out


def apply_renames(
    plan: Plan, metas: list[TableMeta], live: dict[str, TableMeta], hints: MigrationHints
) -> dict[str, TableMeta]:
    """Plan the hinted renames and return ``live`` as it will be once they ran."""
    by_key = {table_key(m): m for m in metas}
    for old_key, new_key in sorted(hints.renamed_tables.items()):
        old, new = live.get(old_key), by_key.get(new_key)
        if old is None or new is None or new_key in live:
            raise MigrationError(
                f"rename table {old_key} -> {new_key}: expected a live table {old_key} and a model"
                f" table {new_key} that does not exist yet"
            )
        if new.schema is not None and old.schema is not None and new.schema != old.schema:
            raise MigrationError(f"rename table {old_key} -> {new_key}: cannot move a table to another schema")
        renamed = dataclasses.replace(old, name=new.name)
        plan.renames.append(
            (
                f"ALTER TABLE {table_ref(old)} RENAME TO {quote(new.name)};",
                f"ALTER TABLE {table_ref(renamed)} RENAME TO {quote(old.name)};",
            )
        )
        del live[old_key]
        live[new_key] = renamed
    for key, columns in sorted(hints.renamed_columns.items()):
        meta = live.get(key)
        model_meta = by_key.get(key)
        if meta is None or model_meta is None:
            raise MigrationError(f"rename columns of {key}: no such live table named by a model")
        live_names = {c.name for c in meta.columns}
        model_names = {c.name for c in model_meta.columns}
        for old_name, new_name in sorted(columns.items()):
            if old_name not in live_names or new_name in live_names or new_name not in model_names:
                raise MigrationError(
                    f"rename column {key}.{old_name} -> {new_name}: expected a live column {old_name}"
                    f" and a model column {new_name} that does not exist yet"
                )
            plan.renames.append(
                (
                    alter(meta, f"RENAME COLUMN {quote(old_name)} TO {quote(new_name)}"),
                    alter(meta, f"RENAME COLUMN {quote(new_name)} TO {quote(old_name)}"),
                )
            )
        live[key] = _rename_columns(meta, columns)
    if hints.renamed_tables or hints.renamed_columns:
        bare_tables = {k: v.split(".")[-1] if "." in v else v for k, v in hints.renamed_tables.items()}
        live = {k: _rename_refs(t, bare_tables, hints.renamed_columns) for k, t in live.items()}
    return live


def _same_shape(a: ColumnMeta, b: ColumnMeta) -> bool:
    return (
        normalize_type(a.sql_type) == normalize_type(b.sql_type)
        and effective_nullable(a) == effective_nullable(b)
        and a.identity == b.identity
        and a.unique == b.unique
        and fk_shape(a.references, None) == fk_shape(b.references, None)
    )


def suggest_renames(models_meta: Iterable[TableMeta], live: Mapping[str, TableMeta]) -> MigrationHints:
    """Renames a diff would otherwise turn into drop + add, as hints to confirm.

    A column is suggested when, in one table, exactly one column disappeared and exactly one
    appeared with the same type, nullability, identity, uniqueness and foreign key; a table
    when exactly one live table no model names has the same columns (names and shapes) as
    exactly one model table that does not exist yet.  Nothing here is applied: pass the hints
    (all or some) to ``diff`` or ``make_migration``.
    """
    metas = list(models_meta)
    keys = {table_key(m) for m in metas}
    columns: dict[str, dict[str, str]] = {}
    for m in metas:
        old = live.get(table_key(m))
        if old is None:
            continue
        new_names = {c.name for c in m.columns}
        old_names = {c.name for c in old.columns}
        gone = [c for c in old.columns if c.name not in new_names]
        came = [c for c in m.columns if c.name not in old_names]
        if len(gone) == 1 and len(came) == 1 and _same_shape(gone[0], came[0]):
            columns[table_key(m)] = {gone[0].name: came[0].name}
    tables: dict[str, str] = {}
    orphans = [k for k in live if k not in keys]
    newcomers = [m for m in metas if table_key(m) not in live]

    def signature(t: TableMeta) -> set[tuple[str, str, bool]]:
        return {(c.name, normalize_type(c.sql_type), effective_nullable(c)) for c in t.columns}

    for m in newcomers:
        matches = [k for k in orphans if signature(live[k]) == signature(m)]
        if len(matches) == 1 and sum(signature(live[matches[0]]) == signature(n) for n in newcomers) == 1:
            tables[matches[0]] = table_key(m)
    return MigrationHints(renamed_tables=tables, renamed_columns=columns)
