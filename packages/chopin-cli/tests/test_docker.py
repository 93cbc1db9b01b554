"""``chopin deploy docker``: the Dockerfile is parsed and checked instruction by instruction."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from conftest import assert_one_line_error, clean_env, free_port, query, run_chopin


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: line continuations joined, comments dropped, one (KEYWORD, args) per instruction."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert match, line
            stages.append(Stage(match.group(1), match.group(2)))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, " ".join(args.split())))
    return stages


def _env_pairs(args: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in args.split())


def test_dockerfile_is_multi_stage_slim_non_root_with_healthcheck(project: Path) -> None:
    run = run_chopin("deploy", "docker", "--workers", "4", "--port", "9000", cwd=project)
    assert run.code == 0, run
    assert "path dependencies" in run.err  # the monorepo deps: their wheels are built here
    stages = parse_dockerfile((project / "Dockerfile").read_text())
    assert [s.name for s in stages] == ["build", "runtime"]
    assert all(re.fullmatch(r"python:3\.\d+-slim", s.base) for s in stages)
    build, runtime = stages
    assert any("pip wheel --no-deps" in r and "requirements.txt" in r for r in build.all("RUN"))
    # The build stage can compile C parts (chopin-core's accelerator); the runtime stage has no compiler.
    assert any("install" in r and " gcc " in r for r in build.all("RUN"))
    assert not any("gcc" in r for r in runtime.all("RUN"))
    assert any(a.startswith("--from=build /wheels") for a in runtime.all("COPY"))
    env: dict[str, str] = {}
    for args in runtime.all("ENV"):
        env.update(_env_pairs(args))
    assert env["PORT"] == "9000" and env["WORKERS"] == "4"
    (user,) = runtime.all("USER")
    assert user not in ("root", "0")
    assert any("useradd --system --uid 10001 --gid app" in r for r in runtime.all("RUN"))
    # USER comes before CMD: the server never runs as root.
    keywords = [kw for kw, _ in runtime.instructions]
    assert keywords.index("USER") < keywords.index("CMD")
    assert runtime.all("EXPOSE") == ["9000"]
    (health,) = runtime.all("HEALTHCHECK")
    options, _, command = health.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"] and "/health" in argv[2] and "PORT" in argv[2]
    compile(argv[2], "healthcheck", "exec")  # the inline script is valid Python
    (cmd,) = runtime.all("CMD")
    assert json.loads(cmd) == ["python", "/app/start.py"]
    start = (project / "deploy/start.py").read_text()
    assert "'shop.app'" in start and "serve(" in start and "CHOPIN_MIGRATE_ON_START" in start
    compile(start, "start.py", "exec")
    assert "migrations /app/migrations" in runtime.all("COPY")
    ignore = (project / ".dockerignore").read_text().splitlines()
    assert {".env", ".venv", ".git"} <= set(ignore)


def test_existing_dockerfile_needs_force(project: Path) -> None:
    (project / "Dockerfile").write_text("FROM scratch\n")
    assert_one_line_error(run_chopin("deploy", "docker", cwd=project), "--force")
    assert (project / "Dockerfile").read_text() == "FROM scratch\n"
    other = f"3.{sys.version_info.minor + 1}"  # chopin-core's wheel has C parts, built for this Python
    run = run_chopin("deploy", "docker", "--force", "--python", other, cwd=project)
    assert run.code == 0, run
    assert "AS runtime" in (project / "Dockerfile").read_text()
    assert f"the image runs {other}: pass --python 3.{sys.version_info.minor}" in " ".join(run.err.split()), run


def test_bad_docker_options(project: Path) -> None:
    assert_one_line_error(run_chopin("deploy", "docker", "--python", "2.7", cwd=project), "--python")
    assert_one_line_error(run_chopin("deploy", "docker", "--workers", "0", cwd=project), "--workers")
    assert not (project / "Dockerfile").exists()


# -- the Dockerfile's steps, run outside Docker -------------------------------------------

#: Absolute paths inside the image, mapped to directories of the test.
_IMAGE_PATH = re.compile(r"(?<![\w/.-])/(src|wheels|app)(?=/|\s|$)")


def _run_step(command: str, mapping: dict[str, Path], cwd: Path, path: str) -> None:
    """One RUN instruction through sh, its image paths mapped to the test's directories."""
    local = _IMAGE_PATH.sub(lambda m: str(mapping[m.group(1)]), command)
    done = subprocess.run(
        ["sh", "-ec", local], cwd=cwd, env={**clean_env(), "PATH": path},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"RUN {command}\n-> {local}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_the_image_builds_and_starts_from_a_project_with_path_dependencies(
    project: Path, tmp_path: Path, scratch_db: str
) -> None:
    # chopin new inside the monorepo: the chopin distributions are file:// path dependencies.
    assert run_chopin("generate", "model", "Item", "name:str", cwd=project).code == 0
    run = run_chopin("deploy", "docker", cwd=project)
    assert run.code == 0, run
    requirements = (project / "wheels/requirements.txt").read_text()
    assert "chopin-core==0.1.0" in requirements and "file:" not in requirements
    build, runtime = parse_dockerfile((project / "Dockerfile").read_text())

    # build stage: COPY . . is the project without what .dockerignore keeps out.
    ignored = {line for line in (project / ".dockerignore").read_text().splitlines() if "*" not in line}
    src, wheels, app = tmp_path / "src", tmp_path / "wheels", tmp_path / "app"
    shutil.copytree(project, src, ignore=lambda _dir, names: [n for n in names if n in ignored or n == "__pycache__"])
    mapping = {"src": src, "wheels": wheels, "app": app}
    tools = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    assert build.all("COPY") == [". ."]
    for command in build.all("RUN"):
        if command.startswith("apt-get"):
            continue  # the base image's compiler packages: this machine has its own
        _run_step(command, mapping, src, tools)
    assert (wheels / "requirements.txt").is_file() and list(wheels.glob("shop-*.whl"))

    # runtime stage: a fresh environment gets only the wheels (no index), the migrations and start.py.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    app.mkdir()
    for args in runtime.all("COPY"):
        if args.startswith("--from=build"):
            continue  # /wheels is already where the build stage left it
        source, target = args.split()
        target_path = Path(_IMAGE_PATH.sub(lambda m: str(mapping[m.group(1)]), target))
        copy = shutil.copytree if (project / source).is_dir() else shutil.copy
        copy(project / source, target_path)
    for command in runtime.all("RUN"):
        if command.startswith(("groupadd", "useradd")):
            continue  # the image's user: the test runs as itself
        _run_step(command, mapping, app, f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert not wheels.exists()  # the runtime step removes them

    # CMD, with the migrations applied on start, then /health (liveness) and /ready (the database).
    env: dict[str, str] = {}
    for args in runtime.all("ENV"):
        env.update(_env_pairs(args))
    port = free_port()
    env.update(
        PORT=str(port), DATABASE_URL=scratch_db, CHOPIN_MIGRATE_ON_START="1", CHOPIN_MIGRATIONS=str(app / "migrations")
    )
    cmd = json.loads(runtime.all("CMD")[0])
    assert cmd[0] == "python"
    argv = [str(venv / "bin/python"), *(_IMAGE_PATH.sub(lambda m: str(mapping[m.group(1)]), a) for a in cmd[1:])]
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(argv, cwd=app, env={**clean_env(), **env}, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        assert health.status_code == 200
        assert (ready.status_code, ready.json()) == (200, {"status": "ready", "database": "ok"})
        assert "applied" in log.read_text() and "create_items" in log.read_text()
        assert query(scratch_db, "SELECT count(*) FROM items") == [(0,)]
        # The installed app came from the wheels, not from the source tree.
        origin = subprocess.run(
            [str(venv / "bin/python"), "-c", "import shop; print(shop.__file__)"],
            cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        assert str(venv) in origin.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
