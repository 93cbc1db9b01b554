"""Migrations against the real PostgreSQL (unix socket, trust, database ``test``).

Every test works in its own freshly created schema (first on ``search_path``) and takes
advisory locks under a key of its own, so runs in parallel with other suites never block.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from chopin_orm.errors import MigrationError, OrmError
from chopin_orm.migrations import (
    DEFAULT_LOCK_KEY,
    ChecksumMismatch,
    Migration,
    MigrationFailed,
    MigrationLockTimeout,
    Migrator,
    discover,
    write_migration,
)
from chopin_pg import Connection, connect

# The same server and override as conftest.py: 127.0.0.1:5432, database "test", trust auth.
DSN = (
    os.environ.get("CHOPIN_ORM_TEST_DSN")
    or os.environ.get("CHOPIN_TEST_DATABASE_URL")  # the shared test server (compose, CI, testkit fallback)
    or "postgres://root@127.0.0.1:5432/test"
)


@pytest.fixture
def conn() -> Iterator[Connection]:
    with connect(DSN) as c:
        yield c


@pytest.fixture
def schema(conn: Connection) -> Iterator[str]:
    name = f"mig_{uuid.uuid4().hex[:12]}"
    conn.execute(f"CREATE SCHEMA {name}; SET search_path TO {name}")
    yield name
    with connect(DSN) as other:
        other.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def lock_key() -> int:
    return random.randint(1, 2**62)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    return path


def put(folder: Path, version: str, name: str, up: str, down: str | None = None) -> None:
    (folder / f"{version}_{name}.up.sql").write_text(up)
    if down is not None:
        (folder / f"{version}_{name}.down.sql").write_text(down)


def tables(conn: Connection, schema: str) -> list[str]:
    rows = conn.query("SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1", (schema,))
    return [r[0] for r in rows]


def schema_shape(conn: Connection, schema: str) -> list[tuple[str, str, str, str]]:
    """Every column of every table in the schema, with its type and nullability."""
    rows = conn.query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text"
        " FROM information_schema.columns WHERE table_schema = $1 ORDER BY 1, 2",
        (schema,),
    )
    return [tuple(r) for r in rows]


def records(conn: Connection, table: str = "chopin_migrations") -> list[tuple[str, str, str]]:
    return [tuple(r) for r in conn.query(f"SELECT version, name, checksum FROM {table} ORDER BY version")]


def three(folder: Path) -> None:
    put(folder, "20250101000000", "create_a", "CREATE TABLE a (id int PRIMARY KEY);\n", "DROP TABLE a;\n")
    put(folder, "20250102000000", "create_b", "CREATE TABLE b (id int PRIMARY KEY, x text);", "DROP TABLE b;")
    put(folder, "20250103000000", "add_b_y", "ALTER TABLE b ADD COLUMN y int;", "ALTER TABLE b DROP COLUMN y;")


# -- discover / write_migration (files only) -------------------------------------------------


def test_discover_reads_pairs_in_version_order_with_sha256_of_the_up_file(folder: Path) -> None:
    put(folder, "20250102000000", "second", "SELECT 2;", "SELECT -2;")
    put(folder, "20250101000000", "first", "SELECT 1;")
    (folder / "README.md").write_text("not a migration")
    (folder / ".hidden.sql").write_text("ignored")
    (folder / "sub.sql").mkdir()
    found = discover(folder)
    assert [(m.version, m.name) for m in found] == [("20250101000000", "first"), ("20250102000000", "second")]
    first, second = found
    assert first.down_path is None and first.down_sql == ""
    assert first.up_path == folder / "20250101000000_first.up.sql"
    assert second.down_sql == "SELECT -2;" and second.down_path == folder / "20250102000000_second.down.sql"
    assert first.checksum == hashlib.sha256(b"SELECT 1;").hexdigest()
    assert discover(str(folder)) == found


@pytest.mark.parametrize(
    "filename",
    [
        "1_x.up.sql",
        "20250101_x.up.sql",
        "20251301000000_bad_month.up.sql",
        "20250101000000_x.sql",
        "20250101000000_bad-name.up.sql",
        "20250101000000_x.sideways.sql",
        "schema.sql",
    ],
)
def test_discover_refuses_badly_named_sql_files(folder: Path, filename: str) -> None:
    (folder / filename).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"(expected a name like|not a UTC timestamp)"):
        discover(folder)


def test_discover_errors_name_the_problem(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="does not exist"):
        discover(tmp_path / "nowhere")
    put(folder, "20250101000000", "orphan", "SELECT 1;")
    (folder / "20250101000000_orphan.up.sql").unlink()
    (folder / "20250101000000_orphan.down.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"no matching 20250101000000_orphan\.up\.sql"):
        discover(folder)
    (folder / "20250101000000_orphan.down.sql").unlink()
    put(folder, "20250101000000", "one", "SELECT 1;")
    put(folder, "20250101000000", "two", "SELECT 2;")
    with pytest.raises(MigrationError, match="version 20250101000000 is also used"):
        discover(folder)


def test_discover_refuses_empty_non_utf8_and_oversized_files(folder: Path) -> None:
    put(folder, "20250101000000", "empty", "  \n")
    with pytest.raises(MigrationError, match="up file is empty"):
        discover(folder)
    (folder / "20250101000000_empty.up.sql").write_bytes(b"SELECT '\xff';")
    with pytest.raises(MigrationError, match="not UTF-8"):
        discover(folder)
    (folder / "20250101000000_empty.up.sql").write_text("SELECT 1;" * 20)
    with pytest.raises(MigrationError, match="over the 100-byte limit"):
        discover(folder, max_file_bytes=100)
    assert len(discover(folder)) == 1


def test_write_migration_names_files_by_utc_time_and_keeps_them_ordered(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "migrations"  # created on demand
    up, down = write_migration(folder, "create_items", "CREATE TABLE items (id int)", "DROP TABLE items;\n",
                               now=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC))  # fmt: skip
    assert up.name == "20250304050607_create_items.up.sql" and down.name == "20250304050607_create_items.down.sql"
    assert up.read_text() == "CREATE TABLE items (id int)\n" and down.read_text() == "DROP TABLE items;\n"
    # Same second, and a clock behind the newest file: one second after the newest.
    up2, _ = write_migration(folder, "again", "SELECT 1", "", now=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC))
    up3, _ = write_migration(folder, "earlier", "SELECT 1", "", now=datetime(2020, 1, 1))
    assert up2.name == "20250304050608_again.up.sql" and up3.name == "20250304050609_earlier.up.sql"
    # Non-UTC aware times are converted.
    from datetime import timedelta, timezone

    up4, _ = write_migration(
        folder, "tz", "SELECT 1", "", now=datetime(2026, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    )
    assert up4.name == "20260101000000_tz.up.sql"
    assert [m.name for m in discover(folder)] == ["create_items", "again", "earlier", "tz"]
    before = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    up5, _ = write_migration(tmp_path / "fresh", "now", "SELECT 1", "")
    assert before <= up5.name[:14] <= datetime.now(UTC).strftime("%Y%m%d%H%M%S")


@pytest.mark.parametrize("name", ["", "has space", "dash-name", "x" * 101, "dot.name"])
def test_write_migration_refuses_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(MigrationError, match="letters, digits and underscores"):
        write_migration(tmp_path, name, "SELECT 1", "")
    assert list(tmp_path.iterdir()) == []


def test_write_migration_refuses_empty_up_sql(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="up SQL is empty"):
        write_migration(tmp_path, "nothing", " \n", "")


# -- Migrator -------------------------------------------------------------------------------


def test_constructor_validates_its_settings(conn: Connection, folder: Path) -> None:
    for bad in ("", "a.b.c", "bad name", 'x"; DROP TABLE y; --', "1abc"):
        with pytest.raises(MigrationError, match="table"):
            Migrator(conn, folder, table=bad)
    with pytest.raises(MigrationError, match="lock_key"):
        Migrator(conn, folder, lock_key=2**63)
    with pytest.raises(MigrationError, match="lock_wait"):
        Migrator(conn, folder, lock_wait=-1)
    assert issubclass(ChecksumMismatch, MigrationError) and issubclass(MigrationError, OrmError)


def test_up_applies_every_pending_migration_and_records_it(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    three(folder)
    migrator = Migrator(conn, folder, lock_key=lock_key)
    assert [m.name for m in migrator.pending()] == ["create_a", "create_b", "add_b_y"]
    assert tables(conn, schema) == []  # reading status/pending creates nothing
    events: list[tuple[str, str]] = []
    applied = migrator.up(on_progress=lambda m, event: events.append((m.name, event)))
    assert [m.name for m in applied] == ["create_a", "create_b", "add_b_y"]
    assert events == [
        ("create_a", "applying"), ("create_a", "applied"),
        ("create_b", "applying"), ("create_b", "applied"),
        ("add_b_y", "applying"), ("add_b_y", "applied"),
    ]  # fmt: skip
    assert tables(conn, schema) == ["a", "b", "chopin_migrations"]
    assert ("b", "y", "integer", "YES") in schema_shape(conn, schema)
    assert records(conn) == [(m.version, m.name, m.checksum) for m in discover(folder)]
    stamps = [r[0] for r in conn.query("SELECT applied_at FROM chopin_migrations ORDER BY version")]
    assert all(s.tzinfo is not None for s in stamps) and stamps == sorted(stamps)
    assert migrator.pending() == [] and migrator.up() == []
    status = migrator.status()
    assert [(s.version, s.name, s.applied, s.changed, s.missing) for s in status] == [
        ("20250101000000", "create_a", True, False, False),
        ("20250102000000", "create_b", True, False, False),
        ("20250103000000", "add_b_y", True, False, False),
    ]
    assert all(isinstance(s.migration, Migration) for s in status)
    assert not conn.in_transaction


def test_up_to_a_target_then_the_rest(conn: Connection, schema: str, folder: Path, lock_key: int) -> None:
    three(folder)
    migrator = Migrator(conn, folder, lock_key=lock_key)
    assert [m.name for m in migrator.up(target="20250102000000")] == ["create_a", "create_b"]
    assert [(s.name, s.applied) for s in migrator.status()] == [
        ("create_a", True), ("create_b", True), ("add_b_y", False),
    ]  # fmt: skip
    with pytest.raises(MigrationError, match="target '20990101000000': no migration"):
        migrator.up(target="20990101000000")
    assert [m.name for m in migrator.up()] == ["add_b_y"]


def test_a_failing_multi_statement_file_rolls_back_and_leaves_the_schema_unchanged(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    put(folder, "20250101000000", "create_a", "CREATE TABLE a (id int PRIMARY KEY);", "DROP TABLE a;")
    put(
        folder,
        "20250102000000",
        "broken",
        "CREATE TABLE c (id int); ALTER TABLE a ADD COLUMN z int;\n\n"  # two statements that work
        "INSERT INTO nowhere VALUES (1);\nCREATE TABLE d (id int);\n",
    )
    put(folder, "20250103000000", "after", "CREATE TABLE e (id int);")
    migrator = Migrator(conn, folder, lock_key=lock_key)
    migrator.up(target="20250101000000")
    before = schema_shape(conn, schema)
    with pytest.raises(MigrationFailed) as info:
        migrator.up()
    err = info.value
    assert err.migration.name == "broken" and err.direction == "up" and err.applied == ()
    assert err.line == 3  # the INSERT (third statement) is on line 3 of the file
    assert "nowhere" in str(err) and "42P01" in str(err) and "rolled back" in str(err)
    assert "20250102000000_broken.up.sql, line 3" in str(err)
    assert schema_shape(conn, schema) == before  # neither c nor a.z exists
    assert [r[1] for r in records(conn)] == ["create_a"]
    assert [m.name for m in migrator.pending()] == ["broken", "after"]  # "after" was never attempted
    assert not conn.in_transaction and conn.query_scalar("SELECT 1") == 1
    # The lock was released: another session can take it at once.
    with connect(DSN) as other:
        assert other.query_scalar("SELECT pg_try_advisory_lock($1)", (lock_key,)) is True


def test_a_failure_keeps_the_migrations_applied_before_it_in_the_same_call(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    put(folder, "20250101000000", "ok", "CREATE TABLE a (id int);")
    # The second statement fails: the table the first one made is gone too.
    put(folder, "20250102000000", "second_fails", "CREATE TABLE b (id int);\nCREATE TABLE a (id int);")
    with pytest.raises(MigrationFailed) as info:
        Migrator(conn, folder, lock_key=lock_key).up()
    assert [m.name for m in info.value.applied] == ["ok"]  # no line: "already exists" has no position
    assert tables(conn, schema) == ["a", "chopin_migrations"]
    assert [r[1] for r in records(conn)] == ["ok"]


def test_files_with_their_own_begin_commit_are_refused_before_anything_runs(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    put(folder, "20250101000000", "fine", "CREATE TABLE a (id int);", "DROP TABLE a;\nCOMMIT;")
    put(folder, "20250102000000", "wrapped", "BEGIN;\nCREATE TABLE b (id int);\nCOMMIT;\n")
    migrator = Migrator(conn, folder, lock_key=lock_key)
    with pytest.raises(
        MigrationError, match=r"20250102000000_wrapped\.up\.sql, line 1: BEGIN controls the transaction"
    ):
        migrator.up()
    assert tables(conn, schema) == ["chopin_migrations"] and records(conn) == []  # "fine" did not run either
    migrator.up(target="20250101000000")
    with pytest.raises(MigrationError, match=r"20250101000000_fine\.down\.sql, line 2: COMMIT controls"):
        migrator.down()
    assert tables(conn, schema) == ["a", "chopin_migrations"] and not conn.in_transaction


def test_a_file_that_ends_the_transaction_unseen_is_still_reported(
    conn: Connection, schema: str, folder: Path, lock_key: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scanner is switched off to reach the check made after the file ran.
    monkeypatch.setattr("chopin_orm.migrations.transaction_control", lambda sql: None)
    put(folder, "20250101000000", "commits", "CREATE TABLE a (id int);\nCOMMIT;")
    with pytest.raises(MigrationFailed, match=r"ended the transaction itself"):
        Migrator(conn, folder, lock_key=lock_key).up()
    assert records(conn) == [] and not conn.in_transaction


def test_down_runs_the_last_down_file_and_removes_its_record(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    three(folder)
    migrator = Migrator(conn, folder, lock_key=lock_key)
    migrator.up()
    events: list[tuple[str, str]] = []
    undone = migrator.down(on_progress=lambda m, event: events.append((m.name, event)))
    assert [m.name for m in undone] == ["add_b_y"]
    assert events == [("add_b_y", "reverting"), ("add_b_y", "reverted")]
    assert ("b", "y", "integer", "YES") not in schema_shape(conn, schema)
    assert [r[1] for r in records(conn)] == ["create_a", "create_b"]
    assert [m.name for m in migrator.down(steps=5)] == ["create_b", "create_a"]
    assert tables(conn, schema) == ["chopin_migrations"] and records(conn) == []
    assert migrator.down() == []
    assert [m.name for m in migrator.up()] == ["create_a", "create_b", "add_b_y"]  # and back up again


def test_down_rolls_back_in_applied_order(conn: Connection, schema: str, folder: Path, lock_key: int) -> None:
    # A migration merged late with an older version is applied after the newer ones; down undoes it first.
    put(folder, "20250105000000", "newer", "CREATE TABLE n (id int);", "DROP TABLE n;")
    migrator = Migrator(conn, folder, lock_key=lock_key)
    migrator.up()
    put(folder, "20250101000000", "older_merged_late", "CREATE TABLE o (id int);", "DROP TABLE o;")
    assert [m.name for m in migrator.up()] == ["older_merged_late"]
    assert [m.name for m in migrator.down()] == ["older_merged_late"]
    assert tables(conn, schema) == ["chopin_migrations", "n"]


def test_down_refusals(conn: Connection, schema: str, folder: Path, lock_key: int) -> None:
    put(folder, "20250101000000", "reversible", "CREATE TABLE a (id int);", "DROP TABLE a;")
    put(folder, "20250102000000", "one_way", "CREATE TABLE b (id int);")
    migrator = Migrator(conn, folder, lock_key=lock_key)
    for bad in (0, -1):
        with pytest.raises(MigrationError, match="steps: expected an integer >= 1"):
            migrator.down(steps=bad)
    migrator.up()
    with pytest.raises(MigrationError, match=r"cannot roll back 20250102000000_one_way: it has no \.down\.sql"):
        migrator.down()
    assert [r[1] for r in records(conn)] == ["reversible", "one_way"]


def test_a_failing_down_file_rolls_back_and_keeps_the_record(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    put(
        folder, "20250101000000", "a", "CREATE TABLE a (id int);", "DROP TABLE a;\nSELECT no_such_column FROM pg_class;"
    )
    migrator = Migrator(conn, folder, lock_key=lock_key)
    migrator.up()
    with pytest.raises(MigrationFailed) as info:
        migrator.down()
    assert info.value.direction == "down" and info.value.line == 2
    assert "20250101000000_a.down.sql, line 2" in str(info.value)
    assert tables(conn, schema) == ["a", "chopin_migrations"] and [r[1] for r in records(conn)] == ["a"]


def test_an_edited_applied_file_is_reported_and_never_re_run(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    three(folder)
    migrator = Migrator(conn, folder, lock_key=lock_key)
    migrator.up(target="20250102000000")
    recorded = records(conn)[1][2]
    (folder / "20250102000000_create_b.up.sql").write_text("CREATE TABLE b (id bigint PRIMARY KEY);")
    status = {s.name: s for s in migrator.status()}
    assert status["create_b"].changed and status["create_b"].applied
    assert not status["create_a"].changed and not status["add_b_y"].changed and not status["add_b_y"].applied
    with pytest.raises(ChecksumMismatch) as info:
        migrator.up()
    err = info.value
    assert (err.version, err.name, err.recorded) == ("20250102000000", "create_b", recorded)
    assert err.current == hashlib.sha256(b"CREATE TABLE b (id bigint PRIMARY KEY);").hexdigest()
    assert "20250102000000_create_b" in str(err)
    assert [r[1] for r in records(conn)] == ["create_a", "create_b"]  # add_b_y was not applied either
    with pytest.raises(ChecksumMismatch):
        migrator.down()
    assert ("b", "id", "integer", "NO") in schema_shape(conn, schema)  # not re-run, not rolled back


def test_an_applied_migration_whose_file_is_gone_is_reported(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    three(folder)
    migrator = Migrator(conn, folder, lock_key=lock_key)
    migrator.up(target="20250102000000")
    for suffix in ("up", "down"):
        (folder / f"20250101000000_create_a.{suffix}.sql").unlink()
    status = migrator.status()
    assert (status[0].version, status[0].name, status[0].missing, status[0].migration) == (
        "20250101000000", "create_a", True, None,
    )  # fmt: skip
    with pytest.raises(MigrationError, match=r"with no file in .*20250101000000_create_a"):
        migrator.up()
    assert [m.name for m in migrator.down()] == ["create_b"]  # the newest one still has its files
    with pytest.raises(MigrationError, match="its files are gone"):
        migrator.down()


def test_up_refuses_a_connection_inside_a_transaction(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    three(folder)
    conn.begin()
    with pytest.raises(MigrationError, match="outside a transaction"):
        Migrator(conn, folder, lock_key=lock_key).up()
    conn.rollback()


def test_a_held_lock_times_out_with_nothing_applied(conn: Connection, schema: str, folder: Path, lock_key: int) -> None:
    three(folder)
    with connect(DSN) as holder:
        assert holder.query_scalar("SELECT pg_try_advisory_lock($1)", (lock_key,)) is True
        with pytest.raises(MigrationLockTimeout, match=f"advisory lock {lock_key} is still held"):
            Migrator(conn, folder, lock_key=lock_key, lock_wait=0.3).up()
        with pytest.raises(MigrationLockTimeout):
            Migrator(conn, folder, lock_key=lock_key, lock_wait=0).down()
    assert tables(conn, schema) == []
    assert [m.name for m in Migrator(conn, folder, lock_key=lock_key).up()] == ["create_a", "create_b", "add_b_y"]


def test_the_default_lock_key_and_a_schema_qualified_table(conn: Connection, schema: str, folder: Path) -> None:
    three(folder)
    migrator = Migrator(conn, folder, table=f"{schema}.applied_here")
    assert migrator.table == f"{schema}.applied_here" and migrator.directory == folder
    migrator.up()
    assert [r[1] for r in records(conn, f"{schema}.applied_here")] == ["create_a", "create_b", "add_b_y"]
    assert (
        conn.query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()") == 0
    )
    assert DEFAULT_LOCK_KEY.bit_length() <= 63


_CONCURRENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from chopin_orm.migrations import Migrator
    from chopin_pg import connect

    schema, folder, lock_key, go, dsn = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]
    with connect(dsn) as conn:
        conn.execute(f"SET search_path TO {schema}")
        print("ready", flush=True)
        while not go.exists():
            time.sleep(0.005)
        applied = Migrator(conn, folder, lock_key=lock_key).up()
        print("applied", " ".join(m.version for m in applied), flush=True)
    """
)


def test_two_processes_running_up_at_once_never_double_apply(
    conn: Connection, schema: str, folder: Path, lock_key: int, tmp_path: Path
) -> None:
    # Plain CREATE TABLE / INSERT: applying any migration twice would fail or leave two rows.
    put(folder, "20250101000000", "create_log", "CREATE TABLE log (n int PRIMARY KEY);")
    for i in range(1, 6):
        put(folder, f"2025010200000{i}", f"step_{i}", f"SELECT pg_sleep(0.05);\nINSERT INTO log VALUES ({i});")
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONCURRENT, schema, str(folder), str(lock_key), str(go), DSN],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        go.touch()  # both are connected and waiting: release them together
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    applied = [line.split()[1:] for out, _ in outputs for line in out.splitlines() if line.startswith("applied")]
    assert len(applied) == 2
    every = sorted(v for versions in applied for v in versions)
    assert every == [m.version for m in discover(folder)]  # each applied exactly once, by one process
    assert [r[0] for r in conn.query("SELECT n FROM log ORDER BY n")] == [1, 2, 3, 4, 5]
    assert conn.query_scalar("SELECT count(*) FROM chopin_migrations") == 6


def test_lock_wait_gives_up_after_roughly_the_setting(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    three(folder)
    with connect(DSN) as holder:
        holder.query_scalar("SELECT pg_advisory_lock($1)", (lock_key,))
        started = time.monotonic()
        with pytest.raises(MigrationLockTimeout):
            Migrator(conn, folder, lock_key=lock_key, lock_wait=0.5).up()
        assert time.monotonic() - started >= 0.5  # it did wait (no upper bound: the machine may be busy)


def test_a_record_table_of_another_shape_is_reported(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    three(folder)
    conn.execute("CREATE TABLE chopin_migrations (id int)")
    migrator = Migrator(conn, folder, lock_key=lock_key)
    with pytest.raises(MigrationError, match=r"cannot read the record table chopin_migrations .*\"version\""):
        migrator.status()
    with pytest.raises(MigrationError, match="cannot read the record table"):
        migrator.up()
    assert tables(conn, schema) == ["chopin_migrations"] and not conn.in_transaction
    with connect(DSN) as other:
        assert other.query_scalar("SELECT pg_try_advisory_lock($1)", (lock_key,)) is True  # released


def test_no_transaction_files_run_statement_by_statement(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    put(folder, "20250101000000", "create_t", "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);", "DROP TABLE t;")
    put(
        folder,
        "20250102000000",
        "index_t",
        "-- chopin:no-transaction\nCREATE INDEX CONCURRENTLY t_x ON t (x);\n",
        "-- chopin:no-transaction\nDROP INDEX CONCURRENTLY t_x;\n",
    )
    migrator = Migrator(conn, folder, lock_key=lock_key)
    assert [m.name for m in migrator.up()] == ["create_t", "index_t"]
    index_names = "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = 't'"
    assert [r[0] for r in conn.query(index_names, (schema,))] == ["t_x"]
    assert [r[1] for r in records(conn)] == ["create_t", "index_t"]
    assert [m.name for m in migrator.down()] == ["index_t"]
    assert conn.query(index_names, (schema,)) == [] and [r[1] for r in records(conn)] == ["create_t"]


def test_without_the_directive_a_concurrent_index_fails_and_rolls_back(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    put(folder, "20250101000000", "create_t", "CREATE TABLE t (x int);")
    put(folder, "20250102000000", "index_t", "CREATE INDEX CONCURRENTLY t_x ON t (x);")
    with pytest.raises(MigrationFailed, match=r"CONCURRENTLY cannot run inside a transaction block \(SQLSTATE 25001\)"):
        Migrator(conn, folder, lock_key=lock_key).up()
    assert [r[1] for r in records(conn)] == ["create_t"]


def test_a_failing_no_transaction_file_says_what_stayed(
    conn: Connection, schema: str, folder: Path, lock_key: int
) -> None:
    put(
        folder,
        "20250101000000",
        "partial",
        "-- chopin:no-transaction\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\nSELECT nope FROM a;\n",
    )
    with pytest.raises(MigrationFailed) as info:
        Migrator(conn, folder, lock_key=lock_key).up()
    err = info.value
    assert err.line == 4 and "line 4" in str(err)
    assert "its 2 statement(s) before this one stay committed and it is not recorded" in str(err)
    assert tables(conn, schema) == ["a", "b", "chopin_migrations"] and records(conn) == []
    assert not conn.in_transaction
