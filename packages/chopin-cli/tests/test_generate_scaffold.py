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
    for created in ("src/shop/models/product.py", "src/shop/products_routes.py"):
        assert f"create {created}" in run.err, run
        assert (project / created).is_file()
    # One database wiring: the project's db.py and conftest.py, no second pool module.
    assert "create src/shop/db.py" not in run.err and not (project / "src/shop/database.py").exists()
    assert "from shop import db" in (project / "src/shop/products_routes.py").read_text()
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
    for path in ("src/shop/auth.py", "src/shop/models/user.py", "tests/test_auth.py"):
        assert f"create {path}" in run.err, run
    assert not (project / "src/shop/database.py").exists()
    assert "update .env (a random JWT_SECRET)" in run.err, run
    secret = [line for line in (project / ".env").read_text().splitlines() if line.startswith("JWT_SECRET=")]
    assert len(secret) == 1 and len(secret[0]) == len("JWT_SECRET=") + 64
    assert_one_line_error(run_chopin("generate", "auth", cwd=project), "auth.py already exists")


OLD_APP = '''\
"""An app from before `chopin new` wrote db.py."""

from chopin_core import Chopin


def create_app() -> Chopin:
    return Chopin().mount_all_routes("shop").with_health("/health")


app = create_app()
'''


def test_a_project_without_db_py_gets_one_db_py_and_conftest(project: Path, scratch_db: str) -> None:
    for old in ("src/shop/db.py", "tests/conftest.py", "tests/test_db.py"):
        (project / old).unlink()
    (project / "src/shop/app.py").write_text(OLD_APP)
    env = clean_env(DATABASE_URL=scratch_db)
    run = run_chopin("generate", "scaffold", "Note", "title:str", cwd=project, env=env)
    assert run.code == 0, run
    for created in ("src/shop/db.py", "tests/conftest.py"):
        assert f"create {created}" in run.err, run
    assert not (project / "src/shop/database.py").exists()
    auth = run_chopin("generate", "auth", cwd=project, env=env)
    assert auth.code == 0, auth
    assert "create src/shop/db.py" not in auth.err and "create tests/conftest.py" not in auth.err, auth
    tests = _pytest(project, env)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(r"\b1[0-9] passed", tests.stdout), tests.stdout  # 5 CRUD + 5 auth + test_app's


def test_scaffold_refuses_a_conftest_without_the_fixtures(project: Path) -> None:
    (project / "tests/conftest.py").write_text('"""Hand-written fixtures."""\n')
    refused = run_chopin("generate", "scaffold", "Note", "title:str", cwd=project)
    assert_one_line_error(refused, "has no database_url or client fixture")
    assert not (project / "src/shop/models/note.py").exists()
