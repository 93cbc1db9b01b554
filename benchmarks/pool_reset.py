#!/usr/bin/env python3
"""What the pool's session reset costs per checkout, against a real PostgreSQL.

    PGHOST=127.0.0.1 PGUSER=postgres python3 benchmarks/pool_reset.py [--checkouts 3000] [--rounds 3]

One pool of one connection; each checkout runs nothing ("unused") or one
parameterized query ("1 query"); ``PgPoolConfig().reset("none")`` and
``reset("discard")`` alternate per round.  With ``discard`` a used checkout
costs the ``DISCARD ALL`` round trip plus preparing its statement again (the
driver's statement cache is emptied in step with the server's); an unused one
costs nothing.  Microseconds per checkout, the median of the rounds.
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

SQL = "SELECT id, randomnumber FROM (VALUES ($1::int, 42)) AS w(id, randomnumber)"


def per_checkout(config: PgConfig, mode: str, checkouts: int, use: bool) -> float:
    """Microseconds per checkout/return of a one-connection pool with ``reset(mode)``."""
    with PgPool.connect_with_config(config, PgPoolConfig().max_size(1).reset(mode)) as pool:
        for i in range(200):  # warm-up
            with pool.get() as conn:
                if use:
                    conn.query(SQL, (i,))
        start = time.perf_counter()
        for i in range(checkouts):
            with pool.get() as conn:
                if use:
                    conn.query(SQL, (i,))
        return (time.perf_counter() - start) / checkouts * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkouts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = PgConfig.from_env()
    times: dict[tuple[str, bool], list[float]] = {}
    for _ in range(args.rounds):
        for mode in ("none", "discard"):
            for use in (False, True):
                times.setdefault((mode, use), []).append(per_checkout(config, mode, args.checkouts, use))
    print("| reset | unused checkout (us) | checkout with 1 query (us) |")
    print("| --- | --- | --- |")
    for mode in ("none", "discard"):
        unused, used = (statistics.median(times[mode, use]) for use in (False, True))
        print(f"| {mode} | {unused:.1f} | {used:.1f} |")


if __name__ == "__main__":
    main()
