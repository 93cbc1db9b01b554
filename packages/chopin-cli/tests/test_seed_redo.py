"""``chopin db seed``, ``chopin migrate rollback N`` and ``chopin migrate redo`` as real subprocesses
against a scratch database on the real server."""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import assert_one_line_error, clean_env, query, run_chopin

SEEDS = '''\
"""Seed data."""


def seed(tx):
    tx.connection.execute("INSERT INTO notes (title) VALUES ('first'), ('second')")
'''

FAILING_SEEDS = '''\
"""Seed data that fails half-way."""


def seed(tx):
    tx.connection.execute("INSERT INTO notes (title) VALUES ('kept?')")
    raise RuntimeError("no more seeds\\nsecond line")
'''


def _tables(url: str) -> list[str]:
    rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    return [str(r[0]) for r in rows]


def _three_models(project: Path, env: dict[str, str]) -> None:
    for model in ("Note", "Tag", "Author"):
        assert run_chopin("generate", "model", model, "title:str", cwd=project, env=env).code == 0
    assert run_chopin("migrate", "up", cwd=project, env=env).code == 0


def test_db_seed_commits_the_seeds_module(project: Path, scratch_db: str) -> None:
    env = clean_env(DATABASE_URL=scratch_db)
    _three_models(project, env)
    (project / "src/shop/seeds.py").write_text(SEEDS)
    run = run_chopin("db", "seed", cwd=project, env=env)
    assert run.code == 0, run
    assert "seeded with shop.seeds.seed" in run.err
    assert query(scratch_db, "SELECT title FROM notes ORDER BY id") == [("first",), ("second",)]


def test_a_failing_seed_commits_nothing_and_is_one_line(project: Path, scratch_db: str) -> None:
    env = clean_env(DATABASE_URL=scratch_db)
    _three_models(project, env)
    (project / "src/shop/failing_seeds.py").write_text(FAILING_SEEDS)
    run = run_chopin("db", "seed", "--module", "shop.failing_seeds", cwd=project, env=env)
    assert run.code == 1, run
    lines = [line for line in run.err.splitlines() if line.startswith("chopin: error:")]
    assert lines == [
        "chopin: error: shop.failing_seeds.seed failed, nothing was committed: RuntimeError: no more seeds"
    ], run
    assert "Traceback" not in run.err
    assert query(scratch_db, "SELECT count(*) FROM notes") == [(0,)]


def test_db_seed_without_a_seeds_module_says_what_to_create(project: Path, scratch_db: str) -> None:
    run = run_chopin("db", "seed", cwd=project, env=clean_env(DATABASE_URL=scratch_db))
    assert_one_line_error(run, "no seeds module shop.seeds", "def seed(tx)")


def test_migrate_rollback_n_and_redo(project: Path, scratch_db: str) -> None:
    env = clean_env(DATABASE_URL=scratch_db)
    _three_models(project, env)
    assert _tables(scratch_db) == ["authors", "chopin_migrations", "notes", "tags"]

    redo = run_chopin("migrate", "redo", cwd=project, env=env)
    assert redo.code == 0, redo
    assert "reverted" in redo.err and "create_authors" in redo.err and "applied" in redo.err, redo
    assert _tables(scratch_db) == ["authors", "chopin_migrations", "notes", "tags"]

    rollback = run_chopin("migrate", "rollback", "2", cwd=project, env=env)
    assert rollback.code == 0, rollback
    assert rollback.err.count("reverted") == 2, rollback
    assert _tables(scratch_db) == ["chopin_migrations", "notes"]

    # redo touches only what is applied: the two rolled-back migrations stay pending
    assert run_chopin("migrate", "redo", cwd=project, env=env).code == 0
    assert _tables(scratch_db) == ["chopin_migrations", "notes"]
    assert run_chopin("migrate", "rollback", cwd=project, env=env).code == 0
    assert _tables(scratch_db) == ["chopin_migrations"]
    nothing = run_chopin("migrate", "redo", cwd=project, env=env)
    assert nothing.code == 0 and "nothing to redo" in nothing.err, nothing
    assert_one_line_error(run_chopin("migrate", "rollback", "0", cwd=project, env=env), "0")


def test_db_seed_on_an_unreachable_database_is_one_line(project: Path) -> None:
    (project / "src/shop/seeds.py").write_text("def seed(tx):\n    pass\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed below: nothing listens there
    env = clean_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/nowhere")
    assert_one_line_error(run_chopin("db", "seed", cwd=project, env=env), f"127.0.0.1:{port}")
