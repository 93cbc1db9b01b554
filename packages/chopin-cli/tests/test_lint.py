"""``chopin check``: each rule on source text, and the command on a project (exit 1, file:line, hint)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from chopin_cli.lint import check_files, check_source, tables_created
from conftest import run_chopin


def _codes(source: str) -> list[tuple[str, int]]:
    findings, _, _ = check_source(textwrap.dedent(source), "m.py")
    return [(f.code, f.line) for f in findings]


def test_blocking_calls_in_handlers_are_found_through_aliases() -> None:
    source = """
        import time
        import requests
        from time import sleep as nap
        from urllib.request import urlopen
        from chopin_core import get, post

        @get("/a")
        def a(ctx):
            '''Doc.'''
            time.sleep(1)
            return requests.get("http://x")

        @post("/b")
        def b(ctx):
            '''Doc.'''
            nap(0.1)
            urlopen("http://x")

        def not_a_handler():
            time.sleep(1)
    """
    assert _codes(source) == [("CHK001", 11), ("CHK001", 12), ("CHK001", 17), ("CHK001", 18)]


def test_a_local_named_like_a_module_is_not_blocking() -> None:
    source = """
        from chopin_core import get

        @get("/a")
        def a(ctx):
            '''Doc.'''
            time = ctx.clock
            time.sleep(1)
    """
    assert _codes(source) == []


def test_module_globals_mutated_in_handlers() -> None:
    source = """
        from chopin_core import get
        HITS = []
        CACHE = {}
        COUNT = 0

        @get("/a")
        def a(ctx):
            '''Doc.'''
            global COUNT
            COUNT += 1
            HITS.append(1)
            CACHE["k"] = 2
            local = []
            local.append(3)
            return CACHE.get("k")
    """
    assert _codes(source) == [("CHK002", 10), ("CHK002", 12), ("CHK002", 13)]


def test_handlers_without_docstrings_and_noqa() -> None:
    source = """
        from chopin_core import get

        @get("/a")
        def a(ctx):
            return 1

        @get("/b")
        def b(ctx):  # noqa: CHK004
            return 2
    """
    assert _codes(source) == [("CHK004", 5)]


def test_syntax_error_is_a_finding() -> None:
    assert _codes("def f(:\n") == [("CHK000", 1)]


def test_route_conflicts_across_files_and_models_without_migrations(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('from chopin_core import get\n\n@get("/u/:id")\ndef a(ctx):\n    """D."""\n')
    (tmp_path / "b.py").write_text(
        "from chopin_core import get, route\n"
        "from chopin_orm import model\n\n"
        '@route("GET", "/u/:name")\ndef b(ctx):\n    """D."""\n\n'
        '@get("/u/:id/x")\ndef c(ctx):\n    """D."""\n\n'
        '@model(table="items")\nclass Item:\n    pass\n\n'
        '@model(table="users")\nclass User:\n    pass\n'
    )
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "20260101000000_users.up.sql").write_text('CREATE TABLE IF NOT EXISTS public."users" (id int);\n')
    findings = check_files([tmp_path], migrations, tmp_path)
    assert [(f.path, f.line, f.code) for f in findings] == [("b.py", 5, "CHK003"), ("b.py", 13, "CHK005")]
    assert "a.py:4" in findings[0].message
    assert "items" in findings[1].message


def test_tables_created_reads_create_table_forms() -> None:
    sql = 'create table a (x int); CREATE UNLOGGED TABLE "B" (y int);\nCREATE TABLE IF NOT EXISTS s.c (z int);'
    assert tables_created([sql]) == {"a", "b", "c"}


def test_check_command_flags_a_planted_sleep(project: Path) -> None:
    clean = run_chopin("check", cwd=project)
    assert clean.code == 0, clean
    assert "no findings" in clean.err
    handlers = project / "src/shop/handlers.py"
    future = "from __future__ import annotations\n"
    handlers.write_text(
        handlers.read_text()
        .replace(future, future + "\nimport time\n")
        .replace('    """Greet the visitor."""\n', '    """Greet the visitor."""\n    time.sleep(0.5)\n')
    )
    line = handlers.read_text().splitlines().index("    time.sleep(0.5)") + 1
    run = run_chopin("check", cwd=project)
    assert run.code == 1, run
    assert f"src/shop/handlers.py:{line}:5: CHK001 blocking call time.sleep() in handler 'index'" in run.out
    assert "hint: handlers must not sleep" in run.out
    assert "1 finding" in run.err
