"""Versions that mean something: one version per distribution, said the same way everywhere.

For each distribution under packages/: ``__version__`` equals the pyproject version, the
CHANGELOG's newest release is that version, every dependency on another distribution of
this repository is a range that holds its current version, and the README's install lines
name every in-repository distribution the installed one needs. Read from the files, not
imported, so the test needs no distribution installed.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PACKAGES = sorted(path.parent for path in (REPO / "packages").glob("*/pyproject.toml"))
NAMES = {path.name for path in PACKAGES}


def _project(package: Path) -> dict[str, object]:
    data = tomllib.loads((package / "pyproject.toml").read_text())
    project = data["project"]
    assert isinstance(project, dict)
    return project


def _ours(package: Path, *, extras: bool) -> list[Requirement]:
    project = _project(package)
    specs = list(project.get("dependencies", []))  # type: ignore[call-overload]
    if extras:
        for group in project.get("optional-dependencies", {}).values():  # type: ignore[attr-defined]
            specs += group
    return [req for req in map(Requirement, specs) if req.name in NAMES]


@pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])
def test_version_is_the_same_in_pyproject_init_and_changelog(package: Path) -> None:
    version = str(_project(package)["version"])
    (init,) = package.glob("src/*/__init__.py")
    found = re.findall(r'^__version__ = "([^"]+)"$', init.read_text(), re.MULTILINE)
    assert found == [version], f"{init}: __version__ {found}, pyproject {version}"
    assert '"__version__"' in init.read_text(), f"{init}: __version__ not in __all__"
    changelog = (package / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## (\d+\.\d+\.\d+)", changelog, re.MULTILINE)
    assert releases and releases[0] == version, f"{package.name}/CHANGELOG.md: newest release {releases[:1]}"


@pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])
def test_dependencies_between_our_packages_are_ranges_that_hold_the_current_versions(package: Path) -> None:
    for req in _ours(package, extras=True):
        current = Version(str(_project(REPO / "packages" / req.name)["version"]))
        assert req.specifier.contains(current), f"{package.name}: {req} excludes {req.name} {current}"
        bounds = {spec.operator for spec in req.specifier}
        assert {">=", "<"} <= bounds, f"{package.name}: {req} is not a >=,< range"


def _closure(name: str) -> set[str]:
    needed, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in needed:
            needed.add(current)
            todo += [req.name for req in _ours(REPO / "packages" / current, extras=False)]
    return needed


def test_the_readme_install_lines_name_what_each_distribution_needs() -> None:
    lines = [line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("pip install -e ")]
    targets = {}
    for line in lines:
        named = re.findall(r"-e '?packages/([a-z-]+)", line)
        targets[named[-1]] = set(named)
    assert set(targets) == NAMES, sorted(targets)
    for target, named in targets.items():
        assert named == _closure(target), f"README: installing {target} needs {sorted(_closure(target))}"
