"""JSON Schema (draft 2020-12) for the types kowito-json encodes and decodes.

:func:`schema` gives a standalone schema with dataclasses under ``$defs``;
:func:`schema_components` gives the pieces OpenAPI 3.1 wants: one schema per
requested type plus the shared definitions, referenced through a template such
as ``#/components/schemas/{name}``.  The schema describes what the encoder
writes and the decoder accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ._describe import MISSING, TypeNode, describe_class, describe_type
from .options import Constraints

__all__ = ["schema", "schema_components"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_SIMPLE: dict[str, dict[str, Any]] = {
    "any": {},
    "none": {"type": "null"},
    "bool": {"type": "boolean"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "str": {"type": "string"},
    "bytes": {"type": "string", "contentEncoding": "base64"},
    "decimal": {"type": ["string", "number"], "format": "decimal"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "format": "time"},
    "uuid": {"type": "string", "format": "uuid"},
}

_LENGTH_KEYS = {
    "str": ("minLength", "maxLength"),
    "bytes": ("minLength", "maxLength"),
    "dict": ("minProperties", "maxProperties"),
}


def schema(type: Any) -> dict[str, Any]:
    """A standalone JSON Schema 2020-12 for ``type``.

    Args:
        type: any type kowito-json supports.

    Returns:
        The schema; dataclasses are described once under ``$defs`` and referenced.

    Raises:
        UnsupportedType: if ``type`` is not supported.
    """
    (result,), defs = schema_components([type], ref_template="#/$defs/{name}")
    result = {"$schema": DIALECT, **result}
    if defs:
        result["$defs"] = defs
    return result


def schema_components(
    types: Iterable[Any], *, ref_template: str = "#/components/schemas/{name}"
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Schemas for several types sharing one set of definitions (for OpenAPI).

    Args:
        types: the types to describe.
        ref_template: how a reference to definition ``{name}`` is written.

    Returns:
        ``(schemas, definitions)``: one schema per type, in order, and the
        dataclass definitions they reference, by name.

    Raises:
        UnsupportedType: if a type is not supported.
    """
    builder = _SchemaBuilder(ref_template)
    schemas = [builder.node(describe_type(t)) for t in types]
    return schemas, builder.definitions


class _SchemaBuilder:
    def __init__(self, ref_template: str) -> None:
        self.ref_template = ref_template
        self.definitions: dict[str, dict[str, Any]] = {}
        self._names: dict[type, str] = {}

    def name(self, cls: type) -> str:
        name = self._names.get(cls)
        if name is None:
            taken = set(self._names.values())
            name = cls.__name__
            if name in taken:
                name = cls.__qualname__.replace(".", "_").replace("<locals>_", "")
            base, n = name, 2
            while name in taken:
                name, n = f"{base}{n}", n + 1
            self._names[cls] = name
            self.definitions[name] = {}  # reserved before recursing: recursive types refer to it
            self.definitions[name] = self.class_schema(cls)
        return name

    def ref(self, cls: type) -> dict[str, Any]:
        return {"$ref": self.ref_template.format(name=self.name(cls))}

    def node(self, node: TypeNode) -> dict[str, Any]:
        kind = node.kind
        if kind in _SIMPLE:
            result = dict(_SIMPLE[kind])
        elif kind == "literal":
            values = list(node.values)
            result = {"const": values[0]} if len(values) == 1 else {"enum": values}
        elif kind == "enum":
            result = {"title": node.cls.__name__, "enum": [m.value for m in node.cls]}
        elif kind in ("list", "vartuple", "set", "frozenset"):
            result = {"type": "array", "items": self.node(node.args[0])}
            if kind in ("set", "frozenset"):
                result["uniqueItems"] = True
        elif kind == "tuple":
            count = len(node.args)
            result = {"type": "array", "prefixItems": [self.node(a) for a in node.args], "items": False}
            result.update(minItems=count, maxItems=count)
        elif kind == "dict":
            result = {"type": "object", "additionalProperties": self.node(node.args[0])}
        elif kind == "optional":
            return {"anyOf": [self.node(node.args[0]), {"type": "null"}]}
        elif kind == "union":
            members = [self.node(m) for m in node.args]
            if node.tag_key is None:
                return {"anyOf": members}
            mapping = {str(value): members[index]["$ref"] for value, index in node.tags}
            return {"oneOf": members, "discriminator": {"propertyName": node.tag_key, "mapping": mapping}}
        else:  # class
            return self.ref(node.cls)
        if node.constraints is not None:
            result.update(_constraints(kind, node.constraints))
        return result

    def class_schema(self, cls: type) -> dict[str, Any]:
        description = describe_class(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for f in description.fields:
            prop = self.node(f.node)
            if f.default is not MISSING:
                default = _json_default(f.node, f.default)
                if default is not MISSING:
                    prop = {**prop, "default": default}
            properties[f.json_name] = prop
            if f.required:
                required.append(f.json_name)
        result: dict[str, Any] = {"type": "object", "title": cls.__name__}
        doc = cls.__doc__
        if doc and not doc.startswith(cls.__name__ + "("):  # skip the signature dataclasses writes
            result["description"] = doc.strip().split("\n\n")[0].strip()
        result["properties"] = properties
        if required:
            result["required"] = required
        if description.options.forbid_unknown:
            result["additionalProperties"] = False
        return result


def _json_default(node: TypeNode, value: Any) -> Any:
    from .encoder import Encoder

    try:
        return orjson.loads(Encoder(_annotation(node, value)).encode(value))
    except Exception:
        return MISSING


def _annotation(node: TypeNode, value: Any) -> Any:
    # Defaults are encoded by their runtime type; a type's own encoder applies its options.
    return type(value) if node.kind == "class" else Any


def _constraints(kind: str, c: Constraints) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for value, key in ((c.ge, "minimum"), (c.gt, "exclusiveMinimum"), (c.le, "maximum"), (c.lt, "exclusiveMaximum")):
        if value is not None:
            result[key] = value
    low, high = _LENGTH_KEYS.get(kind, ("minItems", "maxItems"))
    if c.min_len is not None:
        result[low] = c.min_len
    if c.max_len is not None:
        result[high] = c.max_len
    if c.pattern is not None:
        result["pattern"] = c.pattern
    return result
