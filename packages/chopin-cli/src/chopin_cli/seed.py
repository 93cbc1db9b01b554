"""``chopin db seed``: run the project's seeds module in one transaction.

The module (``[tool.chopin] seeds``, default ``<package>.seeds``) defines
``seed(tx)``; ``tx`` is a chopin-orm ``Transaction`` (pass it to model methods, or
use ``tx.connection`` for SQL).  Whatever ``seed`` raises rolls everything back, so a
failed seed leaves the database as it was.
"""

from __future__ import annotations

import importlib
import sys
import time

import chopin_pg
from chopin_orm import transaction

from .apploader import describe_import_error
from .console import Output, spinner
from .errors import AppLoadError, ProjectError, SeedFailed
from .pgtools import CONNECT_TIMEOUT, parse_url, ping
from .project import Project

__all__ = ["run_seeds", "seeds_module"]


def seeds_module(project: Project, override: str | None = None) -> str:
    """The dotted name of the seeds module: ``override``, ``[tool.chopin] seeds``, or ``<package>.seeds``."""
    configured = project.config.get("seeds")
    name = override or (configured if isinstance(configured, str) else f"{project.package}.seeds")
    if not all(part.isidentifier() for part in name.split(".")):
        raise ProjectError(f"seeds module {name!r}: expected a dotted module name")
    return name


def run_seeds(project: Project, url: str, module_name: str, output: Output) -> float:
    """Import ``module_name`` and run its ``seed(tx)`` in one transaction; returns the seconds it took.

    Raises:
        AppLoadError: the module is missing, fails to import, or has no ``seed`` function.
        SeedFailed: ``seed`` raised (the transaction was rolled back).
    """
    for path in (project.root, project.source_dir):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            where = project.package_dir / "seeds.py"
            raise AppLoadError(f"no seeds module {module_name} (create {where} with `def seed(tx): ...`)") from None
        raise AppLoadError(f"importing {module_name} failed: {describe_import_error(exc)}") from exc
    except Exception as exc:
        raise AppLoadError(f"importing {module_name} failed: {describe_import_error(exc)}") from exc
    seed = getattr(module, "seed", None)
    if not callable(seed):
        raise AppLoadError(f"{module_name} has no seed(tx) function")
    config = parse_url(url)
    ping(config)
    started = time.monotonic()
    with chopin_pg.connect(config.replace(connect_timeout=CONNECT_TIMEOUT)) as conn, spinner(output) as progress:
        progress.add_task(f"running {module_name}.seed in one transaction", total=None)
        try:
            with transaction(conn) as tx:
                seed(tx)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise SeedFailed(
                f"{module_name}.seed failed, nothing was committed: {type(exc).__name__}: {first}"
            ) from exc
    return time.monotonic() - started
