"""``chopin deploy docker``: a production Dockerfile and ``.dockerignore`` for the project.

The Dockerfile has two stages: ``build`` makes wheels of the project and its dependencies
on a slim Python image; ``runtime`` installs only those wheels (no compiler, no source),
runs as a non-root user, takes ``PORT``/``WORKERS`` from the environment and checks
``GET /health`` (``Chopin.with_health()``) with the standard library (slim images have no curl).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .apploader import parse_app_spec
from .errors import ProjectError
from .project import Project

__all__ = ["DockerSettings", "dockerfile", "dockerignore", "local_dependencies", "write_docker_files"]

DOCKERIGNORE = """\
.git
.venv
venv
**/__pycache__
**/*.py[cod]
.env
.env.*
dist
build
*.egg-info
.pytest_cache
.mypy_cache
.ruff_cache
.tox
Dockerfile
.dockerignore
"""


@dataclass(frozen=True)
class DockerSettings:
    """What the Dockerfile is made for."""

    python: str = "3.11"
    port: int = 8080
    workers: int = 2
    uid: int = 10001

    def __post_init__(self) -> None:
        if not re.fullmatch(r"3\.\d{1,2}", self.python) or int(self.python.split(".")[1]) < 11:
            raise ProjectError(f"--python {self.python!r}: expected a Python version 3.11 or later, like 3.12")
        if not 1 <= self.port <= 65535:
            raise ProjectError(f"--port {self.port}: expected 1..65535")
        if self.workers < 1:
            raise ProjectError(f"--workers {self.workers}: expected at least 1")


def dockerfile(project: Project, settings: DockerSettings) -> str:
    """The Dockerfile text for ``project``."""
    module, attr = parse_app_spec(project.app_spec)
    serve = (
        "import importlib, os; from chopin_core import Chopin; "
        f"app = getattr(importlib.import_module({module!r}), {attr!r}); "
        "app = app if hasattr(app, 'serve') else Chopin(app); "
        "app.serve('0.0.0.0:' + os.environ.get('PORT', '8080'))"
    )
    health = (
        "import os, urllib.request; "
        "urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/health', timeout=4)"
    )
    base = f"python:{settings.python}-slim"
    return f"""\
# syntax=docker/dockerfile:1
# Production image for {project.name} (written by `chopin deploy docker`).
#   docker build -t {project.name} . && docker run -p {settings.port}:{settings.port} {project.name}

# -- build: wheels of the project and every dependency -----------------------------------
FROM {base} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# A C compiler for the wheels that have C parts (chopin-core's metrics accelerator): only
# this stage has it; the runtime image gets the compiled wheels.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Wheels you put in wheels/ (e.g. private packages) are used before the index.
RUN mkdir -p /src/wheels && pip wheel --wheel-dir /wheels --find-links /src/wheels .

# -- runtime: only the wheels, a non-root user ---------------------------------------------
FROM {base} AS runtime
ENV PYTHONUNBUFFERED=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PORT={settings.port} \\
    WORKERS={settings.workers}
RUN groupadd --system --gid {settings.uid} app \\
    && useradd --system --uid {settings.uid} --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels {project.name} && rm -rf /wheels
WORKDIR /app
USER app
EXPOSE {settings.port}
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \\
    CMD ["python", "-c", "{health}"]
STOPSIGNAL SIGTERM
CMD ["python", "-c", "{serve}"]
"""


def dockerignore() -> str:
    """The ``.dockerignore`` text (keeps ``.env``, virtualenvs and build output out of the image)."""
    return DOCKERIGNORE


def local_dependencies(project: Project) -> list[str]:
    """Dependencies given as local paths (``name @ file:...``), which a Docker build cannot reach."""
    try:
        data = tomllib.loads((project.root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    deps = data.get("project", {}).get("dependencies", [])
    return [d.split("@")[0].strip() for d in deps if isinstance(d, str) and "@ file:" in d.replace("@file:", "@ file:")]


def write_docker_files(project: Project, settings: DockerSettings, force: bool = False) -> list[Path]:
    """Write ``Dockerfile`` and ``.dockerignore`` at the project root.

    Raises:
        ProjectError: one exists and ``force`` is false.
    """
    files = {project.root / "Dockerfile": dockerfile(project, settings), project.root / ".dockerignore": dockerignore()}
    if not force:
        existing = [p.name for p in files if p.exists()]
        if existing:
            raise ProjectError(f"{', '.join(existing)} already exist(s) in {project.root}; pass --force to replace")
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)
