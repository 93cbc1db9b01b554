"""``chopin openapi``: the app's document from chopin-core, on stdout or in a file."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import assert_one_line_error, run_chopin


def test_openapi_prints_the_document(project: Path) -> None:
    run = run_chopin("openapi", cwd=project)
    assert run.code == 0, run
    doc = json.loads(run.out)
    assert doc["openapi"].startswith("3.1")
    assert doc["info"] == {"title": "shop", "version": "0.1.0"}
    assert doc["paths"]["/"]["get"]["summary"] == "Greet the visitor."
    params = doc["paths"]["/hello/{name}"]["get"]["parameters"]
    assert [p["name"] for p in params] == ["name"]


def test_openapi_writes_a_file_with_title(project: Path) -> None:
    run = run_chopin("openapi", "-o", "api.json", "--title", "Shop API", "--api-version", "2.0", cwd=project)
    assert run.code == 0, run
    doc = json.loads((project / "api.json").read_text())
    assert doc["info"] == {"title": "Shop API", "version": "2.0"}


def test_openapi_app_errors_are_one_line(project: Path) -> None:
    assert_one_line_error(run_chopin("openapi", "--app", "shop.app:nope", cwd=project), "no attribute 'nope'")
    assert_one_line_error(run_chopin("openapi", "--app", "missing_mod:app", cwd=project), "no module named")
    assert_one_line_error(run_chopin("openapi", "--app", "not a spec", cwd=project), "expected")
    (project / "src/shop/handlers.py").write_text("raise RuntimeError('boom at import')\n")
    assert_one_line_error(run_chopin("openapi", cwd=project), "RuntimeError: boom at import", "handlers.py:1")
