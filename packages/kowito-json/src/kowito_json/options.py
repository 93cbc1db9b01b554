"""The knobs: per-class and per-field options, constraints and discriminators.

Options are plain frozen values attached where Python already keeps such things:
class options on the class (``__kowito_json__``, set by :func:`config`), field
options in ``dataclasses.field(metadata=...)`` (set by :func:`field`), constraints
and discriminators in ``typing.Annotated`` metadata.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from .errors import UnsupportedType

__all__ = [
    "ClassOptions",
    "Constraints",
    "DecodeOptions",
    "Discriminator",
    "FieldOptions",
    "RenamePolicy",
    "config",
    "field",
    "rename_field",
]

T = TypeVar("T")

RenamePolicy = Literal["camel", "pascal", "kebab", "snake"] | Callable[[str], str] | None
"""How Python field names become JSON member names, class-wide."""

METADATA_KEY = "kowito_json"
CLASS_ATTRIBUTE = "__kowito_json__"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClassOptions:
    """Options of one dataclass, set with :func:`config`.

    Attributes:
        rename: policy turning field names into JSON names (``"camel"``,
            ``"pascal"``, ``"kebab"``, ``"snake"`` or a function).
        omit_none: leave out fields whose value is ``None`` when encoding.
        omit_defaults: leave out fields equal to their default when encoding.
        forbid_unknown: reject JSON members that match no field when decoding.
    """

    rename: RenamePolicy = None
    omit_none: bool = False
    omit_defaults: bool = False
    forbid_unknown: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FieldOptions:
    """Options of one field, set with :func:`field`.

    Attributes:
        rename: the JSON name of this field (wins over the class policy).
        omit_none: leave the field out when it is ``None`` (``None``: class setting).
        omit_default: leave the field out when it equals its default (``None``: class setting).
    """

    rename: str | None = None
    omit_none: bool | None = None
    omit_default: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Constraints:
    """Value constraints, used as ``Annotated[int, Constraints(ge=0)]``.

    Bounds apply to numbers; lengths to strings, bytes, arrays and objects;
    ``pattern`` (searched, as in JSON Schema) to strings.

    Attributes:
        ge: minimum, inclusive.
        gt: minimum, exclusive.
        le: maximum, inclusive.
        lt: maximum, exclusive.
        min_len: minimum length.
        max_len: maximum length.
        pattern: a regular expression the string must contain a match of.
    """

    ge: int | float | None = None
    gt: int | float | None = None
    le: int | float | None = None
    lt: int | float | None = None
    min_len: int | None = None
    max_len: int | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise UnsupportedType(f"Constraints(pattern={self.pattern!r}): {exc}") from None
        for name in ("min_len", "max_len"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise UnsupportedType(f"Constraints({name}={value!r}): expected a non-negative int")

    def merged(self, other: Constraints) -> Constraints:
        """These constraints with the ones ``other`` sets laid over them."""
        changes = {
            f.name: getattr(other, f.name) for f in dataclasses.fields(other) if getattr(other, f.name) is not None
        }
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True, slots=True)
class Discriminator:
    """Names the tag field of a union of dataclasses: ``Annotated[A | B, Discriminator("kind")]``.

    Each member must declare that field with a ``Literal`` type; decoding reads
    the tag first and builds only the matching member.  Unions of dataclasses
    that share such a field are discriminated without it; this names the field
    when several would do.

    Attributes:
        field: the Python name of the tag field.
    """

    field: str


def config(
    *,
    rename: RenamePolicy = None,
    omit_none: bool = False,
    omit_defaults: bool = False,
    forbid_unknown: bool = False,
) -> Callable[[type[T]], type[T]]:
    """Class decorator setting the JSON options of a dataclass.

    Args:
        rename: policy turning field names into JSON names.
        omit_none: leave out ``None`` fields when encoding.
        omit_defaults: leave out fields equal to their default when encoding.
        forbid_unknown: reject unknown JSON members when decoding.

    Returns:
        A decorator that records the options on the class and returns it.

    Raises:
        UnsupportedType: if ``rename`` is not a known policy or a callable.
    """
    if not (rename is None or callable(rename) or rename in _RENAMERS):
        raise UnsupportedType(f"config(rename={rename!r}): expected one of {sorted(_RENAMERS)} or a function")
    options = ClassOptions(
        rename=rename, omit_none=omit_none, omit_defaults=omit_defaults, forbid_unknown=forbid_unknown
    )

    def decorate(cls: type[T]) -> type[T]:
        setattr(cls, CLASS_ATTRIBUTE, options)
        return cls

    return decorate


def field(
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    rename: str | None = None,
    omit_none: bool | None = None,
    omit_default: bool | None = None,
) -> Any:
    """A ``dataclasses.field`` carrying JSON options.

    Args:
        default: the field's default value.
        default_factory: a zero-argument function making the default.
        rename: the field's JSON name.
        omit_none: leave the field out when ``None`` (``None`` follows the class).
        omit_default: leave the field out when equal to its default.

    Returns:
        The ``dataclasses.Field`` to assign in the class body.
    """
    options = FieldOptions(rename=rename, omit_none=omit_none, omit_default=omit_default)
    metadata = {METADATA_KEY: options}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _camel(name: str) -> str:
    head, *rest = name.strip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.strip("_").split("_"))


def _kebab(name: str) -> str:
    return name.strip("_").replace("_", "-")


_RENAMERS: dict[str, Callable[[str], str]] = {
    "camel": _camel,
    "pascal": _pascal,
    "kebab": _kebab,
    "snake": lambda name: name,
}


def rename_field(name: str, policy: RenamePolicy) -> str:
    """The JSON name of field ``name`` under ``policy``.

    Args:
        name: the Python field name.
        policy: a rename policy (see :data:`RenamePolicy`).

    Returns:
        The JSON member name.

    Raises:
        UnsupportedType: if a policy function returns something other than a str.
    """
    if policy is None:
        return name
    renamed = policy(name) if callable(policy) else _RENAMERS[policy](name)
    if type(renamed) is not str:
        raise UnsupportedType(f"rename policy returned {renamed!r} for field {name!r}: expected a str")
    return renamed


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DecodeOptions:
    """Settings of a :class:`~kowito_json.Decoder` that change its generated code.

    Attributes:
        forbid_unknown: reject unknown members in every class (``None``: each
            class's own :func:`config` setting).
        allow_nan: accept NaN and infinities for floats and Decimals.
        coerce_strings: also accept numbers, booleans and null written as strings
            (``"12"``, ``"true"``, ``""`` for ``None``), as query strings carry them.
    """

    forbid_unknown: bool | None = None
    allow_nan: bool = False
    coerce_strings: bool = False
