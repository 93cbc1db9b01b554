"""Where chopin_pg's time goes on benchmarks/pg.py's fetch and COPY IN scenarios (issue 24).

    benchmarks/.venv-pg/bin/python -P benchmarks/pg_profile.py [--rows 100000] [--repeat 5] [--cprofile]

Run after benchmarks/pg.py has created its venv and tables (bench_mixed, bench_copy).
Prints, best of --repeat, CPU time of this thread (time.thread_time):

- fetch: the whole ``conn.query``, with the C row decoder if it is built and with the
  pure-Python one; the same with the garbage collector disabled around it;
  the wire only (DataRow decoding replaced by a no-op: socket reads and the message walk);
  DataRow decoding alone, over the captured buffers (no socket), GC on and off; and
  floors: building the same Row objects from values that already exist (no decoding,
  only the tuples and Rows), and building each value from already-unpacked primitives
  with the cheapest CPython call for its type (no protocol parsing at all).
- copy: ``copy_records`` of 1M (id, float, text) rows, and its floor: the same bytes
  built with the fewest Python operations per row (``str.encode``, one ``struct.pack``,
  two ``bytearray +=``; no type checks, no socket); asyncpg's ``copy_records_to_table``.
- --cprofile: a cProfile of each (with builtins), and calls per row.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import struct
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, SafeUUID

import asyncpg  # type: ignore[import-not-found]
import chopin_pg
import orjson

FETCH_SQL = "SELECT id, f, t, ts, n, b, u, j FROM bench_mixed ORDER BY id LIMIT {limit}"


def best(fn: Callable[[], Any], repeat: int, gc_off: bool = False) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        if gc_off:
            gc.disable()
        try:
            started = time.thread_time()
            fn()
            times.append(time.thread_time() - started)
        finally:
            gc.enable()
    return min(times)


def report(label: str, seconds: float, rows: int) -> None:
    print(f"  {label:<62} {seconds * 1e3:8.1f} ms  {seconds / rows * 1e9:7.0f} ns/row")


def profile(fn: Callable[[], Any], rows: int, top: int = 14) -> None:
    prof = cProfile.Profile(builtins=True)
    prof.enable()
    fn()
    prof.disable()
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream)
    calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
    print(f"    cProfile: {calls:,} calls, {calls / rows:.1f} per row")
    stats.sort_stats("tottime").print_stats(top)
    print("\n".join("    " + line for line in stream.getvalue().splitlines()[6 : 8 + top] if line.strip()))


def fetch_section(args: argparse.Namespace) -> None:
    rows_n = args.rows
    sql = FETCH_SQL.format(limit=rows_n)
    config = chopin_pg.PgConfig(host="127.0.0.1", port=5432, user="postgres", database="test", sslmode="disable")
    conn = chopin_pg.connect(config)
    conn.query(sql)  # prepares and caches the statement

    print(
        f"fetch {rows_n:,} mixed rows (id int4, f float8, t text, ts timestamptz, n numeric, b bool, u uuid, j jsonb)"
    )
    stmt = conn._session.cache.statements[sql]  # a profile reaches in
    accelerated = stmt.decode_rows
    path = "C accelerator" if accelerated is not None else "pure Python"
    report(f"conn.query ({path}), GC on", best(lambda: conn.query(sql), args.repeat), rows_n)
    report(f"conn.query ({path}), GC off", best(lambda: conn.query(sql), args.repeat, gc_off=True), rows_n)
    if args.cprofile and accelerated is not None:
        print("  cProfile of conn.query (C accelerator):")
        profile(lambda: conn.query(sql), rows_n)
    stmt.decode_rows = None  # the generated Python decoder from here on
    if accelerated is not None:
        report("conn.query (pure Python), GC on", best(lambda: conn.query(sql), args.repeat), rows_n)
        report("conn.query (pure Python), GC off", best(lambda: conn.query(sql), args.repeat, gc_off=True), rows_n)

    # Capture the buffers and row offsets the real decoder sees, then swap in a no-op.
    real = stmt.decode_row
    captured: list[tuple[bytes, int]] = []

    def capture(data: bytes, pos: int) -> Any:
        captured.append((data, pos))
        return None

    stmt.decode_row = capture
    conn.query(sql)
    stmt.decode_row = lambda data, pos: None
    report(
        "wire only (socket reads + message walk, rows not decoded)", best(lambda: conn.query(sql), args.repeat), rows_n
    )
    stmt.decode_row = real

    def decode_all() -> list[Any]:
        return [real(data, pos) for data, pos in captured]

    report("DataRow decoding alone (captured buffers), GC on", best(decode_all, args.repeat), rows_n)
    report("DataRow decoding alone, GC off", best(decode_all, args.repeat, gc_off=True), rows_n)
    decoded = decode_all()

    # Floors.
    names = stmt.names
    row_class = chopin_pg.Row
    values = [tuple(r) for r in decoded]
    report(
        "floor: Row(tuple(values)) from existing values",
        best(lambda: [row_class(tuple(v), names) for v in values], args.repeat),
        rows_n,
    )
    report(
        "floor: that, GC off",
        best(lambda: [row_class(tuple(v), names) for v in values], args.repeat, gc_off=True),
        rows_n,
    )
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    prims = [
        (
            i + 100_000,  # an int that is not cached
            f + 0.5,
            t.encode(),
            (ts - epoch) // timedelta(microseconds=1),
            str(n).encode(),
            b,
            u.bytes,
            orjson.dumps(j),
        )
        for i, f, t, ts, n, b, u, j in values
    ]
    new_uuid = UUID.__new__
    set_attribute = object.__setattr__
    from_bytes = int.from_bytes
    safe = SafeUUID.unknown
    loads = orjson.loads

    def build_uuid(raw: bytes) -> UUID:
        uu = new_uuid(UUID)
        set_attribute(uu, "int", from_bytes(raw))
        set_attribute(uu, "is_safe", safe)
        return uu

    def build_values() -> list[Any]:
        out = []
        append = out.append
        for i, f, t, us, n, b, u, j in prims:
            uu = new_uuid(UUID)
            set_attribute(uu, "int", from_bytes(u))
            set_attribute(uu, "is_safe", safe)
            append(
                row_class(
                    (i + 0, f * 1.0, t.decode(), epoch + timedelta(0, 0, us), Decimal(n.decode()), b, uu, loads(j)),
                    names,
                )
            )
        return out

    report("floor: each value built from unpacked primitives + Row", best(build_values, args.repeat), rows_n)
    report("floor: that, GC off", best(build_values, args.repeat, gc_off=True), rows_n)
    per_value = {
        "int (i + 0)": lambda: [p[0] + 0 for p in prims],
        "float (f * 1.0)": lambda: [p[1] * 1.0 for p in prims],
        "text (bytes.decode)": lambda: [p[2].decode() for p in prims],
        "timestamptz (epoch + timedelta)": lambda: [epoch + timedelta(0, 0, p[3]) for p in prims],
        "numeric (Decimal(str))": lambda: [Decimal(p[4].decode()) for p in prims],
        "uuid (UUID.__new__ + 2 setattr)": lambda: [build_uuid(p[6]) for p in prims],
        "jsonb (orjson.loads of 3 keys)": lambda: [loads(p[7]) for p in prims],
        "loop alone (for p in prims)": lambda: [None for p in prims],
    }
    for label, fn in per_value.items():
        report(f"  one column: {label}", best(fn, args.repeat), rows_n)
    if args.cprofile:
        print("  cProfile of conn.query (pure Python):")
        profile(lambda: conn.query(sql), rows_n)
    stmt.decode_rows = accelerated
    conn.close()

    async def peer() -> tuple[float, float]:
        pconn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
        await pconn.fetch(sql)
        on, off = [], []
        for _ in range(args.repeat):
            for gc_off, sink in ((False, on), (True, off)):
                gc.collect()
                if gc_off:
                    gc.disable()
                started = time.thread_time()
                await pconn.fetch(sql)
                sink.append(time.thread_time() - started)
                gc.enable()
        await pconn.close()
        return min(on), min(off)

    import asyncio

    on, off = asyncio.run(peer())
    report("peer: asyncpg fetch, GC on", on, rows_n)
    report("peer: asyncpg fetch, GC off", off, rows_n)


def copy_section(args: argparse.Namespace) -> None:
    count = args.copy_rows
    rows = [(i, i * 0.5, f"label {i}") for i in range(count)]
    config = chopin_pg.PgConfig(host="127.0.0.1", port=5432, user="postgres", database="test", sslmode="disable")
    conn = chopin_pg.connect(config)
    print(f"\nCOPY IN {count:,} rows (id int4, value float8, label text), binary")

    def copy() -> None:
        conn.execute("TRUNCATE bench_copy")
        conn.copy_records("bench_copy", rows, columns=["id", "value", "label"])

    copy()
    report("conn.copy_records (TRUNCATE included), GC on", best(copy, args.repeat), count)
    report("conn.copy_records, GC off", best(copy, args.repeat, gc_off=True), count)
    pack = struct.Struct("!hiiidi").pack

    def floor() -> None:
        buffer = bytearray()
        for i, v, text in rows:
            b = text.encode()
            buffer += pack(3, 4, i, 8, v, len(b))
            buffer += b
            if len(buffer) >= 65536:
                buffer.clear()

    report(
        "floor: encode + struct.pack + 2 bytearray += per row, no checks, no socket", best(floor, args.repeat), count
    )
    if args.cprofile:
        print("  cProfile of conn.copy_records:")
        profile(copy, count)
    conn.close()

    async def peer() -> float:
        pconn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
        times = []
        for _ in range(args.repeat):
            await pconn.execute("TRUNCATE bench_copy")
            gc.collect()
            started = time.thread_time()
            await pconn.copy_records_to_table("bench_copy", records=rows, columns=["id", "value", "label"])
            times.append(time.thread_time() - started)
        await pconn.close()
        return min(times)

    import asyncio

    report("peer: asyncpg copy_records_to_table", asyncio.run(peer()), count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--copy-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--only", default="fetch,copy")
    args = parser.parse_args()
    if "fetch" in args.only:
        fetch_section(args)
    if "copy" in args.only:
        copy_section(args)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
