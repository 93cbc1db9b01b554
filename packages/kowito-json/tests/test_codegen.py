"""Source assembly and compilation of generated code."""

from __future__ import annotations

import linecache

from kowito_json._codegen import SourceBuilder, compile_unit


def test_unsafe_strings_become_globals() -> None:
    builder = SourceBuilder()
    assert builder.literal("user-id") == "'user-id'"
    name = builder.literal("a'); import os; ('")
    assert name.isidentifier()
    assert builder.globals[name] == "a'); import os; ('"


def test_compiled_source_is_in_linecache() -> None:
    builder = SourceBuilder({"x": 41})
    builder.line(0, "def f():")
    builder.line(1, "return x + 1")
    namespace = compile_unit(builder.source, builder.globals, "test unit")
    assert namespace["f"]() == 42
    filename = namespace["f"].__code__.co_filename
    assert filename.startswith("<kowito_json test unit")
    assert linecache.getline(filename, 2).strip() == "return x + 1"
