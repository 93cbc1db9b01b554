"""The diff: what changes bring the live tables to what the models declare, phase by phase,
each with the statement that undoes it (see ``autogen`` for what it covers)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ._migration_plan import (
    LiveTable,
    MigrationHints,
    Op,
    Plan,
    PlanContext,
    fk_shape,
    table_key,
    text_literal,
    type_ref,
)
from ._migration_renames import apply_renames
from ._migration_sql import (
    alter,
    check_clause,
    check_expression,
    check_type,
    column_definition,
    composite_foreign_key_clause,
    create_index,
    create_table_statements,
    drop_index,
    drop_table_statement,
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
    zero_value,
)
from .errors import MigrationError
from .schema import ColumnMeta, CompositeForeignKey, ForeignKey, TableMeta


def diff(
    models_meta: Iterable[TableMeta],
    live: Mapping[str, TableMeta],
    *,
    live_enums: Mapping[str, tuple[str, ...]] | None = None,
    hints: MigrationHints | None = None,
) -> tuple[list[str], list[str]]:
    """The statements that bring ``live`` to what the models declare, and the ones that undo them.

    Args:
        models_meta: What the models declare.
        live: The live tables (``introspect``), keyed by table name (``schema.name`` for models
            that name a schema).  Live tables no model names are ignored unless
            ``hints.drop_missing_tables``.
        live_enums: Existing enum types and labels; when given, enum types the models use
            that are missing are created (or renamed from the enum type the column has now),
            and labels appended with ``ADD VALUE``.
        hints: Renames, backfills and whether to drop tables no model names.

    Returns:
        ``(up, down)``: lists of statements, each ending in ``;``. Both are empty when the
        schema already matches.

    Raises:
        MigrationError: Two models declare the same table, a hint names something that is
            not there, or a model declaration is unusable.
    """
    hints = hints or MigrationHints()
    metas = list(models_meta)
    seen: set[str] = set()
    for m in metas:
        if table_key(m) in seen:
            raise MigrationError(f"two models declare table {table_key(m)}")
        seen.add(table_key(m))
    plan = Plan()
    live = apply_renames(plan, metas, dict(live), hints)
    ctx = PlanContext(hints, dict(live_enums or {}))
    if live_enums is not None:
        live = _plan_enums(plan, metas, live, ctx)
    if hints.drop_missing_tables:
        _plan_dropped_tables(plan, [t for k, t in sorted(live.items()) if k not in seen])
    _plan_new_tables(plan, [m for m in metas if table_key(m) not in live])
    for m in metas:
        old = live.get(table_key(m))
        if old is not None:
            _plan_table(plan, m, old, ctx)
    ops = plan.ops()
    up = [u for u, _ in ops if u is not None]
    down = [d for _, d in reversed(ops) if d is not None]
    return up, down


# -- enum types -------------------------------------------------------------------------------


def _enum_name(sql_type: str) -> str:
    name = sql_type.removesuffix("[]")
    return name[1:-1].replace('""', '"') if name.startswith('"') and name.endswith('"') else name


def _plan_enums(
    plan: Plan, metas: list[TableMeta], live: dict[str, TableMeta], ctx: PlanContext
) -> dict[str, TableMeta]:
    """Create, rename and extend the enum types the models use; ``live`` with renamed types applied."""
    declared = {c.sql_type.removesuffix("[]") for m in metas for c in m.columns if c.enum_values}
    type_renames: dict[str, str] = {}
    planned: set[str] = set()
    for m in metas:
        old_table = live.get(table_key(m))
        for col in m.columns:
            labels = col.enum_values
            type_name = col.sql_type.removesuffix("[]")
            if not labels or type_name in planned:
                continue
            planned.add(type_name)
            existing = ctx.enums.get(type_name)
            if existing is None and old_table is not None:
                # The column exists with another enum type no model declares: the type was renamed.
                live_col = next((c for c in old_table.columns if c.name == col.name), None)
                previous = _enum_name(live_col.sql_type) if live_col is not None else ""
                if previous in ctx.enums and previous not in declared and previous not in type_renames:
                    plan.create_types.append(
                        (
                            f"ALTER TYPE {type_ref(previous)} RENAME TO {quote(type_name.rpartition('.')[2])};",
                            f"ALTER TYPE {type_ref(type_name)} RENAME TO {quote(previous.rpartition('.')[2])};",
                        )
                    )
                    type_renames[previous] = type_name
                    existing = ctx.enums[type_name] = ctx.enums.pop(previous)
            if existing is None:
                values = ", ".join(text_literal(v) for v in labels)
                quoted = type_ref(type_name)
                plan.create_types.append((f"CREATE TYPE {quoted} AS ENUM ({values});", f"DROP TYPE {quoted};"))
                ctx.enums[type_name] = labels
                continue
            renamed_values = ctx.hints.renamed_enum_values.get(type_name, {})
            current = list(existing)
            ref = type_ref(type_name)
            for old_label, new_label in sorted(renamed_values.items()):
                if old_label not in current or new_label in current:
                    raise MigrationError(
                        f"rename value {old_label!r} -> {new_label!r} of enum {type_name}:"
                        f" expected the old label among {current} and not the new one"
                    )
                old_text, new_text = text_literal(old_label), text_literal(new_label)
                plan.create_types.append(
                    (
                        f"ALTER TYPE {ref} RENAME VALUE {old_text} TO {new_text};",
                        f"ALTER TYPE {ref} RENAME VALUE {new_text} TO {old_text};",
                    )
                )
                current[current.index(old_label)] = new_label
            for label in labels:
                if label not in current:  # labels cannot be removed: no down, and up again after down is a no-op
                    plan.create_types.append((f"ALTER TYPE {ref} ADD VALUE IF NOT EXISTS {text_literal(label)};", None))
                    current.append(label)
            ctx.enums[type_name] = tuple(current)
    if not type_renames:
        return live
    out = {}
    for key, t in live.items():
        columns = []
        for c in t.columns:
            name = _enum_name(c.sql_type)
            if name in type_renames:
                c = dataclasses.replace(
                    c, sql_type=c.sql_type.replace(c.sql_type.removesuffix("[]"), type_renames[name], 1)
                )
            columns.append(c)
        out[key] = dataclasses.replace(t, columns=tuple(columns))
    return out


# -- tables -----------------------------------------------------------------------------------


def _references(m: TableMeta) -> set[str]:
    found = {c.references.table for c in m.columns if c.references is not None}
    return found | {fk.table for fk in m.foreign_keys}


def _creation_order(new: list[TableMeta]) -> list[tuple[TableMeta, bool]]:
    """Tables in foreign-key order, each with whether its foreign keys must wait (a cycle)."""
    pending = {table_key(m): m for m in new}
    order = []

    def waits_for_another(m: TableMeta) -> bool:
        return bool(_references(m) & (pending.keys() - {table_key(m)}))

    while pending:
        batch = [m for m in pending.values() if not waits_for_another(m)] or [next(iter(pending.values()))]
        for m in batch:
            order.append((m, waits_for_another(m)))
            del pending[table_key(m)]
    return order


def _deferred_fks(m: TableMeta) -> list[Op]:
    ops: list[Op] = []
    for c in m.columns:
        if c.references is not None:
            name = object_name(m.name, (c.name,), "fkey")
            ops.append(
                (
                    alter(m, f"ADD {foreign_key_clause(m, c.name, c.references)}"),
                    alter(m, f"DROP CONSTRAINT {quote(name)}"),
                )
            )
    for fk in m.foreign_keys:
        name = object_name(m.name, fk.columns, "fkey")
        ops.append((alter(m, f"ADD {composite_foreign_key_clause(m, fk)}"), alter(m, f"DROP CONSTRAINT {quote(name)}")))
    return ops


def _plan_new_tables(plan: Plan, new: list[TableMeta]) -> None:
    # Foreign-key order: a table comes after the new tables it references; references that
    # cannot be ordered (cycles) are added with ALTER TABLE once every table exists.
    for m, deferred in _creation_order(new):
        statements = create_table_statements(m, foreign_keys=not deferred)
        plan.create_tables.append((statements[0], drop_table_statement(m)))
        plan.create_tables.extend((s, None) for s in statements[1:])  # indexes go with the table
        if deferred:
            plan.add_fks.extend(_deferred_fks(m))


def _plan_dropped_tables(plan: Plan, gone: list[TableMeta]) -> None:
    # The inverse of creating them: foreign keys that close a cycle first, then the tables,
    # the referencing ones before the ones they reference; down re-creates them (empty).
    order = _creation_order(gone)
    for m, deferred in order:
        if deferred:
            plan.drop_fks.extend((d, u) for u, d in _deferred_fks(m))
    for m, deferred in reversed(order):
        statements = create_table_statements(m, foreign_keys=not deferred)
        plan.drop_tables.extend((None, s) for s in reversed(statements[1:]))
        plan.drop_tables.append((drop_table_statement(m), statements[0]))


def _live_name(old: TableMeta, role: str, cols: tuple[str, ...], default_suffix: str) -> tuple[str, str]:
    found = old.name_of(role, cols) if isinstance(old, LiveTable) else None
    if found is not None:
        return found
    return ("index" if role == "index" else "constraint"), object_name(old.name, cols, default_suffix)


def _add_column(plan: Plan, m: TableMeta, c: ColumnMeta, ctx: PlanContext) -> None:
    definition = column_definition(c, m.name)
    drop = alter(m, f"DROP COLUMN {quote(c.name)}")
    needs_value = not effective_nullable(c) and c.default_sql is None and not c.identity
    expression = ctx.hints.backfill.get(f"{table_key(m)}.{c.name}")
    if needs_value and expression is not None and not c.primary_key:
        # Three steps: rows get the expression's value (it may read other columns), then the constraint.
        nullable = column_definition(dataclasses.replace(c, nullable=True), m.name)
        plan.add_columns.append((alter(m, f"ADD COLUMN {nullable}"), drop))
        plan.add_columns.append((f"UPDATE {table_ref(m)} SET {quote(c.name)} = {expression};", None))
        plan.add_columns.append((alter(m, f"ALTER COLUMN {quote(c.name)} SET NOT NULL"), None))
    elif needs_value and c.backfill_sql is not None:
        # The Python default fills existing rows; it is not a server default, so it goes again.
        plan.add_columns.append((alter(m, f"ADD COLUMN {definition} DEFAULT {c.backfill_sql}"), drop))
        plan.add_columns.append((alter(m, f"ALTER COLUMN {quote(c.name)} DROP DEFAULT"), None))
    else:
        plan.add_columns.append((alter(m, f"ADD COLUMN {definition}"), drop))


def _drop_column(plan: Plan, m: TableMeta, c: ColumnMeta, ctx: PlanContext) -> None:
    definition = column_definition(c, m.name)
    drop = alter(m, f"DROP COLUMN {quote(c.name)}")
    zero = None
    if not effective_nullable(c) and c.default_sql is None and not c.identity:
        zero = zero_value(c.sql_type, ctx.enums.get(_enum_name(c.sql_type)))
    if zero is None:
        plan.drop_columns.append((drop, alter(m, f"ADD COLUMN {definition}")))
    else:
        # Down on a table with rows: the values went with the column, any valid one refills it.
        plan.drop_columns.append((None, alter(m, f"ALTER COLUMN {quote(c.name)} DROP DEFAULT")))
        plan.drop_columns.append((drop, alter(m, f"ADD COLUMN {definition} DEFAULT {zero}")))


def _fk_group_shape(fk: CompositeForeignKey, own_schema: str | None) -> tuple[Any, ...]:
    table = fk.table
    if own_schema and table.startswith(own_schema + "."):
        table = table[len(own_schema) + 1 :]
    action = normal_on_delete(ForeignKey(fk.table, fk.ref_columns[0], fk.on_delete))
    return (fk.columns, table, fk.ref_columns, action)


def _normal_check(expression: str) -> str:
    return " ".join(check_expression(expression).split())


def _plan_constraints(plan: Plan, m: TableMeta, old: TableMeta) -> None:
    """CHECK constraints (by name, then by expression) and multi-column foreign keys."""
    new_checks = {c.name: c for c in m.checks}
    old_checks = {c.name: c for c in old.checks}
    for name, check in sorted(old_checks.items()):
        same = name in new_checks and _normal_check(new_checks[name].expression) == _normal_check(check.expression)
        if not same:
            plan.drop_keys.append((alter(m, f"DROP CONSTRAINT {quote(name)}"), alter(m, f"ADD {check_clause(check)}")))
    for name, check in sorted(new_checks.items()):
        same = name in old_checks and _normal_check(old_checks[name].expression) == _normal_check(check.expression)
        if not same:
            plan.add_keys.append((alter(m, f"ADD {check_clause(check)}"), alter(m, f"DROP CONSTRAINT {quote(name)}")))
    new_fks = {_fk_group_shape(fk, m.schema): fk for fk in m.foreign_keys}
    old_fks = {_fk_group_shape(fk, old.schema): fk for fk in old.foreign_keys}
    for shape, fk in old_fks.items():
        if shape not in new_fks:
            _, name = _live_name(old, "fkey", fk.columns, "fkey")
            clause = composite_foreign_key_clause(m, fk, name)
            plan.drop_fks.append((alter(m, f"DROP CONSTRAINT {quote(name)}"), alter(m, f"ADD {clause}")))
    for shape, fk in new_fks.items():
        if shape not in old_fks:
            name = object_name(m.name, fk.columns, "fkey")
            clause = composite_foreign_key_clause(m, fk)
            plan.add_fks.append((alter(m, f"ADD {clause}"), alter(m, f"DROP CONSTRAINT {quote(name)}")))


def _plan_table(plan: Plan, m: TableMeta, old: TableMeta, ctx: PlanContext) -> None:
    new_cols = {c.name: c for c in m.columns}
    old_cols = {c.name: c for c in old.columns}
    for c in m.columns:
        if c.name not in old_cols:
            _add_column(plan, m, c, ctx)
        else:
            _plan_column(plan, m, c, old_cols[c.name], ctx)
    for c in old.columns:
        if c.name not in new_cols:
            _drop_column(plan, m, c, ctx)
    _plan_constraints(plan, m, old)
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
        if fk_shape(new_fk, m.schema) == fk_shape(old_fk, old.schema):
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


def _plan_column(plan: Plan, m: TableMeta, new: ColumnMeta, old: ColumnMeta, ctx: PlanContext) -> None:
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
        # No cast joins two enum types (or an enum and most types): go through text.
        via = "::text" if _enum_name(new_type) in ctx.enums or _enum_name(old_type) in ctx.enums else ""
        ops.append(
            (
                alter(m, f"{col} TYPE {new_type} USING {quote(new.name)}{via}::{new_type}"),
                alter(m, f"{col} TYPE {old_type} USING {quote(new.name)}{via}::{old_type}"),
            )
        )
    new_null, old_null = effective_nullable(new), effective_nullable(old)
    if new_null and not old_null:
        ops.append((alter(m, f"{col} DROP NOT NULL"), alter(m, f"{col} SET NOT NULL")))
        # Down runs this first (the inverses run backwards): NULLs written since up would stop SET NOT NULL.
        refill = (
            old.default_sql if old_default is not None else zero_value(old_type, ctx.enums.get(_enum_name(old_type)))
        )
        if refill is not None and not old.identity:
            name = quote(new.name)
            ops.append((None, f"UPDATE {table_ref(m)} SET {name} = {refill} WHERE {name} IS NULL;"))
    elif old_null and not new_null:
        fill = ctx.hints.backfill.get(f"{table_key(m)}.{new.name}", new.backfill_sql)
        if fill is not None and not new.identity:
            ops.append((f"UPDATE {table_ref(m)} SET {quote(new.name)} = {fill} WHERE {quote(new.name)} IS NULL;", None))
        ops.append((alter(m, f"{col} SET NOT NULL"), alter(m, f"{col} DROP NOT NULL")))
    if new_default is not None and new_default != old_default:
        ops.append((alter(m, f"{col} SET DEFAULT {new.default_sql}"), alter(m, f"{col} DROP DEFAULT")))
    if new.identity and not old.identity:
        ops.append((alter(m, f"{col} ADD GENERATED ALWAYS AS IDENTITY"), alter(m, f"{col} DROP IDENTITY")))
        # The new sequence starts at 1; rows already hold values, so it starts past the largest.
        sequence = f"pg_get_serial_sequence({text_literal(table_ref(m))}, {text_literal(new.name)})"
        start = f"coalesce(max({quote(new.name)}), 0) + 1"
        ops.append((f"SELECT setval({sequence}, {start}, false) FROM {table_ref(m)};", None))
