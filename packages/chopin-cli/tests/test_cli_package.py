"""The package imports."""

import chopin_cli


def test_imports() -> None:
    assert chopin_cli.__all__ is not None
