"""``chopin db dump|restore|shell`` against the real PostgreSQL, and their errors."""

from __future__ import annotations

import secrets
from pathlib import Path

import chopin_pg
from conftest import SERVER, assert_one_line_error, clean_env, free_port, query, run_chopin


def _set_database_url(project: Path, url: str) -> None:
    (project / ".env").write_text(f"# scratch\nDATABASE_URL={url}\n")


def test_dump_and_restore_round_trip_a_table(project: Path, scratch_db: str) -> None:
    with chopin_pg.connect(scratch_db) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text, tags text[], at timestamptz)")
        conn.executemany(
            "INSERT INTO notes VALUES ($1, $2, $3, now())",
            [(i, f"note {i} with 'quotes' and \\ and tab\t", ["a", str(i)]) for i in range(500)],
        )
    before = query(scratch_db, "SELECT id, body, tags, at FROM notes ORDER BY id")
    _set_database_url(project, scratch_db)
    run = run_chopin("db", "dump", "--file", "dump.sql", cwd=project)
    assert run.code == 0, run
    assert "dumped 1 table to dump.sql" in run.err
    assert "CREATE TABLE public.notes" in (project / "dump.sql").read_text()

    with chopin_pg.connect(scratch_db) as conn:
        conn.execute("DROP TABLE notes")
    run = run_chopin("db", "restore", "--file", "dump.sql", cwd=project)
    assert run.code == 0, run
    assert "restored dump.sql" in run.err
    assert query(scratch_db, "SELECT id, body, tags, at FROM notes ORDER BY id") == before


def test_restore_stops_at_an_error_and_commits_nothing(project: Path, scratch_db: str) -> None:
    (project / "bad.sql").write_text("CREATE TABLE half (x int);\nINSERT INTO half VALUES ('not a number');\n")
    run = run_chopin("db", "restore", "--file", "bad.sql", "--database-url", scratch_db, cwd=project)
    assert run.code == 1, run
    assert "nothing was restored" in run.err and "invalid input syntax" in run.err
    assert "Traceback" not in run.err
    assert query(scratch_db, "SELECT count(*) FROM pg_tables WHERE tablename = 'half'") == [(0,)]


def test_shell_runs_psql_on_the_database(project: Path, scratch_db: str) -> None:
    run = run_chopin("db", "shell", "--database-url", scratch_db, "-At", "-c", "SELECT current_database()", cwd=project)
    assert run.code == 0, run
    assert run.out.strip() == scratch_db.rsplit("/", 1)[1]


def test_missing_tools_are_one_line_errors(project: Path, tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = clean_env(PATH=str(empty_bin), DATABASE_URL=SERVER.dsn())
    assert_one_line_error(run_chopin("db", "dump", "-f", "x.sql", cwd=project, env=env), "pg_dump not found on PATH")
    (project / "x.sql").write_text("SELECT 1;\n")
    assert_one_line_error(run_chopin("db", "restore", "-f", "x.sql", cwd=project, env=env), "psql not found")
    assert_one_line_error(run_chopin("db", "shell", cwd=project, env=env), "psql not found on PATH")
    assert (project / "x.sql").read_text() == "SELECT 1;\n"


def test_unreachable_database_is_a_one_line_error(project: Path) -> None:
    url = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    for args in (("db", "dump", "-f", "x.sql"), ("db", "shell"), ("migrate", "status")):
        run = run_chopin(*args, "--database-url", url, cwd=project)
        assert_one_line_error(run, "cannot reach the database", "127.0.0.1")
    assert not (project / "x.sql").exists()


def test_nothing_listening_says_how_to_start_a_server(project: Path) -> None:
    # A newcomer's first `chopin db create` on a machine with no server yet.
    url = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    for args in (("db", "create"), ("migrate", "up"), ("db", "shell")):
        run = run_chopin(*args, "--database-url", url, cwd=project)
        assert_one_line_error(run, "Connection refused", "nothing listens there", "python -m chopin_testkit serve")
    # A server that answers, without the database: the hint is `chopin db create`, not a server.
    missing = SERVER.with_database(f"missing_{secrets.token_hex(4)}").dsn()
    run = run_chopin("migrate", "status", "--database-url", missing, cwd=project)
    assert_one_line_error(run, "does not exist", "chopin db create")
    assert "nothing listens" not in run.err


def test_bad_or_missing_database_url(project: Path) -> None:
    (project / ".env").unlink()
    assert_one_line_error(run_chopin("db", "dump", "-f", "x.sql", cwd=project), "DATABASE_URL is not set")
    run = run_chopin("db", "dump", "-f", "x.sql", "--database-url", "mysql://x/y", cwd=project)
    assert_one_line_error(run, "DATABASE_URL is not usable", "postgres://")
    (project / ".env").write_text("DATABASE_URL\n")
    assert_one_line_error(run_chopin("db", "shell", cwd=project), ".env:1", "KEY=value")


def test_restore_of_a_missing_file(project: Path, scratch_db: str) -> None:
    run = run_chopin("db", "restore", "-f", "nope.sql", "--database-url", scratch_db, cwd=project)
    assert_one_line_error(run, "nope.sql", "No such file")
