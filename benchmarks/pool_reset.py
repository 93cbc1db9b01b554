#!/usr/bin/env python3
"""What the pool's session reset costs per checkout, against a real PostgreSQL.

    PGHOST=127.0.0.1 PGUSER=postgres python3 benchmarks/pool_reset.py [--checkouts 3000] [--rounds 3]

One pool of one connection; each checkout runs nothing ("unused"), one parameterized
query, or three different ones.  The reset modes (``PgPoolConfig().reset(...)``)
alternate within each round:

- ``none``: no reset (a rollback when a transaction was left open);
- ``discard``: ``DISCARD ALL``; a used checkout costs that round trip plus preparing
  each of its statements again (the driver's statement cache is emptied in step with
  the server's);
- ``keep_statements``: the same reset without ``DEALLOCATE ALL``, one round trip, the
  statements kept (the server analyzes each again at its next use).

An unused checkout is never reset.  Microseconds per checkout, the median of the rounds.
On loopback the two resets cost about the same for one query; every further statement
of a checkout (and every millisecond between application and server) favours
``keep_statements``.
"""

from __future__ import annotations

import os
import sys

# benchmarks/ holds json.py: keep the standard library's first on sys.path.
if sys.path and sys.path[0] and os.path.samefile(sys.path[0], os.path.dirname(os.path.abspath(__file__))):
    sys.path.append(sys.path.pop(0))

import argparse
import statistics
import time

from chopin_pg import PgConfig, PgPool, PgPoolConfig

MODES = ("none", "discard", "keep_statements")
STATEMENTS = [
    "SELECT id, randomnumber FROM (VALUES ($1::int, 42)) AS w(id, randomnumber)",
    "SELECT $1::int + 1",
    "SELECT $1::int * 2, 'x'::text",
]
SHAPES = {"unused": 0, "1 query": 1, "3 queries": 3}


def per_checkout(config: PgConfig, mode: str, checkouts: int, statements: int) -> float:
    """Microseconds per checkout/return of a one-connection pool with ``reset(mode)``."""
    run = STATEMENTS[:statements]
    with PgPool.connect_with_config(config, PgPoolConfig().max_size(1).reset(mode)) as pool:
        for i in range(200):  # warm-up
            with pool.get() as conn:
                for sql in run:
                    conn.query(sql, (i,))
        start = time.perf_counter()
        for i in range(checkouts):
            with pool.get() as conn:
                for sql in run:
                    conn.query(sql, (i,))
        return (time.perf_counter() - start) / checkouts * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkouts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = PgConfig.from_env()
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for mode in MODES:
            for shape, count in SHAPES.items():
                times.setdefault((mode, shape), []).append(per_checkout(config, mode, args.checkouts, count))
    print("| reset | " + " | ".join(f"{shape} (us)" for shape in SHAPES) + " |")
    print("| --- |" + " --- |" * len(SHAPES))
    for mode in MODES:
        print(f"| {mode} | " + " | ".join(f"{statistics.median(times[mode, s]):.1f}" for s in SHAPES) + " |")


if __name__ == "__main__":
    main()
