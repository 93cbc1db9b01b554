"""``chopin deploy docker``: a production Dockerfile, ``.dockerignore`` and start script for the project.

The Dockerfile has two stages: ``build`` makes wheels of the project and its dependencies
on a slim Python image; ``runtime`` installs only those wheels (no compiler, no source),
copies the migrations, runs as a non-root user, takes ``PORT``/``WORKERS`` from the
environment and checks ``GET /health`` (``Chopin.with_health()``, liveness) with the
standard library (slim images have no curl).  ``deploy/start.py`` applies the migrations
first when ``CHOPIN_MIGRATE_ON_START=1``, then serves.

Path dependencies (``name @ file:///...``, as ``chopin new`` writes inside the monorepo)
cannot be reached from a Docker build context, so their wheels are built here, on this
machine, into ``wheels/``, and ``wheels/requirements.txt`` names every dependency by name
and version.  The image installs the project with ``--no-deps`` and its dependencies from
that file: the ``file://`` references in the project's metadata are never looked at.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .apploader import parse_app_spec
from .errors import ProjectError, ToolFailed
from .project import Project

__all__ = [
    "START_SCRIPT",
    "WHEELS_DIR",
    "DockerSettings",
    "build_local_wheels",
    "dockerfile",
    "dockerignore",
    "local_dependencies",
    "start_script",
    "write_docker_files",
]

#: Where locally built wheels and requirements.txt go, relative to the project root.
WHEELS_DIR = "wheels"
#: The container's start script, relative to the project root.
START_SCRIPT = "deploy/start.py"
#: Seconds one ``pip wheel`` of a path dependency may take.
WHEEL_BUILD_TIMEOUT = 600.0

START = '''\
"""Start $name in its container (written by ``chopin deploy docker``).

With ``CHOPIN_MIGRATE_ON_START=1`` the migrations in ``$CHOPIN_MIGRATIONS`` (default
``/app/migrations``) are applied first, on the database ``DATABASE_URL`` (then the libpq
variables) names; chopin-orm's advisory lock lets several replicas start at once.
Then the app is served on ``PORT`` with ``WORKERS`` workers.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path


def migrate() -> None:
    """Apply the pending migrations."""
    import chopin_pg
    from chopin_orm.migrations import Migrator

    directory = Path(os.environ.get("CHOPIN_MIGRATIONS", "/app/migrations"))
    with chopin_pg.connect() as conn:
        for migration in Migrator(conn, directory).up():
            print(f"applied {migration.filename_stem}", file=sys.stderr, flush=True)


def main() -> None:
    """Migrate when asked, then serve."""
    if os.environ.get("CHOPIN_MIGRATE_ON_START") == "1":
        migrate()
    from chopin_core import Chopin

    app = getattr(importlib.import_module($module), $attr)
    app = app if hasattr(app, "serve") else Chopin(app)
    app.serve("0.0.0.0:" + os.environ.get("PORT", "8080"))


if __name__ == "__main__":
    main()
'''

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


def start_script(project: Project) -> str:
    """The text of ``deploy/start.py``: migrate when asked, then serve the app."""
    module, attr = parse_app_spec(project.app_spec)
    return START.replace("$name", project.name).replace("$module", repr(module)).replace("$attr", repr(attr))


def dockerfile(project: Project, settings: DockerSettings) -> str:
    """The Dockerfile text for ``project``."""
    migrations = project.migrations_dir.relative_to(project.root).as_posix()
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
# A C compiler for the wheels that have C parts (chopin-core's metrics accelerator, chopin-pg's
# row decoder): only this stage has it; the runtime image gets the compiled wheels.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The project without its dependencies (its metadata may hold file:// path dependencies),
# then every dependency by name from {WHEELS_DIR}/requirements.txt; wheels in {WHEELS_DIR}/
# (built by `chopin deploy docker` from path dependencies, or put there by you) come first.
RUN mkdir -p /wheels \\
    && pip wheel --no-deps --wheel-dir /wheels . \\
    && pip wheel --wheel-dir /wheels --find-links /src/{WHEELS_DIR} -r /src/{WHEELS_DIR}/requirements.txt \\
    && cp /src/{WHEELS_DIR}/requirements.txt /wheels/requirements.txt

# -- runtime: only the wheels, a non-root user ---------------------------------------------
FROM {base} AS runtime
ENV PYTHONUNBUFFERED=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PORT={settings.port} \\
    WORKERS={settings.workers}
RUN groupadd --system --gid {settings.uid} app \\
    && useradd --system --uid {settings.uid} --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels -r /wheels/requirements.txt \\
    && pip install --no-cache-dir --no-index --find-links /wheels --no-deps {project.name} \\
    && rm -rf /wheels
WORKDIR /app
COPY {migrations} /app/migrations
COPY {START_SCRIPT} /app/start.py
USER app
EXPOSE {settings.port}
# Liveness: /health answers while the process serves. Readiness (the database answers) is
# /ready in apps made by `chopin new`: point your orchestrator's readiness probe there.
# CHOPIN_MIGRATE_ON_START=1 applies /app/migrations before serving.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \\
    CMD ["python", "-c", "{health}"]
STOPSIGNAL SIGTERM
CMD ["python", "/app/start.py"]
"""


def dockerignore() -> str:
    """The ``.dockerignore`` text (keeps ``.env``, virtualenvs and build output out of the image)."""
    return DOCKERIGNORE


def _dependencies(project: Project) -> list[str]:
    try:
        data = tomllib.loads((project.root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    deps = data.get("project", {}).get("dependencies", [])
    return [d for d in deps if isinstance(d, str)]


def _path_dependency(spec: str) -> tuple[str, Path] | None:
    name, at, url = spec.partition("@")
    url = url.strip()
    if not at or not url.startswith("file:"):
        return None
    return name.strip(), Path(unquote(urlsplit(url).path))


def local_dependencies(project: Project) -> list[str]:
    """Dependencies given as local paths (``name @ file:...``), which a Docker build cannot reach."""
    return [found[0] for spec in _dependencies(project) if (found := _path_dependency(spec)) is not None]


def _wheel_version(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        for line in archive.read(metadata).decode().splitlines():
            if line.startswith("Version: "):
                return line.removeprefix("Version: ").strip()
    raise ProjectError(f"{wheel}: no Version in its METADATA")


def build_local_wheels(project: Project) -> list[Path]:
    """Build the path dependencies' wheels into ``wheels/`` and write ``wheels/requirements.txt``.

    ``requirements.txt`` lists the project's dependencies by name: path dependencies pinned
    to the version of the wheel built from them, the others as the project gives them.

    Returns:
        The files written (wheels, then requirements.txt).

    Raises:
        ProjectError: a path dependency does not exist.
        ToolFailed: ``pip wheel`` failed on one.
    """
    out = project.root / WHEELS_DIR
    out.mkdir(exist_ok=True)
    written: list[Path] = []
    requirements: list[str] = []
    for spec in _dependencies(project):
        found = _path_dependency(spec)
        if found is None:
            requirements.append(spec)
            continue
        name, path = found
        if not (path / "pyproject.toml").is_file():
            raise ProjectError(f"path dependency {name} @ {path}: no pyproject.toml there")
        before = set(out.glob("*.whl"))
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(path)]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=WHEEL_BUILD_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise ToolFailed(f"pip wheel {path}: no result within {WHEEL_BUILD_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ToolFailed(f"pip wheel {path} failed: {last}")
        normalized = re.sub(r"[-_.]+", "_", name).lower()
        wheels = sorted(
            (w for w in out.glob("*.whl") if w.name.lower().startswith(normalized + "-")),
            key=lambda w: (w not in before, w.stat().st_mtime),
        )
        if not wheels:
            raise ToolFailed(f"pip wheel {path}: no {normalized}-*.whl in {out}")
        wheel = wheels[-1]
        written.append(wheel)
        requirements.append(f"{name}=={_wheel_version(wheel)}")
    listing = out / "requirements.txt"
    listing.write_text(
        "# The project's dependencies by name (written by `chopin deploy docker`; path\n"
        "# dependencies are pinned to the wheels built beside this file).\n" + "".join(f"{r}\n" for r in requirements),
        encoding="utf-8",
    )
    written.append(listing)
    return written


def write_docker_files(project: Project, settings: DockerSettings, force: bool = False) -> list[Path]:
    """Write ``Dockerfile``, ``.dockerignore`` and ``deploy/start.py`` at the project root.

    Raises:
        ProjectError: one exists and ``force`` is false.
    """
    files = {
        project.root / "Dockerfile": dockerfile(project, settings),
        project.root / ".dockerignore": dockerignore(),
        project.root / START_SCRIPT: start_script(project),
    }
    if not force:
        existing = [p.name for p in files if p.exists()]
        if existing:
            raise ProjectError(f"{', '.join(existing)} already exist(s) in {project.root}; pass --force to replace")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
