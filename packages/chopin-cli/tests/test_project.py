"""Finding the project and reading [tool.chopin]."""

from __future__ import annotations

from pathlib import Path

import pytest
from chopin_cli.errors import DatabaseUnreachable, NoProject, ProjectError
from chopin_cli.project import find_project


def test_find_project_walks_up_and_reads_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "My-Api"\nversion = "1.2"\n[tool.chopin]\nmigrations = "db/migrations"\n'
    )
    (tmp_path / ".env").write_text("DATABASE_URL=postgres://from-dotenv/x\n")
    deep = tmp_path / "src" / "my_api"
    deep.mkdir(parents=True)
    project = find_project(deep)
    assert (project.root, project.name, project.version, project.package) == (tmp_path, "My-Api", "1.2", "my_api")
    assert project.app_spec == "my_api.app:app"
    assert project.migrations_dir == tmp_path / "db" / "migrations"
    assert project.package_dir == tmp_path / "src" / "my_api"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert project.database_url() == "postgres://from-dotenv/x"
    monkeypatch.setenv("DATABASE_URL", "postgres://from-env/y")
    assert project.database_url() == "postgres://from-env/y"
    assert project.database_url("postgres://flag/z") == "postgres://flag/z"


def test_no_project_and_bad_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NoProject):
        find_project(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.chopin]\npackage = "not valid"\n')
    with pytest.raises(ProjectError, match="not an import name"):
        find_project(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    for name in ("DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
        monkeypatch.delenv(name, raising=False)  # any of them would name a database
    with pytest.raises(DatabaseUnreachable, match="DATABASE_URL is not set"):
        find_project(tmp_path).database_url()
