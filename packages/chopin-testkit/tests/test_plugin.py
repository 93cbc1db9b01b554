"""The pytest11 entry point: the fixtures reach a fresh pytest run, and a broken setup errors, never skips.

Each test runs pytest in a subprocess on a file in a temporary directory, so the plugin
is loaded the way users get it: by its entry point, not by this test suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

USE_FIXTURES = """
def test_cluster(pg_cluster):
    assert pg_cluster.psql("SELECT current_database()") == "test"
    assert pg_cluster.running


def test_same_cluster_for_the_session(pg_cluster):
    assert pg_cluster.psql("SELECT 2") == "2"


def test_local(local_pg):
    assert local_pg.host == "127.0.0.1"
"""


def run_pytest(directory: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    (directory / "pytest.ini").write_text("[pytest]\n")  # this directory is the rootdir: no outer config
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args],
        cwd=directory,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_fixtures_are_loaded_by_the_entry_point(tmp_path: Path) -> None:
    (tmp_path / "test_uses_fixtures.py").write_text(USE_FIXTURES)
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_a_cluster_that_cannot_start_errors_instead_of_skipping(tmp_path: Path) -> None:
    (tmp_path / "test_needs_pg.py").write_text("def test_needs_pg(pg_cluster):\n    pass\n")
    done = run_pytest(tmp_path, env={"CHOPIN_TESTKIT_PG_BIN": str(tmp_path)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout
    assert "skipped" not in done.stdout
    assert "pg_cluster: PostgreSQL server programs not found" in done.stdout


def test_fixtures_are_listed(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "--fixtures")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pg_cluster [session scope]" in done.stdout
    assert "local_pg [session scope]" in done.stdout
