"""Row: access by index, name and slice; equality; typed access."""

from __future__ import annotations

import pytest
from chopin_pg import InterfaceError, Row


def test_row_access() -> None:
    row = Row((1, "a", None), {"id": 0, "name": 1, "x": 2})
    assert row[0] == 1
    assert row["name"] == "a"
    assert row[-1] is None
    assert row[0:2] == (1, "a")
    assert len(row) == 3
    assert list(row) == [1, "a", None]
    assert row == (1, "a", None)
    assert row == Row((1, "a", None), {})
    assert hash(row) == hash((1, "a", None))
    assert row.keys() == ["id", "name", "x"]
    assert row.as_dict() == {"id": 1, "name": "a", "x": None}
    assert row.get("nope") is None
    assert "name='a'" in repr(row)
    assert row.get_typed("id", int) == 1
    with pytest.raises(InterfaceError, match="expected str, got NoneType"):
        row.get_typed("x", str)
