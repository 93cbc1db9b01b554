"""Test helpers shared by the chopin-orm test modules (a module name no other package uses:
``conftest`` would collide when several packages' tests run in one session)."""

from __future__ import annotations

import os

import chopin_pg
from chopin_orm import table_meta
from chopin_orm.expr import quote_identifier

DSN = (
    os.environ.get("CHOPIN_ORM_TEST_DSN")
    or os.environ.get("CHOPIN_TEST_DATABASE_URL")  # the shared test server (compose, CI, testkit fallback)
    or "postgres://root@127.0.0.1:5432/test"
)


def create_table(conn: chopin_pg.Connection, model: type) -> None:
    """CREATE TABLE from a model's TableMeta (a small test helper, not the migration generator)."""
    meta = table_meta(model)
    parts: list[str] = []
    for c in meta.columns:
        text = f"{quote_identifier(c.name)} {c.sql_type}"
        if c.identity:
            text += " GENERATED ALWAYS AS IDENTITY"
        if not c.nullable:
            text += " NOT NULL"
        if c.default_sql:
            text += f" DEFAULT {c.default_sql}"
        if c.unique:
            text += " UNIQUE"
        if c.references:
            ref = c.references
            text += f" REFERENCES {quote_identifier(ref.table)} ({quote_identifier(ref.column)})"
            if ref.on_delete:
                text += f" ON DELETE {ref.on_delete}"
        parts.append(text)
    if meta.primary_key:
        parts.append("PRIMARY KEY (" + ", ".join(quote_identifier(k) for k in meta.primary_key) + ")")
    for group in meta.unique_together:
        parts.append("UNIQUE (" + ", ".join(quote_identifier(k) for k in group) + ")")
    conn.execute(f"CREATE TABLE {quote_identifier(meta.name)} ({', '.join(parts)})")
