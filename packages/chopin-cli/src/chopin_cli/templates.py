"""The files ``chopin new`` and ``chopin generate app|handler`` write, as ``string.Template`` text.

Placeholders are ``$name``; only validated identifiers and quoted values are substituted.
"""

from __future__ import annotations

from string import Template

__all__ = [
    "APP_ERRORS",
    "APP_HANDLERS",
    "APP_INIT",
    "HANDLER",
    "PROJECT_FILES",
]

PYPROJECT = Template("""\
[build-system]
requires = ["hatchling>=1.26"]
build-backend = "hatchling.build"

[project]
name = "$name"
version = "0.1.0"
description = "A Chopin web service."
readme = "README.md"
requires-python = ">=3.11"
dependencies = [
$dependencies]

[project.optional-dependencies]
test = ["pytest>=8"]
$hatch_metadata
[tool.hatch.build.targets.wheel]
packages = ["src/$package"]

[tool.chopin]
app = "$package.app:app"
migrations = "migrations"

[tool.pytest.ini_options]
pythonpath = ["src"]
testpaths = ["tests"]
addopts = ["--strict-markers"]
""")

README = Template("""\
# $name

A [Chopin](https://github.com/) web service.

```sh
pip install -e '.[test]'
chopin dev                      # serve with hot reload on http://127.0.0.1:8000
pytest                          # the tests use chopin_core.TestClient, no socket
chopin generate model Item name:str quantity:int
chopin migrate up               # DATABASE_URL comes from .env
chopin check                    # blocking calls, shared state, route conflicts, ...
chopin deploy docker            # Dockerfile + .dockerignore
```

| path | holds |
| --- | --- |
| `src/$package/app.py` | the app: every decorated route under `$package`, and `/health` |
| `src/$package/handlers.py` | the routes (`@get("/")`, ...) |
| `src/$package/models/` | database models (`chopin generate model`) |
| `migrations/` | timestamped up/down SQL migrations |
| `tests/` | tests with `chopin_core.TestClient` |
| `.env` | `DATABASE_URL` for local development |
""")

PACKAGE_INIT = Template('''\
"""$name: a Chopin web service."""
''')

APP_MODULE = Template('''\
"""The $package application: every decorated route under the package, plus ``/health``."""

from __future__ import annotations

from chopin_core import Chopin


def create_app() -> Chopin:
    """The app: the routes of every module under ``$package`` (imported here), and ``/health``."""
    return Chopin().mount_all_routes("$package").with_health("/health")


app = create_app()
''')

HANDLERS_MODULE = Template('''\
"""The routes of $package; ``create_app`` finds them by their decorators."""

from __future__ import annotations

from chopin_core import Context, Response, get


@get("/")
def index(ctx: Context) -> Response:
    """Greet the visitor."""
    return Response.json({"message": "Hello from $package"})


@get("/hello/:name")
def hello(ctx: Context) -> Response:
    """Greet someone by name."""
    return Response.json({"message": f"Hello, {ctx.param('name')}!"})
''')

MAIN_MODULE = Template('''\
"""``python -m $package``: serve the app on PORT (default 8080) with WORKERS workers."""

from __future__ import annotations

if __name__ == "__main__":
    from $package.app import app

    app.serve("0.0.0.0:8080")
''')

MODELS_INIT = Template('''\
"""Database models of $package (``chopin generate model Name field:type ...``)."""
''')

TEST_APP = Template('''\
"""The routes answer through the real protocol code (chopin_core.TestClient, no socket)."""

from __future__ import annotations

from chopin_core import TestClient

from $package.app import create_app


def test_index_greets() -> None:
    response = TestClient(create_app()).get("/")
    assert response.status == 200
    assert response.json() == {"message": "Hello from $package"}


def test_hello_uses_the_path_parameter() -> None:
    response = TestClient(create_app()).get("/hello/Ada")
    assert response.status == 200
    assert response.json() == {"message": "Hello, Ada!"}


def test_unknown_path_is_404() -> None:
    assert TestClient(create_app()).get("/nope").status == 404
''')

DOTENV = Template("""\
# Local development settings; the environment wins over this file.
DATABASE_URL=$database_url
""")

GITIGNORE = Template("""\
__pycache__/
*.py[cod]
.venv/
dist/
build/
*.egg-info/
.pytest_cache/
.env
""")

PROJECT_FILES: dict[str, Template] = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    ".env": DOTENV,
    ".gitignore": GITIGNORE,
    "migrations/.gitkeep": Template(""),
    "src/$package/__init__.py": PACKAGE_INIT,
    "src/$package/__main__.py": MAIN_MODULE,
    "src/$package/py.typed": Template(""),
    "src/$package/app.py": APP_MODULE,
    "src/$package/handlers.py": HANDLERS_MODULE,
    "src/$package/models/__init__.py": MODELS_INIT,
    "tests/test_app.py": TEST_APP,
}

APP_INIT = Template('''\
"""The $app app of $package: models, handlers and errors (its routes are mounted by create_app)."""
''')

APP_ERRORS = Template('''\
"""Errors of the $app app, and the responses they become."""

from __future__ import annotations

from chopin_core import Response


class ${class_prefix}Error(Exception):
    """Base of the $app app's errors."""

    status = 400

    def to_response(self) -> Response:
        """The JSON error response this error becomes."""
        return Response.json({"error": str(self)}, self.status)


class ${class_prefix}NotFound(${class_prefix}Error):
    """A $app resource does not exist."""

    status = 404
''')

APP_HANDLERS = Template('''\
"""The routes of the $app app (under ``/$app``)."""

from __future__ import annotations

from chopin_core import Context, Response, get

from .errors import ${class_prefix}Error


@get("/$app")
def list_$app(ctx: Context) -> Response:
    """List the $app resources."""
    try:
        return Response.json({"$app": []})
    except ${class_prefix}Error as exc:
        return exc.to_response()
''')

HANDLER = Template('''\


@$method("$path")
def $name(ctx: Context) -> Response:
    """TODO: say what $name does (its first line is the OpenAPI summary)."""
    return Response.json({"handler": "$name"})
''')
