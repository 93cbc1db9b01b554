"""Ask the server how it spells a model's column types and defaults.

``diff`` compares types and defaults as text.  ``normalize_type``/``normalize_default``
cover the usual spellings, but an expression such as ``now() + interval '1 day'`` is stored
as ``(now() + '1 day'::interval)``, and only the server knows that.  ``canonical_tables``
creates each model's columns in a temporary table inside a transaction that is always
rolled back (a savepoint when the connection is already in a transaction), reads back
``format_type()`` and ``pg_get_expr()``, and returns the models with those spellings, so a
model whose table matches the live one yields no diff; CHECK expressions are read back the
same way (``pg_get_constraintdef()``).  Columns the server cannot create
(an enum type the migration has yet to create) keep their declared spelling.
"""

from __future__ import annotations

import dataclasses

from chopin_pg import Connection, PgError

from ._migration_sql import check_clause, check_expression, check_type, quote
from .schema import Check, ColumnMeta, TableMeta

_PROBE = "_chopin_autogen_probe"
_READ = f"""
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = 'pg_temp.{_PROBE}'::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""
_READ_CHECKS = f"""
SELECT con.conname::text, pg_get_constraintdef(con.oid)
FROM pg_constraint con
WHERE con.conrelid = 'pg_temp.{_PROBE}'::regclass AND con.contype = 'c'
"""


class _Probed(Exception):
    """Carries the probe's answer out of the transaction block, which rolls back on the way."""

    def __init__(self, spellings: dict[str, tuple[str, str | None]]) -> None:
        super().__init__("probe done")
        self.spellings = spellings


def _probe(
    conn: Connection, meta: TableMeta, columns: list[ColumnMeta], checks: tuple[Check, ...] = ()
) -> dict[str, tuple[str, str | None]] | None:
    definitions = []
    for c in columns:
        text = f"{quote(c.name)} {check_type(c.sql_type, f'{meta.name}.{c.name}')}"
        if c.default_sql is not None and not c.identity:
            text += f" DEFAULT {c.default_sql}"
        definitions.append(text)
    definitions.extend(check_clause(c) for c in checks)
    try:
        with conn.transaction():
            conn.execute(f"CREATE TEMPORARY TABLE {_PROBE} ({', '.join(definitions)})")
            # query_simple: the table's OID is new each time, so no statement may be cached for it.
            rows = conn.query_simple(_READ)
            spellings = {r[0]: (r[1], r[2]) for r in rows}
            # CHECKs travel under their constraint name, with the server's text as the "default".
            spellings.update({f"check:{r[0]}": ("", r[1]) for r in conn.query_simple(_READ_CHECKS)})
            raise _Probed(spellings)
    except _Probed as answer:
        return answer.spellings
    except PgError:
        return None


def canonical_tables(conn: Connection, metas: list[TableMeta]) -> list[TableMeta]:
    """The models with each column's type and default as the server prints them."""
    out = []
    for meta in metas:
        spellings = _probe(conn, meta, list(meta.columns))
        if spellings is None:  # some column cannot be made yet: one column at a time
            spellings = {}
            for c in meta.columns:
                spellings.update(_probe(conn, meta, [c]) or {})
        columns = []
        for c in meta.columns:
            if c.name in spellings:
                sql_type, default = spellings[c.name]
                c = dataclasses.replace(c, sql_type=sql_type, default_sql=None if c.identity else default)
            columns.append(c)
        checks = meta.checks
        if checks:
            probed = _probe(conn, meta, list(meta.columns), checks) or {}
            checks = tuple(
                Check(c.name, check_expression(probed[f"check:{c.name}"][1] or c.expression))
                if f"check:{c.name}" in probed
                else c
                for c in checks
            )
        out.append(dataclasses.replace(meta, columns=tuple(columns), checks=checks))
    return out
