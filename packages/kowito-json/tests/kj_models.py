"""Dataclasses shared by the tests (module level, so annotations resolve)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import Annotated, Literal, NewType

import kowito_json as kj

UserId = NewType("UserId", int)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    name: str
    price: float
    qty: Annotated[int, kj.Constraints(ge=0, le=1000)] = 0
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Order:
    id: UserId
    items: list[Item]
    note: str | None = None


@dataclasses.dataclass
class Everything:
    i: int
    f: float
    s: str
    b: bool
    n: None
    raw: bytes
    ints: list[int]
    pair: tuple[int, str]
    many: tuple[float, ...]
    unique: set[str]
    frozen: frozenset[int]
    mapping: dict[str, int]
    maybe: int | None
    either: int | str
    lit: Literal["a", "b", 3]
    color: Color
    level: Level
    when: datetime.datetime
    day: datetime.date
    clock: datetime.time
    uid: uuid.UUID
    money: decimal.Decimal


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Cat:
    kind: Literal["cat"]
    lives: int


@dataclasses.dataclass
class Dog:
    kind: Literal["dog"]
    good: bool


@dataclasses.dataclass
class Pet:
    pet: Cat | Dog
    owner: str | None = None


@kj.config(rename="camel", omit_none=True, forbid_unknown=True)
@dataclasses.dataclass
class Profile:
    user_id: int
    display_name: str
    home_page: str | None = None
    legacy: int = kj.field(default=0, rename="LEGACY", omit_default=True)


@kj.config(rename="kebab", omit_defaults=True)
@dataclasses.dataclass
class Settings:
    page_size: int = 20
    dark_mode: bool = False
    labels: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Constrained:
    code: Annotated[str, kj.Constraints(min_len=2, max_len=4, pattern=r"^[A-Z]+$")]
    ratio: Annotated[float, kj.Constraints(gt=0, lt=1)]
    items: Annotated[list[int], kj.Constraints(max_len=2)] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Search:
    q: str
    limit: int = 10
    exact: bool = False
    tags: list[str] = dataclasses.field(default_factory=list)
    level: Level | None = None
    score: float | None = None


@dataclasses.dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")
