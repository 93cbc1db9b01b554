"""``chopin build``: an sdist and a wheel of a new project, through hatchling in a fresh environment.

The isolated build installs hatchling with pip (from the package index or pip's cache).
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from conftest import assert_one_line_error, run_chopin


def test_build_makes_an_sdist_and_a_wheel(project: Path) -> None:
    run = run_chopin("build", cwd=project)
    assert run.code == 0, run
    wheel = project / "dist" / "shop-0.1.0-py3-none-any.whl"
    sdist = project / "dist" / "shop-0.1.0.tar.gz"
    assert f"built {wheel}" in run.err and f"built {sdist}" in run.err
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read("shop-0.1.0.dist-info/METADATA").decode()
    assert {"shop/app.py", "shop/handlers.py", "shop/models/__init__.py", "shop/py.typed"} <= names
    assert "Requires-Dist: chopin-core @ file://" in metadata
    with tarfile.open(sdist) as tf:
        members = set(tf.getnames())
    assert {"shop-0.1.0/pyproject.toml", "shop-0.1.0/src/shop/app.py", "shop-0.1.0/tests/test_app.py"} <= members


def test_build_with_a_broken_backend_is_reported(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('build-backend = "hatchling.build"', 'build-backend = "nope.x"'))
    run = run_chopin("build", "--no-isolation", cwd=project)
    assert run.code == 1, run
    assert "ModuleNotFoundError" in run.err and "Traceback" not in run.err.splitlines()[-1]
    pyproject.write_text("[project\n")
    assert_one_line_error(run_chopin("build", cwd=project), "invalid TOML")
