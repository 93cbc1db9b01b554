"""The demo app's handlers (examples/demo.py) with the OpenAPI document and reference page mounted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from chopin_core import Chopin, Router, openapi
from chopin_core.decorators import registered_routes

DEMO = Path(__file__).resolve().parents[4] / "examples" / "demo.py"
_MODULE = "chopin_demo"


def _load_demo() -> None:
    if _MODULE in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(_MODULE, DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module
    spec.loader.exec_module(module)  # its decorators register the routes under this module name


def build() -> Chopin:
    """The demo's routes only (not other decorated handlers a test may have imported), plus the docs."""
    _load_demo()
    router = Router()
    for found in registered_routes(_MODULE):
        router.route(found.method, found.path, found.handler)
    app = Chopin(router)
    openapi.mount(app, "/openapi.json", "/docs", title="Chopin demo", version="1.0.0")
    return app


app = build()
