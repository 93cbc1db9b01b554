"""The statement cache without a server: which command tags clear it."""

from __future__ import annotations

from chopin_pg._statements import PreparedStatement, StatementCache
from chopin_pg.types import TypeRegistry


def _cache_with(*sqls: str) -> StatementCache:
    cache = StatementCache(10)
    for sql in sqls:
        cache.remember(PreparedStatement(cache.reserve_name(), sql, (), [], TypeRegistry()))
    return cache


def test_drop_and_alter_clear_the_cache_and_queue_closes() -> None:
    for tag in ("DROP TABLE", "ALTER TABLE", "DROP TYPE", "ALTER DOMAIN"):
        cache = _cache_with("SELECT 1", "SELECT 2")
        cache.note_command(tag)
        assert not cache.statements
        assert cache.take_pending_close().count(b"C") == 2  # one Close message per statement


def test_rollback_clears_only_after_a_create() -> None:
    cache = _cache_with("SELECT 1")
    for tag in ("SELECT 1", "INSERT 0 1", "UPDATE 3", "DELETE 0", "COPY 5", "", "ROLLBACK"):
        cache.note_command(tag)
    assert list(cache.statements) == ["SELECT 1"]  # a plain rollback keeps the cache: pools roll back often
    cache.note_command("CREATE TABLE")
    cache.note_command("COMMIT")
    cache.note_command("ROLLBACK")
    assert list(cache.statements) == ["SELECT 1"]  # the CREATE was committed
    cache.note_command("CREATE TABLE")
    cache.note_command("ROLLBACK")
    assert not cache.statements
