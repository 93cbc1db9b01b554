"""``chopin deploy docker``: the Dockerfile is parsed and checked instruction by instruction."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from conftest import assert_one_line_error, run_chopin


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
    assert "path dependencies" in run.err  # the monorepo deps cannot be reached from a Docker build
    stages = parse_dockerfile((project / "Dockerfile").read_text())
    assert [s.name for s in stages] == ["build", "runtime"]
    assert all(re.fullmatch(r"python:3\.\d+-slim", s.base) for s in stages)
    build, runtime = stages
    assert any("pip wheel" in r for r in build.all("RUN"))
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
    cmd_argv = json.loads(cmd)
    assert "'shop.app'" in cmd_argv[2] and "serve(" in cmd_argv[2]
    compile(cmd_argv[2], "cmd", "exec")
    ignore = (project / ".dockerignore").read_text().splitlines()
    assert {".env", ".venv", ".git"} <= set(ignore)


def test_existing_dockerfile_needs_force(project: Path) -> None:
    (project / "Dockerfile").write_text("FROM scratch\n")
    assert_one_line_error(run_chopin("deploy", "docker", cwd=project), "--force")
    assert (project / "Dockerfile").read_text() == "FROM scratch\n"
    assert run_chopin("deploy", "docker", "--force", cwd=project).code == 0
    assert "AS runtime" in (project / "Dockerfile").read_text()


def test_bad_docker_options(project: Path) -> None:
    assert_one_line_error(run_chopin("deploy", "docker", "--python", "2.7", cwd=project), "--python")
    assert_one_line_error(run_chopin("deploy", "docker", "--workers", "0", cwd=project), "--workers")
    assert not (project / "Dockerfile").exists()
