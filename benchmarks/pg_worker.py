"""One timed (driver, scenario) measurement for benchmarks/pg.py, run by benchmarks/.venv-pg's python.

    python -P benchmarks/pg_worker.py --driver asyncpg --scenario roundtrip [--repeat 3] [--scale 1]
                                      [--placement none|same|cross --client-cpu 1 --server-cpu 0]

Prints one JSON object on stdout: the run times in seconds and how many operations
each run did, or {"error": ...}. Run with -P: benchmarks/ holds http.py, which would
shadow the standard library's http package for uvicorn and friends.

Every driver gets the same data (built before the clock starts) and does the same
work the way its documentation recommends; each run is preceded by an untimed
warm-up and followed by an untimed check that the work was really done.

--placement pins this process and its connection's backend (found with
pg_backend_pid()) before the warm-up: `same` puts both on --client-cpu, `cross` puts
this process on --client-cpu and the backend on --server-cpu. On a small machine a
query's round trip costs about three times as much across CPUs as on one (two
wake-ups on another CPU instead of a switch), and the scheduler picks one or the other
per fresh process; unpinned, a per-query ratio says mostly where the two processes
landed. The backend's affinity is put back before the connection closes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import io
import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

ROUNDTRIPS = 10_000
FETCH_ROWS = 100_000
COPY_ROWS = 1_000_000
INSERT_ROWS = 1_000
WORLD_ROWS = 10_000

FETCH_SQL = "SELECT id, f, t, ts, n, b, u, j FROM bench_mixed ORDER BY id LIMIT {limit}"
COPY_SQL = "COPY bench_copy (id, value, label) FROM STDIN"
INSERT_TABLE = "bench_insert"

SETUP_SQL = f"""
DROP TABLE IF EXISTS bench_mixed;
CREATE TABLE bench_mixed (
    id int PRIMARY KEY, f float8, t text, ts timestamptz, n numeric(12, 2), b bool, u uuid, j jsonb
);
INSERT INTO bench_mixed
SELECT i, i * 1.25, 'row number ' || i, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second',
       (i % 100000) / 7.0, i % 2 = 0, md5(i::text)::uuid, jsonb_build_object('id', i, 'tag', 'bench', 'ok', true)
FROM generate_series(1, {FETCH_ROWS}) AS i;
-- UNLOGGED: these measure the driver, not the server's disk.
DROP TABLE IF EXISTS bench_copy;
CREATE UNLOGGED TABLE bench_copy (id int, value float8, label text);
DROP TABLE IF EXISTS bench_insert;
CREATE UNLOGGED TABLE bench_insert (id int, value float8, label text);
-- TechEmpower's World table (their create-postgres.sql), loaded once and kept.
CREATE TABLE IF NOT EXISTS world (id integer NOT NULL PRIMARY KEY, randomnumber integer NOT NULL DEFAULT 0);
-- and its Fortune table, for /fortunes.
CREATE TABLE IF NOT EXISTS fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL);
"""


def fortune_rows() -> tuple[tuple[int, str], ...]:
    """TechEmpower's Fortune rows, from techempower/fortune_rows.py (the app uses the same file)."""
    spec = importlib.util.spec_from_file_location("fortune_rows", HERE / "techempower" / "fortune_rows.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.FORTUNE_ROWS)


WORLD_LOAD_SQL = f"""
TRUNCATE world;
INSERT INTO world (id, randomnumber)
SELECT i, floor(random() * 10000 + 1)::int FROM generate_series(1, {WORLD_ROWS}) AS i;
ANALYZE world;
"""


class NotSupported(Exception):
    """The driver has no way to do this scenario (e.g. pg8000 and pipelining)."""


def insert_sql(style: str) -> str:
    values = {"format": "%s, %s, %s", "numeric": "$1, $2, $3", "named": ":a, :b, :c"}[style]
    return f"INSERT INTO {INSERT_TABLE} (id, value, label) VALUES ({values})"


# ---------------------------------------------------------------- drivers


class Psycopg:
    """psycopg 3 with its C implementation (psycopg[binary]), autocommit, default cursors."""

    def __init__(self, args: argparse.Namespace) -> None:
        import psycopg

        self.conn = psycopg.connect(
            host=args.host, port=args.port, user=args.user, dbname=args.database, sslmode="disable", autocommit=True
        )

    def close(self) -> None:
        self.conn.close()

    def scalar(self, sql: str) -> Any:
        row = self.conn.execute(sql).fetchone()
        assert row is not None
        return row[0]

    def run_sql(self, sql: str) -> None:
        self.conn.execute(sql)

    def roundtrip(self, count: int) -> int:
        # psycopg prepares a statement server-side after 5 executions (prepare_threshold).
        cur = self.conn.cursor()
        total = 0
        for i in range(count):
            cur.execute("SELECT %s::int", (i,))
            total += cur.fetchone()[0]  # type: ignore[index]
        return total

    def fetch(self, sql: str) -> int:
        # Text results: with the C implementation they beat binary=True on this row mix
        # (best of 5: 0.58 s against 0.72 s for the 100 000 rows).
        cur = self.conn.cursor()
        cur.execute(sql)
        return len(cur.fetchall())

    def copy_in(self, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
            for row in rows:
                copy.write_row(row)

    def insert_serial(self, rows: list[tuple[Any, ...]]) -> None:
        sql = insert_sql("format")
        with self.conn.transaction(), self.conn.cursor() as cur:
            for row in rows:
                cur.execute(sql, row)

    def insert_pipelined(self, rows: list[tuple[Any, ...]]) -> None:
        # executemany runs in pipeline mode (psycopg >= 3.1); the explicit block says so.
        with self.conn.transaction(), self.conn.pipeline(), self.conn.cursor() as cur:
            cur.executemany(insert_sql("format"), rows)


class Asyncpg:
    """asyncpg on uvloop, one connection; each scenario is one coroutine run to completion."""

    def __init__(self, args: argparse.Namespace) -> None:
        import asyncpg

        try:
            import uvloop

            self.loop = uvloop.new_event_loop()
        except ImportError:
            self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(
            asyncpg.connect(host=args.host, port=args.port, user=args.user, database=args.database, ssl=False)
        )

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self._run(self.conn.close())
        self.loop.close()

    def scalar(self, sql: str) -> Any:
        return self._run(self.conn.fetchval(sql))

    def run_sql(self, sql: str) -> None:
        self._run(self.conn.execute(sql))

    def roundtrip(self, count: int) -> int:
        async def go() -> int:
            fetchval = self.conn.fetchval
            total = 0
            for i in range(count):
                total += await fetchval("SELECT $1::int", i)
            return total

        result: int = self._run(go())
        return result

    def fetch(self, sql: str) -> int:
        return len(self._run(self.conn.fetch(sql)))

    def copy_in(self, rows: list[tuple[Any, ...]]) -> None:
        # asyncpg's way: binary COPY from records.
        self._run(self.conn.copy_records_to_table("bench_copy", records=rows, columns=["id", "value", "label"]))

    def insert_serial(self, rows: list[tuple[Any, ...]]) -> None:
        async def go() -> None:
            sql = insert_sql("numeric")
            async with self.conn.transaction():
                for row in rows:
                    await self.conn.execute(sql, *row)

        self._run(go())

    def insert_pipelined(self, rows: list[tuple[Any, ...]]) -> None:
        async def go() -> None:
            # executemany pipelines Bind/Execute for all rows (asyncpg >= 0.22).
            async with self.conn.transaction():
                await self.conn.executemany(insert_sql("numeric"), rows)

        self._run(go())


class Pg8000:
    """pg8000's native API (pure Python)."""

    def __init__(self, args: argparse.Namespace) -> None:
        import pg8000.native

        self.conn = pg8000.native.Connection(args.user, host=args.host, port=args.port, database=args.database)

    def close(self) -> None:
        self.conn.close()

    def scalar(self, sql: str) -> Any:
        return self.conn.run(sql)[0][0]

    def run_sql(self, sql: str) -> None:
        self.conn.run(sql)

    def roundtrip(self, count: int) -> int:
        run = self.conn.run
        total = 0
        for i in range(count):
            total += run("SELECT CAST(:v AS int)", v=i)[0][0]
        return total

    def fetch(self, sql: str) -> int:
        return len(self.conn.run(sql))

    def copy_in(self, rows: list[tuple[Any, ...]]) -> None:
        # pg8000 streams a file of COPY text; building it is part of the work.
        buffer = io.StringIO()
        write = buffer.write
        for row in rows:
            write(f"{row[0]}\t{row[1]!r}\t{row[2]}\n")
        buffer.seek(0)
        self.conn.run(COPY_SQL, stream=buffer)

    def insert_serial(self, rows: list[tuple[Any, ...]]) -> None:
        statement = self.conn.prepare(insert_sql("named"))
        self.conn.run("BEGIN")
        for a, b, c in rows:
            statement.run(a=a, b=b, c=c)
        self.conn.run("COMMIT")
        statement.close()

    def insert_pipelined(self, rows: list[tuple[Any, ...]]) -> None:
        raise NotSupported("pg8000 has no pipeline mode")


class Chopin:
    """chopin_pg through benchmarks/pg_chopin.py (loaded by path: this process runs with -P)."""

    def __init__(self, args: argparse.Namespace) -> None:
        spec = importlib.util.spec_from_file_location("pg_chopin", HERE / "pg_chopin.py")
        assert spec is not None and spec.loader is not None
        self.adapter = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.adapter)
        self.conn = self.adapter.connect(args.host, args.port, args.user, args.database)

    def close(self) -> None:
        self.adapter.close(self.conn)

    def scalar(self, sql: str) -> Any:
        return self.adapter._rows(self.conn.query(sql))[0][0]

    def run_sql(self, sql: str) -> None:
        self.conn.execute(sql)

    def roundtrip(self, count: int) -> int:
        result: int = self.adapter.roundtrip(self.conn, count)
        return result

    def fetch(self, sql: str) -> int:
        result: int = self.adapter.fetch(self.conn, sql)
        return result

    def copy_in(self, rows: list[tuple[Any, ...]]) -> None:
        self.adapter.copy_records(self.conn, "bench_copy", ["id", "value", "label"], rows)

    def insert_serial(self, rows: list[tuple[Any, ...]]) -> None:
        self.adapter.insert_one_by_one(self.conn, insert_sql("numeric"), rows)

    def insert_pipelined(self, rows: list[tuple[Any, ...]]) -> None:
        self.adapter.insert_pipelined(self.conn, insert_sql("numeric"), rows)


class ChopinDbapi:
    """chopin_pg.dbapi (PEP 249) as DB-API code uses it: cursors, %s placeholders, tuples."""

    def __init__(self, args: argparse.Namespace) -> None:
        from chopin_pg import dbapi

        self.conn = dbapi.connect(
            host=args.host, port=args.port, user=args.user, database=args.database, sslmode="disable", autocommit=True
        )
        self.cur = self.conn.cursor()

    def close(self) -> None:
        self.conn.close()

    def scalar(self, sql: str) -> Any:
        return self.cur.execute(sql).fetchone()[0]

    def run_sql(self, sql: str) -> None:
        self.cur.execute(sql)

    def roundtrip(self, count: int) -> int:
        cur = self.cur
        total = 0
        for i in range(count):
            cur.execute("SELECT %s::int", (i,))
            total += cur.fetchone()[0]
        return total

    def fetch(self, sql: str) -> int:
        self.cur.execute(sql)
        return len(self.cur.fetchall())

    def copy_in(self, rows: list[tuple[Any, ...]]) -> None:
        raise NotSupported("PEP 249 has no COPY")

    def insert_serial(self, rows: list[tuple[Any, ...]]) -> None:
        self.conn.autocommit = False
        sql = insert_sql("format")
        for row in rows:
            self.cur.execute(sql, row)
        self.conn.commit()
        self.conn.autocommit = True

    def insert_pipelined(self, rows: list[tuple[Any, ...]]) -> None:
        self.conn.autocommit = False
        self.cur.executemany(insert_sql("format"), rows)  # one pipeline
        self.conn.commit()
        self.conn.autocommit = True


class SqlAlchemy:
    """SQLAlchemy 2 Core with text() statements on one connection, over a dialect chosen by URL."""

    url = ""

    def __init__(self, args: argparse.Namespace) -> None:
        import sqlalchemy as sa

        if "+chopin" in self.url:
            from sqlalchemy.dialects import registry

            # chopin_pg may come from a src/ directory on PYTHONPATH, without its entry point.
            registry.register("postgresql.chopin", "chopin_pg.sqlalchemy", "ChopinDialect")
        self.sa = sa
        target = f"{self.url}://{args.user}@{args.host}:{args.port}/{args.database}?sslmode=disable"
        self.engine = sa.create_engine(target)
        self.conn = self.engine.connect()

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()

    def scalar(self, sql: str) -> Any:
        value = self.conn.exec_driver_sql(sql).scalar()
        self.conn.commit()
        return value

    def run_sql(self, sql: str) -> None:
        self.conn.exec_driver_sql(sql)
        self.conn.commit()

    def roundtrip(self, count: int) -> int:
        statement = self.sa.text("SELECT CAST(:v AS int)")
        execute = self.conn.execute
        total = 0
        for i in range(count):
            total += execute(statement, {"v": i}).scalar_one()
        self.conn.commit()
        return total

    def fetch(self, sql: str) -> int:
        rows = self.conn.execute(self.sa.text(sql)).all()
        self.conn.commit()
        return len(rows)

    def copy_in(self, rows: list[tuple[Any, ...]]) -> None:
        raise NotSupported("SQLAlchemy has no COPY")

    def insert_serial(self, rows: list[tuple[Any, ...]]) -> None:
        statement = self.sa.text(insert_sql("named"))
        for a, b, c in rows:
            self.conn.execute(statement, {"a": a, "b": b, "c": c})
        self.conn.commit()

    def insert_pipelined(self, rows: list[tuple[Any, ...]]) -> None:
        # A list of parameter sets: the driver's executemany (pipelined by both drivers).
        self.conn.execute(self.sa.text(insert_sql("named")), [{"a": a, "b": b, "c": c} for a, b, c in rows])
        self.conn.commit()


class ChopinSqlAlchemy(SqlAlchemy):
    url = "postgresql+chopin"


class PsycopgSqlAlchemy(SqlAlchemy):
    url = "postgresql+psycopg"


DRIVERS: dict[str, type[Any]] = {
    "psycopg": Psycopg,
    "asyncpg": Asyncpg,
    "pg8000": Pg8000,
    "chopin": Chopin,
    "chopin_dbapi": ChopinDbapi,
    "chopin_sa": ChopinSqlAlchemy,
    "psycopg_sa": PsycopgSqlAlchemy,
}


# ---------------------------------------------------------------- placement

PLACEMENTS = ("none", "same", "cross")
BACKEND_EXIT_WAIT_S = 2.0


@dataclass
class Placement:
    """Where this process and its backend ran: the CPU sets read back after pinning, or why not pinned."""

    asked: str
    backend_pid: int = 0
    client_cpus: list[int] = field(default_factory=list)
    backend_cpus: list[int] = field(default_factory=list)
    error: str = ""  # not pinned, and why: the run went on where the scheduler put it
    backend_exited: bool | None = None  # after close: the backend process is gone (nothing left pinned)
    restore: dict[int, set[int]] = field(default_factory=dict, repr=False)  # pid (0: this process) -> CPUs before

    def report(self) -> dict[str, Any]:
        found = asdict(self)
        del found["restore"]
        return found


def pin(driver: Any, asked: str, client_cpu: int, server_cpu: int) -> Placement:
    """Pin this process and the driver's backend as `asked`; on failure undo, leave both unpinned and say why."""
    placement = Placement(asked)
    if asked == "none":
        return placement
    try:
        placement.backend_pid = pid = int(driver.scalar("SELECT pg_backend_pid()"))
        backend_cpu = client_cpu if asked == "same" else server_cpu
        if asked == "cross" and backend_cpu == client_cpu:
            raise ValueError(f"cross placement needs two CPUs, got client {client_cpu} and server {server_cpu}")
        for target, cpu in ((pid, backend_cpu), (0, client_cpu)):
            placement.restore[target] = os.sched_getaffinity(target)
            os.sched_setaffinity(target, {cpu})  # on another user's process: needs root (CAP_SYS_NICE)
        placement.client_cpus = sorted(os.sched_getaffinity(0))
        placement.backend_cpus = sorted(os.sched_getaffinity(pid))
    except (OSError, ValueError) as exc:
        placement.error = f"not pinned ({type(exc).__name__}: {exc})"
        unpin(placement)
    return placement


def unpin(placement: Placement) -> None:
    """Give this process and the backend back the CPUs they had (the backend may be gone already)."""
    for target, cpus in placement.restore.items():
        try:
            os.sched_setaffinity(target, cpus)
        except ProcessLookupError:
            pass
    placement.restore.clear()


def backend_exited(pid: int) -> bool:
    """After close: wait (bounded) for the backend process to exit; True once it has."""
    deadline = time.monotonic() + BACKEND_EXIT_WAIT_S
    while time.monotonic() < deadline:
        try:
            os.sched_getaffinity(pid)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


# ---------------------------------------------------------------- scenarios


def rows_for(count: int) -> list[tuple[int, float, str]]:
    return [(i, i * 0.5, f"label {i}") for i in range(count)]


def measure(driver: Any, scenario: str, repeat: int, scale: float) -> dict[str, Any]:
    """Warm up once (untimed), then time `repeat` runs, checking each."""
    times: list[float] = []

    def n(base: int) -> int:
        return max(1, int(base * scale))

    if scenario == "roundtrip":
        count = n(ROUNDTRIPS)
        driver.roundtrip(min(count, 1000))
        for _ in range(repeat):
            started = time.perf_counter()
            total = driver.roundtrip(count)
            times.append(time.perf_counter() - started)
            assert total == count * (count - 1) // 2, f"roundtrip: wrong sum {total}"
        return {"ops": count, "unit": "queries", "times": times}

    if scenario == "fetch":
        count = n(FETCH_ROWS)
        driver.fetch(FETCH_SQL.format(limit=min(count, 10_000)))
        sql = FETCH_SQL.format(limit=count)
        for _ in range(repeat):
            started = time.perf_counter()
            got = driver.fetch(sql)
            times.append(time.perf_counter() - started)
            assert got == count, f"fetch: {got} rows, expected {count}"
        return {"ops": count, "unit": "rows", "times": times}

    if scenario == "copy_in":
        count = n(COPY_ROWS)
        rows = rows_for(count)
        driver.run_sql("TRUNCATE bench_copy")
        driver.copy_in(rows[: max(1, count // 10)])
        for _ in range(repeat):
            driver.run_sql("TRUNCATE bench_copy")
            started = time.perf_counter()
            driver.copy_in(rows)
            times.append(time.perf_counter() - started)
            got = driver.scalar("SELECT count(*) FROM bench_copy")
            assert got == count, f"copy_in: {got} rows in the table, expected {count}"
        driver.run_sql("TRUNCATE bench_copy")
        return {"ops": count, "unit": "rows", "times": times}

    if scenario in ("insert_serial", "insert_pipelined"):
        count = n(INSERT_ROWS)
        rows = rows_for(count)
        insert = getattr(driver, scenario)
        driver.run_sql(f"TRUNCATE {INSERT_TABLE}")
        insert(rows[: max(1, count // 10)])
        for _ in range(repeat):
            driver.run_sql(f"TRUNCATE {INSERT_TABLE}")
            started = time.perf_counter()
            insert(rows)
            times.append(time.perf_counter() - started)
            got = driver.scalar(f"SELECT count(*) FROM {INSERT_TABLE}")
            assert got == count, f"{scenario}: {got} rows in the table, expected {count}"
        return {"ops": count, "unit": "rows", "times": times}

    raise SystemExit(f"unknown scenario {scenario!r}")


def setup(args: argparse.Namespace) -> dict[str, Any]:
    """Create the benchmark tables (psycopg); load World unless it already holds 10 000 rows."""
    driver = Psycopg(args)
    try:
        started = time.perf_counter()
        driver.run_sql(SETUP_SQL)
        world = driver.scalar("SELECT count(*) FROM world WHERE randomnumber BETWEEN 1 AND 10000")
        if world != WORLD_ROWS or driver.scalar("SELECT max(id) FROM world") != WORLD_ROWS:
            driver.run_sql(WORLD_LOAD_SQL)
        fortunes = fortune_rows()
        if driver.scalar("SELECT count(*) FROM fortune") != len(fortunes):
            driver.run_sql("TRUNCATE fortune")
            with driver.conn.cursor() as cur:
                cur.executemany("INSERT INTO fortune (id, message) VALUES (%s, %s)", fortunes)
            driver.conn.commit()
        driver.run_sql("ANALYZE bench_mixed")
        return {"seconds": time.perf_counter() - started, "server": driver.scalar("SHOW server_version")}
    finally:
        driver.close()


def versions() -> dict[str, Any]:
    import importlib.metadata as metadata
    import platform

    found: dict[str, Any] = {"python": platform.python_version()}
    for name in ("chopin-pg", "chopin-core", "psycopg", "psycopg-binary", "asyncpg", "pg8000", "uvicorn", "uvloop",
                 "httptools", "orjson", "sqlalchemy"):  # fmt: skip
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        import psycopg

        found["psycopg impl"] = psycopg.pq.__impl__
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", choices=sorted(DRIVERS))
    parser.add_argument("--scenario")
    parser.add_argument("--setup", action="store_true", help="create the tables and exit")
    parser.add_argument("--versions", action="store_true", help="print package versions and exit")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--database", default="test")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--placement", choices=PLACEMENTS, default="none", help="pin this process and its backend")
    parser.add_argument("--client-cpu", type=int, default=1, help="this process's CPU when pinned")
    parser.add_argument("--server-cpu", type=int, default=0, help="the backend's CPU with --placement cross")
    args = parser.parse_args()
    try:
        if args.versions:
            result: dict[str, Any] = versions()
        elif args.setup:
            result = setup(args)
        else:
            driver = DRIVERS[args.driver](args)
            placement = Placement(args.placement)
            try:
                placement = pin(driver, args.placement, args.client_cpu, args.server_cpu)
                result = measure(driver, args.scenario, args.repeat, args.scale)
            finally:
                unpin(placement)
                driver.close()
            if placement.backend_pid:
                placement.backend_exited = backend_exited(placement.backend_pid)
            result["placement"] = placement.report()
    except NotSupported as exc:
        result = {"unsupported": str(exc)}
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
    result["at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
