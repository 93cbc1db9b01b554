"""Every command loads ``.env`` the same way, and finds the database as chopin-pg does.

``DATABASE_URL`` first, then the libpq variables; the process environment wins over ``.env``.
"""

from __future__ import annotations

from pathlib import Path

from conftest import SERVER, assert_one_line_error, clean_env, run_chopin

SECRET_APP = """\
import os

from chopin_core import Chopin

JWT_SECRET = os.environ["JWT_SECRET"]  # what an auth app reads at import


def create_app() -> Chopin:
    return Chopin().mount_all_routes("shop").with_health("/health")


app = create_app()
"""


def _with_secret(project: Path) -> None:
    (project / "src/shop/app.py").write_text(SECRET_APP)
    with (project / ".env").open("a") as env:
        env.write("JWT_SECRET=from-dotenv\n")


def test_openapi_sees_the_dotenv_variables(project: Path) -> None:
    _with_secret(project)
    run = run_chopin("openapi", cwd=project)
    assert run.code == 0, run
    assert "KeyError" not in run.err


def test_migrate_make_sees_the_dotenv_variables(project: Path, scratch_db: str) -> None:
    _with_secret(project)
    models = project / "src/shop/models/__init__.py"
    models.write_text(models.read_text() + "import os\n\nSECRET = os.environ['JWT_SECRET']\n")
    env = clean_env(DATABASE_URL=scratch_db)
    assert run_chopin("generate", "model", "Item", "name:str", cwd=project, env=env).code == 0
    assert run_chopin("migrate", "up", cwd=project, env=env).code == 0
    run = run_chopin("migrate", "make", "nothing", cwd=project, env=env)
    assert run.code == 0, run
    assert "matches the 1 model(s)" in run.err, run


def test_the_environment_wins_over_dotenv(project: Path) -> None:
    (project / "src/shop/handlers.py").write_text(
        "import os\n\nif os.environ['JWT_SECRET'] != 'from-env':\n    raise RuntimeError(os.environ['JWT_SECRET'])\n"
    )
    with (project / ".env").open("a") as env:
        env.write("JWT_SECRET=from-dotenv\n")
    assert run_chopin("openapi", cwd=project, env=clean_env(JWT_SECRET="from-env")).code == 0
    assert_one_line_error(run_chopin("openapi", cwd=project), "RuntimeError: from-dotenv")


def test_without_database_url_the_libpq_variables_name_the_database(project: Path) -> None:
    (project / ".env").write_text("".join(f"{key}={value}\n" for key, value in SERVER.libpq_env().items()))
    run = run_chopin("migrate", "status", cwd=project)
    assert run.code == 0, run
    assert "no migrations" in run.err, run


def test_libpq_variables_in_the_environment_without_a_project(tmp_path: Path) -> None:
    env = clean_env(**SERVER.with_database("nope_not_a_database").libpq_env())
    run = run_chopin("db", "dump", "-f", "x.sql", cwd=tmp_path, env=env)
    where = f"{SERVER.user}@{SERVER.host}:{SERVER.port}/nope_not_a_database"
    assert_one_line_error(run, "cannot reach the database", where)


def test_no_database_url_nor_libpq_variables(project: Path) -> None:
    (project / ".env").unlink()
    run = run_chopin("migrate", "status", cwd=project)
    assert_one_line_error(run, "DATABASE_URL is not set, nor any of PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE")
