"""``chopin generate model`` then ``chopin migrate up|status|down`` against a scratch database."""

from __future__ import annotations

from pathlib import Path

import chopin_pg
from conftest import clean_env, query, run_chopin, run_chopin_on_a_terminal


def _columns(url: str, table: str) -> list[tuple[object, ...]]:
    return query(
        url,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        f"WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position",
    )


def test_model_migration_up_status_down(project: Path, scratch_db: str) -> None:
    env = clean_env(DATABASE_URL=scratch_db)
    run = run_chopin("generate", "model", "Item", "name:str:unique", "quantity:int", "note:text?", cwd=project, env=env)
    assert run.code == 0, run
    assert (project / "src/shop/models/item.py").is_file()
    (up,) = (project / "migrations").glob("*_create_items.up.sql")
    assert up.name[:14].isdigit()
    assert 'CREATE TABLE "items"' in up.read_text()

    # The linter sees the model's migration; the project's tests still pass with the model imported.
    assert run_chopin("check", cwd=project, env=env).code == 0

    status = run_chopin("migrate", "status", cwd=project, env=env)
    assert status.code == 0, status
    assert "create_items" in status.out and "pending" in status.out

    run = run_chopin("-v", "migrate", "up", cwd=project, env=env)
    assert run.code == 0, run
    assert "applied " + up.name.removesuffix(".up.sql") in run.err
    assert 'CREATE TABLE "items"' in run.err  # -v shows the SQL
    assert _columns(scratch_db, "items") == [
        ("id", "integer", "NO"),
        ("name", "text", "NO"),
        ("quantity", "integer", "NO"),
        ("note", "text", "YES"),
    ]
    assert "applied" in run_chopin("migrate", "status", cwd=project, env=env).out
    again = run_chopin("migrate", "up", cwd=project, env=env)
    assert again.code == 0 and "up to date" in again.err

    run = run_chopin("migrate", "down", cwd=project, env=env)
    assert run.code == 0, run
    assert "reverted" in run.err
    assert _columns(scratch_db, "items") == []
    assert "nothing to roll back" in run_chopin("migrate", "down", cwd=project, env=env).err


def test_a_failing_migration_is_one_line_and_rolled_back(project: Path, scratch_db: str) -> None:
    migrations = project / "migrations"
    (migrations / "20260101000000_good.up.sql").write_text("CREATE TABLE good (x int);\n")
    (migrations / "20260101000000_good.down.sql").write_text("DROP TABLE good;\n")
    bad_sql = "CREATE TABLE bad (x int);\nSELECT no_such_column FROM bad;\n"
    (migrations / "20260102000000_bad.up.sql").write_text(bad_sql)
    run = run_chopin("migrate", "up", "--database-url", scratch_db, cwd=project)
    assert run.code == 1, run
    last = [line for line in run.err.splitlines() if line.strip()][-1]
    assert last.startswith("chopin: error: MigrationFailed") and "no_such_column" in last, run
    assert "Traceback" not in run.err
    tables = query(scratch_db, "SELECT tablename FROM pg_tables WHERE tablename IN ('good', 'bad') ORDER BY 1")
    assert tables == [("good",)]  # the first applied; the failing one rolled back whole


def test_edited_applied_migration_is_refused(project: Path, scratch_db: str) -> None:
    up = project / "migrations" / "20260101000000_t.up.sql"
    up.write_text("CREATE TABLE t (x int);\n")
    assert run_chopin("migrate", "up", "--database-url", scratch_db, cwd=project).code == 0
    up.write_text("CREATE TABLE t (x bigint);\n")
    run = run_chopin("migrate", "up", "--database-url", scratch_db, cwd=project)
    assert run.code == 1 and "ChecksumMismatch" in run.err and "Traceback" not in run.err, run
    status = run_chopin("migrate", "status", "--database-url", scratch_db, cwd=project)
    assert "changed" in status.out


def test_migrate_make_writes_the_difference_between_models_and_database(project: Path, scratch_db: str) -> None:
    env = clean_env(DATABASE_URL=scratch_db)
    assert run_chopin("generate", "model", "Item", "name:str", cwd=project, env=env).code == 0
    refused = run_chopin("migrate", "make", "add_note", cwd=project, env=env)
    assert refused.code == 2 and "pending" in refused.err, refused
    assert run_chopin("migrate", "up", cwd=project, env=env).code == 0
    same = run_chopin("migrate", "make", "nothing", cwd=project, env=env)
    assert same.code == 0 and "matches the 1 model(s)" in same.err, same

    model = project / "src/shop/models/item.py"
    model.write_text(
        model.read_text().replace(
            "    id: int | None", "    note: str | None = column(default=None)\n    id: int | None"
        )
    )
    run = run_chopin("migrate", "make", "add_note", cwd=project, env=env)
    assert run.code == 0, run
    (up,) = (project / "migrations").glob("*_add_note.up.sql")
    assert "ADD COLUMN" in up.read_text() and '"note"' in up.read_text()
    assert run_chopin("migrate", "up", cwd=project, env=env).code == 0
    assert ("note", "text", "YES") in _columns(scratch_db, "items")
    assert run_chopin("migrate", "down", cwd=project, env=env).code == 0
    assert ("note", "text", "YES") not in _columns(scratch_db, "items")


def _renamed_quantity_project(project: Path, scratch_db: str) -> dict[str, str]:
    """items(name, quantity) applied with a row in it, then the model's quantity renamed to stock."""
    env = clean_env(DATABASE_URL=scratch_db)
    assert run_chopin("generate", "model", "Item", "name:str", "quantity:int", cwd=project, env=env).code == 0
    assert run_chopin("migrate", "up", cwd=project, env=env).code == 0
    with chopin_pg.connect(scratch_db) as conn:
        conn.execute("INSERT INTO items (name, quantity) VALUES ('pen', 7)")
    model = project / "src/shop/models/item.py"
    text = model.read_text()
    assert "    quantity: int" in text, text
    model.write_text(text.replace("    quantity: int", "    stock: int"))
    return env


def _written(project: Path, name: str, *, remove: bool = True) -> str:
    (up,) = (project / "migrations").glob(f"*_{name}.up.sql")
    text = up.read_text()
    if remove:  # not applied: gone again, so the next make sees the same difference
        up.unlink()
        up.with_name(up.name.replace(".up.sql", ".down.sql")).unlink()
    return text


def test_migrate_make_asks_about_a_likely_rename_on_a_terminal(project: Path, scratch_db: str) -> None:
    env = _renamed_quantity_project(project, scratch_db)
    question = "Rename items.quantity to items.stock? [y/N]"

    # Not a terminal: no question; drop + add, with the suggestion and its data loss in a warning.
    run = run_chopin("migrate", "make", "piped", cwd=project, env=env)
    assert run.code == 0, run
    assert "Rename" not in run.err
    assert "possible rename items.quantity to items.stock not taken" in run.err, run
    assert "the data in quantity is lost" in run.err and "--renames=accept" in run.err, run
    up = _written(project, "piped")
    assert 'DROP COLUMN "quantity"' in up and "-- possible rename, column items.quantity -> stock" in up

    # --renames=accept: no question either, a RENAME.
    run = run_chopin("migrate", "make", "--renames=accept", "accepted", cwd=project, env=env)
    assert run.code == 0, run
    assert "rename items.quantity to items.stock" in run.err
    assert 'RENAME COLUMN "quantity" TO "stock"' in _written(project, "accepted")

    # On a terminal the default is to ask; Enter (no answer) keeps today's drop + add.
    code, shown = run_chopin_on_a_terminal(
        "migrate", "make", "declined", cwd=project, env=env, answers=[(question, "")]
    )
    assert code == 0, shown
    assert "the data in quantity is lost" in shown, shown
    assert 'DROP COLUMN "quantity"' in _written(project, "declined")

    # --renames=never on a terminal: not asked.
    code, shown = run_chopin_on_a_terminal(
        "migrate", "make", "--renames=never", "never", cwd=project, env=env, answers=[]
    )
    assert code == 0 and question not in shown, shown
    assert 'DROP COLUMN "quantity"' in _written(project, "never")

    # "y": the column is renamed, and the row keeps its value through up, down and up.
    code, shown = run_chopin_on_a_terminal("migrate", "make", "stock", cwd=project, env=env, answers=[(question, "y")])
    assert code == 0, shown
    assert "not taken" not in shown, shown
    up = _written(project, "stock", remove=False)
    assert 'RENAME COLUMN "quantity" TO "stock"' in up and "DROP COLUMN" not in up, up
    assert run_chopin("migrate", "up", cwd=project, env=env).code == 0
    assert query(scratch_db, "SELECT name, stock FROM items") == [("pen", 7)]
    assert run_chopin("migrate", "down", cwd=project, env=env).code == 0
    assert query(scratch_db, "SELECT name, quantity FROM items") == [("pen", 7)]
    assert run_chopin("migrate", "up", cwd=project, env=env).code == 0
    same = run_chopin("migrate", "make", "nothing", cwd=project, env=env)
    assert same.code == 0 and "matches" in same.err, same
