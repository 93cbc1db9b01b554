"""The project a command runs in: its root, package, app, migrations directory and settings.

The root is the nearest directory, from the working directory up, holding a
``pyproject.toml``.  Settings come from its ``[tool.chopin]`` table::

    [tool.chopin]
    app = "my_project.app:app"      # module:attribute of the Chopin app (or Router)
    package = "my_project"          # the import package (default: the project name)
    migrations = "migrations"       # SQL migrations directory, relative to the root

Every command loads the root's ``.env`` into its environment first (:meth:`Project.load_env`;
a variable already set wins), so the app, its models and the database settings see the
same values under ``chopin dev``, ``chopin openapi`` and ``chopin migrate``.  The database
is found as everywhere in Chopin: ``DATABASE_URL``, else the libpq variables (``PGHOST``,
``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dotenv import read_dotenv
from .errors import DatabaseUnreachable, NoProject, ProjectError

__all__ = ["LIBPQ_VARIABLES", "Project", "database_url_from", "find_project", "import_name"]

#: The libpq variables that, without ``DATABASE_URL``, say where the database is.
LIBPQ_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")
#: The URL that means "everything from the libpq variables" to chopin-pg's ``PgConfig.from_url``.
LIBPQ_ONLY_URL = "postgresql://"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def import_name(project_name: str) -> str:
    """The import package a distribution name suggests (``my-project`` -> ``my_project``)."""
    return re.sub(r"[-.]+", "_", project_name).lower()


@dataclass(frozen=True)
class Project:
    """A project directory and what its ``pyproject.toml`` says about it."""

    root: Path
    name: str
    version: str
    package: str
    app_spec: str
    migrations_dir: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def source_dir(self) -> Path:
        """``src/`` when the project uses the src layout, else the root."""
        src = self.root / "src"
        return src if src.is_dir() else self.root

    @property
    def package_dir(self) -> Path:
        """The directory of the import package."""
        return self.source_dir / self.package.replace(".", "/")

    def env(self) -> dict[str, str]:
        """``.env`` values overlaid with the process environment (the environment wins)."""
        values = read_dotenv(self.root / ".env")
        values.update(os.environ)
        return values

    def load_env(self) -> list[str]:
        """Copy the ``.env`` variables the environment lacks into ``os.environ``; return their names.

        Raises:
            ProjectError: ``.env`` is malformed.
        """
        added = []
        for key, value in read_dotenv(self.root / ".env").items():
            if key not in os.environ:
                os.environ[key] = value
                added.append(key)
        return added

    def database_url(self, override: str | None = None) -> str:
        """``override``, else ``DATABASE_URL``, else the libpq variables (environment, then ``.env``).

        Raises:
            DatabaseUnreachable: none is set.
        """
        return database_url_from(self.env(), override, where=f"in the environment or {self.root / '.env'}")


def database_url_from(env: dict[str, str], override: str | None = None, *, where: str = "in the environment") -> str:
    """``override``, else ``env["DATABASE_URL"]``, else a URL that defers to the libpq variables in ``env``.

    Raises:
        DatabaseUnreachable: neither ``DATABASE_URL`` nor any libpq variable is set.
    """
    if override:
        return override
    if url := env.get("DATABASE_URL"):
        return url
    if any(env.get(name) for name in LIBPQ_VARIABLES):
        # chopin-pg reads the libpq variables for every part a URL leaves out.
        return LIBPQ_ONLY_URL
    raise DatabaseUnreachable(f"DATABASE_URL is not set, nor any of {', '.join(LIBPQ_VARIABLES)} ({where})")


def find_project(start: Path | None = None) -> Project:
    """The project containing ``start`` (the working directory by default).

    Raises:
        NoProject: no ``pyproject.toml`` up the tree.
        ProjectError: it is malformed.
    """
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "pyproject.toml").is_file():
            return load_project(directory)
    raise NoProject(f"no pyproject.toml in {here} or above; run this inside a project (or `chopin new NAME`)")


def load_project(root: Path) -> Project:
    """The project at ``root`` (which holds ``pyproject.toml``)."""
    path = root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{path}: invalid TOML: {exc}") from None
    meta = data.get("project", {})
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise ProjectError(f"{path}: [project] name is missing")
    version = meta.get("version", "0.0.0")
    tool = data.get("tool", {}).get("chopin", {})
    if not isinstance(tool, dict):
        raise ProjectError(f"{path}: [tool.chopin] must be a table")
    package = _setting(tool, "package", import_name(name), path)
    if not all(_IDENTIFIER.match(part) for part in package.split(".")):
        raise ProjectError(f"{path}: [tool.chopin] package {package!r} is not an import name")
    app_spec = _setting(tool, "app", f"{package}.app:app", path)
    migrations = _setting(tool, "migrations", "migrations", path)
    return Project(
        root=root,
        name=name,
        version=str(version),
        package=package,
        app_spec=app_spec,
        migrations_dir=root / migrations,
        config=tool,
    )


def _setting(tool: dict[str, Any], key: str, default: str, path: Path) -> str:
    value = tool.get(key, default)
    if not isinstance(value, str) or not value:
        raise ProjectError(f"{path}: [tool.chopin] {key} must be a non-empty string, got {value!r}")
    return value
