"""The package imports."""

import chopin_orm


def test_imports() -> None:
    assert chopin_orm.__all__ is not None
