"""The entry point: the ``chopin`` script, help, version, colours, and one-line errors for bad usage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import assert_one_line_error, clean_env, run_chopin


def test_the_console_script_runs() -> None:
    script = Path(sys.executable).parent / "chopin"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False, env=clean_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "chopin, version 0.1.0"


def test_help_lists_every_command(tmp_path: Path) -> None:
    run = run_chopin("--help", cwd=tmp_path)
    assert run.code == 0
    for command in ("new", "dev", "build", "check", "generate", "migrate", "db", "openapi", "deploy"):
        assert f"  {command} " in run.out
    sub = run_chopin("generate", "model", "--help", cwd=tmp_path)
    assert sub.code == 0 and "name:type[?][:unique][:index]" in sub.out


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run_chopin("frobnicate", cwd=tmp_path), "No such command 'frobnicate'", "chopin --help")
    assert_one_line_error(run_chopin("new", cwd=tmp_path), "Missing argument 'NAME'")
    assert_one_line_error(run_chopin("dev", "--port", "99999", cwd=tmp_path), "--port")
    assert_one_line_error(run_chopin("migrate", "down", "--steps", "0", cwd=tmp_path), "--steps")
    assert_one_line_error(run_chopin("generate", "model", "Item", cwd=tmp_path), "Missing argument 'FIELDS...'")


def test_a_malformed_pyproject_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.chopin]\napp = 3\n')
    assert_one_line_error(run_chopin("openapi", cwd=tmp_path), "[tool.chopin] app must be a non-empty string")
    (tmp_path / "pyproject.toml").write_text("[tool.x]\n")
    assert_one_line_error(run_chopin("check", cwd=tmp_path), "[project] name is missing")


def test_colours_follow_no_color_and_force_color(project: Path) -> None:
    plain = run_chopin("check", cwd=project)
    assert plain.code == 0 and "\x1b[" not in plain.err
    env = clean_env(FORCE_COLOR="1", TERM="xterm-256color")
    del env["NO_COLOR"]
    coloured = run_chopin("check", cwd=project, env=env)
    assert coloured.code == 0 and "\x1b[" in coloured.err
