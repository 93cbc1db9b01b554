"""docs/tutorial.md ("Your first real app"), run as written: its commands, its files, its tests, its app.

``sh`` blocks run line by line (``chopin ...`` as a subprocess; ``cd``; ``pip install`` is
skipped: this environment has the distributions; ``chopin dev`` is served and called);
``<!-- file: PATH -->`` blocks are written (``append`` adds to the file; ``replace``
replaces the line that starts like the block's).  Two things the page says in prose are
done here: ``--database-url`` gives the project a database name of its own, and
chopin-auth is added to the project's dependencies.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import SERVER, clean_env, free_port, run_chopin

REPO = Path(__file__).resolve().parents[3]
TUTORIAL = REPO / "docs/tutorial.md"
BLOCK = re.compile(
    r"(?:<!-- file: (?P<file>\S+)(?: (?P<mode>append|replace))? -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)```", re.S
)
DEADLINE = 60.0


def _serve_and_use(project: Path) -> None:
    port = free_port()
    log = project / "dev.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "chopin_cli", "dev", "--port", str(port)],
            cwd=project, env=clean_env(), stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            assert process.poll() is None, log.read_text()
            try:
                ready = httpx.get(base + "/ready", timeout=5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        assert ready.status_code == 200
        # The page's curl line, then a note through the served app.
        assert httpx.post(base + "/signup", json={"name": "ada", "password": "pw"}, timeout=30).status_code == 201
        token = httpx.post(base + "/login", json={"name": "ada", "password": "pw"}, timeout=30).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert (
            httpx.post(base + "/notes", json={"title": "t", "body": "b"}, headers=auth, timeout=30).status_code == 201
        )
        assert [n["title"] for n in httpx.get(base + "/notes", headers=auth, timeout=30).json()] == ["t"]
        docs = httpx.get(base + "/docs", timeout=30)
        assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
        assert "/notes/{id}" in httpx.get(base + "/openapi.json", timeout=30).json()["paths"]
        assert httpx.get(base + "/metrics", timeout=30).status_code == 200
    finally:
        process.terminate()
        process.wait(30)


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    database = f"notes_{secrets.token_hex(4)}"
    cwd = tmp_path
    project = tmp_path / "notes"
    ran: list[str] = []
    try:
        for block in BLOCK.finditer(TUTORIAL.read_text()):
            code = block["code"]
            if block["file"]:
                path = project / block["file"]
                if block["mode"] == "append":
                    path.write_text(path.read_text() + code)
                elif block["mode"] == "replace":
                    (line,) = code.strip("\n").splitlines()
                    head = line.split("=")[0]
                    text = path.read_text()
                    (old,) = [old for old in text.splitlines() if old.split("=")[0] == head]
                    path.write_text(text.replace(old, line))
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(code)
                continue
            if block["lang"] != "sh":
                continue
            for raw in code.splitlines():
                command = raw.split("  #")[0].strip()
                if not command or command.startswith("pip install"):
                    continue
                ran.append(command)
                if command.startswith("cd "):
                    cwd = cwd / command.removeprefix("cd ")
                    continue
                if command == "chopin dev":
                    _serve_and_use(cwd)
                    continue
                if command == "pytest":
                    done = subprocess.run(
                        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                        cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300, check=False,
                    )  # fmt: skip
                    assert done.returncode == 0, done.stdout + done.stderr
                    assert "8 passed" in done.stdout, done.stdout
                    continue
                args = command.split()
                assert args[0] == "chopin", command
                if args[1] == "new":
                    args += ["--database-url", SERVER.with_database(database).dsn()]
                if args[1:3] == ["deploy", "docker"]:
                    pyproject = project / "pyproject.toml"
                    auth = (REPO / "packages/chopin-auth").as_uri()
                    pyproject.write_text(
                        pyproject.read_text().replace(
                            "dependencies = [\n", f'dependencies = [\n    "chopin-auth @ {auth}",\n', 1
                        )
                    )
                run = run_chopin(*args[1:], cwd=cwd)
                assert run.code == 0, (command, run)
        assert ran[:2] == ["chopin new notes", "cd notes"] and "chopin dev" in ran and "pytest" in ran
        assert "chopin-auth==0.1.0" in (project / "wheels/requirements.txt").read_text()
    finally:
        if project.exists():
            run_chopin("db", "drop", "--yes", cwd=project)


@pytest.mark.parametrize("path", ["src/notes/accounts.py", "src/notes/notebook.py"])
def test_the_tutorials_code_blocks_name_files_in_the_project(path: str) -> None:
    assert f"<!-- file: {path} -->" in TUTORIAL.read_text()
