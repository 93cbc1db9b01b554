"""``chopin build``: an sdist and a wheel of the project through its PEP 517 backend.

A small PEP 517 front end (what ``python -m build`` does, without the dependency): the
backend named in ``[build-system]`` runs in a fresh virtual environment holding only
its ``requires`` (installed with this interpreter's pip), or in this interpreter with
``--no-isolation``.  Each hook runs in a subprocess in the project directory.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import tomllib
import venv
from collections.abc import Sequence
from pathlib import Path

from .console import Output, spinner
from .errors import ProjectError, ToolFailed

__all__ = ["build_dists"]

# Runs inside the build environment: call one backend hook, print its answer as JSON.
_HOOK_RUNNER = """\
import importlib, json, sys
backend_spec, hook, arg, paths = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path[:0] = paths
module, _, attr = backend_spec.partition(":")
backend = importlib.import_module(module)
for part in filter(None, attr.split(".")):
    backend = getattr(backend, part)
fn = getattr(backend, hook, None)
if fn is None:
    result = [] if hook.startswith("get_requires") else None
else:
    result = fn(arg) if arg else fn()
print("\\nCHOPIN-HOOK-RESULT:" + json.dumps(result))
"""
#: Seconds allowed for installing the build requirements and for each hook.
STEP_TIMEOUT = 600.0


def _read_build_system(root: Path) -> tuple[list[str], str, list[str]]:
    path = root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProjectError(f"{path}: {exc}") from None
    system = data.get("build-system", {})
    requires = system.get("requires", ["setuptools>=40.8.0"])
    backend = system.get("build-backend", "setuptools.build_meta:__legacy__")
    backend_path = system.get("backend-path", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise ProjectError(f"{path}: [build-system] requires must be a list of strings")
    if not isinstance(backend, str) or not backend:
        raise ProjectError(f"{path}: [build-system] build-backend must be a string")
    return requires, backend, [str((root / p).resolve()) for p in backend_path]


def _run(command: Sequence[str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(
            list(command),
            check=False,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"{what}: no answer within {STEP_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).strip().splitlines() if ln.strip()]
        raise ToolFailed(f"{what} failed (exit {done.returncode}): {' / '.join(lines[-3:]) or 'no output'}")
    return done.stdout


def _install(python: Path, requirements: list[str], cwd: Path) -> None:
    if not requirements:
        return
    if importlib.util.find_spec("pip") is not None:
        command = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *requirements]
    else:
        command = [str(python), "-m", "pip", "install", "-q", *requirements]
    _run(command, cwd, f"installing the build requirements ({', '.join(requirements)})")


def _hook(python: Path, backend: str, hook: str, arg: str, backend_path: list[str], cwd: Path) -> object:
    out = _run(
        [str(python), "-c", _HOOK_RUNNER, backend, hook, arg, json.dumps(backend_path)], cwd, f"the backend's {hook}"
    )
    marker = out.rfind("CHOPIN-HOOK-RESULT:")
    if marker < 0:
        raise ToolFailed(f"the backend's {hook} gave no answer")
    return json.loads(out[marker + len("CHOPIN-HOOK-RESULT:") :].splitlines()[0])


def build_dists(root: Path, outdir: Path, output: Output, isolated: bool = True) -> list[Path]:
    """Build the sdist and the wheel of the project at ``root`` into ``outdir``.

    Raises:
        ProjectError: no or a malformed ``pyproject.toml``.
        ToolFailed: installing the backend or a hook failed (its last lines are in the message).
    """
    if not (root / "pyproject.toml").is_file():
        raise ProjectError(f"no pyproject.toml in {root}")
    requires, backend, backend_path = _read_build_system(root)
    outdir.mkdir(parents=True, exist_ok=True)
    built: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="chopin-build-") as env_dir, spinner(output) as progress:
        task = progress.add_task("preparing the build environment", total=None)
        if isolated:
            need_pip = importlib.util.find_spec("pip") is None
            venv.create(env_dir, with_pip=need_pip, symlinks=True)
            python = Path(env_dir) / "bin" / "python"
            progress.update(task, description=f"installing {', '.join(requires)}")
            _install(python, requires, root)
        else:
            python = Path(sys.executable)
        for kind in ("sdist", "wheel"):
            progress.update(task, description=f"building the {kind}")
            extra = _hook(python, backend, f"get_requires_for_build_{kind}", "", backend_path, root)
            if isinstance(extra, list) and extra and isolated:
                _install(python, [str(r) for r in extra], root)
            name = _hook(python, backend, f"build_{kind}", str(outdir.resolve()), backend_path, root)
            if not isinstance(name, str):
                raise ToolFailed(f"the backend's build_{kind} returned {name!r}, not a file name")
            built.append(outdir / name)
    return built
