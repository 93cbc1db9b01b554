"""Run SQLAlchemy's dialect suite on postgresql+chopin://: register the dialect, prepare a database.

SQLAlchemy's suite wants a database of its own with the schemas ``test_schema`` and
``test_schema_2``, and a user allowed to create and drop anything in it; this file makes
``chopin_sqla_suite`` on the chopin-pg test server (the ``CHOPIN_TEST_DATABASE_URL``
server when set, else the machine's server through its socket, as ``tests/conftest.py``)
and points the suite's ``[db] default`` at it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from chopin_pg import PgConfig, connect
from sqlalchemy.dialects import registry

registry.register("postgresql.chopin", "chopin_pg.sqlalchemy", "ChopinDialect")
pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.testing.plugin import plugin_base  # noqa: E402
from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402, F403
from sqlalchemy.testing.plugin.pytestplugin import pytest_collection_modifyitems as _sqla_modifyitems  # noqa: E402
from sqlalchemy.testing.plugin.pytestplugin import pytest_configure as _sqla_configure  # noqa: E402

DATABASE = "chopin_sqla_suite"
SCHEMAS = ("test_schema", "test_schema_2")

# Tests that fail for a reason that is not a dialect bug (the README lists them): (suite class,
# test name or "" for all of the class, reason, the server_version_num from which they pass).
COMPUTED = "SQLAlchemy 2.1 warns (an error here) on Computed() without persisted= before PostgreSQL 18"
KNOWN_FAILURES: tuple[tuple[str, str, str, int], ...] = (
    ("ComputedColumnTest", "", COMPUTED, 180000),
    ("ComputedReflectionTest", "", COMPUTED, 180000),
)
#: The test server's server_version_num, read by pytest_configure (the machine's PostgreSQL 15,
#: or the embedded wheel's 18 on a machine with Python only).
SERVER_VERSION = pytest.StashKey[int]()
# Which tests meet this depends on which pooled connection runs what: reported as xfail when it happens.
STALE = "cached plan must not change result type"
STALE_REASON = (
    "a table dropped and made again with other column types by another pooled connection: this"
    " connection's cached statement fails once inside a transaction (0A000), as with asyncpg"
)


def _server() -> PgConfig:
    if url := os.environ.get("CHOPIN_TEST_DATABASE_URL"):
        return PgConfig.from_url(url, environ={})
    return PgConfig(host="/var/run/postgresql", port=5432, user="root", database="test", sslmode="disable")


def _prepare(server: PgConfig) -> tuple[str, int]:
    """Create the database afresh (a run that was killed leaves tables behind) and its schemas.

    Returns:
        The dialect URL for it, and the server's server_version_num.
    """
    with connect(server.replace(database="postgres")) as admin:
        version = int(admin.query_scalar("SHOW server_version_num"))
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    with connect(server.replace(database=DATABASE)) as conn:
        for schema in SCHEMAS:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    auth = server.user + (f":{server.password}" if server.password is not None else "")
    host = f"host={server.host}" if server.is_unix_socket else ""
    netloc = f"{auth}@" if server.is_unix_socket else f"{auth}@{server.host}:{server.port}"
    query = "&".join(q for q in (host, f"port={server.port}" if server.is_unix_socket else "", "sslmode=disable") if q)
    return f"postgresql+chopin://{netloc}/{DATABASE}?{query}", version


def pytest_configure(config: pytest.Config) -> None:
    """SQLAlchemy's configuration, then ``[db] default`` pointed at the prepared database.

    (This replaces the plugin's hook of the same name that the ``*`` import brought in, so
    it calls it first; SQLAlchemy reads ``[db]`` later, at session start.)
    """
    _sqla_configure(config)
    if plugin_base.file_config is not None and not config.getoption("dburi"):
        url, config.stash[SERVER_VERSION] = _prepare(_server())
        plugin_base.file_config.set("db", "default", url)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """SQLAlchemy's hook (replaced here by the ``*`` import's namesake), then the known failures marked xfail.

    SQLAlchemy names the classes it generates ``<Test>_<backend>``. A known failure is marked
    only on servers older than the version it passes from (strict xfail: an unexpected pass
    fails); with ``--dburi`` the server is not known and every known failure is marked.
    """
    _sqla_modifyitems(session, config, items)
    version = config.stash.get(SERVER_VERSION, 0)
    for item in items:
        cls = getattr(item, "cls", None)
        if cls is None:
            continue
        suite_class = cls.__name__.split("_postgresql", 1)[0]
        test = item.name.split("[", 1)[0]
        for known_class, known_test, reason, passes_from in KNOWN_FAILURES:
            if suite_class == known_class and known_test in ("", test) and version < passes_from:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Report a stale cached statement made by another connection's DDL as xfail (see STALE_REASON)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and STALE in str(call.excinfo.value):
        report.outcome = "skipped"
        report.wasxfail = STALE_REASON
