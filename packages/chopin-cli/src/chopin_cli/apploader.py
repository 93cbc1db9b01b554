"""Importing the project's app object from a ``module:attribute`` spec.

``module:attr`` names a :class:`chopin_core.Chopin` app or a :class:`chopin_core.Router`,
or a function of no arguments returning one (an app factory).  The project's source
directory goes first on ``sys.path`` so the project's own code is the one imported.
"""

from __future__ import annotations

import importlib
import re
import sys
import traceback
from pathlib import Path

from chopin_core import Chopin, Router

from .errors import AppLoadError

__all__ = ["describe_import_error", "load_app", "parse_app_spec"]

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def parse_app_spec(spec: str) -> tuple[str, str]:
    """Split ``"pkg.module:attr"``; the attribute defaults to ``app``.

    Raises:
        AppLoadError: the spec is not ``module[:attr]`` with dotted identifiers.
    """
    module, _, attr = spec.partition(":")
    attr = attr or "app"
    if not _DOTTED.match(module) or not _DOTTED.match(attr):
        raise AppLoadError(f"app {spec!r}: expected 'package.module:attribute'")
    return module, attr


def describe_import_error(exc: BaseException) -> str:
    """One line for an exception raised while importing user code: type, message, file:line."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}:{exc.lineno})"
        return f"{type(exc).__name__}: {exc.msg}{where}"
    user = [f for f in frames if "importlib" not in f.filename]
    if user:
        where = f" ({user[-1].filename}:{user[-1].lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


def load_app(spec: str, paths: list[Path] | None = None) -> Chopin | Router:
    """Import ``spec`` and return the app or router it names.

    Args:
        spec: ``module:attribute``.
        paths: directories put first on ``sys.path`` (the project's source directory).

    Raises:
        AppLoadError: the module fails to import, the attribute is missing, or it is
            not an app, a router or a factory of one.
    """
    module_name, attr = parse_app_spec(spec)
    for path in reversed(paths or []):
        entry = str(path)
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppLoadError(f"app {spec!r}: no module named {exc.name!r}") from None
        raise AppLoadError(f"app {spec!r}: importing {module_name} failed: {describe_import_error(exc)}") from exc
    except Exception as exc:
        raise AppLoadError(f"app {spec!r}: importing {module_name} failed: {describe_import_error(exc)}") from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(f"app {spec!r}: module {module_name} has no attribute {attr!r}") from None
    if callable(obj) and not isinstance(obj, Chopin | Router):
        try:
            obj = obj()
        except Exception as exc:
            raise AppLoadError(f"app {spec!r}: calling the factory failed: {describe_import_error(exc)}") from exc
    if not isinstance(obj, Chopin | Router):
        raise AppLoadError(f"app {spec!r}: expected a chopin_core.Chopin or Router, got {type(obj).__name__}")
    return obj
