"""Class and field options, constraints, rename policies."""

from __future__ import annotations

import kowito_json as kj
import pytest
from kowito_json.options import rename_field


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("camel", "userIdValue"), ("pascal", "UserIdValue"), ("kebab", "user-id-value"), ("snake", "user_id_value")],
)
def test_rename_policies(policy: str, expected: str) -> None:
    assert rename_field("user_id_value", policy) == expected  # type: ignore[arg-type]


def test_rename_function_and_bad_policy() -> None:
    assert rename_field("a", str.upper) == "A"
    with pytest.raises(kj.UnsupportedType):
        kj.config(rename="shouting")  # type: ignore[arg-type]
    with pytest.raises(kj.UnsupportedType):
        rename_field("a", lambda name: 3)  # type: ignore[arg-type, return-value]


def test_constraints_validate_themselves() -> None:
    with pytest.raises(kj.UnsupportedType):
        kj.Constraints(pattern="(")
    with pytest.raises(kj.UnsupportedType):
        kj.Constraints(min_len=-1)
    merged = kj.Constraints(ge=1, max_len=3).merged(kj.Constraints(ge=2))
    assert merged == kj.Constraints(ge=2, max_len=3)
