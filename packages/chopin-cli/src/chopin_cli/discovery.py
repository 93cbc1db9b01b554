"""Finding the project's ``@model`` classes: import every module of its package, keep the models.

Used by ``chopin migrate make``, which compares them with the live schema.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

from chopin_orm.errors import ModelError
from chopin_orm.schema import table_meta

from .apploader import describe_import_error
from .errors import AppLoadError

__all__ = ["find_models"]


def find_models(package: str, paths: list[Path]) -> list[type]:
    """Every ``@model`` class defined in a module of ``package``, in import order.

    Raises:
        AppLoadError: a module of the package fails to import.
    """
    for path in reversed(paths):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    try:
        root = importlib.import_module(package)
        modules = [root]
        for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=package + "."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue  # running it would serve the app
            modules.append(importlib.import_module(info.name))
    except Exception as exc:
        raise AppLoadError(f"importing {package} failed: {describe_import_error(exc)}") from exc
    found: list[type] = []
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__ and value not in found:
                try:
                    table_meta(value)
                except ModelError:
                    continue
                found.append(value)
    return found
