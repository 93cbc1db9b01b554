"""User-defined types: composite types as named tuples, anonymous records as tuples, enums as Python enums.

::

    Point = register_composite(conn, "point3")        # a namedtuple class Point3(x, y, z)
    conn.query_one("SELECT $1::point3", (Point(1, 2, 3),))[0]  # -> Point3(x=1, y=2, z=3)
    register_enum(conn, "mood", Mood)                 # mood values come back as Mood members

Wire formats (``src/backend/utils/adt/rowtypes.c``): a record in binary is an int32 field
count then, per field, its type OID, an int32 length (-1 for NULL) and the field's binary
form; in text it is ``(1,"a b",,x)`` (an empty field is NULL; a quote inside quotes is doubled).  The text form
carries no field types, so an *anonymous* record decoded from text (the first run of a
pipelined statement) is a tuple of ``str``; from binary its fields are typed.
"""

from __future__ import annotations

import keyword
import re
from collections import namedtuple
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from ._codecs import text_any
from ._records import encode_composite, make_record_binary, make_record_text
from .errors import InterfaceError
from .types import ParamEncoder

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["register_composite", "register_enum"]

E = TypeVar("E", bound=Enum)


_COMPOSITE_FIELDS = """
SELECT t.oid, a.attname, a.atttypid
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
WHERE t.oid = $1::regtype::oid AND t.typtype = 'c'
ORDER BY a.attnum
"""


def _python_name(name: str) -> str:
    text = re.sub(r"\W", "_", name.rsplit(".", 1)[-1].strip('"'))
    return text.title().replace("_", "") or "Record"


def register_composite(conn: Connection, name: str, factory: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """Decode the composite type ``name`` (and arrays of it) as named tuples; accept tuples as its parameters.

    Args:
        conn: The connection whose type registry learns the type.
        name: The type's name, schema-qualified if needed (``"app.address"``).
        factory: Called with the fields as positional arguments; by default a new
            ``namedtuple`` class named after the type, with its attribute names.

    Returns:
        The factory (the named tuple class by default).

    Raises:
        InterfaceError: ``name`` is not a composite type.
        ProgrammingError: No type has that name (42704).
    """
    rows = conn.query(_COMPOSITE_FIELDS, (name,))
    if not rows:
        raise InterfaceError(f"register_composite: {name!r} is not a composite type")
    field_names = [str(r[1]) for r in rows]
    field_oids = [int(r[2]) for r in rows]
    make: Callable[..., Any]
    if factory is None:
        safe = [n if n.isidentifier() and not keyword.iskeyword(n) else f"f{i}" for i, n in enumerate(field_names)]
        make = namedtuple(_python_name(name), safe, rename=True)  # type: ignore[misc,no-redef]
    else:
        make = factory

    def build(fields: list[Any]) -> Any:
        return make(*fields)

    types = conn.types
    conn.register_type(
        name,
        binary=make_record_binary(types.binary.get, build),
        text=make_record_text(lambda: [types.text.get(oid, text_any) for oid in field_oids], build),
        param=ParamEncoder(None, encode_composite, 0),
    )
    return make


def register_enum(conn: Connection, name: str, enum: type[E]) -> None:
    """Decode the PostgreSQL enum ``name`` (and arrays of it) as members of ``enum``, matched by name.

    Parameters need no registration: an ``Enum`` member is always sent as its name.

    Raises:
        ProgrammingError: No type has that name (42704).
    """

    def decode(data: bytes) -> E:
        return enum[data.decode()]

    conn.register_type(name, text=decode, binary=decode)
