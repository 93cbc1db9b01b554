"""chopin_pg behind the interface benchmarks/pg_worker.py times, one function per scenario.

Written against the driver's planned API: ``PgConfig`` plus ``connect(config)`` (or
``PgConnection.connect(config)`` / ``PgConnection(config)``), ``conn.query(sql, params)``
returning rows, ``conn.execute(sql, params)``, ``conn.copy_in(sql)`` returning a writer
with ``write_row`` / ``finish``, and ``conn.pipeline()``. Anything missing raises, and
the runner prints n/a for that row; adjust this file (only) when the API settles.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import chopin_pg


def connect(host: str, port: int, user: str, database: str) -> Any:
    """An open connection, no TLS (the peers run without it too)."""
    config = chopin_pg.PgConfig(host=host, port=port, user=user, database=database, sslmode="disable")
    if hasattr(chopin_pg, "connect"):
        return chopin_pg.connect(config)
    connection_class = chopin_pg.PgConnection
    if hasattr(connection_class, "connect"):
        return connection_class.connect(config)
    return connection_class(config)


def close(conn: Any) -> None:
    conn.close()


def _rows(result: Any) -> Sequence[Any]:
    """The rows of a query result: the result itself, or its .rows."""
    rows = getattr(result, "rows", result)
    return rows if isinstance(rows, Sequence) else list(rows)


def roundtrip(conn: Any, count: int) -> int:
    """`count` times SELECT $1::int, one round trip each; returns the sum, to check."""
    total = 0
    for i in range(count):
        total += _rows(conn.query("SELECT $1::int", [i]))[0][0]
    return total


def fetch(conn: Any, sql: str) -> int:
    """All rows of `sql`, decoded; returns how many."""
    return len(_rows(conn.query(sql)))


def copy_in(conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """COPY ... FROM STDIN: the rows handed over at once (write_rows), as asyncpg's copy_records_to_table.

    Set CHOPIN_COPY_PER_ROW=1 to time one write_row call per row instead (psycopg's way).
    """
    writer = conn.copy_in(sql)
    if hasattr(writer, "write_rows") and not os.environ.get("CHOPIN_COPY_PER_ROW"):
        writer.write_rows(rows)
    else:
        write_row = writer.write_row
        for row in rows:
            write_row(row)
    writer.finish()


def copy_records(conn: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY IN as asyncpg's copy_records_to_table: ``conn.copy_records`` (binary COPY, types read from the table).

    Set CHOPIN_COPY_TEXT=1 (or use a driver without copy_records) to time the text-format writer instead.
    """
    if hasattr(conn, "copy_records") and not os.environ.get("CHOPIN_COPY_TEXT"):
        conn.copy_records(table, rows, columns=list(columns))
    else:
        copy_in(conn, f"COPY {table} ({', '.join(columns)}) FROM STDIN", rows)


def insert_one_by_one(conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """One INSERT per round trip, inside one transaction."""
    conn.execute("BEGIN")
    for row in rows:
        conn.execute(sql, list(row))
    conn.execute("COMMIT")


def insert_pipelined(conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """All INSERTs sent before the results are read, inside one transaction.

    ``conn.executemany`` (one write, one Sync: the call that matches asyncpg's executemany);
    set CHOPIN_INSERT_PIPELINE=1 to time a ``conn.pipeline()`` block with one execute per row instead.
    """
    conn.execute("BEGIN")
    if hasattr(conn, "executemany") and not os.environ.get("CHOPIN_INSERT_PIPELINE"):
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        return
    with conn.pipeline() as pipe:
        # psycopg style (the connection queues while the pipeline is open) or a pipeline object.
        target = pipe if pipe is not None and hasattr(pipe, "execute") else conn
        for row in rows:
            target.execute(sql, list(row))
    conn.execute("COMMIT")
