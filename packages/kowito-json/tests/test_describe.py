"""Type descriptions."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal, Optional

import kowito_json as kj
import pytest
from kj_models import Cat, Dog, Pet, Profile, UserId
from kowito_json._describe import describe_class, describe_type


def test_newtype_and_optional_flatten() -> None:
    assert describe_type(UserId).kind == "int"
    node = describe_type(Optional[int | str])  # noqa: UP045  # the spelling under test
    assert node.kind == "optional"
    assert [a.kind for a in node.args[0].args] == ["int", "str"]


def test_constraints_on_optional_apply_inside() -> None:
    node = describe_type(Annotated[int | None, kj.Constraints(ge=0)])
    assert node.kind == "optional"
    assert node.args[0].constraints == kj.Constraints(ge=0)


def test_constraints_must_fit_the_type() -> None:
    with pytest.raises(kj.UnsupportedType):
        describe_type(Annotated[str, kj.Constraints(ge=0)])
    with pytest.raises(kj.UnsupportedType):
        describe_type(Annotated[int, kj.Constraints(pattern="x")])


def test_discriminator_found_and_named() -> None:
    node = describe_class(Pet).fields[0].node
    assert node.tag_key == "kind"
    assert dict(node.tags) == {"cat": 0, "dog": 1}
    assert describe_type(Annotated[Cat | Dog, kj.Discriminator("kind")]).tag_key == "kind"
    with pytest.raises(kj.UnsupportedType):
        describe_type(Annotated[Cat | Dog, kj.Discriminator("lives")])


def test_json_names_and_clashes() -> None:
    names = [f.json_name for f in describe_class(Profile).fields]
    assert names == ["userId", "displayName", "homePage", "LEGACY"]

    @dataclasses.dataclass
    class Clash:
        a_b: int
        aB: int  # noqa: N815

    with pytest.raises(kj.UnsupportedType, match="two fields"):
        describe_class(kj.config(rename="camel")(Clash))


def test_literal_values_are_json_scalars() -> None:
    assert describe_type(Literal["a", 1, None]).values == ("a", 1, None)
    with pytest.raises(kj.UnsupportedType):
        describe_type(Literal[1.5])  # type: ignore[valid-type]
