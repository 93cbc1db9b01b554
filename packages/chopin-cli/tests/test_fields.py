"""Field specs -> TableMeta and model source; the written model declares the same table to chopin-orm."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from chopin_cli.errors import FieldSpecError
from chopin_cli.fields import model_source, parse_field, parse_fields, table_for, table_name_for
from chopin_orm import table_meta
from conftest import assert_one_line_error, run_chopin


def test_parse_field_types_nullability_and_modifiers() -> None:
    f = parse_field("email:str:unique:index")
    assert (f.name, f.field_type.sql_type, f.nullable, f.unique, f.index) == ("email", "text", False, True, True)
    f = parse_field("price:decimal(10,2)?")
    assert (f.field_type.sql_type, f.field_type.annotation, f.nullable) == ("numeric(10,2)", "Decimal", True)
    assert parse_field("code:varchar(20)").field_type.sql_type == "character varying(20)"
    assert parse_field("at:datetime").field_type.sql_type == "timestamp with time zone"
    assert parse_field("n:BIGINT").field_type.sql_type == "bigint"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("age:integr", "unknown type 'integr'"),
        ("age", "expected name:type"),
        (":int", "expected name:type"),
        ("Age:int", "lower-case identifier"),
        ("class:int", "lower-case identifier"),
        ("id:int", "added for you"),
        ("x:int:primary", "unknown modifier"),
        ("x:varchar(0)", "varchar(N)"),
        ("x:decimal(5,9)", "decimal(P,S)"),
    ],
)
def test_bad_field_specs(spec: str, fragment: str) -> None:
    with pytest.raises(FieldSpecError) as info:
        parse_field(spec)
    assert fragment in str(info.value)


def test_repeated_fields_are_refused() -> None:
    with pytest.raises(FieldSpecError, match="given twice"):
        parse_fields(["a:int", "a:str"])


def test_table_names() -> None:
    assert [table_name_for(n) for n in ("Item", "BlogPost", "Category", "Box", "Day")] == [
        "items",
        "blog_posts",
        "categories",
        "boxes",
        "days",
    ]


def test_model_source_declares_the_same_table_to_the_orm(tmp_path: Path) -> None:
    specs = ["name:str:unique", "quantity:int", "price:decimal(10,2)?", "born:date?", "meta:json?", "big:bigint:index"]
    fields = parse_fields(specs)
    path = tmp_path / "item_model.py"
    path.write_text(model_source("Item", "items", fields))
    spec = importlib.util.spec_from_file_location("item_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["item_model"] = module
    try:
        spec.loader.exec_module(module)
        declared = table_meta(module.Item)
    finally:
        del sys.modules["item_model"]
    expected = table_for("items", fields)
    assert declared.name == expected.name and declared.primary_key == expected.primary_key
    by_name = {c.name: c for c in declared.columns}
    for col in expected.columns:
        got = by_name[col.name]
        assert (got.sql_type, got.nullable, got.primary_key, got.identity, got.unique, got.index) == (
            col.sql_type,
            col.nullable,
            col.primary_key,
            col.identity,
            col.unique,
            col.index,
        ), col.name
    assert set(by_name) == {c.name for c in expected.columns}


def test_generate_model_with_an_unknown_type_is_one_line(project: Path) -> None:
    run = run_chopin("generate", "model", "Item", "name:str", "age:integr", cwd=project)
    assert_one_line_error(run, "unknown type 'integr'", "expected one of")
    assert list((project / "migrations").glob("*.sql")) == []
    assert not (project / "src/shop/models/item.py").exists()


def test_generate_model_refuses_bad_names_and_clashes(project: Path) -> None:
    assert_one_line_error(run_chopin("generate", "model", "item", "a:int", cwd=project), "CamelCase")
    assert_one_line_error(run_chopin("generate", "model", "Item", "a:int", "--table", "Bad-T", cwd=project), "table")
    assert_one_line_error(run_chopin("generate", "model", "Item", "a:int", "--app", "nope", cwd=project), "nope")
    assert run_chopin("generate", "model", "Item", "a:int", cwd=project).code == 0
    assert_one_line_error(run_chopin("generate", "model", "Item", "a:int", cwd=project), "already exists")
    assert len(list((project / "migrations").glob("*.up.sql"))) == 1


def test_generate_model_into_an_app(project: Path) -> None:
    assert run_chopin("generate", "app", "blog", cwd=project).code == 0
    run = run_chopin("generate", "model", "BlogPost", "title:str", "--app", "blog", cwd=project)
    assert run.code == 0, run
    source = (project / "src/shop/blog/models/blog_post.py").read_text()
    assert '@model(table="blog_posts")' in source and "class BlogPost(Model):" in source
    (up,) = (project / "migrations").glob("*_create_blog_posts.up.sql")
    assert 'CREATE TABLE "blog_posts"' in up.read_text()
