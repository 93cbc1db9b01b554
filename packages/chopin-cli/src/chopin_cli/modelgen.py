"""``chopin generate model``: the model module and its timestamped up/down migration.

The field specs become a ``TableMeta`` (:mod:`chopin_cli.fields`); chopin-orm's
``autogen`` writes its ``CREATE TABLE``/``DROP TABLE`` and ``write_migration`` the
files, so the SQL is exactly what the ORM would generate for the model.
"""

from __future__ import annotations

from pathlib import Path

from chopin_orm.autogen import create_table_sql, drop_table_sql
from chopin_orm.errors import MigrationError
from chopin_orm.migrations import write_migration

from .errors import FieldSpecError, ProjectError
from .fields import (
    model_source,
    parse_fields,
    snake_case,
    table_for,
    table_name_for,
    validate_model_name,
    validate_table_name,
)
from .project import Project
from .scaffold import validate_identifier

__all__ = ["generate_model"]


def generate_model(
    project: Project, name: str, specs: list[str], table: str | None = None, app: str | None = None
) -> tuple[Path, Path, Path]:
    """Write the model module and its migration; returns (model file, up file, down file).

    Raises:
        FieldSpecError: a bad model name, table name or field spec.
        ProjectError: the package or app is missing, or the model file exists.
    """
    validate_model_name(name)
    fields = parse_fields(specs)
    if not fields:
        raise FieldSpecError("give at least one field (name:type)")
    table = validate_table_name(table or table_name_for(name))
    base = project.package_dir
    if app is not None:
        base = base / validate_identifier(app, "app name")
    if not base.is_dir():
        raise ProjectError(f"{base} does not exist" + (f" (create it with `chopin generate app {app}`)" if app else ""))
    models_dir = base / "models"
    model_path = models_dir / f"{snake_case(name)}.py"
    if model_path.exists():
        raise ProjectError(f"{model_path} already exists")
    meta = table_for(table, fields)
    up_sql = create_table_sql(meta)
    down_sql = drop_table_sql(meta)
    try:
        up, down = write_migration(project.migrations_dir, f"create_{table}", up_sql, down_sql)
    except MigrationError as exc:
        raise ProjectError(str(exc)) from None
    models_dir.mkdir(exist_ok=True)
    init = models_dir / "__init__.py"
    if not init.exists():
        init.write_text('"""Database models."""\n', encoding="utf-8")
    model_path.write_text(model_source(name, table, fields), encoding="utf-8")
    return model_path, up, down
