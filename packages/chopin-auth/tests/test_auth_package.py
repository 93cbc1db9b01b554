"""The package imports."""

import chopin_auth


def test_imports() -> None:
    assert chopin_auth.__all__ is not None
