"""``chopin generate scaffold`` as a real subprocess: the scaffolded app passes its own generated tests
against a scratch database on the real server, and ``chopin check`` finds nothing in it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import RUN_TIMEOUT, assert_one_line_error, clean_env, query, run_chopin

FIELDS = (
    "name:str:unique",
    "price:decimal(10,2)",
    "stock:int",
    "note:text?",
    "released:date?",
    "code:varchar(3)",
    "blob:bytes?",
    "meta:json",
    "ref:uuid",
    "seen_at:datetime",
    "ratio:float",
    "active:bool",
    "views:bigint:index",
)


def _pytest(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_scaffolded_crud_passes_its_generated_tests(project: Path, scratch_db: str) -> None:
    env = clean_env(DATABASE_URL=scratch_db)
    run = run_chopin("generate", "scaffold", "Product", *FIELDS, cwd=project, env=env)
    assert run.code == 0, run
    for created in ("src/shop/models/product.py", "src/shop/products_routes.py", "src/shop/database.py"):
        assert f"create {created}" in run.err, run
        assert (project / created).is_file()
    assert (project / "tests/test_products_routes.py").is_file()
    assert len(list((project / "migrations").glob("*_create_products.up.sql"))) == 1

    assert run_chopin("migrate", "up", cwd=project, env=env).code == 0
    assert query(scratch_db, "SELECT count(*) FROM pg_tables WHERE tablename = 'products'") == [(1,)]
    tests = _pytest(project, env)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed is not None and int(passed.group(1)) >= 5, tests.stdout  # the 5 generated, and `chopin new`'s

    check = run_chopin("check", cwd=project, env=env)
    assert check.code == 0, check


def test_scaffold_refuses_what_it_would_overwrite_and_bad_fields(project: Path) -> None:
    assert run_chopin("generate", "scaffold", "Note", "title:str", cwd=project).code == 0
    again = run_chopin("generate", "scaffold", "Note", "title:str", cwd=project)
    assert_one_line_error(again, "notes_routes.py already exists")
    assert_one_line_error(
        run_chopin("generate", "scaffold", "Tag", "label:colour", cwd=project), "unknown type 'colour'"
    )
    assert not (project / "src/shop/models/tag.py").exists()


def test_generate_auth_writes_its_files_once(project: Path) -> None:
    run = run_chopin("generate", "auth", cwd=project)
    assert run.code == 0, run
    for path in ("src/shop/auth.py", "src/shop/models/user.py", "src/shop/database.py", "tests/test_auth.py"):
        assert f"create {path}" in run.err, run
    assert "update .env (a random JWT_SECRET)" in run.err, run
    secret = [line for line in (project / ".env").read_text().splitlines() if line.startswith("JWT_SECRET=")]
    assert len(secret) == 1 and len(secret[0]) == len("JWT_SECRET=") + 64
    assert_one_line_error(run_chopin("generate", "auth", cwd=project), "auth.py already exists")
